"""pytest-timeout bounds a hung test; the run goes on, the leaderboard prints, and a spawned
server never outlives pytest (even when pytest-timeout's thread method kills the process)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_server

HANGS = """
import time
from pathlib import Path

def test_hangs(llm):
    Path("server.pid").write_text(str(llm.backend.lease.pid))
    assert llm.generate("Hi", max_tokens=2).text is not None
    time.sleep(60)

def test_after(llm):
    assert llm.generate("Hello", max_tokens=2).metrics.output_tokens
"""

MODEL = ["--llm-models=llama-server:gemma3-270m", "--llm-ctx=512", "-p", "no:cacheprovider"]


def _gone(pid: int, within_s: float = 10) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie reaped by init still shows up briefly
        status = Path(f"/proc/{pid}/status")
        if status.exists() and "State:\tZ" in status.read_text():
            return True
        time.sleep(0.1)
    return False


def test_signal_timeout_fails_one_item_and_the_run_goes_on(
    pytester: pytest.Pytester, llama_server_bin: Path, gemma_gguf: Path
) -> None:
    pytester.makepyfile(test_hang=HANGS)
    started = time.monotonic()
    # 20 s: a real two-token generation must fit in it with two CPU burners on the 2 cores
    # (3 s did not: both items timed out under that load); the hung test sleeps 60 s.
    result = pytester.runpytest_subprocess(
        *MODEL, "--timeout=20", "--timeout-method=signal", "-o", "timeout_func_only=true"
    )
    assert time.monotonic() - started < 180  # bounded (generous: the machine is shared)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Timeout (>20.0s)*"])
    result.stdout.fnmatch_lines(
        ["*llmbench leaderboard*", "*| llama-server:gemma3-270m*| 2 *| 1 *| 1 *"]
    )
    assert _gone(int((pytester.path / "server.pid").read_text()))


def test_thread_timeout_kills_pytest_but_not_leaves_the_server(
    pytester: pytest.Pytester, llama_server_bin: Path, gemma_gguf: Path
) -> None:
    pytester.makepyfile(test_hang=HANGS)
    result = pytester.runpytest_subprocess(
        *MODEL, "--timeout=3", "--timeout-method=thread", "-o", "timeout_func_only=true"
    )
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*+ Timeout +*"])
    # pytest died with os._exit: the server follows through PR_SET_PDEATHSIG.
    assert _gone(int((pytester.path / "server.pid").read_text()))


def test_sigterm_stops_the_server_and_still_summarises(
    pytester: pytest.Pytester, llama_server_bin: Path, gemma_gguf: Path
) -> None:
    import signal
    import subprocess
    import sys

    pytester.makepyfile(test_hang=HANGS)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *MODEL],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pid_file = pytester.path / "server.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # inside the sleep of test_hangs
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "KeyboardInterrupt" in out and "llmbench leaderboard" in out
    assert _gone(int(pid_file.read_text()))
