"""Two real llama-servers (gemma3-270m and a copy) on this machine: one after the other
(``-n 1``) against side by side (``-n 2``), with default threads and with the cores split."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.harness import Bench, Figure, junit_cases, median, run_pytest, template


def run(bench: Bench) -> None:
    name = "two real llama-servers side by side: decode tok/s ÷ one at a time"
    if bench.quick:
        bench.skipped(name, "not with --quick")
        return
    try:
        from pytest_llmbench.tools.default_model import embedded_model_path
        from pytest_llmbench.tools.llama_server import find_llama_server

        gguf = embedded_model_path()
        if find_llama_server() is None:
            raise RuntimeError("no llama-server binary")
    except Exception as exc:
        bench.skipped(name, str(exc))
        return
    print("two real llama-servers, one at a time and side by side")
    threads = max(1, (os.cpu_count() or 2) // 2)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="llmbench-parallel-") as tmp:
        root = Path(tmp)
        template("prompts", root)
        (root / "copy.gguf").symlink_to(gguf)
        for run_name in ("-n 1", "-n 2", f"-n 2 -t {threads}"):
            args = [
                "-q",
                "--llm-models=llama-server:gemma3-270m,llama-server:copy.gguf",
                "--llm-ctx=2048",
                "--llm-max-tokens=16",
                "--junitxml=junit.xml",
                *("-n", run_name.split()[1], "--dist", "loadgroup"),
            ]
            if "-t" in run_name:
                args.append(f"--llm-server-args=-t {threads}")
            try:
                wall, out, code = run_pytest(args, root, {"BENCH_PROMPTS": "2"}, timeout=240)
            except subprocess.TimeoutExpired:
                rows[run_name] = {"wall_s": 240.0, "decode_tps_median": 0.0}
                continue
            if code != 0:
                raise RuntimeError(f"parallel real run {run_name} failed:\n{out[-3000:]}")
            cases = junit_cases(root / "junit.xml")
            tps = [float(c["props"].get("llm.decode_tps") or 0) for c in cases]
            rows[run_name] = {"wall_s": wall, "decode_tps_median": median(tps)}
    base = rows["-n 1"]["decode_tps_median"]
    for run_name in list(rows)[1:]:
        bench.report(
            Figure(
                f"two real llama-servers side by side ({run_name}): decode tok/s ÷ one at a time",
                rows[run_name]["decode_tps_median"] / base,
                "ratio",
                "report (1.0 = undisturbed)",
                None,
                f"2 × 2 items of 16 tokens, {os.cpu_count()} cores; "
                + "; ".join(f"{r}: {v['decode_tps_median']:.1f} tok/s" for r, v in rows.items()),
                rows,
            )
        )
