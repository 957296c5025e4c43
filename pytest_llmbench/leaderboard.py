"""Gathering item records from reports (controller side) and rendering the leaderboard."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from tabulate import tabulate

from pytest_llmbench.metrics import (
    DECODE_TPS,
    OUTPUT_TOKENS,
    SCORE,
    SERVER_DECODE_TPS,
    TTFT_S,
    column_metrics,
)
from pytest_llmbench.outcome import Outcome, fold
from pytest_llmbench.records import record_from_report
from pytest_llmbench.summaries import ModelSummary
from pytest_llmbench.text_safety import for_cell


@dataclass
class ItemResult:
    """The outcome of one model × test item, folded from its setup/call/teardown reports."""

    nodeid: str
    model: str
    test: str
    outcome: Outcome = "pending"
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def generations(self) -> list[dict[str, Any]]:
        return list(self.record.get("generations") or [])


class Results:
    """Fed by ``pytest_runtest_logreport``; identical with and without pytest-xdist because
    everything it reads travels on the reports."""

    def __init__(self, model_order: Sequence[str]) -> None:
        self.model_order = list(model_order)
        self.items: dict[str, ItemResult] = {}

    def add(self, report: pytest.TestReport) -> None:
        record = record_from_report(report)
        if record is None:
            return
        item = self.items.get(report.nodeid)
        if item is None:
            item = self.items[report.nodeid] = ItemResult(
                report.nodeid, record["model"], record["test"]
            )
        if (
            record.get("generations")
            or record.get("scores")
            or record.get("error")
            or not item.record
        ):
            item.record = record
        item.outcome = fold(item.outcome, report)

    def ordered(self) -> list[ItemResult]:
        def key(item: ItemResult) -> tuple[int, str]:
            try:
                return (self.model_order.index(item.model), item.nodeid)
            except ValueError:
                return (len(self.model_order), item.nodeid)

        return sorted(self.items.values(), key=key)

    def models(self) -> list[str]:
        seen = [i.model for i in self.ordered()]
        return list(dict.fromkeys(seen))


def summarize(results: Results) -> list[ModelSummary]:
    """One summary per model, in ``--llm-models`` order (the leaderboard's rows, the JSON
    report's ``models``)."""
    by_model: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for item in results.ordered():
        by_model.setdefault(item.model, []).append((item.outcome, item.record))
    return [ModelSummary.of(model, items) for model, items in by_model.items()]


def model_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """One row per model: counts, the registry's leaderboard metrics, per-check scores."""
    summaries = summarize(results)
    check_names = list(dict.fromkeys(n for s in summaries for n in s.checks))
    columns = column_metrics()
    headers = ["model", "items", "pass", "fail", "error", *(m.label for m in columns), *check_names]
    rows = []
    for s in summaries:
        rows.append(
            [
                s.model,
                str(s.items),
                str(s.passed),
                str(s.failed),
                str(s.errors),
                *(s.cell(m) for m in columns),
                *(SCORE.format(s.checks.get(name)) for name in check_names),
            ]
        )
    return headers, rows


#: Per-item figures of the last generation in the items table.
ITEM_COLUMNS = (TTFT_S, DECODE_TPS, SERVER_DECODE_TPS, OUTPUT_TOKENS)


def item_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """One row per model × test item."""
    headers = ["model", "test", "outcome", *(m.label for m in ITEM_COLUMNS), "finish", "score"]
    headers.append("diagnosis")
    rows = []
    for item in results.ordered():
        gens = item.generations
        last = gens[-1] if gens else {}
        metrics = last.get("metrics", {})
        score = item.record.get("score") or {}
        notes = list(score.get("diagnoses") or [])
        if item.record.get("error"):
            notes.append(str(item.record["error"]).splitlines()[0][:80])
        rows.append(
            [
                item.model,
                item.test,
                item.outcome,
                *(m.format(metrics.get(m.name)) for m in ITEM_COLUMNS),
                str(last.get("finish_reason") or "-"),
                SCORE.format(item.record.get("scores", {}).get("score")),
                "; ".join(notes),
            ]
        )
    return headers, rows


def render(results: Results, mode: str, verbose: int) -> str:
    """The leaderboard text for ``mode`` (models, items, both, none, auto)."""
    if not results.items or mode == "none":
        return ""
    parts = []
    tables: list[Callable[[Results], tuple[list[str], list[list[str]]]]] = []
    if mode in ("models", "both", "auto"):
        tables.append(model_rows)
    if mode in ("items", "both") or (mode == "auto" and verbose > 0):
        tables.append(item_rows)
    for table in tables:
        headers, rows = table(results)
        headers = [for_cell(h) for h in headers]
        rows = [[for_cell(cell) for cell in row] for row in rows]
        parts.append(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
    return "\n\n".join(parts)
