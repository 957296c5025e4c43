"""What this machine lets the sandbox guarantee, found once per process by running a probe
program through the sandbox itself, and the interpreter that generated code runs with.

Two ways to build a step's sandbox, the first that works wins:

- ``bubblewrap``: every guarantee (see :mod:`pytest_llmbench.sandbox.bwrap`), as root and as
  an ordinary user, wherever the kernel allows user namespaces (Debian, Ubuntu, Fedora...).
- ``fallback`` (no bwrap, or user namespaces refused, e.g. in a locked-down container):
  per-process limits and the token sweep; as root also a private network, private ``/tmp``
  directories and a uid of its own per run.

Safe by default: with any guarantee missing, :func:`require_full` refuses to run generated
code (the item is an error naming what is missing and the fix) unless weaker isolation was
allowed for the run (``--llm-sandbox=weak``, see :func:`allow_weak`); then each missing
guarantee is named in the run's header, the check's details (``not guaranteed here: ...``)
and once under the leaderboard.

Generated code never runs as root: as root, each run gets a fresh unprivileged uid, and when
no interpreter works for it, :class:`SandboxUnavailable` makes the item an error with the fix.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pytest_llmbench.check_result import CheckResult
from pytest_llmbench.errors import CheckError
from pytest_llmbench.sandbox.bwrap import bwrap_argv, bwrap_path, visible_again
from pytest_llmbench.sandbox.isolation import (
    fallback_preexec,
    is_root,
    new_run_uid,
    run_as,
    shared_writable_dirs,
)
from pytest_llmbench.sandbox.seccomp import filter_fd

BWRAP, FALLBACK = "bubblewrap", "fallback"


class Guarantee(StrEnum):
    """The sandbox's guarantees, each by the name the run's header, a check's details and
    the leaderboard warning show; which of them hold here is a set of these, never prose."""

    PID_NAMESPACE = "own PID namespace: no process outlives its step or sees others"
    NETWORK = "no network"
    PRIVATE_TMP = "private /tmp"
    READ_ONLY = "read-only file system outside the run's directory"
    STEP_PROCESSES = "process limit per step"
    DISK_CAP = "size-capped file systems"
    NO_UNSEEN_MEMORY = "no System V shm or memfd"
    NO_NESTED_USERNS = "no nested user namespaces"


MISSING = "not guaranteed here: "


def not_guaranteed(missing: Iterable[str]) -> str:
    """``not guaranteed here: a, b``: the missing guarantees drawn as prose, in
    :class:`Guarantee` order."""
    names = set(missing)
    return MISSING + ", ".join(g for g in Guarantee if g in names)


class SandboxUnavailable(CheckError):
    """The sandbox cannot run generated code safely here (e.g. pytest runs as root and no
    interpreter is usable by an unprivileged user): the item errors with the fix.
    ``missing``: the guarantees that do not hold here (empty when no sandbox runs at all)."""

    def __init__(self, message: str, missing: frozenset[Guarantee] = frozenset()) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True)
class Containment:
    """How steps are run here and which guarantees hold (see the module docstring)."""

    backend: str
    python: str | None
    pid_namespace: bool = False
    network: bool = False
    private_tmp: bool = False
    read_only: bool = False
    step_processes: bool = False
    disk_cap: bool = False
    no_unseen_memory: bool = False
    no_nested_userns: bool = False
    keep_visible: tuple[str, ...] = ()
    tried: tuple[str, ...] = field(default=(), compare=False)

    def missing(self) -> frozenset[Guarantee]:
        """The guarantees that do not hold here."""
        held = {
            Guarantee.PID_NAMESPACE: self.pid_namespace,
            Guarantee.NETWORK: self.network,
            Guarantee.PRIVATE_TMP: self.private_tmp,
            Guarantee.READ_ONLY: self.read_only,
            Guarantee.STEP_PROCESSES: self.step_processes,
            Guarantee.DISK_CAP: self.disk_cap,
            Guarantee.NO_UNSEEN_MEMORY: self.no_unseen_memory,
            Guarantee.NO_NESTED_USERNS: self.no_nested_userns,
        }
        return frozenset(g for g, ok in held.items() if not ok)

    def missing_names(self) -> tuple[str, ...]:
        """:meth:`missing` in :class:`Guarantee` order, as JSON holds them."""
        missing = self.missing()
        return tuple(str(g) for g in Guarantee if g in missing)

    def note(self) -> str:
        """`` (not guaranteed here: a, b)`` for a check's details, or ``""``."""
        missing = self.missing()
        return f" ({not_guaranteed(missing)})" if missing else ""

    def unavailable(self) -> SandboxUnavailable:
        tried = "; ".join(self.tried) or "none found"
        return SandboxUnavailable(
            "run_program: pytest runs as root and generated code never does, but no Python "
            f"interpreter can be run by an unprivileged user here (tried: {tried}). Fix: "
            "install one that every user can run (e.g. `apt-get install python3`, or make "
            "the interpreter the venv was made from and the directories above it "
            "world-readable: `chmod o+rx`), or run pytest as an ordinary user."
        )


def sandbox_warnings(checks: Iterable[CheckResult]) -> list[str]:
    """The line under the leaderboard when items' sandboxed checks ran without some
    guarantee (``checks``: the checks of the items' scores), read from each check's
    :attr:`~pytest_llmbench.check_result.CheckResult.unguaranteed`."""
    missing = {name for check in checks for name in check.unguaranteed}
    return [f"sandbox: {not_guaranteed(missing)} (README: Safety)"] if missing else []


def candidates() -> list[str]:
    """Interpreters to try, best first: this one, the one its venv was made from, then the
    usual system places."""
    found: dict[str, None] = {}
    for path in (
        sys.executable,
        getattr(sys, "_base_executable", ""),
        os.path.realpath(sys.executable),
        "/usr/local/bin/python3",
        "/usr/bin/python3",
        shutil.which("python3") or "",
    ):
        if path and os.path.isfile(path):
            found.setdefault(path)
    return list(found)


def _prefixes(python: str) -> list[str]:
    """The directories an interpreter needs (its venv and its installation)."""
    paths = [python, os.path.realpath(python)]
    if python == sys.executable:
        paths += [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    return [str(Path(p).parent.parent) if os.path.isfile(p) else p for p in paths]


_PROBE = """\
import ctypes, socket, sqlite3, sys, os
held = []
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2).close()
except OSError:
    held.append("network")
if not os.path.exists(sys.argv[2]):
    held.append("tmp")
libc = ctypes.CDLL(None, use_errno=True)
try:
    os.close(os.memfd_create("probe"))
    memfd = True
except (AttributeError, OSError):
    memfd = False
segment = libc.shmget(0, 4096, 0o1600)
if segment == -1 and not memfd:
    held.append("memory")
elif segment != -1:
    libc.shmctl(segment, 0, None)

if libc.unshare(0x10000000) != 0:
    held.append("userns")
st = os.statvfs("/tmp")
if 0 < st.f_blocks * st.f_frsize <= int(sys.argv[3]) and os.geteuid() != 0:
    held.append("disk")
print(" ".join(held))
"""


def _reachable_by_others(path: str) -> bool:
    here = Path(path).resolve()
    return all(os.stat(p).st_mode & 0o001 for p in (here, *here.parents))


def make_run_dir(uid: int | None) -> Path:
    """A fresh run directory (``work``, ``home``, ``tmp``, ``shm``) owned by ``uid``: in the
    temporary directory, or in ``/tmp`` when ``uid`` could not reach that one."""
    base = tempfile.gettempdir()
    if uid is not None and not _reachable_by_others(base):
        base = "/tmp"
    root = Path(tempfile.mkdtemp(prefix="llmbench-sandbox-", dir=base))
    for name in ("work", "home", "tmp", "shm"):
        (root / name).mkdir()
    if uid is not None:
        for path in (root, *root.iterdir()):
            os.chown(path, uid, uid)
    return root


def _probe(backend: str, python: str, uid: int | None) -> tuple[bool, set[str], str]:
    """Run the probe with ``python`` in ``backend``: (ran, guarantees seen, why not)."""
    root = make_run_dir(uid)
    dirs = shared_writable_dirs()
    outside = (
        Path(dirs[0] if dirs else tempfile.gettempdir()) / f"llmbench-probe-{uuid.uuid4().hex}"
    )
    keep = tuple(visible_again(_prefixes(python)))
    try:
        outside.write_text("x")
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            port = str(server.getsockname()[1])
            program = [python, "-I", "-c", _PROBE, port, str(outside), str(PROBE_DISK_MB * 2**20)]
            seccomp = filter_fd()
            if backend == BWRAP:
                argv = bwrap_argv(str(bwrap_path()), keep, PROBE_DISK_MB, seccomp) + program
                preexec = run_as(uid) if uid is not None else None
            else:
                argv = program
                preexec = fallback_preexec(uid, is_root(), private_dirs(), str(root))
            try:
                proc = subprocess.run(
                    argv,
                    cwd=root / "work",
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=30,
                    preexec_fn=preexec,
                    pass_fds=() if seccomp is None else (seccomp,),
                    check=False,
                )
            finally:
                if seccomp is not None:
                    os.close(seccomp)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, set(), f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(root, ignore_errors=True)
        outside.unlink(missing_ok=True)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        return False, set(), lines[-1] if lines else f"exit {proc.returncode}"
    return True, set(proc.stdout.decode().split()), ""


@lru_cache(maxsize=1)
def private_dirs() -> tuple[str, ...]:
    """For the fallback: the shared writable directories a step gets private copies of
    (root only: it takes a mount namespace without a user namespace)."""
    return shared_writable_dirs() if sys.platform == "linux" and is_root() else ()


#: The run's directory size the probe asks bubblewrap for (and checks the kernel reports).
PROBE_DISK_MB = 8


@lru_cache(maxsize=1)
def containment() -> Containment:
    """Probe once: the best backend that runs an interpreter here, and what it guarantees."""
    uid = new_run_uid() if is_root() else None
    tried: list[str] = []
    if sys.platform == "linux" and bwrap_path():
        for python in candidates():
            ran, seen, why = _probe(BWRAP, python, uid)
            if ran:
                return Containment(
                    BWRAP,
                    python,
                    pid_namespace=True,
                    network="network" in seen,
                    private_tmp="tmp" in seen,
                    read_only=True,
                    step_processes=True,
                    disk_cap="disk" in seen,
                    no_unseen_memory="memory" in seen,
                    no_nested_userns="userns" in seen,
                    keep_visible=tuple(visible_again(_prefixes(python))),
                    tried=tuple(tried),
                )
            tried.append(f"{python} in bwrap: {why}")
    for python in candidates():
        ran, seen, why = _probe(FALLBACK, python, uid)
        if ran:
            return Containment(
                FALLBACK,
                python,
                network="network" in seen,
                private_tmp="tmp" in seen and bool(private_dirs()),
                step_processes=uid is not None,  # a uid of its own per run
            )
        tried.append(f"{python}: {why}")
    if uid is None:  # not root: the user's own interpreter, without the sandbox's extras
        return Containment(FALLBACK, sys.executable, tried=tuple(tried))
    return Containment(FALLBACK, None, tried=tuple(tried))


_policy = {"weak_allowed": False}
WEAK_OPTION = "--llm-sandbox=weak"


def allow_weak(allowed: bool) -> None:
    """Whether generated code may run with less than full containment (the plugin sets this
    from ``--llm-sandbox`` / ``llm_sandbox`` for the run)."""
    _policy["weak_allowed"] = allowed


def weak_allowed() -> bool:
    return _policy["weak_allowed"]


def fix_for(found: Containment) -> str:
    """What is missing here and how to get full containment, in one sentence or two."""
    if sys.platform != "linux":
        return f"bubblewrap needs Linux (this is {sys.platform}); run the benchmark in a Linux VM"
    if not bwrap_path():
        return (
            "bubblewrap (bwrap) is not installed. Fix: `apt-get install bubblewrap` (Debian, "
            "Ubuntu) or `dnf install bubblewrap` (Fedora)"
        )
    if found.backend == BWRAP:  # it runs, but a guarantee is missing: the filter's ABI
        return (
            f"bubblewrap runs here, but its seccomp filter knows x86_64 and aarch64 only (this "
            f"is {platform.machine()}). Fix: run the benchmark on one of those, or in a VM"
        )
    why = "; ".join(t for t in found.tried if " in bwrap: " in t) or "no interpreter ran"
    return (
        f"bubblewrap is installed but cannot build the sandbox ({why}). Fix: let users "
        "create user namespaces (`sysctl kernel.unprivileged_userns_clone=1` on Debian's "
        "older kernels, `sysctl kernel.apparmor_restrict_unprivileged_userns=0` on Ubuntu "
        "24.04+, `sysctl user.max_user_namespaces=15000` where it is 0; in a container: "
        "allow user namespaces), and use bubblewrap 0.8 or newer (`--disable-userns`, "
        "`--size`)"
    )


def require_full(found: Containment) -> Containment:
    """``found`` when every guarantee holds or weaker isolation was allowed for the run;
    otherwise :class:`SandboxUnavailable`: the item errors before any generated code runs."""
    missing = found.missing()
    if not missing or weak_allowed():
        return found
    # The cause and the fix on the first line: the leaderboard's "what went wrong" quotes it.
    raise SandboxUnavailable(
        f"run_program refused: {fix_for(found)}.\n"
        f"Containment here is weaker ({not_guaranteed(missing)}); to accept it for this "
        f"run: {WEAK_OPTION} (ini: llm_sandbox = weak), which the run's header then states "
        "(README: Safety).",
        missing,
    )


def header_line() -> str:
    """The run header's line about generated code: what runs it here, and with the default
    policy and a guarantee missing, that it will not run and the fix (probed now, once per
    run, so it is said before any generated code could run)."""
    found = containment()
    missing = found.missing()
    if not missing:
        return f"sandbox: {found.backend}, every guarantee of README Safety holds"
    if weak_allowed():
        return (
            f"sandbox: WEAKER ISOLATION ({WEAK_OPTION}): generated code runs in the "
            f"{found.backend} sandbox, {not_guaranteed(missing)} (README: Safety)"
        )
    return (
        "sandbox: generated code will NOT run here (tests that run it are errors): "
        f"{fix_for(found)}; or accept weaker isolation: {WEAK_OPTION}"
    )
