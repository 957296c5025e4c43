"""Run the benchmark figures and write them, with the machine, to ``results.json``.

    python -m benchmarks [--quick] [--only throughput,loads] [--out PATH]

Prints every figure with its target and whether it was met. Everything that is compared is
measured side by side in one run, alternating, and reported as medians: the machines this
runs on are shared and noisy, so the machine note says how busy they were. A full run
(no ``--only``, no ``--out``) also rewrites the README's "Performance" table.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import readme
from benchmarks.figures import FIGURES
from benchmarks.harness import Bench, Figure, load, machine


def load_note(info: dict[str, Any]) -> str:
    busiest = max(info["load_average_at_start"][0], info["load_average_at_end"][0])
    if busiest < 0.5 * info["cores"]:
        return "a quiet machine"
    return (
        "other jobs shared the cores: absolute figures are pessimistic, trust the ratios and "
        "the side-by-side comparisons"
    )


def run_figure(bench: Bench, name: str) -> None:
    """One figure module; a crash is reported as a missed figure and the run goes on."""
    bench.group = name
    started = time.perf_counter()
    try:
        FIGURES[name](bench)
    except Exception as exc:
        traceback.print_exc()
        bench.report(Figure(f"{name}: the benchmark broke", None, "", "runs", False, repr(exc)))
    print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a few minutes)")
    parser.add_argument("--only", default="", help=f"comma-separated, of: {','.join(FIGURES)}")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figure(s) {sorted(unknown)}; choose from {', '.join(FIGURES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    full = not args.only and args.out is None
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_average_at_start']}")
    bench = Bench(quick=args.quick)
    started = time.perf_counter()
    for name in args.only or FIGURES:
        run_figure(bench, name)
    info["duration_s"] = round(time.perf_counter() - started, 1)
    info["quick"] = args.quick
    info["load_average_at_end"] = load()
    info["load_note"] = load_note(info)
    results = {"machine": info, "figures": [asdict(f) for f in bench.figures]}
    print()
    print(readme.table(results))
    out = readme.RESULTS if full else args.out
    if out is not None:
        out.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
        print(f"\nwrote {out}")
    if full:
        readme.main()
    missed = [f.figure for f in bench.figures if f.met is False]
    print(f"{len(bench.figures)} figures, {len(missed)} missed, {info['duration_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
