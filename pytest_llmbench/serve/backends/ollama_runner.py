"""What the plugin can tell about the Ollama runner behind a model between two requests.

Ollama keeps its prompt cache on whatever the request says (v0.12's runner and, since v0.30,
llama-server with ``cache_prompt: true``). Its final chunk says nothing of what was reused:
``prompt_eval_count`` counts every prompt token, cached or not, while ``prompt_eval_duration``
covers only the evaluated ones, so a prompt served from the cache shows as a prompt rate far
above the model's. Shared text alone is no evidence: on a sliding-window model (gemma3)
llama-server restores only context checkpoints, and prompts sharing half their text reused
one token (27 of 28 evaluated, real Ollama v0.33.0-rc2). It also loads a model again when its
keep-alive ran out or another model evicted it, and the request that finds it gone pays the
load (``load_duration``) inside its TTFT. Neither is visible in the stream, so each generation
is checked here and gets a :class:`~pytest_llmbench.serve.caveats.Caveat` when its figures are
distorted.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_llmbench.serve.caveats import PROMPT_CACHE, RELOADED, Caveat

RELOAD_S = 0.25
"""A request that waited this long for its model found it unloaded (or queued behind a load):
a warm model is scheduled in milliseconds, and a load starts a runner process."""
CACHE_SPEEDUP = 2.0
"""A prompt evaluated at least this many times faster than the model's recent uncached rate
came from the cache: reusing a fraction f of the prompt speeds it up by 1 / (1 - f) (an exact
repeat on Ollama v0.33 evaluates 5 of its tokens: 15x for 76 tokens, 2.6x to 24x measured on a
busy 2-core machine), while uncached rates of neighbouring generations differ less."""
CACHE_SHARE = 1 - 1 / CACHE_SPEEDUP
"""The share of its text a prompt must have sent before for that speed-up to be possible (the
cache serves only a shared prefix)."""
RECENT = 5
"""How many of the latest uncached prompt rates make the reference (the machine's load drifts
during a run: an old rate compares a prompt with another moment)."""
UNSHARED = 0.10
"""A prompt sharing less than this with every earlier one was evaluated whole: its rate is
the model's uncached rate (the template's header is all prompts have in common)."""
_REMEMBERED = 64


def prompt_text(messages: Iterable[Mapping[str, Any]]) -> str:
    """The messages' contents and roles in order, each content first: the text prompts
    share when they share a prefix (the template's header, common to all, is left out)."""
    return "".join(f"{m.get('content') or ''}\x00{m.get('role', '')}\x00" for m in messages)


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix, by bisection on C-level slice comparisons (a character
    loop in Python costs ~0.1 s per generation against 64 long prompts)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class RunnerWatch:
    """The prompts the runner has seen since it was loaded, the model's uncached prompt rates
    in this run, and reloads."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.uncached_tps: list[float] = []
        """Prompt rates of generations that could not reuse the cache (kept across reloads:
        the rate is the model's)."""

    def loaded(self) -> None:
        """A fresh runner: its prompt cache is empty."""
        self.prompts.clear()

    def caveats(
        self,
        messages: Iterable[Mapping[str, Any]],
        server_load_s: float | None,
        prompt_tps: float | None = None,
    ) -> tuple[Caveat, ...]:
        """The caveats of a generation that sent ``messages``, waited ``server_load_s`` and
        evaluated its prompt at ``prompt_tps`` (Ollama: prompt_eval_count over
        prompt_eval_duration, the cached tokens counted, their time not)."""
        found: list[Caveat] = []
        if server_load_s is not None and server_load_s >= RELOAD_S:
            self.loaded()
            found.append(
                Caveat(
                    RELOADED,
                    f"reloaded during the run: TTFT includes {server_load_s:.1f} s of load",
                    ("ttft_s", "ttfa_s"),
                )
            )
        text = prompt_text(messages)
        shared = max((_common_prefix(p, text) for p in self.prompts), default=0)
        share = shared / len(text) if text else 0.0
        self.prompts = [*self.prompts[-(_REMEMBERED - 1) :], text]
        cached = self._cache_caveat(share, prompt_tps)
        if cached is not None:
            found.append(cached)
        elif prompt_tps and share < UNSHARED:
            self.uncached_tps.append(prompt_tps)
        return tuple(found)

    def _cache_caveat(self, share: float, prompt_tps: float | None) -> Caveat | None:
        """A prompt-cache caveat when the prompt could have come from the cache (its text was
        sent before) and did (it was evaluated far faster than the model's uncached rate)."""
        if not prompt_tps or share < CACHE_SHARE or not self.uncached_tps:
            return None
        uncached = statistics.median(self.uncached_tps[-RECENT:])
        speedup = prompt_tps / uncached
        if speedup < CACHE_SPEEDUP:
            return None
        return Caveat(
            PROMPT_CACHE,
            f"prompt evaluated {speedup:.0f}x faster than this model's recent uncached "
            f"{uncached:.0f} tok/s; {100 * share:.0f}% of it was sent before",
            ("ttft_s", "ttfa_s", "prompt_tps"),
        )
