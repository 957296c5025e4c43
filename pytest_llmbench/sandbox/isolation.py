"""Process isolation for one sandboxed step, applied in the child before ``exec``.

On Linux as root: a new network namespace (no network but its own loopback), resource
limits, and a switch to the unprivileged ``nobody`` user (so RLIMIT_NPROC bounds fork bombs
and the user's files are out of reach). Elsewhere only the limits apply.
"""

from __future__ import annotations

import ctypes
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000
NOBODY = 65534


@dataclass(frozen=True)
class Limits:
    cpu_s: float = 10
    memory_mb: int = 1024
    file_mb: int = 64
    processes: int = 64
    open_files: int = 256


def _unshare_net() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.unshare(CLONE_NEWNET)) == 0
    except (OSError, AttributeError):
        return False


def drop_user() -> bool:
    """Whether steps run as ``nobody`` (only possible when we are root)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def make_preexec(limits: Limits, network: bool, as_nobody: bool) -> Callable[[], None]:
    """The ``preexec_fn`` for a step: async-signal-safe enough (no locks, no imports)."""

    def preexec() -> None:
        if network:
            _unshare_net()
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
