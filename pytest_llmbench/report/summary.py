"""Per-model summaries: the leaderboard's rows, the HTML charts and the JSON ``models``.

A :class:`ModelSummary` holds outcome counts and each registry metric's summary statistics,
read by :class:`~pytest_llmbench.metrics.Metric` (``summary.value(TTFT_S)``), never by a
string key. A dict only in the JSON (``to_dict`` / ``from_dict``, keys as in schema v1:
``ttft_s_median``, ``load_s``, ``score_mean``...).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llmbench.metrics import Metric, Stat, pass_rate, registry
from pytest_llmbench.records import ItemRecord

_COUNTS = ("items", "passed", "failed", "errors", "skipped", "generations")


@dataclass(frozen=True)
class ModelSummary:
    model: str
    items: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    generations: int = 0
    pass_rate: float | None = None
    """passed / (passed + failed): errors and skips are not the model's result."""
    figures: Mapping[str, Mapping[Stat, float | None]] = field(default_factory=dict)
    """Per metric name, its summary statistics (see ``Metric.summary``)."""
    checks: Mapping[str, float | None] = field(default_factory=dict)
    """Mean score (0..100) per check name, over the scored items."""

    @classmethod
    def of(cls, model: str, items: Sequence[tuple[str, ItemRecord]]) -> ModelSummary:
        """Summarize one model's items, given as (outcome, item record) pairs."""
        outcomes = [outcome for outcome, _ in items]
        records = [record for _, record in items]
        checks: dict[str, list[float]] = {}
        for record in records:
            for check in record.checks:
                checks.setdefault(check.name, []).append(100 * check.score)
        return cls(
            model=model,
            items=len(items),
            passed=outcomes.count("passed"),
            failed=outcomes.count("failed"),
            errors=outcomes.count("error"),
            skipped=outcomes.count("skipped"),
            generations=sum(len(r.generations) for r in records),
            pass_rate=pass_rate(outcomes),
            figures={m.name: m.summarize(records) for m in registry() if m.summary},
            checks={name: statistics.fmean(v) for name, v in checks.items()},
        )

    def value(self, metric: Metric, stat: Stat | None = None) -> float | None:
        """``metric``'s statistic ``stat`` (default: the first of its summary, the one shown)."""
        if not metric.summary:
            raise ValueError(f"{metric.name} has no per-model summary")
        return self.figures.get(metric.name, {}).get(stat or metric.summary[0])

    def has(self, metric: Metric) -> bool:
        """Whether this model has a figure for ``metric`` (a leaderboard cell that is not
        ``-``): a column empty for every model carries no data for the run."""
        if metric.source != "score" and not self.generations:
            return False
        return self.value(metric) is not None

    def cell(self, metric: Metric) -> str:
        """The leaderboard text: the first statistic in the metric's format, ``± stdev``
        where it has one, ``-`` where there is no figure."""
        if not self.has(metric):
            return "-"
        text = metric.format(self.value(metric))
        if "stdev" in metric.summary:
            spread = self.value(metric, "stdev")
            if spread is not None:
                text += f" ± {metric.format(spread)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model}
        out.update({name: getattr(self, name) for name in _COUNTS})
        out["pass_rate"] = self.pass_rate
        for metric in registry():
            for stat, value in self.figures.get(metric.name, {}).items():
                out[metric.key(stat)] = value
        out["checks"] = dict(self.checks)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSummary:
        """From a results document's ``models`` entry; statistics it lacks stay absent."""
        figures = {
            m.name: {s: data[m.key(s)] for s in m.summary if m.key(s) in data}
            for m in registry()
            if m.summary
        }
        return cls(
            model=str(data["model"]),
            **{name: int(data.get(name) or 0) for name in _COUNTS},
            pass_rate=data.get("pass_rate"),
            figures=figures,
            checks=dict(data.get("checks") or {}),
        )
