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


def _p90(values: Iterable[float | None]) -> float | None:
    clean = sorted(v for v in values if v is not None)
    if not clean:
        return None
    return clean[min(len(clean) - 1, max(0, round(0.9 * len(clean) + 0.5) - 1))]


def summarize(results: Results) -> list[dict[str, Any]]:
    """One numeric summary per model (the leaderboard's rows, the JSON report's ``models``)."""
    by_model: dict[str, list[ItemResult]] = {}
    for item in results.ordered():
        by_model.setdefault(item.model, []).append(item)
    summaries = []
    for model, items in by_model.items():
        gens = [g for i in items for g in i.generations]
        outcomes = [i.outcome for i in items]
        # From the generations, so a replayed run shows the recorded load time too.
        loads = [v for v in _metric(gens, "load_s") if v is not None]
        scores = [
            v for v in (i.record.get("scores", {}).get("score") for i in items) if v is not None
        ]
        rss = [v for v in _metric(gens, "peak_rss_mb") if v is not None]
        timed = [g for g in gens if not g.get("warmup")]  # --llm-warmup: speed figures only
        ran = [o for o in outcomes if o in ("passed", "failed")]
        summaries.append(
            {
                "model": model,
                "items": len(items),
                "passed": outcomes.count("passed"),
                "failed": outcomes.count("failed"),
                "errors": outcomes.count("error"),
                "skipped": outcomes.count("skipped"),
                "pass_rate": outcomes.count("passed") / len(ran) if ran else None,
                "load_s": sum(loads) if loads else None,
                "ttft_s_median": _median(_metric(timed, "ttft_s")),
                "ttft_s_p90": _p90(_metric(timed, "ttft_s")),
                "decode_tps_median": _median(_metric(timed, "decode_tps")),
                "decode_tps_p90": _p90(_metric(timed, "decode_tps")),
                "server_decode_tps_median": _median(_metric(timed, "server_decode_tps")),
                "prompt_tps_median": _median(_metric(timed, "prompt_tps")),
                "output_tokens": sum(v for v in _metric(gens, "output_tokens") if v is not None),
                "generations": len(gens),
                "truncated": sum(1 for g in gens if g.get("truncated")),
                "peak_rss_mb": max(rss) if rss else None,
                "score_mean": _mean(scores),
                "score_stdev": statistics.stdev(scores) if len(scores) > 1 else None,
                "checks": {name: _mean(v) for name, v in _check_scores(items).items()},
            }
        )
    return summaries


def model_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """One row per model: counts, speed medians, tokens, truncation and scores."""
    summaries = summarize(results)
    check_names = list(dict.fromkeys(n for s in summaries for n in s["checks"]))
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
    for s in summaries:
        score = _fmt(s["score_mean"], 1)
        if s["score_stdev"] is not None:
            score += f" ± {s['score_stdev']:.1f}"
        rows.append(
            [
                s["model"],
                str(s["items"]),
                str(s["passed"]),
                str(s["failed"]),
                str(s["errors"]),
                _fmt(s["load_s"]),
                _fmt(s["ttft_s_median"], 3),
                _fmt(s["decode_tps_median"], 1),
                _fmt(s["server_decode_tps_median"], 1),
                _fmt(s["prompt_tps_median"], 1),
                str(s["output_tokens"]) if s["generations"] else "-",
                str(s["truncated"]),
                _fmt(s["peak_rss_mb"], 0),
                score,
                *(_fmt(s["checks"].get(name), 1) for name in check_names),
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
