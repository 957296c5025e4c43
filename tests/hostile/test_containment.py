"""The escapes of issue 14, each as a hostile program with its outcome asserted. CI runs this
directory as root and as an ordinary user (``.ci/run``); with ``LLMBENCH_REQUIRE_SANDBOX``
set, every guarantee must hold, so nothing here is skipped."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pytest_llmbench import check_result, checks
from pytest_llmbench.sandbox import Step, isolation_report, run_program
from pytest_llmbench.sandbox.containment import (
    MISSING,
    Containment,
    Guarantee,
    SandboxUnavailable,
    candidates,
    not_guaranteed,
    require_full,
    sandbox_warnings,
)
from tests.hostile._sandbox import STEP, new_mark, processes_marked, run

GOOD = "import sys\nprint('ok', *sys.argv[1:])\n"


def needs(guarantee: str) -> None:
    if not isolation_report()[guarantee]:
        pytest.skip(f"{guarantee} does not hold here (named in the details): documented")


def test_every_guarantee_holds_where_ci_requires_it() -> None:
    required = os.environ.get("LLMBENCH_REQUIRE_SANDBOX")
    if not required:
        pytest.skip("LLMBENCH_REQUIRE_SANDBOX not set (CI sets it)")
    report = isolation_report()
    assert report["backend"] == required, report
    assert report["missing"] == [], report


def test_clean_execve_daemon_dies_with_its_step_and_cannot_touch_later_programs() -> None:
    """Double fork, setsid, execve of a fresh interpreter with an empty environment (the run
    token is gone); the daemon tries for 20 s to rewrite every program.py it can find."""
    mark = new_mark()
    daemon = (
        "import glob, sys, time\n"
        "end = time.time() + 20\n"
        "while time.time() < end:\n"
        "    for path in glob.glob('/tmp/**/program.py', recursive=True):\n"
        "        try:\n"
        "            open(path, 'w').write('print(\"pwned\")\\n')\n"
        "        except OSError:\n"
        "            pass\n"
        "    time.sleep(0.02)\n"
    )
    code = (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execve(sys.executable, [sys.executable, '-c', {daemon!r}, MARK], {{}})\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        "import time; time.sleep(0.5)\n"
        "print('daemon started')\n"
    )
    assert run(code, mark=mark, steps=[Step([], stdout="daemon started")]).passed
    time.sleep(0.3)
    assert processes_marked(mark) == []
    later = run(GOOD, steps=[Step(["a"], stdout="ok a"), Step(["b"], stdout="ok b")])
    assert later.passed, later.details


def test_no_process_escapes_while_another_run_is_sandboxed() -> None:
    """The daemon is gone even while a concurrent run keeps its own program busy."""
    mark = new_mark()
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.execve('/bin/sleep', ['/bin/sleep', '30', MARK], {})\n"
        "    os._exit(0)\n"
        "print('bye')\n"
    )
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(run, "import time\ntime.sleep(2)\n")
        assert run(code, mark=mark).passed
        assert busy.result().passed


def test_other_processes_environments_are_out_of_reach() -> None:
    """``/proc/PID/environ`` shows what a process was started with: a victim started with a
    secret, this pytest process and the program's parent are all out of reach."""
    secret = f"sk-{uuid.uuid4().hex}"
    victim = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, "LLMBENCH_API_KEY": secret},
    )
    code = (
        "import os\n"
        f"pids = {{os.getppid(), {victim.pid}, {os.getpid()}, {os.getppid()}}}\n"
        "pids |= {int(p) for p in os.listdir('/proc') if p.isdigit()}\n"
        "for pid in sorted(pids):\n"
        "    try:\n"
        "        print(pid, open(f'/proc/{pid}/environ', 'rb').read())\n"
        "    except OSError as exc:\n"
        "        print(pid, type(exc).__name__)\n"
    )
    # The reader works (it prints its own environment, mark included) and sees no secret.
    check = Step([], stdout=lambda out: "LLMBENCH_HOSTILE_MARK" in out and secret not in out)
    try:
        # The victim shows its secret once it has exec'd (a vfork child shows nothing before).
        environ = Path(f"/proc/{victim.pid}/environ")
        deadline = time.monotonic() + 30
        while secret.encode() not in environ.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert environ.read_bytes().count(secret.encode()) == 1
        result = run(code, steps=[check])
    finally:
        victim.kill()
        victim.wait()
    assert result.passed, result.details


def test_killing_its_parent_and_every_pytest_process_harms_nothing() -> None:
    code = (
        "import os, signal\n"
        "os.kill(os.getppid(), signal.SIGKILL)\n"
        f"for pid in ({os.getpid()}, {os.getppid()}):\n"
        "    try:\n"
        "        os.kill(pid, signal.SIGKILL)\n"
        "        print('killed', pid)\n"
        "    except OSError as exc:\n"
        "        print('refused', pid, type(exc).__name__)\n"
        "for p in os.listdir('/proc'):\n"
        "    try:\n"
        "        if p.isdigit() and b'pytest' in open(f'/proc/{p}/cmdline', 'rb').read():\n"
        "            os.kill(int(p), signal.SIGKILL)\n"
        "            print('killed', p)\n"
        "    except OSError:\n"
        "        pass\n"
        "print('still here')\n"
    )
    steps = [
        Step([], stdout=lambda out: "still here" in out and "killed" not in out, name="killer"),
        Step(["after"], name="the run goes on"),
    ]
    result = run(code, steps=steps)
    assert result.passed, result.details
    assert Path(f"/proc/{os.getppid()}").exists()  # pytest's parent lives (maybe not ours)


def test_memory_fork_swarm_is_bounded_for_the_step_as_a_whole() -> None:
    """5 children x 700 MB under a 1024 MB limit: stopped, and never much above it."""
    mark = new_mark()
    code = (
        "import os, time\n"
        "for _ in range(5):\n"
        "    if os.fork() == 0:\n"
        "        block = b'x' * (700 * 2**20)\n"
        "        print('holding 700 MB', flush=True)\n"
        "        time.sleep(10)\n"
        "        os._exit(0)\n"
        "for _ in range(5):\n"
        "    os.wait()\n"
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            total = 0
            for pid in processes_marked(mark):
                try:
                    fields = Path(f"/proc/{pid}/statm").read_text().split()
                    total += (int(fields[1]) - int(fields[2])) * os.sysconf("SC_PAGE_SIZE")
                except (OSError, IndexError, ValueError):
                    continue
            peak[0] = max(peak[0], total)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = run(code, mark=mark, memory_mb=1024, timeout_s=20)
    finally:
        done.set()
        sampler.join()
    assert result.diagnosis == check_result.MEMORY_LIMIT, result.details
    assert peak[0] < 2 * 1024 * 2**20, f"peak {peak[0] / 2**20:.0f} MB"


@pytest.mark.parametrize("where", [".", "/tmp", "/dev/shm"])
def test_many_files_disk_filler_is_stopped(where: str) -> None:
    code = (
        "import os\n"
        f"os.makedirs({where!r} + '/fill', exist_ok=True)\n"
        "for i in range(10**7):\n"
        f"    open({where!r} + f'/fill/{{i}}', 'w').close()\n"
    )
    result = run(code, timeout_s=30)
    assert result.diagnosis == check_result.DISK_LIMIT, result.details


def test_disk_filler_with_files_under_the_size_limit_is_stopped() -> None:
    """1 MB files, each far under the per-file limit, until the disk is full."""
    code = (
        "for i in range(10**6):\n"
        "    with open(f'big{i}', 'wb') as f:\n"
        "        f.write(b'x' * 2**20)\n"
    )
    result = run(code, timeout_s=30)
    assert result.diagnosis == check_result.DISK_LIMIT, result.details


def test_process_count_starver_does_not_starve_a_step_beside_it() -> None:
    needs("step_processes")
    starver = (
        "import os, time\n"
        "held = 0\n"
        "end = time.time() + 8\n"
        "while time.time() < end:\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        held += 1\n"
        "    except OSError:\n"
        "        time.sleep(0.01)\n"
    )
    spawner = (
        "import subprocess, sys, time\n"
        "for _ in range(5):\n"
        "    subprocess.run([sys.executable, '-c', 'pass'], check=True)\n"
        "    time.sleep(0.2)\n"
        "print('spawned')\n"
    )
    with ThreadPoolExecutor(1) as pool:
        starving = pool.submit(run, starver, timeout_s=6)
        time.sleep(1.5)
        beside = run(spawner, steps=[Step([], stdout="spawned")] * 3, timeout_s=20)
        assert starving.result().diagnosis == checks.TIMED_OUT
    assert beside.passed, beside.details


def test_generated_code_never_runs_as_root() -> None:
    code = "import os\nprint(os.geteuid(), os.getuid())\n"
    check = Step([], stdout=lambda out: len(out.split()) == 2 and "0" not in out.split())
    result = run(code, steps=[check])
    assert result.passed, result.details


def test_the_venv_base_interpreter_is_a_candidate() -> None:
    base = getattr(sys, "_base_executable", None)
    if base is None or not os.path.isfile(base):
        pytest.skip("no base interpreter recorded")
    assert base in candidates()


def test_no_interpreter_usable_as_root_is_an_item_error_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pytest_llmbench.sandbox import containment as module
    from pytest_llmbench.sandbox import runner

    if os.geteuid() != 0:
        pytest.skip("only root switches to another user")
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    (hidden / "python3").symlink_to(os.path.realpath(sys.executable))
    monkeypatch.setattr(module, "candidates", lambda: [str(hidden / "python3")])
    found = module.containment.__wrapped__()
    assert found.python is None
    monkeypatch.setattr(runner, "containment", lambda: found)
    with pytest.raises(SandboxUnavailable) as error:
        run_program(GOOD, STEP)
    message = str(error.value)
    assert str(hidden / "python3") in message and "chmod o+rx" in message
    assert "apt-get install python3" in message


def test_fallback_names_every_missing_guarantee(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmbench.sandbox import bwrap, runner
    from pytest_llmbench.sandbox import containment as module

    monkeypatch.setattr(bwrap, "bwrap_path", lambda: None)
    monkeypatch.setattr(module, "bwrap_path", lambda: None)
    found = module.containment.__wrapped__()
    assert found.backend == module.FALLBACK and found.python is not None
    monkeypatch.setattr(runner, "containment", lambda: found)
    monkeypatch.setattr(module, "weak_allowed", lambda: True)  # --llm-sandbox=weak
    result = run_program(GOOD, [Step(["x"], stdout="ok x")])
    assert result.passed, result.details
    assert Guarantee.PID_NAMESPACE in found.missing()
    assert f"({MISSING}" in result.details.splitlines()[0]
    assert set(result.unguaranteed) == found.missing()  # typed, not parsed from the details
    assert found.note() in result.details


def test_missing_guarantees_travel_as_a_set_and_are_drawn_once_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_llmbench.sandbox import containment as module

    partial = Containment("fallback", "/usr/bin/python3", network=True, private_tmp=True)
    missing = partial.missing()
    assert missing == frozenset(Guarantee) - {Guarantee.NETWORK, Guarantee.PRIVATE_TMP}
    checked = check_result.CheckResult("f", 1.0, True, "", None, partial.missing_names())
    (line,) = sandbox_warnings([checked, checked, check_result.CheckResult("g", 1, True)])
    assert line == f"sandbox: {not_guaranteed(missing)} (README: Safety)"
    assert all(line.count(g) == 1 for g in missing)
    assert line.index(Guarantee.PID_NAMESPACE) < line.index(Guarantee.NO_NESTED_USERNS)
    monkeypatch.setattr(module, "weak_allowed", lambda: False)
    with pytest.raises(SandboxUnavailable) as refused:
        require_full(partial)
    assert refused.value.missing == missing
    full = Containment("bubblewrap", "python", *[True] * 8)
    assert full.note() == "" and full.missing() == frozenset()


def test_a_killed_step_is_reported_as_killed_not_as_an_exit_code() -> None:
    result = run("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert result.diagnosis is not None and "crashed (exit -9" in result.diagnosis
    assert run("raise SystemExit(3)\n").diagnosis == check_result.crashed(3, "")


def test_a_hostile_program_under_load_is_still_contained() -> None:
    """Four hostile runs at once (daemon, fork swarm, killer, filler) beside a normal one."""
    marks = [new_mark() for _ in range(4)]
    hostile = [
        "import os\nif os.fork() == 0:\n    os.setsid()\n"
        "    os.execve('/bin/sleep', ['/bin/sleep', '30', MARK], {})\nprint('x')\n",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
        "i = 0\nwhile True:\n    open(f'f{i}', 'w').write('x')\n    i += 1\n",
    ]
    with ThreadPoolExecutor(len(hostile)) as pool:
        runs = [
            pool.submit(run, code, timeout_s=4, mark=mark)
            for code, mark in zip(hostile, marks, strict=True)
        ]
        normal = run(GOOD, steps=[Step([str(i)], stdout=f"ok {i}") for i in range(4)])
        outcomes = [r.result() for r in runs]
    assert normal.passed, normal.details
    assert [processes_marked(mark) for mark in marks] == [[]] * 4
    assert outcomes[0].passed
    assert outcomes[1].diagnosis == checks.TIMED_OUT
    assert outcomes[2].passed
    assert outcomes[3].diagnosis in (check_result.DISK_LIMIT, checks.TIMED_OUT)


def test_the_users_home_is_hidden() -> None:
    needs("read_only")
    secret = Path.home() / f".llmbench-secret-{uuid.uuid4().hex}"
    secret.write_text("token")
    try:
        code = f"print(open({str(secret)!r}).read())\n"
        result = run(code)
    finally:
        secret.unlink()
    assert result.diagnosis is not None and "FileNotFoundError" in result.diagnosis


def test_unreadable_leftovers_are_still_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(dir="/tmp"))
    tmp_path.chmod(0o755)  # reachable by the uid that root's runs switch to
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = (
        "import os\nos.makedirs('a/b')\nopen('a/b/f', 'w').write('x')\n"
        "os.symlink('/etc', 'a/etc')\nos.chmod('a/b', 0)\nos.chmod('a', 0)\n"
        "os.chmod(os.environ['HOME'], 0)\n"
    )
    try:
        assert run(code).passed
        assert list(tmp_path.iterdir()) == []
    finally:
        tmp_path.rmdir()
    assert os.stat("/etc").st_mode & 0o777 != 0o700


def test_root_runs_live_where_their_uid_can_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    """A private TMPDIR (e.g. pytest's own tmp_path, mode 700) must not break root's runs."""
    import tempfile

    private = Path(tempfile.mkdtemp())
    private.chmod(0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    try:
        result = run(GOOD, steps=[Step(["x"], stdout="ok x")])
    finally:
        private.rmdir()
    assert result.passed, result.details


def test_host_sockets_under_run_are_out_of_reach() -> None:
    """The D-Bus session bus (/run/user/UID/bus) would let a program start processes
    outside the sandbox through systemd --user; docker.sock would make it root."""
    import socket as sockets

    needs("read_only")
    assert os.listdir("/run")
    empty = run("import os\nprint(os.listdir('/run'))\n", steps=[Step([], stdout=r"^\[\]$")])
    assert empty.passed, empty.details
    if not os.access("/run", os.W_OK):
        return  # cannot make a socket there as this user: the empty listing shows enough
    path = f"/run/llmbench-{uuid.uuid4().hex[:12]}.sock"
    with sockets.socket(sockets.AF_UNIX) as server:
        server.bind(path)
        server.listen(1)
        try:
            code = f"import socket\nsocket.socket(socket.AF_UNIX).connect({path!r})\n"
            result = run(code)
        finally:
            os.unlink(path)
    assert result.diagnosis is not None and "FileNotFoundError" in result.diagnosis


def test_without_a_known_seccomp_abi_bubblewrap_runs_unfiltered_and_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a machine whose syscall numbers the filter does not know, the step runs without
    it: that one guarantee is missing, so the default policy refuses and names it."""
    from pytest_llmbench.sandbox import containment as module
    from pytest_llmbench.sandbox import seccomp

    if isolation_report()["missing"]:
        pytest.skip("needs full containment (bubblewrap) to start from")
    monkeypatch.setattr(seccomp, "supported", lambda machine=None: False)
    found = module.containment.__wrapped__()
    assert found.backend == module.BWRAP
    assert found.missing() == {Guarantee.NO_UNSEEN_MEMORY}
    with pytest.raises(SandboxUnavailable, match="no System V shm or memfd") as refused:
        module.require_full(found)
    assert refused.value.missing == {Guarantee.NO_UNSEEN_MEMORY}
    assert "seccomp filter knows x86_64 and aarch64 only" in str(refused.value)
