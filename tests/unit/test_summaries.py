"""Per-model summaries are typed; a dict only in the JSON, in the keys of schema v1."""

import json
from pathlib import Path

import jsonschema
import pytest

import pytest_llmbench
from pytest_llmbench.generate.records import ItemRecord
from pytest_llmbench.metrics import DECODE_TPS, LOAD_S, SCORE, TOTAL_S, TTFT_S
from pytest_llmbench.report.summary import ModelSummary
from tests.unit._examples import typed


def record(ttft: float, score: float | None, load: float | None = None) -> ItemRecord:
    gen = {"metrics": {"ttft_s": ttft, "decode_tps": 10 / ttft, "output_tokens": 7, "load_s": load}}
    check = {"name": "syntax", "score": 1.0 if (score or 0) >= 50 else 0.0}
    return typed(
        {
            "generations": [gen],
            "scores": {} if score is None else {"score": score},
            "score": {"checks": [check]},
        }
    )


def test_summary_json_follows_schema_v1_and_reads_back() -> None:
    summary = ModelSummary.of(
        "m",
        [
            ("passed", record(0.5, 90.0, load=3.0)),
            ("failed", record(1.5, 10.0)),
            ("error", typed({"error": "ServerError: gone"})),
            ("skipped", typed({})),
        ],
    )
    assert (summary.items, summary.passed, summary.failed, summary.errors) == (4, 1, 1, 1)
    assert (summary.skipped, summary.generations, summary.pass_rate) == (1, 2, 0.5)
    assert summary.value(TTFT_S) == 1.0 and summary.value(TTFT_S, "p90") == 1.5
    assert summary.value(LOAD_S) == 3.0 and summary.checks == {"syntax": 50.0}
    assert summary.cell(SCORE) == "50.0 ± 56.6" and summary.cell(DECODE_TPS) == "13.3"
    with pytest.raises(ValueError, match="total_s has no per-model summary"):
        summary.value(TOTAL_S)

    data = summary.to_dict()
    schema = json.loads(
        (Path(pytest_llmbench.__file__).parent / "schema" / "results-v1.json").read_text()
    )
    jsonschema.validate(data, schema["properties"]["models"]["items"])
    documented = set(schema["properties"]["models"]["items"]["properties"])
    assert set(data) == documented
    assert ModelSummary.from_dict(json.loads(json.dumps(data))) == summary
