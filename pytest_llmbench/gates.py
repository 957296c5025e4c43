"""Quality and speed gates: per-item thresholds, pass rates over repeats, pass@k."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: Threshold metrics and where their value comes from.
THRESHOLD_METRICS = ("score", "decode_tps", "server_decode_tps", "ttft_s", "total_s", "prompt_tps")


@dataclass(frozen=True)
class Threshold:
    """``score>=80``, ``decode_tps>=20``, ``ttft_s<=5``."""

    metric: str
    op: str
    limit: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.limit:g}"

    def holds(self, value: float) -> bool:
        return value >= self.limit if self.op == ">=" else value <= self.limit


def parse_thresholds(text: str | Iterable[str]) -> tuple[Threshold, ...]:
    """Parse ``"score>=80,ttft_s<=5"`` (or a list of such); ``ValueError`` names the fix."""
    parts = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    out = []
    for part in filter(None, (p.strip() for p in parts)):
        match = re.fullmatch(r"([a-z_]+)\s*(>=|<=)\s*(-?\d+(?:\.\d+)?)", part)
        if not match or match.group(1) not in THRESHOLD_METRICS:
            raise ValueError(
                f"bad threshold {part!r}: write METRIC>=N or METRIC<=N with METRIC one of "
                f"{', '.join(THRESHOLD_METRICS)} (e.g. score>=80,ttft_s<=5)"
            )
        out.append(Threshold(match.group(1), match.group(2), float(match.group(3))))
    return tuple(out)


def item_values(record: dict[str, Any], metric: str) -> list[float]:
    """The values of ``metric`` in an item record (one per generation, or the score)."""
    if metric == "score":
        score = (record.get("scores") or {}).get("score")
        return [] if score is None else [float(score)]
    return [
        float(g["metrics"][metric])
        for g in record.get("generations") or []
        if g.get("metrics", {}).get(metric) is not None
    ]


def check_thresholds(record: dict[str, Any], thresholds: Iterable[Threshold]) -> list[str]:
    """Failure messages for thresholds the item's median misses (value, limit, spread)."""
    failures = []
    for threshold in thresholds:
        values = item_values(record, threshold.metric)
        if not values:
            failures.append(f"{threshold}: no {threshold.metric} was measured")
            continue
        value = statistics.median(values)
        if not threshold.holds(value):
            spread = (
                f" (median of {len(values)}: {min(values):.3g}–{max(values):.3g})"
                if len(values) > 1
                else ""
            )
            failures.append(f"{threshold.metric} = {value:.3g}, threshold {threshold}{spread}")
    return failures


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimator (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)
