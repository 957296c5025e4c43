"""A run compared with a saved one: what moved, item by item and metric by metric.

Figures are pooled per ``model :: test`` (the median of its repeats' item medians; the pass
rate over them). A row *moved* when it is beyond its margin (``--llm-compare-fail``), or
beyond the run-to-run noise: the range its repeats spanned in either run. Where a figure was
not repeated its noise is unmeasured: a score (or pass rate) moved when it changed at all; a
timing alone is no evidence either way, so it is shown only beyond a margin (the footer says
how many were left out and that ``--llm-repeat`` measures their noise). The terminal shows
the moved rows (drawn by :mod:`pytest_llmbench.report.terminal`); ``-v`` and the JSON show
every row.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmbench.config.thresholds import Margin
from pytest_llmbench.generate.records import ItemRecord
from pytest_llmbench.metrics import PASS_RATE, lookup, pass_rate, record_metrics
from pytest_llmbench.verdict.results import ItemResult


@dataclass(frozen=True)
class Figure:
    """One metric of one ``model :: test``: the median over its repeats, and each repeat's."""

    value: float
    repeats: tuple[float, ...]

    @property
    def spread(self) -> float | None:
        """The range the repeats spanned; ``None`` where the item ran once."""
        return max(self.repeats) - min(self.repeats) if len(self.repeats) > 1 else None


def item_key(item: ItemResult) -> str:
    return f"{item.model} :: {item.test}"


def item_metrics(record: ItemRecord) -> dict[str, float]:
    """The comparable figures of one item (medians per item)."""
    out: dict[str, float] = {}
    for metric in record_metrics(record):
        values = metric.values(record)
        if values:
            out[metric.name] = statistics.median(values)
    return out


def grouped(items: Iterable[ItemResult]) -> dict[str, dict[str, Figure]]:
    """Figures by ``model :: test``; repeats of one test pooled (medians, pass rate)."""
    pools: dict[str, list[ItemResult]] = {}
    for item in items:
        pools.setdefault(item_key(item), []).append(item)
    out: dict[str, dict[str, Figure]] = {}
    for key, pool in pools.items():
        per: dict[str, list[float]] = {}
        for figures in (item_metrics(i.record) for i in pool):
            for name, value in figures.items():
                per.setdefault(name, []).append(value)
        merged = {name: Figure(statistics.median(v), tuple(v)) for name, v in per.items()}
        rate = pass_rate(i.outcome for i in pool)
        if rate is not None and len(pool) > 1:  # of one run, it is the outcome itself
            merged[PASS_RATE.name] = Figure(rate, ())
        out[key] = merged
    return out


@dataclass(frozen=True)
class Delta:
    key: str
    metric: str
    before: float
    after: float
    noise: float | None = None
    """The range the repeats spanned in either run (the wider); ``None``: not repeated."""

    @property
    def change(self) -> float:
        return self.after - self.before

    @property
    def change_pct(self) -> float | None:
        return None if self.before == 0 else 100 * self.change / abs(self.before)

    @property
    def beyond_noise(self) -> bool | None:
        """Moved more than the run-to-run noise; ``None`` for a timing whose noise was not
        measured (a score or pass rate unrepeated: moved when it changed at all)."""
        if self.noise is not None:
            return abs(self.change) > self.noise
        if lookup(self.metric).source in ("score", "outcomes"):
            return abs(self.change) > 1e-9
        return None


def compare(base: Sequence[ItemResult], current: Sequence[ItemResult]) -> list[Delta]:
    """Every figure of ``current`` that ``base`` has too, item by item (``model :: test``)."""
    before, after = grouped(base), grouped(current)
    deltas = []
    for key, figures in after.items():
        for name, now in figures.items():
            then = before.get(key, {}).get(name)
            if then is None:
                continue
            spreads = [s for s in (then.spread, now.spread) if s is not None]
            deltas.append(Delta(key, name, then.value, now.value, max(spreads, default=None)))
    return deltas


def missing_items(
    base: Sequence[ItemResult], current: Sequence[ItemResult]
) -> dict[str, list[str]]:
    """Baseline items (``model :: test``) with no result in ``current`` (absent, or present
    without any figure: skipped, errored), with the baseline's node ids of each."""
    after = grouped(current)
    missing: dict[str, list[str]] = {}
    for item in base:
        key = item_key(item)
        if not after.get(key):
            missing.setdefault(key, []).append(item.nodeid)
    return missing


def regressions(deltas: list[Delta], margins: tuple[Margin, ...]) -> list[tuple[Delta, Margin]]:
    return [
        (delta, margin)
        for delta in deltas
        for margin in margins
        if margin.metric == delta.metric and margin.exceeded(delta.before, delta.after)
    ]


@dataclass(frozen=True)
class Comparison:
    """This run against one saved run: every delta, and which are beyond their margin."""

    baseline: str
    """The saved run's file name."""
    deltas: tuple[Delta, ...]
    failed: tuple[tuple[Delta, Margin], ...]

    @classmethod
    def of(
        cls, baseline: str, base: Sequence[ItemResult], current: Sequence[ItemResult],
        margins: tuple[Margin, ...],
    ) -> Comparison:  # fmt: skip
        deltas = compare(base, current)
        return cls(baseline, tuple(deltas), tuple(regressions(deltas, margins)))

    def margin_of(self, delta: Delta) -> Margin | None:
        return next((m for d, m in self.failed if d is delta), None)

    def moved(self) -> list[Delta]:
        """The rows worth a reader's time: beyond a margin or beyond the noise."""
        return [d for d in self.deltas if self.margin_of(d) is not None or d.beyond_noise]

    def unmeasured(self) -> int:
        """Timings left out because their noise was not measured (the item ran once)."""
        return sum(d.beyond_noise is None and self.margin_of(d) is None for d in self.deltas)

    def models(self) -> list[str]:
        return list(dict.fromkeys(d.key.partition(" :: ")[0] for d in self.deltas))

    def model(self) -> str | None:
        """The one model compared (the title names it; no model column), else ``None``."""
        models = self.models()
        return models[0] if len(models) == 1 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "rows": [
                {
                    "item": d.key,
                    "metric": d.metric,
                    "before": d.before,
                    "after": d.after,
                    "change": d.change,
                    "change_pct": d.change_pct,
                    "noise": d.noise,
                    "moved": d in self.moved(),
                    "beyond_margin": None if (m := self.margin_of(d)) is None else str(m),
                }
                for d in self.deltas
            ],
        }


def relabel(key: str, labels: Mapping[str, str]) -> str:
    """``model :: test`` with the model's short table label."""
    model, _, test = key.partition(" :: ")
    return f"{labels.get(model, model)} :: {test}"
