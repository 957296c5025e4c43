"""Sandbox cost: one functional step (``run_program``) against a bare ``python -I -c pass``,
alternating."""

from __future__ import annotations

import subprocess
import time

from benchmarks.harness import PY, Bench, Figure, median
from pytest_llmbench import Step, checks


def run(bench: Bench) -> None:
    print("sandbox cost")

    def step() -> None:
        result = checks.run_program("print('ok')\n", [Step(args=(), stdout="ok")])
        if result.score != 1:
            raise RuntimeError(f"the trivial program did not pass: {result}")

    def bare() -> None:
        subprocess.run([PY, "-I", "-c", "pass"], check=True)

    seconds: dict[str, list[float]] = {"sandbox": [], "bare": []}
    step()  # warm-up
    bare()
    for i in range(5 if bench.quick else 15):
        for which in ("sandbox", "bare") if i % 2 == 0 else ("bare", "sandbox"):
            started = time.perf_counter()
            step() if which == "sandbox" else bare()
            seconds[which].append(time.perf_counter() - started)
    sandbox_ms, bare_ms = (median(seconds[k]) * 1000 for k in ("sandbox", "bare"))
    bench.report(
        Figure(
            "sandbox: one functional step over bare `python -I -c pass`",
            sandbox_ms - bare_ms,
            "ms",
            "< 100 ms",
            sandbox_ms - bare_ms < 100,
            f"run_program(print('ok'), one Step) {sandbox_ms:.1f} ms vs `python -I -c pass` "
            f"{bare_ms:.1f} ms; medians of {len(seconds['bare'])}, alternating",
            {"seconds": seconds},
        )
    )
