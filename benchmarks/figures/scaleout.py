"""Scale-out with pytest-xdist: N fake llama-servers streaming at a fixed rate (sleeping, so
they take no CPU), ``-n N --dist loadgroup``, one model per server and one model pooled over
N endpoints (``@URL1+...+URLN``)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import Bench, Figure, junit_cases, median, run_pytest, template
from fakes import FakeLlamaServer, ModelScript

RATE, TOKENS = 50.0, 100
SCRIPT = ModelScript([f" w{i}" for i in range(TOKENS)], token_delay_s=1 / RATE)


def on_servers(
    root: Path, n: int, prompts: int, models: Callable[[list[str]], str]
) -> dict[str, Any]:
    """``pytest -n N --dist loadgroup`` against N fake servers; ``models`` turns their URLs
    into the --llm-models value."""
    with contextlib.ExitStack() as stack:
        fakes = [stack.enter_context(FakeLlamaServer(SCRIPT)) for _ in range(n)]
        args = ["-q", f"--llm-models={models([f.url for f in fakes])}", "--junitxml=junit.xml"]
        args += ["-n", str(n), "--dist", "loadgroup"]
        wall, out, code = run_pytest(args, root, {"BENCH_PROMPTS": str(prompts)}, timeout=600)
        if code != 0:
            raise RuntimeError(f"run on {n} server(s) failed:\n{out[-3000:]}")
        served = [len(f.calls("POST", "/v1/chat/completions")) for f in fakes]
    cases = junit_cases(root / "junit.xml")
    tps = [float(c["props"].get("llm.decode_tps") or 0) for c in cases]
    return {
        "wall_s": wall,
        "items": len(cases),
        "tokens_per_s": len(cases) * TOKENS / wall,
        "busy_fraction": sum(float(c["props"]["llm.total_s"]) for c in cases) / (n * wall),
        "client_decode_tps_median": median(tps),
        "generations_per_server": served,
    }


def run(bench: Bench) -> None:
    k = 3 if bench.quick else 6
    print(f"scale-out (N servers at {RATE:.0f} tok/s, {TOKENS} tokens per reply, {k} prompts)")
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="llmbench-scale-") as tmp:
        root = Path(tmp)
        template("prompts", root)
        for n in (1, 2, 4):
            rows[f"N={n}"] = on_servers(
                root, n, k, lambda urls: ",".join(f"llama-server@{u}" for u in urls)
            )
        for n in (2, 4):
            rows[f"pool N={n}"] = on_servers(
                root, n, k * n, lambda urls: "llama-server@" + "+".join(urls)
            )
    base = rows["N=1"]["tokens_per_s"]
    for key, row in rows.items():
        n = int(key.rsplit("=", 1)[1])
        what = "one model on a pool of" if key.startswith("pool") else "one model per server,"
        bench.report(
            Figure(
                f"scale-out, {what} N={n} (-n {n} --dist loadgroup, {row['items']} items): "
                f"speed-up over N=1",
                row["tokens_per_s"] / base,
                "×",
                f"report (ideal ×{n})",
                None,
                f"{row['tokens_per_s']:.1f} tok/s in all, wall {row['wall_s']:.1f} s; generation "
                f"busy {row['busy_fraction']:.0%} of N × wall; client decode tok/s median "
                f"{row['client_decode_tps_median']:.2f} (servers stream {RATE:.0f}); "
                f"generations per server {row['generations_per_server']}",
                row,
            )
        )
