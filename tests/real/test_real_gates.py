"""One real-server smoke run of repeats, gates, reports and baselines (the details run against
FakeLlamaServer in test_gates.py and test_outcome.py)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import pytest_llmbench

pytestmark = pytest.mark.real_server

MODEL = ["--llm-models=llama-server:gemma3-270m", "--llm-ctx=1024", "-p", "no:cacheprovider"]

GATED = """
import os
import pytest

@pytest.mark.llm(repeat=3, temperature=0.7, max_tokens=4, min_pass_rate=0.6,
                 thresholds="score>=SCORE,decode_tps>=0.001")
def test_sampled(llm):
    assert llm.generate("Say yes.").metrics.output_tokens > 0
    llm.record_score("score", {42: 70.0, 43: 90.0, 44: 95.0}[llm.settings.seed])
    assert llm.settings.seed != 43, "the one sample that fails on purpose"
"""


def test_gates_reports_and_baseline_on_a_real_server(
    pytester: pytest.Pytester, llama_server_bin: Path, gemma_gguf: Path
) -> None:
    pytester.makepyfile(test_g=GATED.replace("SCORE", "80"))
    outputs = ["--llm-json=r.json", "--llm-markdown=lb.md", "--llm-html=report.html"]
    saved = pytester.runpytest(*MODEL, *outputs, "--llm-save=base")
    saved.assert_outcomes(passed=2, failed=1)
    assert saved.ret == pytest.ExitCode.OK  # 2/3 meets 0.6; the median score 90 meets 80
    saved.stdout.fnmatch_lines(
        [
            "*pass-rate gate OK: llama-server?* test_sampled: 2/3 = 0.67 (min 0.60)*",
            "*threshold gate OK: llama-server?* test_sampled: score>=80, decode_tps>=0.001*",
        ]
    )
    document = json.loads((pytester.path / "r.json").read_text())
    schema = json.loads(
        (Path(pytest_llmbench.__file__).parent / "schema" / "results-v1.json").read_text()
    )
    jsonschema.validate(document, schema)
    assert sorted(i["record"]["settings"]["seed"] for i in document["items"]) == [42, 43, 44]
    assert "| llama-server" in (pytester.path / "lb.md").read_text()
    assert "<svg" in (pytester.path / "report.html").read_text()
    assert (pytester.path / ".llmbench" / "base.json").is_file()

    pytester.makepyfile(test_g=GATED.replace("SCORE", "92"))
    missed = pytester.runpytest(
        *MODEL, "-p", "no:terminal", "--llm-json=r.json", "--llm-compare=base"
    )
    assert missed.ret == pytest.ExitCode.TESTS_FAILED
    (group,) = json.loads((pytester.path / "r.json").read_text())["repeat_groups"]
    assert group["thresholds_missed"] == ["score = 90, threshold score>=92 (median of 3: 70–95)"]
