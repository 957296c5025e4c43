"""Two spawned real llama-servers (gemma3-270m and a second path to it, so two specs and two
servers) under ``-n 2 --dist loadgroup`` on this machine: each model's client decode tok/s side
by side ÷ its rate one at a time (``-n 1``), rounds alternating. Spawned servers take turns at
generating (``pytest_llmbench.serve.processes.Turns``), so the target is the issue's: within 15 %.

``BENCH_PLUGIN_PATH`` (a checkout of another version of the plugin) measures that version
instead, e.g. the one before turns: 0.006× at default threads, 0.87× with ``-t 1`` each.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.harness import Bench, Figure, demo_model, median, run_pytest, template
from pytest_llmbench.generate.records import ItemRecord

TARGET = 0.85
RUNS = {"one at a time": 1, "side by side": 2}


def one_run(root: Path, workers: int, tokens: int) -> dict[str, Any]:
    """Per model the client decode tok/s of each generation, and side-by-side marks."""
    args = [
        "-q",
        "--llm-models=llama-server:gemma3-270m,llama-server:copy.gguf",
        "--llm-ctx=2048",
        f"--llm-max-tokens={tokens}",
        "--llm-json=r.json",
        *("-n", str(workers), "--dist", "loadgroup"),
    ]
    env = {"BENCH_PROMPTS": "3"}
    if os.environ.get("BENCH_PLUGIN_PATH"):
        env["PYTHONPATH"] = os.environ["BENCH_PLUGIN_PATH"]
    if os.environ.get("BENCH_SERVER_ARGS"):
        args.append(f"--llm-server-args={os.environ['BENCH_SERVER_ARGS']}")
    wall, out, code = run_pytest(args, root, env, timeout=900)
    if code != 0:
        raise RuntimeError(f"-n {workers} failed:\n{out[-3000:]}")
    rates: dict[str, list[float]] = {}
    marked = 0
    for item in json.loads((root / "r.json").read_text())["items"]:
        for gen in ItemRecord.from_dict(item["record"]).generations:
            # As the leaderboard's medians: figures marked side by side are left out.
            tps = gen.figure("decode_tps")
            if tps and not gen.excluded("decode_tps"):
                rates.setdefault(item["model"], []).append(tps)
            marked += any(c.kind == "side_by_side" for c in gen.reply.caveats)
    return {"wall_s": wall, "decode_tps": rates, "marked_side_by_side": marked}


def run(bench: Bench) -> None:
    name = "two spawned llama-servers under -n 2: decode tok/s side by side ÷ one at a time"
    gguf = demo_model(bench, name)
    if gguf is None:
        return
    rounds, tokens = (1, 32) if bench.quick else (3, 64)
    rounds = int(os.environ.get("BENCH_ROUNDS", rounds))
    print(f"two real llama-servers, one at a time and side by side ({rounds} rounds)")
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in RUNS}
    with tempfile.TemporaryDirectory(prefix="llmbench-side-by-side-") as tmp:
        root = Path(tmp)
        template("prompts", root)
        (root / "copy.gguf").symlink_to(gguf)
        for _ in range(rounds):  # alternating, so drift in the machine's load hits both
            for label, workers in RUNS.items():
                result = one_run(root, workers, tokens)
                runs[label].append(result)
                got = {m: round(median(v), 1) for m, v in result["decode_tps"].items()}
                print(f"    {label}: {got} tok/s, marked {result['marked_side_by_side']}")
    models = sorted({m for results in runs.values() for r in results for m in r["decode_tps"]})
    rates = {
        m: {
            label: median([v for r in results for v in r["decode_tps"].get(m, [])])
            for label, results in runs.items()
        }
        for m in models
    }
    ratios = {m: r["side by side"] / r["one at a time"] for m, r in rates.items()}
    worst = min(ratios.values())
    marked = sum(r["marked_side_by_side"] for r in runs["side by side"])
    bench.report(
        Figure(
            name,
            worst,
            "ratio",
            f"≥ {TARGET} for each model (within 15 %)",
            worst >= TARGET,
            f"the lower of the two models; {rounds} alternating rounds of 2 models × 3 prompts × "
            f"{tokens} tokens, {os.cpu_count()} cores; medians "
            + "; ".join(
                f"{m}: {r['one at a time']:.1f} → {r['side by side']:.1f} tok/s (×{ratios[m]:.2f})"
                for m, r in rates.items()
            )
            + f"; generations marked side_by_side: {marked}"
            + (
                f"; plugin from {os.environ['BENCH_PLUGIN_PATH']}"
                if "BENCH_PLUGIN_PATH" in os.environ
                else ""
            )
            + (
                f"; server args {os.environ['BENCH_SERVER_ARGS']}"
                if "BENCH_SERVER_ARGS" in os.environ
                else ""
            ),
            {"ratios": ratios, "rates": rates, "runs": runs},
        )
    )
