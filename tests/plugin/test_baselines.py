"""Baseline items this run lacks, against the llama-server fake: listed when left out, a gate
failure when collected but without a result. (Save / compare / regressions: test_gates.py.)"""

from __future__ import annotations

import pytest

from fakes import ModelScript
from tests.fixtures.fakes import StartLlamaServer

SCORED = """
import os
import pytest

def test_scored(llm):
    llm.generate("Hi", max_tokens=4)
    llm.record_score("score", float(os.environ["FAKE_SCORE"]))

def test_other(llm):
    if os.environ.get("SKIP_OTHER"):
        pytest.skip("asked to")
    llm.generate("Hello", max_tokens=4)
    llm.record_score("score", 50.0)
"""


def test_baseline_items_missing_from_this_run_are_listed_and_gate_when_collected(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_s=SCORED)
    monkeypatch.setenv("FAKE_SCORE", "90")
    gate = ["--llm-compare=base", "--llm-compare-fail=score:5"]
    srv = fake_llama_server(ModelScript(["yes"]))
    model = f"--llm-models=llama-server@{srv.url}"
    assert pytester.runpytest(model, "--llm-save=base").ret == 0

    # Left out on purpose (-k): listed, not a failure.
    deselected = pytester.runpytest(model, *gate, "-k", "test_scored")
    assert deselected.ret == 0
    deselected.stdout.fnmatch_lines(
        ["*not in this run: llama-server@http*:: test_other (in base.json)*"]
    )

    # Collected but produced nothing: a gate must not pass it.
    monkeypatch.setenv("SKIP_OTHER", "1")
    listed = pytester.runpytest(model, "--llm-compare=base")
    assert listed.ret == 0
    unfinished = pytester.runpytest(model, *gate)
    assert unfinished.ret == pytest.ExitCode.TESTS_FAILED
    # Under xdist the controller collects nothing itself: the workers' ids count.
    spread = pytester.runpytest(model, *gate, "-n", "2")
    assert spread.ret == pytest.ExitCode.TESTS_FAILED
    for result in (listed, unfinished, spread):
        result.stdout.fnmatch_lines(
            [
                "*NO RESULT llama-server@http*:: test_other: in base.json, collected in this "
                "run but produced no result (skipped, errored or not run)*"
            ]
        )
