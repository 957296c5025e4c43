"""The bubblewrap command line for one sandboxed step.

bubblewrap (``bwrap``, the sandbox behind Flatpak) builds the step's world in a new user
namespace, so an ordinary user gets the same containment as root:

- new user, PID, network, IPC, UTS and cgroup namespaces: the step sees only its own
  processes in its own ``/proc``, cannot signal or read anything outside, and has no network
  (only its own loopback);
- bwrap's own init is PID 1: when the program exits, the kernel kills every process left in
  the namespace, daemons that called ``setsid()`` or ``execve``'d with an empty environment
  included; ``--die-with-parent`` does the same if pytest itself dies;
- the host's file system is mounted read-only; the only writable places are tmpfs mounts
  whose size the kernel caps: ``/tmp`` (the run's directory, ``disk_mb``), ``/var/tmp`` and
  ``/dev/shm`` (:data:`SCRATCH_MB` each), so no path length, mode or ``fallocate`` gets past
  the cap, and nothing written outlives the step (the run's files travel to the next step as
  a capped archive: :mod:`pytest_llmbench.sandbox.launcher`); ``/dev`` is a minimal, read-only
  device tree; ``/home``, ``/root`` and ``/run`` are empty (the interpreter is bound back when
  it lives there);
- no nested user namespaces (``--disable-userns``: a program cannot become root of a
  namespace of its own and mount an uncapped tmpfs) and the seccomp filter of
  :mod:`pytest_llmbench.sandbox.seccomp` (no System V segments or memfds: memory that belongs
  to no process); its own IPC namespace frees whatever IPC objects are left when it ends;
- the launcher is PID 1 of the step (``--as-pid-1``): the program cannot signal or trace it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from functools import lru_cache

#: Where the run's directory appears inside the sandbox.
INSIDE = "/tmp"
#: The other writable places, each a tmpfs of :data:`SCRATCH_MB` emptied after every step.
SCRATCH = ("/var/tmp", "/dev/shm")
SCRATCH_MB = 64
#: Hidden behind an empty, read-only tmpfs: home directories (user secrets: ssh keys, API
#: tokens) and /run, whose sockets lead out of any sandbox (the D-Bus session bus and
#: systemd --user start processes outside it, docker.sock is root).
HIDDEN = ("/home", "/root", "/run")


@lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """The bwrap binary on PATH, or None."""
    return shutil.which("bwrap")


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def visible_again(paths: Sequence[str]) -> list[str]:
    """The directories among ``paths`` that lie under a hidden one and must be bound back
    (read-only) so that the interpreter and its standard library stay reachable."""
    hidden = [h for h in HIDDEN if os.path.isdir(h)]
    found: list[str] = []
    for path in paths:
        real = os.path.realpath(path)
        if any(_under(real, h) for h in hidden) and not any(_under(real, f) for f in found):
            found = [f for f in found if not _under(f, real)] + [real]
    return found


def bwrap_argv(
    bwrap: str, keep_visible: Sequence[str], disk_mb: int, seccomp_fd: int | None
) -> list[str]:
    """bwrap's arguments, up to and including ``--``, for one step whose run's directory may
    hold ``disk_mb``; the seccomp filter is read from ``seccomp_fd`` (None: no filter)."""
    argv = [
        bwrap,
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
        "--ro-bind", "/", "/",
    ]  # fmt: skip
    for hidden in HIDDEN:
        if os.path.isdir(hidden):
            argv += ["--tmpfs", hidden]
    for path in keep_visible:
        argv += ["--ro-bind", path, path]
    argv += ["--dev", "/dev", "--proc", "/proc", "--size", str(disk_mb * 2**20), "--tmpfs", INSIDE]
    for scratch in SCRATCH:
        argv += ["--size", str(SCRATCH_MB * 2**20), "--tmpfs", scratch]
    argv += ["--remount-ro", "/dev"]
    for hidden in HIDDEN:
        if os.path.isdir(hidden):
            argv += ["--remount-ro", hidden]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return [*argv, "--chdir", INSIDE, "--"]
