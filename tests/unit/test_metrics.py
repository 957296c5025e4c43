"""The metrics registry is the one vocabulary: every reader follows it, one grammar parses
thresholds and margins, and a new metric needs one entry (plus its computation)."""

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import pytest_llmbench
from pytest_llmbench import metrics
from pytest_llmbench.config.thresholds import parse_margins, parse_thresholds
from pytest_llmbench.generate import records
from pytest_llmbench.generate.records import ItemRecord, junit_properties
from pytest_llmbench.report.leaderboard import render
from pytest_llmbench.report.summary import summarize
from pytest_llmbench.serve import generation
from pytest_llmbench.serve.generation import Metrics
from pytest_llmbench.verdict.baselines import saved_items
from pytest_llmbench.verdict.comparison import compare, regressions
from pytest_llmbench.verdict.gates import check_thresholds
from pytest_llmbench.verdict.results import ItemResult, Results
from tests.unit._examples import fake_report, typed


def test_registry_matches_the_generation_metrics_and_the_json_schema() -> None:
    names = [m.name for m in metrics.registry()]
    assert len(names) == len(set(names))
    measured = {m.name for m in metrics.generation_metrics()}
    assert measured == {f.name for f in dataclasses.fields(Metrics)}
    schema = json.loads(
        (Path(pytest_llmbench.__file__).parent / "schema" / "results-v1.json").read_text()
    )
    documented = schema["$defs"]["metrics"]["properties"]
    assert set(documented) == measured
    for metric in metrics.generation_metrics():
        kind = "integer" if metric.unit == "tokens" else "number"
        assert documented[metric.name]["type"] == [kind, "null"], metric.name


def test_one_grammar_for_thresholds_and_margins_keyed_on_the_registry() -> None:
    (ttfa,) = parse_thresholds("ttfa_s <= 2.5")  # any gated per-item metric, not a fixed list
    assert (str(ttfa), ttfa.spec.unit) == ("ttfa_s<=2.5", "s")
    assert [str(m) for m in parse_margins(["score:5", "pass_rate:10%,peak_rss_mb:50"])] == [
        "score:5",
        "pass_rate:10%",
        "peak_rss_mb:50",
    ]
    gated = ", ".join(m.name for m in metrics.gated_metrics(per_item=True))
    for bad in ("pass_rate>=0.8", "score:5", "output_tokens>=10", "score>=80%"):
        with pytest.raises(ValueError) as caught:
            parse_thresholds(bad)
        assert str(caught.value) == (
            f"bad threshold {bad!r}: write METRIC>=N or METRIC<=N with METRIC one of {gated} "
            f"or a name your tests give llm.record_score (e.g. score>=80,ttft_s<=5)"
        )
    for bad in ("score>=5", "score:-5", "thinking_tokens:5"):
        with pytest.raises(ValueError, match=r"METRIC:AMOUNT or METRIC:PCT% with .*pass_rate"):
            parse_margins(bad)


def test_record_score_names_are_metrics_on_their_own_scale() -> None:
    (quality,) = parse_thresholds("quality>=0.5")
    assert quality.spec.source == "score" and quality.spec.higher_is_better
    assert quality.spec.values(typed({"scores": {"quality": 0.333}})) == [0.333]
    assert quality.holds(0.5) and not quality.holds(0.333)
    (margin,) = parse_margins("quality:10%")
    assert margin.exceeded(0.5, 0.4) and not margin.exceeded(0.5, 0.6)
    # Registry names keep their meaning; a registry metric without a direction stays refused.
    assert parse_thresholds("score>=80")[0].spec is metrics.SCORE
    with pytest.raises(ValueError, match="output_tokens"):
        parse_thresholds("output_tokens>=10")
    shown = metrics.score_metric("quality")
    assert [shown.format(v) for v in (0.33333, 12.345, 1234.5, 70.0, 0.0)] == [
        "0.333", "12.3", "1234", "70.0", "0",
    ]  # fmt: skip
    record = typed({"scores": {"score": 60.0, "quality": 0.25}})
    assert [m.name for m in metrics.record_metrics(record)][-1] == "quality"


def test_margins_follow_the_registry_direction() -> None:
    (latency,) = parse_margins("ttft_s:10%")
    assert latency.exceeded(1.0, 1.2) and not latency.exceeded(1.0, 0.5)
    (speed,) = parse_margins("decode_tps:2")
    assert speed.exceeded(50, 47) and not speed.exceeded(50, 49) and not speed.exceeded(50, 90)
    assert not parse_margins("score:10%")[0].exceeded(0, -5)  # no percentage of zero


def test_a_new_metric_is_one_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once registered, with its field in ``Metrics`` (what the backends measure), a figure
    measured per generation is gated, compared, summarized, shown on the leaderboard and
    exported to JUnit with no other change."""
    stall = metrics.Metric(
        "stall_s",
        "stall s",
        "s",
        False,
        2,
        "longest gap between tokens",
        summary=("median",),
        column=True,
    )
    monkeypatch.setattr(metrics, "REGISTRY", (*metrics.REGISTRY, stall))
    measured = dataclasses.make_dataclass(
        "Metrics", [("stall_s", "float | None", None)], bases=(Metrics,), frozen=True
    )
    monkeypatch.setattr(records, "Metrics", measured)  # the field checked on the report
    monkeypatch.setattr(generation, "Metrics", measured)  # and read

    def report_form(stalls: list[float]) -> dict[str, Any]:
        gens = [{"metrics": {"stall_s": s, "ttft_s": 0.1}} for s in stalls]
        return {"model": "m", "test": "t", "generations": gens, "scores": {"score": 90.0}}

    def record(stalls: list[float]) -> ItemRecord:
        return ItemRecord.from_dict(report_form(stalls))

    thresholds = parse_thresholds("stall_s<=0.5")
    assert check_thresholds(record([0.2, 0.9, 0.3]), thresholds) == []
    assert check_thresholds(record([0.2, 0.9, 0.8]), thresholds) == [
        "stall_s = 0.8, threshold stall_s<=0.5 (median of 3: 0.2–0.9)"
    ]

    def document(stalls: list[float]) -> list[ItemResult]:
        item = {"model": "m", "test": "t", "outcome": "passed", "record": report_form(stalls)}
        return saved_items({"items": [item]})

    deltas = compare(document([0.2]), document([0.4]))
    assert [(d.metric, d.before, d.after) for d in deltas if d.metric == "stall_s"] == [
        ("stall_s", 0.2, 0.4)
    ]
    assert [m.metric for _, m in regressions(deltas, parse_margins("stall_s:50%"))] == ["stall_s"]

    assert ("llm.stall_s", 0.9) in junit_properties(record([0.9]))

    results = Results(["m"])
    results.add(fake_report("t::t[m]", "call", "passed", report_form([0.25, 0.75])))
    (summary,) = summarize(results).models
    assert summary.value(stall) == 0.5 and summary.to_dict()["stall_s_median"] == 0.5
    header, row = render(summarize(results), "models", verbose=0).splitlines()[0::2]
    assert "| stall s " in header and "| 0.50 " in row


def test_summary_statistics_skip_warmups_for_speed_only() -> None:
    gens = [
        {"warmup": True, "finish_reason": "length", "metrics": {"ttft_s": 9.0, "load_s": 2.0}},
        {"finish_reason": "stop", "metrics": {"ttft_s": 0.2, "load_s": None}},
        {"finish_reason": "length", "metrics": {"ttft_s": 0.4, "load_s": 1.0}},
    ]
    records = [
        typed({"generations": gens, "scores": {"score": 50.0}}),
        typed({"scores": {"score": 70.0}}),
    ]
    assert metrics.TTFT_S.summarize(records) == {"median": pytest.approx(0.3), "p90": 0.4}
    assert metrics.LOAD_S.summarize(records) == {"sum": 3.0}
    assert metrics.TRUNCATED.summarize(records) == {"count": 2}
    assert metrics.SCORE.summarize(records) == {
        "mean": 60.0,
        "stdev": pytest.approx(14.142, abs=1e-3),
    }
    assert metrics.OUTPUT_TOKENS.summarize([typed({})]) == {"count": 0}
    with pytest.raises(ValueError, match="group of items"):
        metrics.PASS_RATE.values(typed({}))
    with pytest.raises(KeyError, match="known: load_s, ttft_s"):
        metrics.metric("speed")


def test_every_metric_is_documented_in_the_readme() -> None:
    readme = (Path(pytest_llmbench.__file__).parent.parent / "README.md").read_text()
    missing = [
        m.name
        for m in metrics.registry()
        if f"`{m.name}`" not in readme
        and f"`metrics.{m.name}`" not in readme
        and not (m.column and f"\n| {m.label} |" in readme)  # a row of "What is measured"
    ]
    assert missing == []
