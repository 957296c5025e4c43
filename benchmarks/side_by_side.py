"""Two spawned llama-servers under ``-n 2`` on one machine: each model's decode rate side by
side ÷ its rate one at a time (target: ≥ 0.85, i.e. within 15 %).

Runs the real llama-server (``python -m pytest_llmbench.tools.llama_server``) on the demo
model and a second path to it (two specs, two servers), alternating ``-n 1`` and ``-n 2``
rounds, and compares medians of the client decode tok/s per model. ``--plugin-path DIR``
puts another checkout of the plugin first on ``PYTHONPATH`` (to measure an older version).

    python benchmarks/side_by_side.py [--rounds 3] [--tokens 64] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TEST = """
import pytest

@pytest.mark.llm(max_tokens={tokens})
@pytest.mark.parametrize("prompt", ["Tell a story about a lighthouse.", "Describe the sea.",
                                    "Explain how bread rises.", "Write about a small town."])
def test_prompt(llm, prompt):
    assert llm.generate(prompt).metrics.output_tokens
"""


def run_round(
    root: Path, workers: int, extra: list[str], plugin_path: str | None
) -> dict[str, Any]:
    """One pytest run; per model the client decode tok/s of each generation, and caveats."""
    env = dict(os.environ)
    if plugin_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [plugin_path, env.get("PYTHONPATH")]))
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--llm-models=llama-server:gemma3-270m,llama-server:copy.gguf",
        "--llm-ctx=2048",
        "--llm-json=r.json",
        *extra,
    ]
    if workers > 1:
        args += ["-n", str(workers), "--dist", "loadgroup"]
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"pytest {' '.join(args[3:])} failed:\n{proc.stdout[-3000:]}")
    data = json.loads((root / "r.json").read_text())
    rates: dict[str, list[float]] = {}
    marked = 0
    for item in data["items"]:
        for gen in item["record"]["generations"]:
            if gen["metrics"].get("decode_tps"):
                rates.setdefault(item["model"], []).append(gen["metrics"]["decode_tps"])
            marked += bool(gen.get("caveats"))
    return {"wall_s": wall, "decode_tps": rates, "marked": marked}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--plugin-path", default=None)
    parser.add_argument("--server-args", default=None, help="e.g. '-t 1' for both servers")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from pytest_llmbench.tools.default_model import embedded_model_path

    extra = [f"--llm-server-args={args.server_args}"] if args.server_args else []
    runs: dict[str, list[dict[str, Any]]] = {"one at a time (-n 1)": [], "side by side (-n 2)": []}
    with tempfile.TemporaryDirectory(prefix="llmbench-side-by-side-") as tmp:
        root = Path(tmp)
        (root / "test_side.py").write_text(TEST.format(tokens=args.tokens))
        (root / "copy.gguf").symlink_to(embedded_model_path())
        for r in range(args.rounds):  # alternating, so drift hits both alike
            for label, workers in (("one at a time (-n 1)", 1), ("side by side (-n 2)", 2)):
                result = run_round(root, workers, extra, args.plugin_path)
                runs[label].append(result)
                print(f"round {r + 1} {label}: {json.dumps(result['decode_tps'])}", flush=True)
    models = sorted({m for results in runs.values() for res in results for m in res["decode_tps"]})
    per_model = {
        m: {
            label: statistics.median(r for res in results for r in res["decode_tps"].get(m, []))
            for label, results in runs.items()
        }
        for m in models
    }
    ratios = {m: v["side by side (-n 2)"] / v["one at a time (-n 1)"] for m, v in per_model.items()}
    summary = {
        "figure": "two spawned llama-servers under -n 2: decode tok/s side by side ÷ one at a time",
        "target": ">= 0.85 for each model",
        "ratios": ratios,
        "met": all(r >= 0.85 for r in ratios.values()),
        "medians_tps": per_model,
        "marked_side_by_side": sum(r["marked"] for r in runs["side by side (-n 2)"]),
        "rounds": args.rounds,
        "tokens": args.tokens,
        "server_args": args.server_args,
        "plugin_path": args.plugin_path,
        "cores": os.cpu_count(),
        "runs": runs,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
