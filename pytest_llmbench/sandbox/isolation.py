"""Process isolation for one sandboxed step, applied in the child before ``exec``.

On Linux as root: a new network namespace (no network but its own loopback); a new mount
namespace in which every world-writable directory (``/tmp``, ``/var/tmp``, ``/dev/shm``,
``/run/lock``) is a fresh, size-capped tmpfs that vanishes with the step, the sandbox's own
directory being bound back in place; resource limits; and a switch to the unprivileged
``nobody`` user (so RLIMIT_NPROC bounds fork bombs and the user's files are out of reach).
Elsewhere only the limits apply.
"""

from __future__ import annotations

import ctypes
import os
import resource
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
NOBODY = 65534
#: Where any user may write on a usual Linux system; /var/lock is normally a link to /run/lock.
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock")


@dataclass(frozen=True)
class Limits:
    cpu_s: float = 10
    memory_mb: int = 1024
    file_mb: int = 64
    processes: int = 64
    open_files: int = 256


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


def drop_user() -> bool:
    """Whether steps run as ``nobody`` (only possible when we are root)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def make_preexec(
    limits: Limits,
    network: bool,
    as_nobody: bool,
    private_dirs: Sequence[str] = (),
    keep: str | None = None,
) -> Callable[[], None]:
    """The ``preexec_fn`` for a step: async-signal-safe enough (no locks, no imports).

    ``private_dirs``: shared writable directories to replace with a private tmpfs (see
    :func:`private_shared_dirs`), ``keep`` being the sandbox directory to leave reachable.
    """
    _libc()  # load libc before fork, not in the child

    def preexec() -> None:
        if network:
            _unshare(CLONE_NEWNET)
        if private_dirs:
            private_shared_dirs(private_dirs, keep, limits.file_mb)
        cpu = max(1, int(limits.cpu_s + 0.999))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        mem = limits.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        size = limits.file_mb * 2**20
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if as_nobody:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)  # after this the hard limits above cannot be raised again
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))

    return preexec
