"""Why a figure of one generation cannot be compared with the others, said next to it.

A :class:`Caveat` travels with its generation (``Generation.caveats``, and in the JSON), names
the metrics it leaves out of the speed medians, and becomes one note line under the
leaderboard per model and kind, so a distorted figure is never compared with a clean one
without the reader being told.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RELOADED = "reloaded"
PROMPT_CACHE = "prompt_cache"
SIDE_BY_SIDE = "side_by_side"
CONCURRENT = "concurrent"
QUEUED = "queued"

SPEED = (
    "ttft_s",
    "ttfa_s",
    "decode_tps",
    "server_decode_tps",
    "prompt_tps",
    "itl_p50_s",
    "itl_p90_s",
    "itl_p99_s",
)
"""The speed figures a generation that shared its server's compute leaves out."""

_WHAT = {
    RELOADED: "the model was loaded again during the run (keep-alive expiry, or evicted "
    "by another model such as the judge)",
    PROMPT_CACHE: "part of the prompt came from the server's prompt cache (Ollama cannot "
    "turn it off), so prompt tok/s reads high and TTFT low",
    SIDE_BY_SIDE: "another spawned server was busy generating at the same time",
    CONCURRENT: "other generations of the same server were in flight at the same time "
    "(--llm-concurrency), so its speed figures were taken under concurrency",
    QUEUED: "the request waited in the server's queue behind other requests, so its TTFT "
    "includes the wait",
}


@dataclass(frozen=True)
class Caveat:
    """One reason a generation's figures are not like the others'."""

    kind: str
    """``reloaded``, ``prompt_cache``, ``side_by_side``, ``concurrent`` or ``queued``."""
    detail: str
    """This generation's facts, e.g. "TTFT includes 4.1 s of load"."""
    excludes: tuple[str, ...] = ()
    """Metric names left out of the medians and percentiles for this generation."""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "excludes": list(self.excludes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Caveat:
        return cls(str(data["kind"]), str(data["detail"]), tuple(data.get("excludes") or ()))


CACHED_SHARE = 0.10
"""A prompt whose server counted at least this share of it as served from its cache is marked
(llama-server keeps a token or two of any earlier prompt: that changes nothing)."""


def prompt_cache_caveat(prompt_tokens: int | None, cached_tokens: int | None) -> Caveat | None:
    """The prompt-cache caveat of a generation whose server counted ``cached_tokens`` of its
    ``prompt_tokens`` as reused (llama-server ``timings.cache_n``), or None."""
    if not prompt_tokens or not cached_tokens or cached_tokens < CACHED_SHARE * prompt_tokens:
        return None
    return Caveat(
        PROMPT_CACHE,
        f"the server reused {cached_tokens} of {prompt_tokens} prompt tokens from its cache",
        ("ttft_s", "ttfa_s", "prompt_tps"),
    )


def notes(generations: Iterable[tuple[str, Iterable[Caveat]]]) -> list[str]:
    """One line per model and kind of caveat, from ``(model, a generation's caveats)``
    pairs: how many generations, what happened, which figures leave them out, the details."""
    grouped: dict[tuple[str, str], list[Caveat]] = {}
    for model, caveats_of_one in generations:
        for caveat in caveats_of_one:
            grouped.setdefault((model, caveat.kind), []).append(caveat)
    lines = []
    for (model, kind), caveats in grouped.items():
        excludes = sorted({m for c in caveats for m in c.excludes})
        details = _distinct(c.detail for c in caveats)
        left_out = f"; left out of the {', '.join(excludes)} medians" if excludes else ""
        lines.append(
            f"{model}: {len(caveats)} generation(s): {_WHAT.get(kind, kind)} "
            f"({'; '.join(details[:3])}{'; …' if len(details) > 3 else ''}){left_out}"
        )
    return lines


def _distinct(values: Iterable[str]) -> Sequence[str]:
    return list(dict.fromkeys(v for v in values if v))
