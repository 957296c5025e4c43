"""The in-flight register: limits, alone, the machine's turn, overlap evidence, dead entries."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from pytest_llmbench.serve.flight import Ask, Flight, Overlap, queued_behind, slot_warning
from pytest_llmbench.serve.generation import Generation, Metrics, Settings


def _spans(flight: Flight, asks: list[Ask], hold_s: float = 0.3) -> list[tuple[float, float]]:
    """Run one thread per ask, each holding its place ``hold_s``; their (start, end)."""
    spans: list[tuple[float, float]] = [(0.0, 0.0)] * len(asks)

    def fly(i: int) -> None:
        with flight.enter(asks[i]):
            start = time.monotonic()
            time.sleep(hold_s)
            spans[i] = (start, time.monotonic())

    threads = [threading.Thread(target=fly, args=(i,)) for i in range(len(asks))]
    for t in threads:
        t.start()
        time.sleep(0.02)  # arrival order
    for t in threads:
        t.join()
    return spans


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    return max(sum(s <= t < e for s, e in spans) for t, _ in spans)


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_at_most_limit_of_one_server_in_flight(tmp_path: Path, limit: int) -> None:
    spans = _spans(Flight(tmp_path), [Ask("s", limit=limit)] * 4)
    assert _most_at_once(spans) == min(limit, 4)


def test_different_servers_fly_together_unless_both_take_the_machine_turn(tmp_path: Path) -> None:
    attached = _spans(Flight(tmp_path), [Ask("a", limit=1), Ask("b", limit=1)])
    assert _most_at_once(attached) == 2
    spawned = _spans(Flight(tmp_path), [Ask("a", 4, machine=True), Ask("b", 4, machine=True)])
    assert _most_at_once(spawned) == 1
    shared = _spans(Flight(tmp_path), [Ask("a", 4, machine=True)] * 3)
    assert _most_at_once(shared) == 3  # generations of one spawned server share its turn


def test_alone_waits_for_the_others_and_holds_back_later_ones(tmp_path: Path) -> None:
    asks = [Ask("s", 4), Ask("s", 4), Ask("s", 4, alone=True), Ask("s", 4), Ask("s", 4)]
    spans = _spans(Flight(tmp_path), asks)
    alone = spans[2]
    for i, (start, end) in enumerate(spans):
        if i != 2:
            assert end <= alone[0] or start >= alone[1], (i, spans)
    assert spans[3][0] >= alone[1] and spans[4][0] >= alone[1]  # first come, first served


def test_overlap_counts_every_generation_that_shared_the_flight(tmp_path: Path) -> None:
    flight = Flight(tmp_path)
    with flight.enter(Ask("s", 4)) as first:
        with flight.enter(Ask("s", 4)) as second:
            pass
        with flight.enter(Ask("s", 4)) as third, flight.enter(Ask("other", 4)) as elsewhere:
            pass
    assert (first.ahead, first.others, first.peak) == (0, 2, 2)
    assert (second.ahead, second.others, second.peak) == (1, 1, 2)
    assert (third.ahead, third.others, third.peak) == (1, 1, 2)
    assert (elsewhere.others, elsewhere.peak) == (0, 1)  # another server is not counted
    with flight.enter(Ask("s", 4)) as alone_now:
        pass
    assert (alone_now.others, alone_now.peak) == (0, 1)


def test_entries_of_dead_processes_are_dropped(tmp_path: Path) -> None:
    dead = {"id": "x", "pid": 2**22 + 7, "started": "1", "server": "s", "alone": True}
    state = {"flight": {"x": {**dead, "machine": True, "others": 0, "peak": 1}}, "queue": [dead]}
    (tmp_path / "flight.json").write_text(json.dumps(state))
    flight = Flight(tmp_path)
    with flight.enter(Ask("s", 1, machine=True), max_wait_s=5) as overlap:
        pass
    assert overlap.admitted and overlap.waited_s < 1 and overlap.others == 0


def test_the_wait_is_bounded_and_then_counted(tmp_path: Path) -> None:
    flight = Flight(tmp_path)
    with flight.enter(Ask("s", 1)) as held, flight.enter(Ask("s", 1), max_wait_s=0.2) as late:
        pass
    assert held.admitted and not late.admitted and late.waited_s >= 0.2
    assert held.others == 1 and late.ahead == 1


def _gen(ttft: float, prompt_ms: float | None) -> Generation:
    return Generation(
        "m", "a", "a", "", "stop", Metrics(ttft_s=ttft, server_prompt_ms=prompt_ms), Settings()
    )


def test_caveats_from_the_evidence() -> None:
    shared = Overlap(ahead=1, others=3, peak=3)
    (caveat,) = shared.caveats(_gen(0.1, 90.0), slots=4)
    assert caveat.kind == "concurrent" and caveat.detail.startswith("up to 3 in flight")
    assert "decode_tps" in caveat.excludes and "ttft_s" in caveat.excludes
    queued = {c.kind: c for c in Overlap(ahead=2, others=2, peak=3).caveats(_gen(3, 500), 1)}
    assert queued["queued"].detail.startswith("waited behind 2 other request(s)")
    assert "2.5 s of waiting" in queued["queued"].detail
    assert Overlap().caveats(_gen(3.0, 50.0), slots=1) == ()  # nothing else in flight


@pytest.mark.parametrize(
    ("ahead", "slots", "wait_s", "behind"),
    [
        (0, 1, 9.0, 0),  # alone: nothing to wait behind
        (1, 1, None, 1),  # one slot, taken
        (3, 2, None, 2),  # three ahead, two slots: it waits behind two
        (1, 4, 9.0, 0),  # free slots: batched, not queued
        (2, None, 2.0, 2),  # slots unknown (Ollama): TTFT beyond prompt and load
        (2, None, 0.1, 0),
        (2, None, None, 0),
    ],
)
def test_queued_behind(ahead: int, slots: int | None, wait_s: float | None, behind: int) -> None:
    assert queued_behind(ahead, slots, wait_s) == behind


def test_a_server_with_fewer_slots_than_the_concurrency_is_named() -> None:
    ollama = slot_warning("ollama:m", "ollama", None, 4)
    assert ollama is not None and "OLLAMA_NUM_PARALLEL=4" in ollama
    one = slot_warning("llama-server@u", "llama-server", 1, 2)
    assert one is not None and "has 1 slot(s)" in one and "-np 2" in one
    assert slot_warning("llama-server@u", "llama-server", 4, 4) is None
    assert slot_warning("ollama:m", "ollama", None, 1) is None  # one at a time: no queue
    assert slot_warning("openai:m", "openai", None, 4) is None  # unknown: timing evidence
