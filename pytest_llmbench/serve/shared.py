"""The run's spawned servers: one per model and settings, shared by every pytest process of
the run (xdist workers), however ``--dist`` spreads the items.

The run folder (``ServerOptions.run_dir``) holds one record, ``run.json``, changed only under
``run.lock``: the servers (URL, PID, the processes using each) and the run's workers (how far
each has got in the run's model order). The first process that needs a server spawns it while
holding the lock (loads take the machine's turn anyway) and writes it down; the others attach.
Items run in model order, so a server nobody uses any more is stopped once every worker has
got past its model (or finished): no second spawn for a worker that comes to it late, and no
model kept loaded after the run has moved on. The spawning process stays its parent
(``PR_SET_PDEATHSIG``: the server dies with it, so an interrupted run leaves none behind), so
at the end of its session it waits until the others no longer need it. Every worker leaves at
the end of its session, also one given no item of a spawned model (it made no backend): a
server waits only for workers still running items, never for one that is idle until the run
ends (the spawner would wait for it, and it, alive until the run ends, for the spawner); a
worker that died (its pid gone or a zombie) holds no one. A failed start is
written down too: the other workers fail fast with the same message instead of waiting
again. At the end of the run the controller stops whatever is left and removes the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmbench.errors import ServerError
from pytest_llmbench.serve.proc_facts import alive, start_time
from pytest_llmbench.serve.processes import ServerProcess

_leases = itertools.count()
_views: dict[Path, SharedServers] = {}
POLL_S = 0.1
LAST = 1 << 30
"""The order of what is needed to the end (a judge; a finished worker has passed it all)."""


@dataclass(frozen=True)
class Started:
    """What a spawn made: the process, its URL and its load time."""

    process: ServerProcess
    url: str
    load_s: float


@dataclass
class Lease:
    """One process's use of a shared server."""

    key: str
    url: str
    pid: int
    started: str
    lease_id: str
    load_s: float | None = None
    """The load this process paid (``None``: it attached to a running server)."""
    process: ServerProcess | None = None
    """The server, when this process spawned it (its parent)."""

    def running(self) -> bool:
        return alive(self.pid, self.started)


def stop_pid(pid: int, started: str, grace_s: float = 5.0) -> None:
    """SIGTERM the process group of a server this process did not spawn; SIGKILL after
    ``grace_s``. Its parent reaps it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not alive(pid, started):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + grace_s
        while alive(pid, started) and time.monotonic() < deadline:
            time.sleep(0.05)


def _me() -> tuple[str, str]:
    pid = os.getpid()
    return str(pid), start_time(pid)


class SharedServers:
    """The shared servers of one run, under ``root`` (the run folder)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.parented: dict[int, ServerProcess] = {}
        """Servers this process spawned and let go of while others might still need them."""

    @classmethod
    def of(cls, root: Path) -> SharedServers:
        """This process's one view of the run folder ``root`` (shared by its backends)."""
        return _views.setdefault(root, cls(root))

    @contextlib.contextmanager
    def _run(self, wait_s: float = float("inf"), label: str = "") -> Iterator[dict[str, Any]]:
        """The run's record under its lock, written back after the block (also when it
        raises: a failed spawn is written down)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "run.json"
        with open(self.root / "run.lock", "a") as lock:
            asked = time.monotonic()
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() - asked > wait_s:
                        raise ServerError(
                            f"{label}: another pytest process of this run has been starting "
                            f"a server for {wait_s:g} s; raise --llm-health-timeout if the "
                            f"model is big"
                        ) from None
                    time.sleep(POLL_S)
            try:
                try:
                    run = json.loads(path.read_text())
                except (OSError, ValueError):
                    run = {}
                run.setdefault("servers", {})
                run.setdefault("workers", {})
                try:
                    yield run
                finally:
                    tmp = path.with_suffix(f".{os.getpid()}.tmp")
                    tmp.write_text(json.dumps(run))
                    tmp.replace(path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def join(self) -> None:
        """This process runs items of the run (an xdist worker): servers wait for it to get
        past their model, or to :meth:`leave`, before they stop."""
        pid, started = _me()
        with self._run() as run:
            run["workers"][pid] = {"started": started, "at": -1}

    def acquire(
        self, key: str, label: str, spawn: Callable[[], Started], wait_s: float, order: int = 0
    ) -> Lease:
        """Use the run's server for ``key`` (a model at ``order`` in the run's model order):
        attach to the running one, or spawn it (``spawn`` may raise :class:`ServerError`,
        which the other processes then get at once)."""
        pid, started = _me()
        lease_id = f"{pid}-{next(_leases)}"
        user = [int(pid), started, lease_id]
        stale: list[dict[str, Any]] = []
        with self._run(wait_s, label) as run:
            worker = run["workers"].get(pid)
            if worker is not None:
                worker["at"] = max(worker["at"], order)
            stale = self._passed(run)
            record = run["servers"].get(key)
            if record is not None and record.get("error"):
                raise ServerError(f"{record['error']} (failed earlier in this run)")
            if record is not None and alive(record["pid"], record["started"]):
                record["users"] = [*_live(record["users"]), user]
                record["order"] = max(record["order"], order)
                lease = Lease(key, record["url"], record["pid"], record["started"], lease_id)
            else:
                run["servers"].pop(key, None)
                try:
                    made = self._stopping(stale, spawn)
                except ServerError as exc:
                    run["servers"][key] = {"error": str(exc), "order": order}
                    raise
                stale = []
                spid = made.process.pid
                run["servers"][key] = {
                    "url": made.url,
                    "pid": spid,
                    "started": start_time(spid),
                    "users": [user],
                    "order": order,
                }
                lease = Lease(
                    key, made.url, spid, start_time(spid), lease_id, made.load_s, made.process
                )
        self._stop_all(stale)
        return lease

    def _stopping(self, stale: list[dict[str, Any]], spawn: Callable[[], Started]) -> Started:
        """Stop the servers no one needs any more, then spawn (never two loaded at once)."""
        self._stop_all(stale)
        return spawn()

    def release(self, lease: Lease) -> None:
        """Let go of ``lease``. The server stops when no one uses it and every worker has got
        past its model; otherwise it stays for the others (its parent keeps it)."""
        with self._run() as run:
            record = run["servers"].get(lease.key)
            if record is not None and record.get("pid") == lease.pid:
                record["users"] = [u for u in _live(record["users"]) if u[2] != lease.lease_id]
            if lease.process is not None:
                self.parented[lease.pid] = lease.process
            stale = self._passed(run)
        self._stop_all(stale)

    def leave(self) -> None:
        """End of this process's session, whether or not it ever used a server: it has passed
        every model, so no server waits for it any more. The servers it spawned are stopped
        once the others no longer need them (it is their parent: they would die with it)."""
        pid, _ = _me()
        while True:
            with self._run() as run:
                worker = run["workers"].get(pid)
                if worker is not None:
                    worker["at"] = LAST + 1
                stale = self._passed(run)
                mine = {r["pid"] for r in run["servers"].values() if r.get("pid") in self.parented}
            self._stop_all(stale)
            for gone in set(self.parented) - mine:
                self.parented.pop(gone).stop()  # stopped by another process: reaped here
            if not self.parented:
                return
            time.sleep(POLL_S)

    def _passed(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        """Take out of ``run`` the servers that no one uses and every live worker has got
        past (to be stopped once the lock is let go)."""
        workers = [w for p, w in run["workers"].items() if alive(int(p), w["started"])]
        stale = []
        for key, record in list(run["servers"].items()):
            if "pid" not in record:
                continue
            if not alive(record["pid"], record["started"]):
                del run["servers"][key]
                continue
            done = all(w["at"] > record["order"] for w in workers)
            if not _live(record["users"]) and done:
                stale.append(run["servers"].pop(key))
        return stale

    def _stop_all(self, stale: list[dict[str, Any]]) -> None:
        for record in stale:
            process = self.parented.pop(record["pid"], None)
            if process is not None:
                process.stop()
            else:
                stop_pid(record["pid"], record["started"])

    def stop_all(self) -> None:
        """The controller at the end of the run: stop every server still recorded (an
        interrupted worker's), then remove the run folder."""
        with contextlib.suppress(OSError, ValueError):
            run = json.loads((self.root / "run.json").read_text())
            for record in (run.get("servers") or {}).values():
                if "pid" in record:
                    stop_pid(int(record["pid"]), str(record["started"]))
        shutil.rmtree(self.root, ignore_errors=True)


def _live(users: Any) -> list[list[Any]]:
    return [list(u) for u in users if alive(int(u[0]), str(u[1]))]
