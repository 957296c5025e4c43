"""Hostile generated programs: each fails its step with the right diagnosis, leaves no
process behind, and harms neither the machine nor this pytest process."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from pytest_llmbench import check_result, checks
from pytest_llmbench.sandbox import isolation_report
from tests.hostile._sandbox import run


def test_fork_bomb_is_bounded_and_cleaned_up() -> None:
    result = run(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        timeout_s=2,
    )
    assert not result.passed and result.diagnosis == checks.TIMED_OUT


@pytest.mark.parametrize("code", ["while True:\n    pass\n", "import time\ntime.sleep(60)\n"])
def test_busy_and_sleeping_loops_time_out(code: str) -> None:
    result = run(code, timeout_s=1)
    assert result.diagnosis == checks.TIMED_OUT


def test_cpu_limit_stops_a_busy_loop_before_the_wall_clock() -> None:
    result = run("while True:\n    pass\n", timeout_s=20, cpu_s=1)
    assert result.diagnosis == checks.TIMED_OUT


def test_memory_hog_is_stopped() -> None:
    result = run("x = []\nwhile True:\n    x.append(bytearray(10**7))\n", memory_mb=256)
    assert not result.passed
    assert result.diagnosis is not None and result.diagnosis.startswith(
        "crashed (exit 1: MemoryError"
    )


def test_disk_filler_hits_the_file_size_limit() -> None:
    result = run("with open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * 10**6)\n")
    assert not result.passed and result.diagnosis is not None
    assert "crashed" in result.diagnosis  # SIGXFSZ / File too large


def test_reading_stdin_forever_is_interactive_or_eof() -> None:
    result = run("import sys\nwhile True:\n    line = input()\n")
    assert result.diagnosis == checks.INTERACTIVE
    endless = run("import sys\nwhile True:\n    sys.stdin.read()\n", timeout_s=1)
    assert endless.diagnosis == checks.TIMED_OUT  # reads EOF forever: /dev/null, never a tty


def test_network_is_unreachable_where_the_platform_allows() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        result = run(
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 2)\nprint('connected')\n"
        )
    if isolation_report()["network_isolated"]:
        assert not result.passed and "connected" not in result.details
    else:
        pytest.skip("no network namespace on this platform: documented in the README")


def test_gigabytes_of_output_are_capped() -> None:
    result = run(
        "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", max_output_bytes=100_000
    )
    assert result.diagnosis == check_result.OUTPUT_LIMIT


def test_writes_land_in_the_private_home_not_the_users(tmp_path: Path) -> None:
    marker = f"llmbench-hostile-{os.getpid()}"
    code = (
        f"import os, pathlib\npathlib.Path(os.path.expanduser('~/{marker}')).write_text('x')\n"
        f"pathlib.Path('/tmp/{marker}').write_text('x')\nprint(os.path.expanduser('~'))\n"
    )
    result = run(code, timeout_s=5)
    assert result.passed
    assert not (Path.home() / marker).exists()
    leaked = Path("/tmp") / marker
    if isolation_report()["private_tmp"]:
        assert not leaked.exists()  # it wrote into a private /tmp that is gone now
    else:
        leaked.unlink(missing_ok=True)  # /tmp is shared without root (documented)
        pytest.skip("no private /tmp on this platform (needs root): documented")


def test_shared_tmp_dirs_are_private_and_empty() -> None:
    if not isolation_report()["private_tmp"]:
        pytest.skip("no private /tmp on this platform (needs root): documented")
    secret = Path("/tmp") / f"llmbench-secret-{os.getpid()}"
    secret.write_text("other users' /tmp file")
    try:
        code = (
            f"import os\nassert not os.path.exists({str(secret)!r})\n"
            "for d in ('/tmp', '/var/tmp', '/dev/shm'):\n"
            "    open(os.path.join(d, 'filler'), 'wb').write(b'x' * 1000)\n"
        )
        result = run(code, timeout_s=5)
        assert result.passed, result.details
    finally:
        secret.unlink()
    for shared in ("/tmp", "/var/tmp", "/dev/shm"):
        assert not (Path(shared) / "filler").exists()


def test_cannot_touch_the_users_files(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    tmp_path.chmod(0o700)
    result = run(f"import os\nos.remove({str(victim)!r})\n")
    if isolation_report()["read_only"] or os.geteuid() == 0:
        assert victim.read_text() == "keep me"
        # Refused (a read-only file system, another uid), or not even visible when it lies
        # under a private /tmp.
        assert result.diagnosis is not None
        assert any(
            error in result.diagnosis
            for error in ("PermissionError", "FileNotFoundError", "OSError: [Errno 30]")
        ), result.diagnosis
    else:
        pytest.skip("no read-only file system here: programs write as the current user")


def test_daemon_child_that_outlives_the_program_is_killed() -> None:
    code = (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(300)\n    os._exit(0)\nprint('parent done')\n"
    )
    result = run(code)
    assert result.passed  # the program itself exits 0; its daemon is gone (checked in run())


def test_killing_its_own_process_group_does_not_touch_pytest() -> None:
    result = run("import os, signal\nos.killpg(0, signal.SIGKILL)\n")
    assert not result.passed
    assert result.diagnosis is not None and "crashed (exit -9" in result.diagnosis


def test_raising_its_own_limits_fails() -> None:
    code = (
        "import resource\nresource.setrlimit(resource.RLIMIT_CPU, "
        "(resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
    )
    result = run(code)
    assert not result.passed and result.diagnosis is not None
    assert "ValueError" in result.diagnosis or "PermissionError" in result.diagnosis


def test_the_next_program_runs_normally_afterwards() -> None:
    assert run("print('fine')\n", timeout_s=5).passed
