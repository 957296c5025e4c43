"""Run a generated program as a sequence of command-line steps and judge each one.

Each ``run_program`` call gets a fresh directory (``work``, ``home``, ``tmp``), removed
afterwards; every step runs ``python -I program.py ARGS`` there with stdin ``/dev/null``, an
environment scrubbed to PATH, HOME, TMPDIR, LANG and what the caller passes, a wall-clock
timeout, an output cap, per-process limits (CPU, address space, file size, open files, no
core dumps; :mod:`~pytest_llmbench.sandbox.isolation`), and bounds for the step as a whole
(resident memory of all its processes, its process count, the directory's size and file
count; :mod:`~pytest_llmbench.sandbox.watch`). Where it is built is decided once per process
(:mod:`~pytest_llmbench.sandbox.containment`): with bubblewrap, its own user, PID, network,
IPC and mount namespaces, a read-only host file system and hidden home directories
(:mod:`~pytest_llmbench.sandbox.bwrap`); without it, a fallback whose missing guarantees
the check's details name. Generated code never runs as root. Not guaranteed even so: the
program can read the world-readable files of the host, and use the CPU and memory the
limits allow; for models you do not trust at all, run the whole benchmark in a VM.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from re import Pattern

from pytest_llmbench import check_result
from pytest_llmbench.check_result import CheckResult, parse_error
from pytest_llmbench.errors import check_failed
from pytest_llmbench.sandbox.bwrap import INSIDE, SCRATCH, SCRATCH_MB, bwrap_argv, bwrap_path
from pytest_llmbench.sandbox.capped import CappedReader
from pytest_llmbench.sandbox.containment import (
    BWRAP,
    Containment,
    containment,
    make_run_dir,
    private_dirs,
    require_full,
)
from pytest_llmbench.sandbox.isolation import (
    Limits,
    fallback_preexec,
    is_root,
    launcher_argv,
    new_run_uid,
    own_process_count,
    run_as,
)
from pytest_llmbench.sandbox.launcher import RunFiles, StepChannels
from pytest_llmbench.sandbox.process import Top
from pytest_llmbench.sandbox.watch import DISK, MEMORY, Watcher, descendants, over_disk
from pytest_llmbench.text_safety import for_cell

Expect = str | Pattern[str] | Callable[[str], bool] | None
#: (this step's stdout, the stdouts of the steps before it, in order) -> ``None`` when the
#: output is right, else why it is not (shown in the details).
Compare = Callable[[str, Sequence[str]], str | None]
TOKEN_VAR = "LLMBENCH_SANDBOX_RUN"

#: Runs the program for a ``finish`` step: only once its module code has returned does it copy
#: the run's nonce from one inherited pipe to another. The nonce is read after the program, so
#: the program never holds it; ``sys.exit``, ``os._exit``, a signal or an exception skip it.
_FINISH = """\
import os, runpy, sys
nonce_in, marker_out = int(sys.argv[1]), int(sys.argv[2])
read, write = os.read, os.write
sys.argv = sys.argv[3:]
runpy.run_path(sys.argv[0], run_name="__main__")
write(marker_out, read(nonce_in, 64))
"""


@dataclass(frozen=True)
class Step:
    """One command: the program run with ``args``; ``stdout`` is a regex (searched,
    case-insensitive), a compiled pattern or a predicate; ``expect_exit=None`` takes any.

    ``compare`` judges the output against the earlier steps' (e.g. what ``complete`` changed
    in a listing). ``finish=True`` (for a program that runs its own tests) passes only when
    the program's module code provably ran to its end: a harness writes a per-run nonce the
    program never sees once it has returned, so ``sys.exit(0)``, ``os._exit(0)``, ``raise
    SystemExit``, an exit from a hook or a signal before the last line all fail the step."""

    args: Sequence[str]
    expect_exit: int | None = 0
    stdout: Expect = None
    name: str | None = None
    compare: Compare | None = None
    finish: bool = False

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
    finished: bool = False
    """The harness saw the program's module code return (``finish`` steps only)."""
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


def _kill_token(token: str) -> int:
    """SIGKILL every process whose environment carries ``token``; returns how many. (The
    fallback's sweep for daemons that left the step's process group: a program that
    ``execve``s with an empty environment escapes it, which the PID namespace does not.)"""
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


def _wait_gone(pids: list[int], timeout_s: float = 5) -> None:
    """Wait until ``pids`` have exited (a zombie counts as gone)."""
    deadline = time.monotonic() + timeout_s
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rpartition(")")[2].split()[0] in ("Z", "X"):
                        break
            except OSError:
                break
            time.sleep(0.01)


def remove_run_dir(root: Path) -> None:
    """Delete the run's directory, parts the program made unreadable (``chmod 0``) included.
    Called once every process of the run is gone, so nothing can swap a directory for a link
    between the check and the ``chmod``."""
    with contextlib.suppress(OSError):
        os.chmod(root, 0o700)
    for path, dirs, _files in os.walk(root):
        for name in dirs:
            sub = os.path.join(path, name)
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(os.lstat(sub).st_mode):
                    os.chmod(sub, 0o700)
    shutil.rmtree(root, ignore_errors=True)


def isolation_report() -> dict[str, object]:
    """What this machine gives the sandbox: the backend, the interpreter, each guarantee."""
    found = containment()
    return {
        "backend": found.backend,
        "python": found.python,
        "pid_namespace": found.pid_namespace,
        "network_isolated": found.network,
        "private_tmp": found.private_tmp,
        "read_only": found.read_only,
        "step_processes": found.step_processes,
        "missing": list(found.missing_names()),
    }


@dataclass
class _Run:
    """One ``run_program`` call: where it lives, as whom, with what. ``root``: the host
    directory of a fallback run; ``files``: the run's files between bubblewrap steps."""

    root: Path | None
    uid: int | None
    found: Containment
    env: dict[str, str]
    token: str
    limits: Limits
    timeout_s: float
    max_output: int
    files: RunFiles | None = None


def step_places(pid: int, disk_mb: int) -> list[str]:
    """The step's tmpfs mounts as the host sees them, through its init's root; none until
    bwrap has built the step's world (before that its init's root is the host's, whose
    ``/tmp`` is not the step's), which each mount's size, the one bwrap was given, shows."""
    below = descendants(pid)
    sizes = {INSIDE: disk_mb, **dict.fromkeys(SCRATCH, SCRATCH_MB)}
    places = {f"/proc/{below[0]}/root{place}": mb for place, mb in sizes.items()} if below else {}
    for path, mb in places.items():
        try:
            st = os.statvfs(path)
        except OSError:
            return []
        if st.f_blocks * st.f_frsize != mb * 2**20:
            return []
    return list(places)


def _argv(
    run: _Run, program: list[str], channels: StepChannels | None
) -> tuple[list[str], Callable[[], None] | None]:
    """The command line and ``preexec_fn`` of one step of ``run``."""
    python = str(run.found.python)
    if channels is not None:
        sandbox = bwrap_argv(
            str(bwrap_path()), run.found.keep_visible, run.limits.disk_mb, channels.seccomp
        )
        preexec = run_as(run.uid) if run.uid is not None else None
        return sandbox + channels.launcher_argv(python, run.limits) + program, preexec
    # Without a user namespace RLIMIT_NPROC counts all of this uid's processes.
    processes = run.limits.processes + (0 if run.uid is not None else own_process_count())
    preexec = fallback_preexec(
        run.uid, run.found.network, private_dirs(), str(run.root), run.limits.file_mb
    )
    return launcher_argv(python, run.limits, processes) + program, preexec


class _FinishMarker:
    """The two pipes of a ``finish`` step: the nonce goes in (written and closed before the
    program starts, read by the harness only after the program returned), the marker comes
    out. What comes out must be the nonce, exactly."""

    def __init__(self) -> None:
        self.nonce = secrets.token_hex(16).encode()
        self.nonce_in, nonce_w = os.pipe()
        os.write(nonce_w, self.nonce)
        os.close(nonce_w)
        self.marker_r, self.marker_out = os.pipe()
        os.set_blocking(self.marker_r, False)

    def argv(self, python: str, filename: str, args: Sequence[str]) -> list[str]:
        fds = (str(self.nonce_in), str(self.marker_out))
        return [python, "-I", "-c", _FINISH, *fds, filename, *args]

    def child_fds(self) -> tuple[int, int]:
        return self.nonce_in, self.marker_out

    def started(self) -> None:
        """The child has its copies: the parent keeps only the marker's read end."""
        os.close(self.nonce_in)
        os.close(self.marker_out)

    def seen(self) -> bool:
        """Called once the step's processes are gone."""
        data = b""
        try:
            while len(data) <= len(self.nonce):
                chunk = os.read(self.marker_r, 4096)
                if not chunk:
                    break
                data += chunk
        except BlockingIOError:
            pass
        finally:
            os.close(self.marker_r)
        return data == self.nonce


def _run_step(run: _Run, step: Step, filename: str, earlier: Sequence[str]) -> StepResult:
    started = time.monotonic()
    python = str(run.found.python)
    marker = _FinishMarker() if step.finish else None
    program = (
        marker.argv(python, filename, step.args) if marker else [python, "-I", filename, *step.args]
    )
    channels = run.files.open_step() if run.files is not None else None
    argv, preexec = _argv(run, program, channels)
    passed = (marker.child_fds() if marker else ()) + (channels.passed() if channels else ())
    try:
        proc = subprocess.Popen(
            argv,
            cwd=run.root / "work" if run.root is not None else "/",
            env=run.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=preexec,
            pass_fds=passed,
        )
    finally:
        if marker:
            marker.started()
        if channels is not None:
            channels.close_child_ends()
    top = Top(proc)
    out = CappedReader(proc.stdout, run.max_output, top.kill)
    err = CappedReader(proc.stderr, run.max_output, top.kill)
    disk_mb = run.limits.disk_mb
    places = (lambda pid: step_places(pid, disk_mb)) if channels is not None else None
    watcher = Watcher(proc.pid, run.root, run.limits, top.kill, places)
    for thread in (out, err, watcher):
        thread.start()
    if channels is not None:
        channels.start(top.kill)
    timed_out = not top.wait_exit(run.timeout_s)
    watcher.stop()
    below = top.below()
    code = top.reap()
    _wait_gone(below)  # the namespace's init: once it is gone, so is every process in it
    if run.found.backend != BWRAP:
        _kill_token(run.token)  # daemons that left the process group
    out.join(5)
    err.join(5)
    if run.found.backend == BWRAP and 128 < code < 160:
        code = 128 - code  # bwrap reports a signal N of its child as exit 128 + N
    exceeded, limits, kept = watcher.exceeded, run.limits, ""
    if channels is not None and run.files is not None:
        back = run.files.finish(channels)
        code = back.exit_code if back.exit_code is not None else code
        # ENOSPC can only come from the caps here (a refused fallocate fills nothing).
        refused = code != 0 and b"No space left on device" in err.data
        exceeded = exceeded or (DISK if back.over_disk or refused else None)
        kept = back.not_kept
    elif exceeded is None and run.root is not None:
        exceeded = DISK if over_disk(run.root, limits.disk_mb * 2**20, limits.files) else None
    over: tuple[str | None, str] | None = {
        MEMORY: (
            check_result.MEMORY_LIMIT,
            f"its processes together held over {limits.memory_mb} MB",
        ),
        DISK: (
            check_result.DISK_LIMIT,
            f"its files went over {limits.disk_mb} MB or {limits.files:,}",
        ),
    }.get(exceeded or "")
    if over is None and kept:
        over = (None, kept)
    result = StepResult(
        step,
        None if timed_out else code,
        out.data.decode(errors="replace"),
        err.data.decode(errors="replace"),
        time.monotonic() - started,
        finished=marker.seen() if marker else False,
    )
    _judge(result, timed_out, out.overflow or err.overflow, over, earlier)
    return result


def _judge(
    r: StepResult,
    timed_out: bool,
    overflow: bool,
    over: tuple[str | None, str] | None = None,
    earlier: Sequence[str] = (),
) -> None:
    """Set ``r``'s verdict; ``over``: (diagnosis, why) when a bound of the whole step was hit;
    ``earlier``: the stdouts of the steps before it."""
    code = r.exit_code
    stderr_lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    if over is not None:
        r.diagnosis, r.why = over
        return
    if timed_out:
        r.why, r.diagnosis = f"no exit within {r.seconds:.1f} s", check_result.TIMED_OUT
        return
    if overflow:
        r.why, r.diagnosis = "output limit exceeded", check_result.OUTPUT_LIMIT
        return
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and r.seconds < 0.01):
        r.why, r.diagnosis = "CPU time limit reached", check_result.TIMED_OUT
        return
    if "EOFError" in r.stderr:
        r.why, r.diagnosis = "read from stdin (closed)", check_result.INTERACTIVE
        return
    if r.step.expect_exit is not None and code != r.step.expect_exit:
        r.why = f"exit {code}, expected {r.step.expect_exit}"
        if code:
            r.diagnosis = check_result.crashed(code, stderr_lines[-1] if stderr_lines else "")
        return
    if r.step.finish and not r.finished:
        r.why = (
            f"the program did not run to its end (exit {code} before its last line returned: "
            "sys.exit, os._exit, SystemExit, or an exit from a hook)"
        )
        r.diagnosis = check_result.ENDED_EARLY
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
    if r.step.compare is not None:
        try:
            wrong = r.step.compare(r.stdout, earlier)
        except Exception as exc:
            raise check_failed(
                "run_program", f"the compare check of step {r.step.label!r}", exc
            ) from exc
        if wrong:
            r.why = for_cell(wrong[:300])
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
        return CheckResult(name, 0.0, False, "no code found: nothing to run", check_result.NO_CODE)
    if parse_error(code) is not None:
        if truncated:
            return CheckResult(
                name,
                0.0,
                False,
                "not run: the program was cut at the output cap and does not parse",
                check_result.TRUNCATED,
            )
        return CheckResult(name, 0.0, False, "not run: the program does not parse")
    found = containment()
    if found.python is None:
        raise found.unavailable()
    require_full(found)
    uid = new_run_uid() if is_root() else None
    bubblewrap = found.backend == BWRAP
    root = None if bubblewrap else make_run_dir(uid)
    token = uuid.uuid4().hex
    limits = Limits(cpu_s=cpu_s, memory_mb=memory_mb)
    files = RunFiles(filename, code, limits) if bubblewrap else None
    try:
        if root is not None:
            (root / "work" / filename).write_text(code)
            if uid is not None:
                os.chown(root / "work" / filename, uid, uid)
        base = INSIDE if bubblewrap else str(root)
        run = _Run(
            root,
            uid,
            found,
            {
                "PATH": f"{Path(found.python).parent}:/usr/local/bin:/usr/bin:/bin",
                "HOME": f"{base}/home",
                "TMPDIR": f"{base}/tmp",
                "LANG": "C.UTF-8",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1",
                **(env or {}),
                TOKEN_VAR: token,
            },
            token,
            limits,
            timeout_s,
            max_output_bytes,
            files,
        )
        results: list[StepResult] = []
        for step in steps:
            if results and results[-1].diagnosis == check_result.TIMED_OUT:
                skipped = StepResult(step, None, "", "", 0.0, why="skipped: an earlier step hung")
                results.append(skipped)
                continue
            results.append(_run_step(run, step, filename, [r.stdout for r in results]))
    finally:
        if root is not None:
            remove_run_dir(root)
        if files is not None:
            files.close()
    passed = sum(r.passed for r in results)
    seen = [r.diagnosis for r in results if r.diagnosis]
    lines = [f"{passed}/{len(results)} steps passed{found.note()}"]
    for i, r in enumerate(results, 1):
        lines.append(
            f"  {i}. {r.step.label}: {'PASS' if r.passed else 'FAIL'} (exit {r.exit_code}) {r.why}"
        )
    return CheckResult(
        name,
        passed / len(results),
        passed == len(results),
        "\n".join(lines),
        seen[0] if seen else None,
        found.missing_names(),
    )
