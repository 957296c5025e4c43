"""The pieces of a step's isolation that do not depend on bubblewrap.

- :class:`Limits` and :func:`launcher_argv`: the resource limits, set by a tiny launcher
  *inside* the sandbox just before it ``exec``s the program (inside the step's own user
  namespace, so ``RLIMIT_NPROC`` counts only that step's processes);
- :func:`run_as`: as root, every run gets its own unprivileged uid (never root, and never a
  uid shared with another run, so no run's processes or files are another's);
- :func:`fallback_preexec`: what is left when bubblewrap cannot be used — as root, new network
  and mount namespaces with private, size-capped ``/tmp``-like directories.
"""

from __future__ import annotations

import ctypes
import os
import random
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
#: Unprivileged uids for runs started by root: far above any distribution's user ranges.
RUN_UID_BASE, RUN_UID_SPAN = 0x60000000, 1 << 24
#: Where any user may write on a usual Linux system; /var/lock is normally a link to /run/lock.
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock")


@dataclass(frozen=True)
class Limits:
    """Per process: CPU seconds, address space, file size, open files. Per step as a whole:
    ``memory_mb`` of resident memory (all its processes together), ``processes``, and for the
    run's directory ``disk_mb`` and ``files``."""

    cpu_s: float = 10
    memory_mb: int = 1024
    file_mb: int = 64
    processes: int = 64
    open_files: int = 256
    disk_mb: int = 256
    files: int = 5_000


#: Runs in the sandbox before the program: set the limits, then become the program.
_LAUNCHER = """\
import os, resource as r, sys
cpu, mem, size, files, procs = map(int, sys.argv[1:6])
for which, value in ((r.RLIMIT_CPU, (cpu, cpu + 1)), (r.RLIMIT_AS, (mem, mem)),
                     (r.RLIMIT_FSIZE, (size, size)), (r.RLIMIT_NOFILE, (files, files)),
                     (r.RLIMIT_CORE, (0, 0)), (r.RLIMIT_NPROC, (procs, procs))):
    r.setrlimit(which, value)
os.execv(sys.argv[6], sys.argv[6:])
"""


def launcher_argv(python: str, limits: Limits, processes: int | None = None) -> list[str]:
    """``python -I -S -c LAUNCHER limits...``: append the program's own argv.
    ``processes`` overrides ``limits.processes`` for RLIMIT_NPROC."""
    cpu = max(1, int(limits.cpu_s + 0.999))
    nproc = limits.processes if processes is None else processes
    values = (cpu, limits.memory_mb * 2**20, limits.file_mb * 2**20, limits.open_files, nproc)
    return [python, "-I", "-S", "-c", _LAUNCHER, *map(str, values)]


def own_process_count() -> int:
    """How many processes this user has now (RLIMIT_NPROC counts them all without a user
    namespace, so the fallback adds the step's allowance to this)."""
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                continue
    return count


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def new_run_uid() -> int:
    """A fresh unprivileged uid for one run started by root (no passwd entry needed)."""
    return RUN_UID_BASE + random.randrange(RUN_UID_SPAN)


def run_as(uid: int) -> Callable[[], None]:
    """``preexec_fn`` that drops every privilege to ``uid`` (and the same gid) for good."""

    def preexec() -> None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

    return preexec


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        ]
        libc.unshare.argtypes = [ctypes.c_int]
        return libc
    except (OSError, AttributeError):
        return None


def _unshare(flags: int) -> bool:
    libc = _libc()
    return libc is not None and int(libc.unshare(flags)) == 0


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str) -> None:
    libc = _libc()
    enc = [None if v is None else v.encode() for v in (source, target, fstype, data or None)]
    if libc is None or libc.mount(enc[0], enc[1], enc[2], flags, enc[3]) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")


@lru_cache(maxsize=1)
def shared_writable_dirs() -> tuple[str, ...]:
    """The directories of :data:`SHARED_WRITABLE` that exist here and anyone may write to."""
    found = []
    for path in SHARED_WRITABLE:
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_IWOTH:
            found.append(path)
    return tuple(found)


def private_shared_dirs(dirs: Sequence[str], keep: str | None, size_mb: int) -> None:
    """In a new mount namespace, cover each of ``dirs`` with an empty tmpfs; ``keep`` (a
    directory that may lie under one of them) stays reachable at its path. Child-side."""
    if not _unshare(CLONE_NEWNS):
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare(CLONE_NEWNS): {os.strerror(errno)}")
    # Nothing mounted here may propagate back to the host's namespace.
    _mount(None, "/", None, MS_REC | MS_PRIVATE, "")
    held = os.open(keep, os.O_PATH | os.O_DIRECTORY) if keep else None
    for path in dirs:
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size_mb}m,mode=1777")
    if keep and held is not None:
        if any(keep == d or keep.startswith(d.rstrip("/") + "/") for d in dirs):
            os.makedirs(keep, exist_ok=True)
            # The covered original is still reachable through the descriptor opened above.
            _mount(f"/proc/self/fd/{held}", keep, None, MS_BIND | MS_REC, "")
        os.close(held)


def fallback_preexec(
    uid: int | None,
    network: bool,
    private_dirs: Sequence[str] = (),
    keep: str | None = None,
    size_mb: int = 64,
) -> Callable[[], None]:
    """The ``preexec_fn`` of a step without bubblewrap (async-signal-safe enough: no locks,
    no imports): new network and mount namespaces where allowed (root), then ``uid``."""
    _libc()  # load libc before fork, not in the child
    drop = run_as(uid) if uid is not None else None

    def preexec() -> None:
        if network:
            _unshare(CLONE_NEWNET)
        if private_dirs:
            private_shared_dirs(private_dirs, keep, size_mb)
        if drop is not None:
            drop()

    return preexec
