"""A missing sandbox guarantee is named once under the leaderboard, and only when missing."""

from __future__ import annotations

import pytest

from fakes import ModelScript
from pytest_llmbench.check_result import CheckResult
from pytest_llmbench.sandbox import runner
from pytest_llmbench.sandbox.containment import (
    MISSING,
    Containment,
    Guarantee,
    containment,
    sandbox_warnings,
)
from tests.fixtures.fakes import StartLlamaServer

SCORED = """
from pytest_llmbench import checks

def test_code(llm):
    program = llm.generate("write it").code("python")
    llm.score(functional=checks.run_program(program, [checks.Step(["bob"], stdout="hi bob")]))
"""
PROGRAM = "```python\nimport sys\nprint('hi', sys.argv[1])\n```"


@pytest.fixture
def model(fake_llama_server: StartLlamaServer) -> str:
    srv = fake_llama_server(ModelScript([PROGRAM[i : i + 4] for i in range(0, len(PROGRAM), 4)]))
    return f"--llm-models=llama-server@{srv.url}"


def run(pytester: pytest.Pytester, model: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_s=SCORED)
    return pytester.runpytest(model, "-p", "no:cacheprovider", *args)


def test_missing_guarantees_get_one_line_under_the_leaderboard(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    weak = Containment("fallback", containment().python or "python3", network=False)
    monkeypatch.setattr(runner, "containment", lambda: weak)
    result = run(pytester, model, "--llm-sandbox=weak")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"[[]llmbench[]] WARNING: sandbox: {MISSING}{Guarantee.PID_NAMESPACE}, *"]
    )
    lines = [line for line in result.stdout.lines if "WARNING: sandbox" in line]
    assert len(lines) == 1 and Guarantee.NETWORK in lines[0]


def test_no_line_when_every_guarantee_holds(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    full = Containment("bubblewrap", "python3", *[True] * 8)
    check = CheckResult("functional", 1.0, True, "1/1 steps passed", None, full.missing_names())
    assert sandbox_warnings([check]) == []
    if containment().missing():
        pytest.skip("this machine lacks a guarantee: the line is expected here")
    result = run(pytester, model)
    result.assert_outcomes(passed=1)
    assert "WARNING: sandbox" not in result.stdout.str()


def test_the_plugin_loads_without_the_sandbox() -> None:
    """pytest imports the plugin on every start: the sandbox is loaded only when used."""
    import subprocess
    import sys

    code = "import sys, pytest_llmbench.plugin; print('pytest_llmbench.sandbox' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
