"""An item's record is typed on both sides and a dict only on its report: it reads back equal,
and a report whose record does not read makes its item an error naming the field."""

from __future__ import annotations

from typing import Any

from pytest_llmbench.check_result import CheckResult, Score
from pytest_llmbench.config.thresholds import parse_thresholds
from pytest_llmbench.generate.records import AnswerFile, GenerationRecord, ItemRecord
from pytest_llmbench.serve.caveats import Caveat
from pytest_llmbench.serve.generation import Generation, Metrics, Settings
from pytest_llmbench.serve.server_info import ServerInfo
from pytest_llmbench.verdict.results import Results
from tests.unit._examples import fake_report


def _record() -> ItemRecord:
    server = ServerInfo(backend="ollama", digest="sha256:a", warnings=("no template",))
    request = {"messages": [{"role": "user", "content": "hi"}], "temperature": 0.0}
    caveat = Caveat("reloaded", "TTFT includes 4.1 s of load", ("ttft_s",))
    metrics = Metrics(ttft_s=0.5, output_tokens=12, decode_tps=30.0)
    generation = Generation("m", "<think>hm</think>ok", "ok", "hm", "length", metrics,
                            Settings(stop=("END",)), server, request, (caveat,), "abc.json")  # fmt: skip
    kept = GenerationRecord.of(generation, warmup=True)
    return ItemRecord(
        model="m",
        test="test_a[x]",
        settings=Settings(stop=("END",)),
        generations=[kept],
        judge=[GenerationRecord.of(generation)],
        scores={"score": 40.0, "quality": 0.5},
        score=Score(40.0, (CheckResult("syntax", 0.4, False, "line 2", "no code"),), {}, ("x",)),
        load_s=1.5,
        failure="AssertionError",
        thresholds=parse_thresholds("score>=80,ttft_s<=5"),
        known_answer=AnswerFile("a/b.md", "fail", "bad on purpose"),
    )


def test_a_record_reads_back_equal_from_its_report_form() -> None:
    record = _record()
    assert ItemRecord.from_dict(record.to_dict()) == record
    generation = record.generations[0]
    assert generation.reply.truncated and generation.reply.recording == "abc.json"
    assert not generation.counts_toward_speed("decode_tps")  # a warm-up
    assert record.judge[0].excluded("ttft_s") and not record.judge[0].excluded("decode_tps")
    assert [str(t) for t in record.thresholds] == ["score>=80", "ttft_s<=5"]


def test_a_record_that_does_not_read_is_its_items_error_naming_the_field() -> None:
    data = _record().to_dict()
    data["generations"][0]["metrics"]["ttft_s"] = "fast"
    results = Results(["m"])
    results.add(fake_report("t.py::test_a[x][m]", "call", "passed", data))
    (item,) = results.ordered()
    assert item.outcome == "error"
    assert item.record.error is not None
    assert "record.generations[0].metrics.ttft_s: expected a number or null" in item.record.error


def test_a_mistyped_weight_or_caveat_is_its_items_error_never_a_crash() -> None:
    """A score's weights and a caveat's metrics are read like the other fields: one of the
    wrong type makes the item an error naming it (they raised ValueError, AttributeError or
    TypeError out of ``Results.add``, or out of the HTML page)."""

    def weights(data: dict[str, Any], value: object) -> None:
        data["score"]["weights"] = value

    def excludes(data: dict[str, Any], value: object) -> None:
        data["generations"][0]["caveats"][0]["excludes"] = value

    for change, value, named in (
        (weights, {"syntax": "heavy"}, "record.score.weights.syntax: expected a number"),
        (weights, ["syntax"], "record.score.weights: expected an object"),
        (excludes, 7, "record.generations[0].caveats[0].excludes: expected a list"),
        (excludes, [7], "record.generations[0].caveats[0].excludes[0]: expected a string"),
    ):
        data = _record().to_dict()
        change(data, value)
        results = Results(["m"])
        results.add(fake_report("t.py::test_a[x][m]", "call", "passed", data))
        (item,) = results.ordered()
        assert item.outcome == "error"
        assert named in (item.record.error or "")
