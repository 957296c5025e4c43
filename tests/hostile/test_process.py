"""The step's top process: its group and descendants are killed while it is unreaped, and
nothing is signalled once it is reaped (its pid may then belong to someone else)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pytest_llmbench.sandbox import process
from pytest_llmbench.sandbox.process import Top


def start(code: str) -> Top:
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    return Top(proc)


def test_exit_is_seen_without_reaping_so_the_pid_stays_ours() -> None:
    top = start("pass")
    assert top.wait_exit(30)
    if top._pidfd is None:
        pytest.skip("no pidfd here: the process was reaped while waiting")
    assert os.path.exists(f"/proc/{top.proc.pid}")  # a zombie still holds its pid
    assert top.reap() == 0
    assert not os.path.exists(f"/proc/{top.proc.pid}/stat") or top.proc.returncode == 0


def test_kill_reaches_children_and_nothing_after_reaping(monkeypatch: pytest.MonkeyPatch) -> None:
    top = start("import subprocess, sys, time\nsubprocess.Popen(['sleep', '60'])\ntime.sleep(60)\n")
    while not top.below():
        assert not top.wait_exit(0.05)
    child = top.below()[0]
    assert top.reap() == -9
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # SIGKILL is delivered asynchronously
        try:
            with open(f"/proc/{child}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] in ("Z", "X"):
                    break
        except FileNotFoundError:
            break
        time.sleep(0.01)
    else:
        pytest.fail(f"the child {child} outlived the kill")
    signalled: list[int] = []
    monkeypatch.setattr(process.os, "killpg", lambda pid, sig: signalled.append(pid))
    monkeypatch.setattr(process.os, "kill", lambda pid, sig: signalled.append(pid))
    top.kill()
    assert signalled == [] and top.below() == []
