"""Bounds for a step as a whole that no per-process limit gives: the resident memory of all
its processes together, and the size and file count of the run's directory.

Without a delegated cgroup (most laptops run pytest outside one; CI containers rarely
delegate) the kernel cannot bound a group of processes, so a watcher thread polls every
:data:`INTERVAL` seconds and kills the step when it goes over. A burst between two polls
can overshoot by what the step allocates or writes in that time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from pytest_llmbench.sandbox.isolation import Limits

INTERVAL = 0.05
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MEMORY, DISK = "memory", "disk"


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), ``pid`` excluded."""
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = _children(todo.pop())
        found += kids
        todo += kids
    return found


def resident_bytes(pids: list[int]) -> int:
    """Private resident memory of ``pids`` together (resident minus file-backed/shared)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                fields = f.read().split()
            total += (int(fields[1]) - int(fields[2])) * PAGE
        except (OSError, ValueError, IndexError):
            continue
    return total


def over_disk(root: Path, max_bytes: int, max_files: int) -> bool:
    """Whether the tree at ``root`` holds more than ``max_bytes`` or ``max_files`` entries
    (stops counting as soon as it knows)."""
    used, files = 0, 0
    todo = [str(root)]
    while todo:
        try:
            entries = os.scandir(todo.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                files += 1
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                used += st.st_blocks * 512
                if used > max_bytes or files > max_files:
                    return True
                if entry.is_dir(follow_symlinks=False):
                    todo.append(entry.path)
    return False


class Watcher(threading.Thread):
    """Polls the processes below ``pid`` and the run directory ``root``; on the first limit
    exceeded, records which (:data:`MEMORY` or :data:`DISK`) in ``exceeded`` and calls
    ``kill``. Stop it with :meth:`stop`."""

    def __init__(self, pid: int, root: Path, limits: Limits, kill: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.pid, self.root, self.kill = pid, root, kill
        self.max_memory = limits.memory_mb * 2**20
        self.max_disk, self.max_files = limits.disk_mb * 2**20, limits.files
        self.exceeded: str | None = None
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(INTERVAL):
            if resident_bytes(descendants(self.pid)) > self.max_memory:
                self.exceeded = MEMORY
            elif over_disk(self.root, self.max_disk, self.max_files):
                self.exceeded = DISK
            else:
                continue
            self.kill()
            return

    def stop(self) -> None:
        self._done.set()
        self.join(5)
