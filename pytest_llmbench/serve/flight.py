"""Generations in flight on each server, counted across every pytest process of this user.

One small JSON state (``flight.json``, changed only under ``flight.lock``) in the turns folder
of the user's cache: each generation enters before its request is sent and leaves when its
stream ends. Entering waits (the wait is not in TTFT) until

- its server has fewer than ``limit`` generations in flight (``--llm-concurrency``);
- no generation that asked to run alone is in flight on its server, and, when it asks to run
  alone itself, none at all;
- for a spawned server: no other spawned server is generating. This is the machine's turn
  (two llama-servers on one CPU slow each other down up to 160×, ``servers``); generations of
  one server share it;
- no earlier waiter that it would hold up is still waiting (first come, first served).

While a generation is in flight every other one that enters on the same server is counted,
so it leaves knowing how many overlapped it and the most that were in flight at once: the
evidence for its :class:`~pytest_llmbench.serve.caveats.Caveat` (``concurrent``, ``queued``).
Entries of processes that died are dropped on the next look, so a killed run never blocks
the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_llmbench.serve.caveats import CONCURRENT, QUEUED, SPEED, Caveat
from pytest_llmbench.serve.generation import Generation
from pytest_llmbench.serve.proc_facts import alive, start_time

POLL_S = 0.02
QUEUE_EVIDENCE_S = 0.5
"""TTFT beyond the server's own prompt evaluation and load that counts as queueing, when
another request of the same server was in flight (a queued request waits whole generations)."""
_ids = itertools.count()


@dataclass(frozen=True)
class Ask:
    """What a generation asks of its server's flight."""

    server: str
    """The server's identity (its URL): generations of one server share its slots."""
    limit: int | None = None
    """Generations of this server in flight at once (``--llm-concurrency``); None: no limit."""
    alone: bool = False
    """No other generation of this server in flight while it runs (speed tests)."""
    machine: bool = False
    """Takes the machine's turn: no other spawned server generates meanwhile."""

    def conflicts(self, other: dict[str, Any]) -> bool:
        """Whether this generation and ``other`` (a state entry) may not run together."""
        if other["server"] == self.server:
            return self.alone or bool(other["alone"])
        return self.machine and bool(other["machine"])


@dataclass
class Overlap:
    """What a generation shared its server with while it ran."""

    ahead: int = 0
    """Generations of its server already in flight when it was sent."""
    others: int = 0
    """Other generations of its server in flight at some time while it ran."""
    peak: int = 1
    """The most generations of its server in flight at once (itself included)."""
    waited_s: float = 0.0
    admitted: bool = True
    """False when the wait ran out and it was sent anyway (its figures are marked then)."""
    _entry: dict[str, Any] = field(default_factory=dict, repr=False)

    def caveats(self, generation: Generation, slots: int | None) -> tuple[Caveat, ...]:
        """The caveats ``generation`` earned, from this evidence and the server's ``slots``
        (``None``: unknown): ``concurrent`` when it overlapped another generation of its
        server, ``queued`` when it waited in the server's queue behind another request (more
        in flight than slots, or TTFT beyond the server's own prompt evaluation and load)."""
        out: list[Caveat] = []
        if self.others:
            out.append(
                Caveat(
                    CONCURRENT,
                    f"up to {self.peak} in flight at once, {self.others} other(s) overlapped it",
                    SPEED,
                )
            )
        behind = queued_behind(self.ahead, slots, unexplained_wait_s(generation))
        if behind:
            wait = unexplained_wait_s(generation)
            spent = f"; TTFT includes {wait:.1f} s of waiting" if wait is not None else ""
            out.append(
                Caveat(
                    QUEUED, f"waited behind {behind} other request(s){spent}", ("ttft_s", "ttfa_s")
                )
            )
        return tuple(out)

    def mark(self, generation: Generation, slots: int | None) -> Generation:
        found = self.caveats(generation, slots)
        if not found:
            return generation
        return replace(generation, caveats=(*generation.caveats, *found))


def slot_warning(label: str, backend: str, slots: int | None, concurrency: int) -> str | None:
    """What to say when an attached server serves fewer requests at once than
    ``--llm-concurrency`` sends it: the rest wait in its queue (marked ``queued``)."""
    if concurrency <= 1 or (slots is not None and slots >= concurrency):
        return None
    if backend == "ollama" and slots is None:
        has, fix = (
            "serves OLLAMA_NUM_PARALLEL requests at once (1 by default)",
            (f"start it with OLLAMA_NUM_PARALLEL={concurrency}"),
        )
    elif slots is None:
        return None  # an OpenAI-compatible server does not say; the timing evidence marks it
    else:
        has, fix = f"has {slots} slot(s)", f"start it with -np {concurrency}"
    return (
        f"{label}: the server {has}, so with --llm-concurrency={concurrency} the other requests "
        f"wait in its queue (marked queued, left out of the TTFT medians); {fix}"
    )


def unexplained_wait_s(generation: Generation) -> float | None:
    """TTFT not spent evaluating the prompt or loading the model, by the server's own figures
    (``None`` when the server gives no prompt time)."""
    m = generation.metrics
    if m.ttft_s is None or m.server_prompt_ms is None:
        return None
    return max(0.0, m.ttft_s - m.server_prompt_ms / 1e3 - (m.server_load_s or 0.0))


def queued_behind(ahead: int, slots: int | None, wait_s: float | None) -> int:
    """How many requests a generation sent with ``ahead`` in flight waited behind: those
    beyond the server's free slots, or, with the slots unknown, all of them when its TTFT
    holds unexplained waiting."""
    if ahead <= 0:
        return 0
    if slots is not None and ahead >= slots:
        return ahead - slots + 1
    if slots is None and wait_s is not None and wait_s > QUEUE_EVIDENCE_S:
        return ahead
    return 0


class Flight:
    """The in-flight register under ``root`` (the user's turns folder)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextlib.contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        """The state, locked for this block, written back after it; dead entries dropped."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "flight.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                path = self.root / "flight.json"
                try:
                    state = json.loads(path.read_text() or "{}")
                except (OSError, ValueError):
                    state = {}
                flying = {
                    k: e
                    for k, e in (state.get("flight") or {}).items()
                    if alive(e["pid"], e["started"])
                }
                waiting = [e for e in state.get("queue") or () if alive(e["pid"], e["started"])]
                state = {"flight": flying, "queue": waiting}
                yield state
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(state))
                tmp.replace(path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def enter(self, ask: Ask, max_wait_s: float = 300.0) -> Iterator[Overlap]:
        """In flight while the block runs; the :class:`Overlap` is complete after it.

        The wait is bounded (``max_wait_s``: a generation stuck elsewhere must not hold this
        one forever); past it the generation goes ahead (``admitted`` False) and is still
        counted, so its overlap is marked."""
        me = os.getpid()
        key = f"{me}-{next(_ids)}"
        entry = {
            "id": key,
            "pid": me,
            "started": start_time(me),
            "server": ask.server,
            "alone": ask.alone,
            "machine": ask.machine,
        }
        asked = time.monotonic()
        overlap = Overlap()
        try:
            while True:
                timed_out = time.monotonic() - asked > max_wait_s
                with self._state() as state:
                    if timed_out or self._admits(state, ask, key):
                        self._take_off(state, entry, overlap)
                        overlap.admitted = not timed_out
                        break
                    if not any(w["id"] == key for w in state["queue"]):
                        state["queue"].append(entry)
                time.sleep(POLL_S)
            overlap.waited_s = time.monotonic() - asked
            yield overlap
        finally:
            with self._state() as state:
                state["queue"] = [w for w in state["queue"] if w["id"] != key]
                landed = state["flight"].pop(key, None)
            if landed is not None:
                overlap.others, overlap.peak = landed["others"], landed["peak"]

    @staticmethod
    def _admits(state: dict[str, Any], ask: Ask, key: str) -> bool:
        flying = list(state["flight"].values())
        if any(ask.conflicts(e) for e in flying):
            return False
        mine = sum(e["server"] == ask.server for e in flying)
        if ask.limit is not None and mine >= ask.limit:
            return False
        for waiter in state["queue"]:
            if waiter["id"] == key:
                break
            if ask.conflicts(waiter):
                return False  # it came first: let the room empty for it
        return True

    @staticmethod
    def _take_off(state: dict[str, Any], entry: dict[str, Any], overlap: Overlap) -> None:
        state["queue"] = [w for w in state["queue"] if w["id"] != entry["id"]]
        same = [e for e in state["flight"].values() if e["server"] == entry["server"]]
        count = len(same) + 1
        for other in same:
            other["others"] += 1
            other["peak"] = max(other["peak"], count)
        overlap.ahead = len(same)
        state["flight"][entry["id"]] = {**entry, "others": len(same), "peak": count}
