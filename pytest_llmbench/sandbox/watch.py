"""Bounds for a step as a whole that no per-process limit gives: the memory of all its
processes together, and the file count of its file systems (their size the kernel caps).

Memory counted: each process's anonymous *and* shared resident pages (``RssAnon`` +
``RssShmem``: ``MAP_SHARED`` mappings and mapped tmpfs files included; a page shared by two
processes counts twice, never zero times), its shared anonymous mappings at their whole size
where that is more (pages a short-lived child filled are resident in no process), plus what
the step's tmpfs mounts hold. Memory that
belongs to no process (System V segments, memfds) cannot be made in a bubblewrap step
(:mod:`~pytest_llmbench.sandbox.seccomp`). Without a delegated cgroup (most laptops run
pytest outside one; CI containers rarely delegate) the kernel cannot bound a group of
processes, so a watcher thread polls every :data:`INTERVAL` seconds and kills the step when
it goes over; each process is also held to the address-space limit by the kernel, so a burst
between two polls overshoots by at most what its processes allocate in that time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from pytest_llmbench.sandbox.isolation import Limits

INTERVAL = 0.05
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


#: How ``/proc/PID/maps`` names a shared anonymous mapping (``mmap.mmap(-1, n)``, a shared
#: mapping of ``/dev/zero``), whose pages live in the kernel's internal tmpfs: unnamed, and
#: named by the program (``prctl(PR_SET_VMA_ANON_NAME)``, kernels with ``ANON_VMA_NAME``).
_SHARED_ANON, _NAMED_SHARED_ANON = "/dev/zero (deleted)", "[anon_shmem:"


def mapping_shared_anon(line: str) -> int:
    """The size of the mapping on ``line`` of ``/proc/PID/maps`` if it is shared and
    anonymous, else 0."""
    fields = line.split(maxsplit=5)
    if len(fields) < 6 or fields[1][3:4] != "s":
        return 0
    path = fields[5].rstrip("\n")
    if path != _SHARED_ANON and not path.startswith(_NAMED_SHARED_ANON):
        return 0
    start, _, end = fields[0].partition("-")
    return int(end, 16) - int(start, 16)


#: Mappings read of one process per poll: past this many (a Python process has a few
#: hundred) reading them would slow every poll (60,000 take 33 ms a process), so such a
#: process counts at its whole address space instead.
MAX_MAPPINGS = 4096


def shared_anon_bytes(pid: int) -> int:
    """The size of ``pid``'s shared anonymous mappings: what they can hold, whichever
    process touched their pages (a child that filled them and exited leaves them in no
    process's resident set); a process with over :data:`MAX_MAPPINGS` mappings counts at
    its whole address space."""
    total = 0
    try:
        with open(f"/proc/{pid}/maps") as f:
            for n, line in enumerate(f):
                if n == MAX_MAPPINGS:
                    with open(f"/proc/{pid}/statm") as statm:
                        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
                total += mapping_shared_anon(line)
    except (OSError, ValueError, IndexError):
        return 0
    return total


def resident_bytes(pids: list[int]) -> int:
    """Anonymous plus shared-memory bytes of ``pids`` together: resident shared pages, or
    the whole size of their shared anonymous mappings where that is more (file-backed pages
    of the host's files are left out: they are the page cache, not the step's)."""
    total = 0
    for pid in pids:
        anon = shmem = 0
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        anon = int(line.split()[1]) * 1024
                    elif line.startswith("RssShmem:"):
                        shmem = int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue
        total += anon + max(shmem, shared_anon_bytes(pid))
    return total


def tmpfs_usage(paths: list[str]) -> tuple[int, int]:
    """(bytes, inodes) in use on the file systems at ``paths`` (missing ones count zero)."""
    used = files = 0
    for path in paths:
        try:
            st = os.statvfs(path)
        except OSError:
            continue
        used += (st.f_blocks - st.f_bfree) * st.f_frsize
        files += st.f_files - st.f_ffree
    return used, files


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
    """Polls the processes below ``pid`` and the step's files; on the first limit exceeded,
    records which (:data:`MEMORY` or :data:`DISK`) in ``exceeded`` and calls ``kill``.
    ``places(pid)`` gives the paths of the step's tmpfs mounts as the host sees them (their
    bytes count as memory, their inodes as files); without them ``root`` is walked for the
    disk bound. Stop it with :meth:`stop`."""

    def __init__(
        self,
        pid: int,
        root: Path | None,
        limits: Limits,
        kill: Callable[[], None],
        places: Callable[[int], list[str]] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.pid, self.root, self.kill, self.places = pid, root, kill, places
        self.max_memory = limits.memory_mb * 2**20
        self.max_disk, self.max_files = limits.disk_mb * 2**20, limits.files
        self.exceeded: str | None = None
        self._done = threading.Event()

    def _over(self) -> str | None:
        memory = resident_bytes(descendants(self.pid))
        if self.places is not None:
            used, files = tmpfs_usage(self.places(self.pid))
            if memory + used > self.max_memory:
                return MEMORY
            return DISK if files > self.max_files else None
        if memory > self.max_memory:
            return MEMORY
        if self.root is not None and over_disk(self.root, self.max_disk, self.max_files):
            return DISK
        return None

    def run(self) -> None:
        while not self._done.wait(INTERVAL):
            self.exceeded = self._over()
            if self.exceeded is not None:
                self.kill()
                return

    def stop(self) -> None:
        self._done.set()
        self.join(5)
