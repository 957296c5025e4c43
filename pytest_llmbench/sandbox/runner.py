"""Run a generated program as a sequence of command-line steps and judge each one.

Guarantees (Linux): each ``run_program`` call gets a fresh temporary directory with its own
HOME and TMPDIR inside it, removed afterwards; stdin is ``/dev/null``; the environment holds
only PATH, HOME, TMPDIR, LANG and what the caller passes; Python runs isolated (``-I``); each
step has a wall-clock and a CPU limit, an address-space, file-size, open-files and process
limit; output beyond the cap stops the step; every process the step started — including
daemons that left its process group — is killed when the step ends (found by a per-run token
in their environment). As root, steps run as ``nobody`` in new network and mount
namespaces: no network, no access to root's files, RLIMIT_NPROC bounds fork bombs, and
/tmp, /var/tmp, /dev/shm and /run/lock are private, empty, size-capped tmpfs mounts that
vanish with the step (the sandbox directory is bound back in place), so a program can write
nowhere outside its own directory tree. Not guaranteed: this is not a container — a program
can read world-readable files and spend the resources the limits allow; without root there
is no user switch, no network isolation and no private /tmp. For untrusted models, run the
whole benchmark in a container or VM.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from re import Pattern

from pytest_llmbench.checks import diagnoses
from pytest_llmbench.checks.result import CheckResult
from pytest_llmbench.checks.syntax import parse_error
from pytest_llmbench.errors import check_failed
from pytest_llmbench.sandbox.isolation import (
    NOBODY,
    Limits,
    drop_user,
    make_preexec,
    shared_writable_dirs,
)

Expect = str | Pattern[str] | Callable[[str], bool] | None
TOKEN_VAR = "LLMBENCH_SANDBOX_RUN"


@dataclass(frozen=True)
class Step:
    """One command: the program run with ``args``; ``stdout`` is a regex (searched,
    case-insensitive), a compiled pattern or a predicate; ``expect_exit=None`` takes any."""

    args: Sequence[str]
    expect_exit: int | None = 0
    stdout: Expect = None
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or " ".join(self.args) or "(no arguments)"


@dataclass
class StepResult:
    step: Step
    exit_code: int | None
    stdout: str
    stderr: str
    seconds: float
    passed: bool = False
    why: str = ""
    diagnosis: str | None = None
    notes: list[str] = field(default_factory=list)


def _matches(expect: Expect, text: str) -> bool:
    if expect is None:
        return True
    if isinstance(expect, str):
        return re.search(expect, text, re.IGNORECASE | re.MULTILINE) is not None
    if isinstance(expect, Pattern):
        return expect.search(text) is not None
    return bool(expect(text))


class _CappedReader(threading.Thread):
    def __init__(self, stream: object, cap: int, on_overflow: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.cap = cap
        self.on_overflow = on_overflow
        self.data = bytearray()
        self.overflow = False

    def run(self) -> None:
        read = self.stream.read  # type: ignore[attr-defined]
        while True:
            chunk = read(65536)
            if not chunk:
                return
            room = self.cap - len(self.data)
            self.data += chunk[: max(room, 0)]
            if len(chunk) > room and not self.overflow:
                self.overflow = True
                self.on_overflow()


def _kill_token(token: str) -> int:
    """SIGKILL every process whose environment carries ``token``; returns how many."""
    needle = f"{TOKEN_VAR}={token}".encode()
    killed = 0
    for _round in range(20):  # a fork bomb keeps spawning: repeat until none are left
        found = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as env:
                    if needle not in env.read():
                        continue
                os.kill(int(entry), signal.SIGKILL)
                found += 1
            except (OSError, ValueError):
                continue
        killed += found
        if not found:
            break
        time.sleep(0.02)
    return killed


@lru_cache(maxsize=1)
def _network_isolation() -> bool:
    """Probe once: can a sandboxed child reach a port listening on this host's loopback?"""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        code = f"import socket; socket.create_connection(('127.0.0.1', {port}), 2)"
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-c", code],
                preexec_fn=make_preexec(Limits(), network=True, as_nobody=False),
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return False
    return proc.returncode != 0


@lru_cache(maxsize=1)
def _private_dirs() -> tuple[str, ...]:
    """Probe once: the shared writable directories a step can get private copies of (root
    only: it takes a mount namespace), or () when this platform does not allow it."""
    dirs = shared_writable_dirs()
    if sys.platform != "linux" or not drop_user() or not dirs:
        return ()
    keep = Path(tempfile.mkdtemp(prefix="llmbench-probe-"))
    # Both markers go where the step must not see or write: the first directory covered
    # (not TMPDIR, which may lie outside every covered directory).
    outside = Path(dirs[0]) / f"llmbench-probe-{uuid.uuid4().hex}"
    leak = Path(dirs[0]) / f"llmbench-leak-{uuid.uuid4().hex}"
    try:
        (keep / "inside").write_text("x")
        outside.write_text("x")
        script = f"test -f {keep}/inside && test ! -e {outside} && echo x > {leak}"
        proc = subprocess.run(
            ["/bin/sh", "-c", script],
            preexec_fn=make_preexec(Limits(), False, False, dirs, str(keep)),
            capture_output=True,
            timeout=10,
            check=False,
        )
        works = proc.returncode == 0 and not leak.exists()
    except (OSError, subprocess.SubprocessError):
        works = False
    finally:
        shutil.rmtree(keep, ignore_errors=True)
        for path in (outside, leak):
            path.unlink(missing_ok=True)
    return dirs if works else ()


@lru_cache(maxsize=1)
def _interpreter() -> tuple[str, bool]:
    """(python to run programs with, whether it runs as ``nobody``).

    As root we drop to ``nobody``; that user must be able to execute the interpreter (a
    Python under /root is not, nor one under /tmp once it is private), so fall back to the
    system python3, and only if neither works, keep running as root (reported in the
    details).
    """
    if not drop_user():
        return sys.executable, False
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3") or ""):
        if not candidate:
            continue
        try:
            probe = subprocess.run(
                [candidate, "-I", "-c", "import sqlite3"],
                capture_output=True,
                timeout=20,
                preexec_fn=make_preexec(Limits(), False, True, _private_dirs()),
                check=False,
                cwd="/",
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return candidate, True
    return sys.executable, False


def isolation_report() -> dict[str, object]:
    """What this platform gives the sandbox: network namespace, unprivileged user, python."""
    python, as_nobody = _interpreter()
    return {
        "network_isolated": sys.platform == "linux" and _network_isolation(),
        "runs_as_nobody": as_nobody,
        "private_tmp": bool(_private_dirs()),
        "python": python,
    }


def _run_step(
    step: Step,
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    token: str,
    limits: Limits,
    timeout_s: float,
    max_output: int,
    network: bool,
    as_nobody: bool,
    keep: Path,
) -> StepResult:
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=make_preexec(limits, network, as_nobody, _private_dirs(), str(keep)),
    )

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    out = _CappedReader(proc.stdout, max_output, kill)
    err = _CappedReader(proc.stderr, max_output, kill)
    out.start()
    err.start()
    timed_out = False
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    kill()
    proc.wait()
    _kill_token(token)  # daemons that left the process group
    out.join(5)
    err.join(5)
    result = StepResult(
        step,
        None if timed_out else proc.returncode,
        out.data.decode(errors="replace"),
        err.data.decode(errors="replace"),
        time.monotonic() - started,
    )
    _judge(result, timed_out, out.overflow or err.overflow)
    return result


def _judge(r: StepResult, timed_out: bool, overflow: bool) -> None:
    code = r.exit_code
    stderr_lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    if timed_out:
        r.why, r.diagnosis = f"no exit within {r.seconds:.1f} s", diagnoses.TIMED_OUT
        return
    if overflow:
        r.why, r.diagnosis = "output limit exceeded", diagnoses.OUTPUT_LIMIT
        return
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and r.seconds < 0.01):
        r.why, r.diagnosis = "CPU time limit reached", diagnoses.TIMED_OUT
        return
    if "EOFError" in r.stderr:
        r.why, r.diagnosis = "read from stdin (closed)", diagnoses.INTERACTIVE
        return
    if r.step.expect_exit is not None and code != r.step.expect_exit:
        r.why = f"exit {code}, expected {r.step.expect_exit}"
        if code:
            r.diagnosis = diagnoses.crashed(code, stderr_lines[-1] if stderr_lines else "")
        return
    try:
        matched = _matches(r.step.stdout, r.stdout)
    except Exception as exc:
        raise check_failed(
            "run_program", f"the stdout check of step {r.step.label!r}", exc
        ) from exc
    if not matched:
        shown = r.stdout.strip().replace("\n", " | ")[:160]
        r.why = f"stdout did not match (got: {shown!r})"
        return
    r.passed, r.why = True, "ok"


def run_program(
    code: str | None,
    steps: Sequence[Step],
    *,
    truncated: bool = False,
    filename: str = "program.py",
    timeout_s: float = 10,
    cpu_s: float = 10,
    memory_mb: int = 1024,
    max_output_bytes: int = 1_000_000,
    env: Mapping[str, str] | None = None,
    name: str = "functional",
) -> CheckResult:
    """Run ``code`` once per step (``python -I program.py ARGS``) in one private directory
    (state persists across the steps, as for "add then list"); score = steps passed / steps."""
    if not steps:
        raise ValueError("run_program needs at least one Step")
    if not code or not code.strip():
        return CheckResult(name, 0.0, False, "no code found: nothing to run", diagnoses.NO_CODE)
    if parse_error(code) is not None:
        if truncated:
            return CheckResult(
                name,
                0.0,
                False,
                "not run: the program was cut at the output cap and does not parse",
                diagnoses.TRUNCATED,
            )
        return CheckResult(name, 0.0, False, "not run: the program does not parse")
    root = Path(tempfile.mkdtemp(prefix="llmbench-sandbox-"))
    python, as_nobody = _interpreter()
    network = sys.platform == "linux" and _network_isolation()
    try:
        work, home, tmp = root / "work", root / "home", root / "tmp"
        for d in (work, home, tmp):
            d.mkdir()
        (work / filename).write_text(code)
        if as_nobody:
            for path in (root, work, home, tmp, work / filename):
                os.chown(path, NOBODY, NOBODY)
        token = uuid.uuid4().hex
        python_dir = str(Path(python).parent)
        child_env = {
            "PATH": f"{python_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
            TOKEN_VAR: token,
        }
        limits = Limits(cpu_s=cpu_s, memory_mb=memory_mb)
        results: list[StepResult] = []
        for step in steps:
            if results and results[-1].diagnosis == diagnoses.TIMED_OUT:
                skipped = StepResult(step, None, "", "", 0.0, why="skipped: an earlier step hung")
                results.append(skipped)
                continue
            argv = [python, "-I", filename, *step.args]
            results.append(
                _run_step(
                    step,
                    argv,
                    work,
                    child_env,
                    token,
                    limits,
                    timeout_s,
                    max_output_bytes,
                    network,
                    as_nobody,
                    root,
                )
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    passed = sum(r.passed for r in results)
    found = [r.diagnosis for r in results if r.diagnosis]
    lines = [
        f"{passed}/{len(results)} steps passed"
        + ("" if network else " (network isolation: unavailable on this platform)")
        + ("" if _private_dirs() else " (private /tmp: unavailable on this platform)")
        + ("" if as_nobody or not drop_user() else " (ran as root: no usable python)")
    ]
    for i, r in enumerate(results, 1):
        lines.append(
            f"  {i}. {r.step.label}: {'PASS' if r.passed else 'FAIL'} (exit {r.exit_code}) {r.why}"
        )
    return CheckResult(
        name,
        passed / len(results),
        passed == len(results),
        "\n".join(lines),
        found[0] if found else None,
    )
