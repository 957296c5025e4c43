"""A step's top process, killed with everything below it and never confused with another.

Its exit is awaited through a pidfd without reaping it: until :meth:`Top.reap`, its pid (and
its process group's id) cannot be reused, so killing the group and the processes found
below it can never hit an unrelated process. After reaping, :meth:`Top.kill` does nothing.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading

from pytest_llmbench.sandbox.watch import descendants


class Top:
    """``proc`` must lead its own process group (``start_new_session=True``)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self._lock = threading.Lock()
        self._reaped = False
        try:
            self._pidfd: int | None = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):  # before Linux 5.3 / Python 3.9
            self._pidfd = None

    def wait_exit(self, timeout_s: float) -> bool:
        """Whether the process exited within ``timeout_s`` (it is not reaped here when the
        platform has pidfds; otherwise it is, and :meth:`kill` then does nothing)."""
        if self._pidfd is not None:
            ready, _, _ = select.select([self._pidfd], [], [], timeout_s)
            return bool(ready)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return False
        with self._lock:
            self._reaped = True
        return True

    def below(self) -> list[int]:
        with self._lock:
            return [] if self._reaped else descendants(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL the process group and every process below the top one."""
        with self._lock:
            if self._reaped:
                return
            below = descendants(self.proc.pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            for pid in below:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def reap(self) -> int:
        """Kill what is left, wait for the top process and return its exit status."""
        self.kill()
        with self._lock:
            self._reaped = True
            code = self.proc.wait()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        return code
