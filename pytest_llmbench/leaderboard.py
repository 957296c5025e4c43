"""Gathering item records from reports (controller side) and rendering the leaderboard."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from tabulate import tabulate

from pytest_llmbench.records import record_from_report


@dataclass
class ItemResult:
    """The outcome of one model × test item, folded from its setup/call/teardown reports."""

    nodeid: str
    model: str
    test: str
    outcome: str = "pending"
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
        infra = bool(record.get("error"))
        if report.when == "setup":
            if report.failed:
                item.outcome = "error"
            elif report.skipped:
                item.outcome = "skipped"
        elif report.when == "call":
            if report.failed:
                item.outcome = "error" if infra else "failed"
            else:
                item.outcome = report.outcome
        elif report.when == "teardown" and report.failed and item.outcome in ("pending", "passed"):
            item.outcome = "error"

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


def _median(values: Iterable[float | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return statistics.median(clean) if clean else None


def _mean(values: Iterable[float | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return statistics.fmean(clean) if clean else None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _metric(gens: Iterable[dict[str, Any]], name: str) -> list[float | None]:
    return [g.get("metrics", {}).get(name) for g in gens]


def _check_scores(items: Iterable[ItemResult]) -> dict[str, list[float]]:
    """Per check name, the check scores (0..100) of every scored item."""
    out: dict[str, list[float]] = {}
    for item in items:
        score = item.record.get("score") or {}
        for check in score.get("checks") or []:
            out.setdefault(check["name"], []).append(100 * float(check["score"]))
    return out


def model_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """One row per model: counts, speed medians, tokens, truncation and scores."""
    by_model: dict[str, list[ItemResult]] = {}
    for item in results.ordered():
        by_model.setdefault(item.model, []).append(item)
    check_names: list[str] = []
    for items in by_model.values():
        for name in _check_scores(items):
            if name not in check_names:
                check_names.append(name)
    headers = [
        "model",
        "items",
        "pass",
        "fail",
        "error",
        "load s",
        "TTFT s",
        "tok/s",
        "srv tok/s",
        "prompt tok/s",
        "out tok",
        "trunc",
        "RSS MB",
        "score",
        *check_names,
    ]
    rows = []
    for model, items in by_model.items():
        gens = [g for i in items for g in i.generations]
        outcomes = [i.outcome for i in items]
        loads = [i.record.get("load_s") for i in items]
        scores = [i.record.get("scores", {}).get("score") for i in items]
        per_check = _check_scores(items)
        rss = [v for v in _metric(gens, "peak_rss_mb") if v is not None]
        total_out = sum(v for v in _metric(gens, "output_tokens") if v is not None)
        rows.append(
            [
                model,
                str(len(items)),
                str(outcomes.count("passed")),
                str(outcomes.count("failed")),
                str(outcomes.count("error")),
                _fmt(sum(v for v in loads if v is not None) if any(loads) else None),
                _fmt(_median(_metric(gens, "ttft_s")), 3),
                _fmt(_median(_metric(gens, "decode_tps")), 1),
                _fmt(_median(_metric(gens, "server_decode_tps")), 1),
                _fmt(_median(_metric(gens, "prompt_tps")), 1),
                str(total_out) if gens else "-",
                str(sum(1 for g in gens if g.get("truncated"))),
                _fmt(max(rss), 0) if rss else "-",
                _fmt(_mean(scores), 1),
                *(_fmt(_mean(per_check.get(name, [])), 1) for name in check_names),
            ]
        )
    return headers, rows


def item_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """One row per model × test item."""
    headers = [
        "model",
        "test",
        "outcome",
        "TTFT s",
        "tok/s",
        "srv tok/s",
        "out tok",
        "finish",
        "score",
        "diagnosis",
    ]
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
                _fmt(metrics.get("ttft_s"), 3),
                _fmt(metrics.get("decode_tps"), 1),
                _fmt(metrics.get("server_decode_tps"), 1),
                str(metrics.get("output_tokens", "-")) if gens else "-",
                str(last.get("finish_reason") or "-"),
                _fmt(item.record.get("scores", {}).get("score"), 1),
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
        parts.append(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
    return "\n\n".join(parts)
