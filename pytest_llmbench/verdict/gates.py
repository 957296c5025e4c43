"""Quality and speed gates: per-item thresholds, pass rates over repeats, pass@k."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

from pytest_llmbench.config.thresholds import Threshold
from pytest_llmbench.generate.records import ItemRecord


def check_thresholds(record: ItemRecord, thresholds: Iterable[Threshold]) -> list[str]:
    """Failure messages for thresholds the item's median misses (value, limit, spread)."""
    return check_pooled([record], thresholds)


def check_pooled(records: Iterable[ItemRecord], thresholds: Iterable[Threshold]) -> list[str]:
    """Failure messages for thresholds the median of the values pooled over ``records`` (a
    repeat group's items) misses. Speed figures count as in the medians: warm-ups and
    caveat-marked generations are left out (``GenerationRecord.counts_toward_speed``)."""
    records = list(records)
    failures = []
    for threshold in thresholds:
        spec = threshold.spec
        values = [v for record in records for v in spec.values(record, timed_only=True)]
        if not values:
            failures.append(f"{threshold}: {_unmeasured(threshold, records)}")
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


def _unmeasured(threshold: Threshold, records: list[ItemRecord]) -> str:
    """Why a threshold has no value: a score never recorded names the ones that were; speed
    figures all left out say why."""
    if threshold.spec.source != "score":
        left_out = sum(len(threshold.spec.values(record)) for record in records)
        if left_out:
            return (
                f"all {left_out} {threshold.metric} figure(s) were left out of the speed "
                f"figures (warm-up, or marked under the leaderboard: e.g. taken under "
                f"--llm-concurrency); mark the test @pytest.mark.llm(alone=True)"
            )
        return f"no {threshold.metric} was measured"
    names = sorted({n for r in records for n in r.scores})
    return (
        f"no score {threshold.metric!r} was recorded (llm.record_score({threshold.metric!r}, "
        f"value)); recorded: {', '.join(names) or 'none'}"
    )
