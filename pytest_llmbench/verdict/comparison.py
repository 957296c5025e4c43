"""A run compared with a saved one: what moved, item by item and metric by metric.

Figures are pooled per ``model :: test`` (the median of its repeats' item medians; the pass
rate over them). A row *moved* when it is beyond its margin (``--llm-compare-fail``), or
beyond the run-to-run noise: the range its repeats spanned in either run. Where a figure was
not repeated its noise is unmeasured: a score (or pass rate) moved when it changed at all; a
timing alone is no evidence either way, so it is shown only beyond a margin (the footer says
how many were left out and that ``--llm-repeat`` measures their noise). The terminal shows
the moved rows; ``-v`` and the JSON show every row.
"""

from __future__ import annotations

import statistics
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmbench.config.thresholds import Margin
from pytest_llmbench.metrics import PASS_RATE, lookup, pass_rate, record_metrics
from pytest_llmbench.records import ItemRecord
from pytest_llmbench.report.results import ItemResult
from pytest_llmbench.report.tables import Column, Fitted, fit, table_width


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

    def columns(
        self, labels: Mapping[str, str], *, every: bool = False, model: str | None = None
    ) -> list[Column]:
        """One row per item and metric (moved ones only unless ``every``); of one ``model``
        without a model column, else of every model with one."""
        rows = [
            d
            for d in (self.deltas if every else self.moved())
            if model is None or d.key.partition(" :: ")[0] == model
        ]
        notes = tuple(self._note(d) for d in rows)
        keys = [d.key.partition(" :: ") for d in rows]
        columns = [] if model else [
            Column("model", tuple(labels.get(k[0], k[0]) for k in keys), shrink=True)
        ]  # fmt: skip
        columns += [
            Column("test", tuple(k[2] for k in keys), shrink=True),
            Column("metric", tuple(d.metric for d in rows)),
            Column("before", tuple(lookup(d.metric).format(d.before) for d in rows)),
            Column("after", tuple(lookup(d.metric).format(d.after) for d in rows)),
            Column("change", tuple(_change(d) for d in rows)),
        ]
        return columns + ([Column("why", notes, priority=1)] if any(notes) else [])

    def models(self) -> list[str]:
        return list(dict.fromkeys(d.key.partition(" :: ")[0] for d in self.deltas))

    def model(self) -> str | None:
        """The one model compared (the title names it; no model column), else ``None``."""
        models = self.models()
        return models[0] if len(models) == 1 else None

    def _note(self, delta: Delta) -> str:
        margin = self.margin_of(delta)
        if margin is not None:
            return f"> {margin}"
        if delta.noise is not None:
            sign = ">" if delta.beyond_noise else "≤"
            return f"{sign} noise {lookup(delta.metric).format(delta.noise)}"
        return {None: "noise unmeasured", True: "", False: "unchanged"}[delta.beyond_noise]

    def render(self, labels: Mapping[str, str], width: int | None, *, every: bool) -> str:
        """The table fitted to ``width``, and a line on what it leaves out."""
        if not self.deltas:
            return "(no items in common)"
        moved = self.moved()
        unmeasured = self.unmeasured()
        within = len(self.deltas) - len(moved) - unmeasured
        parts = []
        if every or moved:
            parts.append(self._tables(labels, width, every))
        if not every:
            hidden = [f"{within} within noise"] if within else []
            if unmeasured:
                hidden.append(f"{unmeasured} timings never repeated (--llm-repeat measures noise)")
            head = "left out" if moved else "nothing moved beyond a margin or the noise; left out"
            if hidden:
                note = f"({head}: {', '.join(hidden)}; -v: all)"
                parts.append(
                    "\n".join(textwrap.wrap(note, width or 10_000, break_on_hyphens=False))
                )
        return "\n".join(parts)

    def _tables(self, labels: Mapping[str, str], width: int | None, every: bool) -> str:
        """One table; where the model column would squeeze it, one per model under the
        model's label instead (as the items table does)."""
        single = self.model()
        if single is not None:
            return _fitted(self.columns(labels, every=every, model=single), width)
        columns = self.columns(labels, every=every)
        if width is None or table_width(columns) <= width:
            return _fitted(columns, width)
        out = []
        for model in self.models():
            own = self.columns(labels, every=every, model=model)
            if own[0].cells:
                out.append(f"{labels.get(model, model)}:\n{_fitted(own, width)}")
        return "\n".join(out)

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


def _fitted(columns: list[Column], width: int | None) -> str:
    fitted: Fitted = fit(columns, width)
    if fitted.dropped:
        return f"{fitted.text}\n(left out to fit: {', '.join(fitted.dropped)}; in --llm-json)"
    return fitted.text


def _change(delta: Delta) -> str:
    """Relative where it can be (``-40.0%``); the difference where the baseline was 0."""
    pct = delta.change_pct
    if pct is not None:
        return f"{pct:+.1f}%"
    sign = "+" if delta.change >= 0 else "-"
    return f"{sign}{lookup(delta.metric).format(abs(delta.change))}"
