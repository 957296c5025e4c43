"""PID 1 of a bubblewrap step, and the run's files that travel from one step to the next.

Each step's writable places are fresh size-capped tmpfs mounts (:mod:`~.bwrap`), so the run's
files (``work``, ``home``, ``tmp``) cannot simply stay on a disk between steps. The launcher:

1. makes itself non-dumpable (the program can neither trace it nor open its descriptors),
2. unpacks the run's files (a tar archive pytest passes as a read-only descriptor) into
   ``/tmp``,
3. sets the per-process limits, forks and ``exec``s the program in ``/tmp/work``, reaping
   every orphan meanwhile (it is the namespace's init: the program cannot signal it),
4. once the program has exited, kills every process left in the step and waits for them,
5. measures the capped file systems (full? how many files?), makes every directory readable
   again (``chmod 0`` and mode ``0300`` included) and writes the run's files back as a tar
   stream, then a one-line JSON status, each to its own pipe that pytest reads with a cap.

Pytest never unpacks an archive: it only stores the bytes (at most the disk cap plus the tar
overhead) and hands them to the next step's launcher, inside that step's sandbox.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from pytest_llmbench.sandbox.capped import CappedReader
from pytest_llmbench.sandbox.isolation import Limits
from pytest_llmbench.sandbox.seccomp import filter_fd

#: Free space under which a capped file system counts as full (the program hit the cap).
FULL_BELOW = 1 << 20

_LAUNCHER = """\
import ctypes, json, os, resource as r, signal, sys, tarfile
signal.signal(signal.SIGINT, signal.SIG_DFL)
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
cpu, mem, size, files, procs, fd_in, fd_tar, fd_status, full_below = map(int, sys.argv[1:10])
program, places = sys.argv[10:], ("/tmp", "/var/tmp", "/dev/shm")
trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
with os.fdopen(fd_in, "rb") as f, tarfile.open(fileobj=f, mode="r|") as t:
    t.extractall("/tmp", **trusted)
os.makedirs("/tmp/work", exist_ok=True)
for which, value in ((r.RLIMIT_CPU, (cpu, cpu + 1)), (r.RLIMIT_AS, (mem, mem)),
                     (r.RLIMIT_FSIZE, (size, size)), (r.RLIMIT_NOFILE, (files, files)),
                     (r.RLIMIT_CORE, (0, 0)), (r.RLIMIT_NPROC, (procs, procs))):
    r.setrlimit(which, value)
child = os.fork()
if child == 0:
    try:
        for fd in (fd_tar, fd_status):
            os.close(fd)
        os.chdir("/tmp/work")
        os.execv(program[0], program)
    finally:
        os._exit(127)
code = None
while code is None:
    pid, status = os.waitpid(-1, 0)
    if pid == child:
        code = os.waitstatus_to_exitcode(status)
try:
    os.kill(-1, signal.SIGKILL)
except OSError:
    pass
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
full, used_files = [], 0
for place in places:
    st = os.statvfs(place)
    used_files += st.f_files - st.f_ffree
    if st.f_bavail * st.f_frsize < full_below:
        full.append(place)
saved, why = True, ""
try:
    for top, dirs, names, top_fd in os.fwalk("/tmp"):
        for name in dirs + names:
            mode = os.stat(name, dir_fd=top_fd, follow_symlinks=False).st_mode
            kind = mode & 0o170000
            if kind in (0o040000, 0o100000):
                os.chmod(name, mode & 0o777 | (0o700 if kind == 0o040000 else 0o600), dir_fd=top_fd)
    with os.fdopen(fd_tar, "wb") as out, tarfile.open(fileobj=out, mode="w|") as t:
        for name in sorted(os.listdir("/tmp")):
            t.add(os.path.join("/tmp", name), arcname=name)
except (OSError, tarfile.TarError) as exc:
    saved, why = False, f"{type(exc).__name__}: {exc}"[:300]
status = {"exit": code, "full": full, "files": used_files, "saved": saved, "why": why}
with os.fdopen(fd_status, "w") as out:
    out.write(json.dumps(status) + "\\n")
"""


def launcher_argv(python: str, limits: Limits, fds: tuple[int, int, int]) -> list[str]:
    """``python -I -S -c LAUNCHER ...``: append the program's own argv. ``fds``: the run's
    files in (a readable file), the archive out and the status out (pipes)."""
    cpu = max(1, int(limits.cpu_s + 0.999))
    values = (
        cpu,
        limits.memory_mb * 2**20,
        limits.file_mb * 2**20,
        limits.open_files,
        limits.processes,
        *fds,
        FULL_BELOW,
    )
    return [python, "-I", "-S", "-c", _LAUNCHER, *map(str, values)]


def first_files(filename: str, code: str) -> bytes:
    """The run's files before its first step: ``work/FILENAME``, empty ``home`` and ``tmp``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in ("work", "home", "tmp"):
            entry = tarfile.TarInfo(name)
            entry.type, entry.mode = tarfile.DIRTYPE, 0o700
            archive.addfile(entry)
        data = code.encode()
        entry = tarfile.TarInfo(f"work/{filename}")
        entry.size, entry.mode = len(data), 0o600
        archive.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


@dataclass(frozen=True)
class StepStatus:
    """What the launcher reported after the program: its exit code, the capped places that
    filled up, the files in use, and whether the run's files could be saved."""

    exit_code: int
    full: tuple[str, ...]
    files: int
    saved: bool
    why: str

    @classmethod
    def parse(cls, raw: bytes) -> StepStatus | None:
        """The status line, or None when the launcher never wrote one (killed)."""
        try:
            data = json.loads(raw.decode())
            return cls(
                int(data["exit"]),
                tuple(str(p) for p in data["full"]),
                int(data["files"]),
                bool(data["saved"]),
                str(data["why"]),
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None


def archive_cap(limits: Limits) -> int:
    """The most bytes the run's files may take as an archive: the disk cap, a header and
    padding per file, and the end blocks."""
    return limits.disk_mb * 2**20 + limits.files * 1024 + 2**20


@dataclass(frozen=True)
class CameBack:
    """What one step's launcher sent back: the program's exit code (None: the launcher was
    killed before it could say), whether the step filled its file systems or files, and why
    its files could not be kept (empty when they were)."""

    exit_code: int | None
    over_disk: bool
    not_kept: str


class StepChannels:
    """The descriptors a bubblewrap step gets besides stdio: the seccomp filter, the run's
    files in, and two pipes back (the files, the status), each read with a cap."""

    def __init__(self, files_in: int, limits: Limits, files_out: IO[bytes]) -> None:
        self.seccomp, self.files_in, self.limits = filter_fd(), files_in, limits
        self.archive, self.status = os.pipe(), os.pipe()
        self.files_out = files_out
        self._readers: list[CappedReader] = []

    def passed(self) -> tuple[int, ...]:
        fds = (self.seccomp, self.files_in, self.archive[1], self.status[1])
        return tuple(fd for fd in fds if fd is not None)

    def launcher_argv(self, python: str, limits: Limits) -> list[str]:
        return launcher_argv(python, limits, (self.files_in, self.archive[1], self.status[1]))

    def close_child_ends(self) -> None:
        for fd in (self.seccomp, self.archive[1], self.status[1]):
            if fd is not None:
                os.close(fd)

    def start(self, kill: Callable[[], None]) -> None:
        """Read both pipes back (past a cap: ``kill`` the step)."""
        self._readers = [
            CappedReader(
                os.fdopen(self.archive[0], "rb"), archive_cap(self.limits), kill, self.files_out
            ),
            CappedReader(os.fdopen(self.status[0], "rb"), 65536, kill),
        ]
        for reader in self._readers:
            reader.start()

    def came_back(self) -> tuple[StepStatus | None, bool]:
        """The launcher's status and whether the archive went over its cap (call once the
        step's processes are gone)."""
        archive, status = self._readers
        for reader in self._readers:
            reader.join(5)
        return StepStatus.parse(bytes(status.data)), archive.overflow


class RunFiles:
    """The run's files between bubblewrap steps: an archive in an unnamed temporary file
    that only pytest can reach, replaced after each step that saved its files."""

    def __init__(self, filename: str, code: str, limits: Limits) -> None:
        self.limits = limits
        self.current: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.current.write(first_files(filename, code))
        self.current.flush()

    def open_step(self) -> StepChannels:
        self.current.seek(0)
        return StepChannels(self.current.fileno(), self.limits, tempfile.TemporaryFile())

    def finish(self, channels: StepChannels) -> CameBack:
        """Keep what the step saved (its files as they are when it ended); a step that was
        killed or went over a cap leaves the files as they were before it."""
        status, overflow = channels.came_back()
        new = channels.files_out
        if status is None:
            new.close()
            return CameBack(None, overflow, "")
        over = overflow or bool(status.full) or status.files > self.limits.files
        if status.saved and not overflow:
            self.current.close()
            self.current = new
            new.flush()
        else:
            new.close()
        why = "" if status.saved or overflow else status.why
        kept = f"its files could not be kept for the next step ({why})" if why else ""
        return CameBack(status.exit_code, over, kept)

    def close(self) -> None:
        self.current.close()
