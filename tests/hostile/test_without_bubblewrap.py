"""Safe by default: where bubblewrap is missing (hidden from ``PATH`` here, as on a fresh
machine after ``pip install``), generated code does not run — the test is an error naming
what is missing and the fix, said in the header before anything runs — unless the run opts
in to weaker isolation (``--llm-sandbox=weak`` or its ini twin), which the header states.

Each run is a separate pytest process, so the sandbox is probed afresh without bwrap."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from fakes import ModelScript
from tests.fixtures.fakes import StartLlamaServer

PLAIN = """
from pytest_llmbench.checks import Step, run_program

def test_plain():
    result = run_program("print('hi')", [Step([], stdout="hi")])
    print("program ran:", result.passed)
    assert result.passed, result.details
"""
SCORED = """
from pytest_llmbench import checks

def test_code(llm):
    program = llm.generate("write it").code("python")
    llm.score(functional=checks.run_program(program, [checks.Step([], stdout="hi")]))
"""
REPLY = "```python\nprint('hi')\n```"


@pytest.fixture
def no_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with this interpreter and the usual tools, but no bwrap."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("python3", "sh", "env", "ls", "cat"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    (bin_dir / "python").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert shutil.which("bwrap") is None
    return bin_dir


def inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    env_path = os.environ["PATH"]
    assert "bwrap" not in os.listdir(env_path)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", *args)


def test_without_bubblewrap_generated_code_does_not_run(
    pytester: pytest.Pytester, no_bwrap: Path
) -> None:
    pytester.makepyfile(test_plain=PLAIN)
    result = inner(pytester)
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "program ran:" not in out
    for fix in (
        "bubblewrap (bwrap) is not installed",
        "`apt-get install bubblewrap`",
        "`dnf install bubblewrap`",
        "--llm-sandbox=weak",
    ):
        assert fix in out, fix


def test_the_opt_in_runs_it_and_the_header_says_so_first(
    pytester: pytest.Pytester, no_bwrap: Path
) -> None:
    pytester.makepyfile(test_plain=PLAIN)
    result = inner(pytester, "--llm-sandbox=weak")
    result.assert_outcomes(passed=1)
    lines = result.stdout.lines
    header = next(i for i, line in enumerate(lines) if "WEAKER ISOLATION" in line)
    ran = next(i for i, line in enumerate(lines) if "program ran: True" in line)
    assert header < ran
    assert "--llm-sandbox=weak" in lines[header] and "own PID namespace" in lines[header]


def test_the_ini_twin_opts_in_too(pytester: pytest.Pytester, no_bwrap: Path) -> None:
    pytester.makepyfile(test_plain=PLAIN)
    pytester.makeini("[pytest]\nllm_sandbox = weak\n")
    result = inner(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["llmbench: sandbox: WEAKER ISOLATION (--llm-sandbox=weak)*"])


def test_a_benchmark_run_says_it_before_any_generation(
    pytester: pytest.Pytester, no_bwrap: Path, fake_llama_server: StartLlamaServer
) -> None:
    """The header of a run with models says generated code will not run, and the item is
    an error (the server's and the model's figures are kept; no score is counted)."""
    pytester.makepyfile(test_s=SCORED)
    server = fake_llama_server(ModelScript([REPLY]))
    result = inner(pytester, f"--llm-models=llama-server@{server.url}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "llmbench: sandbox: generated code will NOT run here*apt-get install bubblewrap*",
            "*SandboxUnavailable*",
        ]
    )


def test_what_went_wrong_names_the_cause_and_the_fix(
    pytester: pytest.Pytester, no_bwrap: Path, fake_llama_server: StartLlamaServer
) -> None:
    """The line under the leaderboard quotes the error's first line, cut to 160 characters in
    the middle: it read 'refusing to run generated code with weaker containment (not
    guarant…(ini: llm_sandbox = weak), which the run's header then states', the cause and
    the fix cut out."""
    pytester.makepyfile(test_s=SCORED)
    server = fake_llama_server(ModelScript([REPLY]))
    result = inner(pytester, f"--llm-models=llama-server@{server.url}")
    result.assert_outcomes(errors=1)
    lines = result.stdout.lines
    start = lines.index("what went wrong:")
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("---"))
    said = " ".join(line.strip() for line in lines[start + 1 : end])
    assert "…" not in said, said
    assert "bubblewrap (bwrap) is not installed. Fix: `apt-get install bubblewrap`" in said, said


def test_an_unknown_policy_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=PLAIN)
    result = pytester.runpytest("--llm-sandbox=none")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llm-sandbox='none': use `full`*or `weak`*"])
