"""What the plugin can tell about the Ollama runner behind a model between two requests.

Ollama keeps its prompt cache on whatever the request says (v0.12's runner and, since v0.30,
llama-server with ``cache_prompt: true``), and ``prompt_eval_count`` counts the cached tokens
while ``prompt_eval_duration`` covers only the evaluated ones. It also loads a model again
when its keep-alive ran out or another model evicted it, and the request that finds it gone
pays the load (``load_duration``) inside its TTFT. Neither is visible in the stream, so each
generation is checked here and gets a :class:`~pytest_llmbench.caveats.Caveat` when its
figures are distorted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pytest_llmbench.caveats import PROMPT_CACHE, RELOADED, Caveat

RELOAD_S = 0.25
"""A request that waited this long for its model found it unloaded (or queued behind a load):
a warm model is scheduled in milliseconds, and a load starts a runner process."""
CACHE_SHARE = 0.10
"""A prompt sharing at least this fraction of its text with one the runner saw since it was
loaded reuses that much of Ollama's prompt cache: prompt tok/s then reads high by about
1 / (1 - share), and TTFT low."""
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
    """The prompts the runner has seen since it was loaded, and reloads seen since."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def loaded(self) -> None:
        """A fresh runner: its prompt cache is empty."""
        self.prompts.clear()

    def caveats(
        self, messages: Iterable[Mapping[str, Any]], server_load_s: float | None
    ) -> tuple[Caveat, ...]:
        """The caveats of a generation that sent ``messages`` and waited ``server_load_s``."""
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
        self.prompts = [*self.prompts[-(_REMEMBERED - 1) :], text]
        if text and shared / len(text) >= CACHE_SHARE:
            found.append(
                Caveat(
                    PROMPT_CACHE,
                    f"{100 * shared / len(text):.0f}% of the prompt was sent before since the "
                    f"model was loaded",
                    ("ttft_s", "ttfa_s", "prompt_tps"),
                )
            )
        return tuple(found)
