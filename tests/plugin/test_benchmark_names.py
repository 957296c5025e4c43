"""A test names its benchmark (``@pytest.mark.llm(benchmark="todo")``): tests sharing a name
share one leaderboard column; others are named after their function."""

from __future__ import annotations

import json

import pytest

from fakes import ModelScript
from tests.fixtures.fakes import StartOllama

TESTS = """
import pytest

@pytest.mark.llm(benchmark="todo")
def test_todo_short(llm):
    llm.record_score("score", 80)
    assert llm.generate("a").answer

@pytest.mark.llm(benchmark="todo")
def test_todo_long(llm):
    llm.record_score("score", 60)
    assert llm.generate("b").answer

def test_speed_check(llm):
    assert llm.generate("c").answer
"""


def test_named_benchmarks_share_a_column(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_ollama: StartOllama
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    pytester.makepyfile(test_named=TESTS)
    fake = fake_ollama({"m": ModelScript(["Hi"])})
    result = pytester.runpytest(f"--llm-models=m=ollama:m@{fake.url}", "--llm-json=r.json")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["| model | n | pass | fail | err | speed_check | todo     |*",
                                 "| m     | 3 | 3    | 0    | 0   | 1/1         | 70.0 2/2 |*"])  # fmt: skip
    items = json.loads((pytester.path / "r.json").read_text())["items"]
    assert sorted(str(i["record"]["benchmark"]) for i in items) == ["None", "todo", "todo"]
    bad = pytester.makepyfile(test_bad='import pytest\n@pytest.mark.llm(benchmark=" ")\n'
                                       'def test_x(llm):\n    pass\n')  # fmt: skip
    usage = pytester.runpytest(str(bad), "--llm-models=ollama:m@http://127.0.0.1:9")
    assert usage.ret == pytest.ExitCode.USAGE_ERROR
    usage.stderr.fnmatch_lines(["*benchmark='' must name the benchmark*"])
