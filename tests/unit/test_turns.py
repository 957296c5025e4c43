"""Spawned servers take turns at generating; a figure taken while another was busy is marked."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_llmbench.serve.generation import Generation, Metrics, Settings
from pytest_llmbench.serve.processes import ServerProcess, Turns


def test_one_turn_at_a_time_across_lock_holders(tmp_path: Path) -> None:
    spans: list[tuple[float, float]] = []

    def generate(pid: int) -> None:
        with Turns(tmp_path).turn(pid):
            start = time.monotonic()
            time.sleep(0.2)
            spans.append((start, time.monotonic()))

    threads = [threading.Thread(target=generate, args=(pid,)) for pid in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans.sort()
    assert len(spans) == 3
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))


def test_the_wait_for_a_turn_is_bounded(tmp_path: Path) -> None:
    turns = Turns(tmp_path)
    with turns.turn(own_pid=1) as held, turns.turn(own_pid=2, max_wait_s=0.2) as waited:
        pass
    assert held.locked and not waited.locked and waited.waited_s >= 0.2


@pytest.fixture
def other_server(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[bytes]]:
    """A stand-in for another spawned server: busy (a spinning loop) or idle (sleeping)."""
    work = "while True: pass" if request.param == "busy" else "import time; time.sleep(60)"
    code = f"print('ready', flush=True)\n{work}"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"  # started up
    yield proc
    proc.kill()
    proc.wait()


def _generation() -> Generation:
    return Generation("m", "a", "a", "", "stop", Metrics(decode_tps=50.0), Settings())


@pytest.mark.parametrize(
    ("other_server", "marked"), [("busy", True), ("idle", False)], indirect=["other_server"]
)
def test_figure_taken_while_another_server_was_busy_is_marked(
    tmp_path: Path, other_server: subprocess.Popen[bytes], marked: bool
) -> None:
    turns = Turns(tmp_path)
    turns.register(other_server.pid)
    with turns.turn(own_pid=1) as turn:
        time.sleep(0.6)
    # A low threshold: on a loaded test machine the spinning stand-in gets a share of a core.
    generation = turn.mark(_generation(), threshold=0.03)
    assert bool(generation.caveats) is marked, turn.busy_cores
    if marked:
        (caveat,) = generation.caveats
        assert caveat.kind == "side_by_side" and "decode_tps" in caveat.excludes
        assert "cores" in caveat.detail and caveat.detail.startswith("it used")
    turns.unregister(other_server.pid)
    with turns.turn(own_pid=1) as turn:
        time.sleep(0.2)
    assert turn.busy_cores == 0.0  # unregistered: no longer watched
    entry = tmp_path / "servers" / str(other_server.pid)
    entry.write_text("1")  # a server that died unregistered, its pid now another process's
    with turns.turn(own_pid=1) as turn:
        time.sleep(0.2)
    assert turn.busy_cores == 0.0 and not entry.exists()


def test_loading_a_spawned_server_is_a_turn_too(tmp_path: Path) -> None:
    """Spawn -> healthy ends with a warm-up decode: no other spawned server generates then."""
    turns = Turns(tmp_path)
    server = ServerProcess(
        [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "s.log", "s", turns=turns
    )
    try:
        with turns.turn(own_pid=1, max_wait_s=0.2) as during_load:
            pass
        assert not during_load.locked
    finally:
        server.stop()  # a load that ends (here: stopped) ends its turn
    with turns.turn(own_pid=1, max_wait_s=0.2) as after:
        pass
    assert after.locked
