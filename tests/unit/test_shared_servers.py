"""The run's shared-server registry (serve/shared.py) across processes: the worker that spawned
a server stops it at the end of its session once no other worker needs it; a worker that left
or died needs nothing, a worker still running items does."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_llmbench.serve.processes import ServerProcess
from pytest_llmbench.serve.shared import SharedServers, Started

OTHER_WORKER = """
import sys, time
from pathlib import Path
from pytest_llmbench.serve.shared import SharedServers

servers = SharedServers(Path(sys.argv[1]))
servers.join()
print("joined", flush=True)
if sys.argv[2] == "waits":  # still running items: leaves when told
    sys.stdin.readline()
if sys.argv[2] != "stays":
    servers.leave()
    print("left", flush=True)
time.sleep(600)  # an xdist worker lives on until the whole run ends
"""


Worker = Callable[[str], "subprocess.Popen[str]"]


@pytest.fixture
def other_worker(tmp_path: Path) -> Iterator[Worker]:
    """Another pytest process of the run, given no item: it joins (and, per test, leaves)."""
    procs: list[subprocess.Popen[str]] = []

    def start(mode: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", OTHER_WORKER, str(tmp_path / "run"), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "joined\n"
        if mode == "leaves":
            assert proc.stdout.readline() == "left\n"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def spawn_and_release(root: Path) -> tuple[SharedServers, ServerProcess]:
    """This process joins the run, spawns a server for its first model and lets go of it."""
    servers = SharedServers(root)
    servers.join()
    made: list[ServerProcess] = []

    def spawn() -> Started:
        made.append(ServerProcess(["sleep", "600"], root / "server.log", "m"))
        return Started(made[0], "http://127.0.0.1:9", 0.0)

    servers.release(servers.acquire("m", "m", spawn, wait_s=30, order=0))
    assert made[0].running()  # the other worker may still need it
    return servers, made[0]


def leave_in_thread(servers: SharedServers) -> threading.Thread:
    thread = threading.Thread(target=servers.leave, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("how", ["leaves", "crashed", "crashed-unreaped"])
def test_a_worker_that_left_or_died_does_not_hold_the_spawner(
    tmp_path: Path, other_worker: Worker, how: str
) -> None:
    idle = other_worker("leaves" if how == "leaves" else "stays")
    servers, server = spawn_and_release(tmp_path / "run")
    if how.startswith("crashed"):
        idle.send_signal(signal.SIGKILL)
        if how == "crashed":
            idle.wait()  # else a zombie: dead, not yet reaped by its parent
    leaving = leave_in_thread(servers)
    leaving.join(30)
    assert not leaving.is_alive(), "the spawner waited for a worker that no longer runs items"
    assert not server.running()
    assert idle.poll() is None or how.startswith("crashed")


def test_a_worker_still_running_items_holds_the_server_until_it_leaves(
    tmp_path: Path, other_worker: Worker
) -> None:
    busy = other_worker("waits")
    servers, server = spawn_and_release(tmp_path / "run")
    leaving = leave_in_thread(servers)
    leaving.join(1.0)
    assert leaving.is_alive() and server.running()  # it may still come to this model
    assert busy.stdin is not None and busy.stdout is not None
    busy.stdin.write("done\n")
    busy.stdin.flush()
    assert busy.stdout.readline() == "left\n"
    leaving.join(30)
    assert not leaving.is_alive() and not server.running()
