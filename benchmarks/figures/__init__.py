"""Every figure, in the order they run: one module each, with a ``run(bench)`` that measures
and calls ``bench.report(Figure(...))``. To add a figure, write its module here and give it
one line in :data:`FIGURES` (its key is what ``--only`` takes)."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.figures import (
    concurrency,
    fidelity,
    leaderboard,
    loads,
    overhead,
    sandbox,
    scaleout,
    side_by_side,
    throughput,
)
from benchmarks.harness import Bench

FIGURES: dict[str, Callable[[Bench], None]] = {
    "throughput": throughput.run,
    "fidelity": fidelity.run,
    "overhead": overhead.run,
    "leaderboard": leaderboard.run,
    "loads": loads.run,
    "sandbox": sandbox.run,
    "scaleout": scaleout.run,
    "side_by_side": side_by_side.run,
    "concurrency": concurrency.run,
}
