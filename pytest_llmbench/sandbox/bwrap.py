"""The bubblewrap command line for one sandboxed step.

bubblewrap (``bwrap``, the sandbox behind Flatpak) builds the step's world in a new user
namespace, so an ordinary user gets the same containment as root:

- new user, PID, network, IPC, UTS and cgroup namespaces: the step sees only its own
  processes in its own ``/proc``, cannot signal or read anything outside, and has no network
  (only its own loopback);
- bwrap's own init is PID 1: when the program exits, the kernel kills every process left in
  the namespace, daemons that called ``setsid()`` or ``execve``'d with an empty environment
  included; ``--die-with-parent`` does the same if pytest itself dies;
- the host's file system is mounted read-only; the run's directory is the only writable
  place, seen as ``/tmp`` (also ``/var/tmp``, and ``/dev/shm`` is a directory inside it);
  ``/dev`` is a minimal, read-only device tree; ``/home``, ``/root`` and ``/run`` are empty
  (the interpreter is bound back when it lives there).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

#: Where the run's directory appears inside the sandbox.
INSIDE = "/tmp"
#: Hidden behind an empty, read-only tmpfs: home directories (user secrets: ssh keys, API
#: tokens) and /run, whose sockets lead out of any sandbox (the D-Bus session bus and
#: systemd --user start processes outside it, docker.sock is root).
HIDDEN = ("/home", "/root", "/run")


@lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """The bwrap binary on PATH or in /usr/bin, or None."""
    return shutil.which("bwrap") or (
        "/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None
    )


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


def bwrap_argv(bwrap: str, root: Path, keep_visible: Sequence[str]) -> list[str]:
    """bwrap's arguments, up to and including ``--``, for a step whose run lives in ``root``
    (with ``work``, ``home`` and ``shm`` inside)."""
    argv = [
        bwrap,
        "--unshare-all",
        "--unshare-user",
        "--die-with-parent",
        "--new-session",
        "--ro-bind", "/", "/",
    ]  # fmt: skip
    for hidden in HIDDEN:
        if os.path.isdir(hidden):
            argv += ["--tmpfs", hidden]
    for path in keep_visible:
        argv += ["--ro-bind", path, path]
    argv += [
        "--dev", "/dev",
        "--proc", "/proc",
        "--bind", str(root), INSIDE,
        "--bind", str(root), "/var/tmp",
        "--bind", str(root / "shm"), "/dev/shm",
        "--remount-ro", "/dev",
    ]  # fmt: skip
    for hidden in HIDDEN:
        if os.path.isdir(hidden):
            argv += ["--remount-ro", hidden]
    argv += [
        "--chdir", f"{INSIDE}/work",
        "--",
    ]  # fmt: skip
    return argv
