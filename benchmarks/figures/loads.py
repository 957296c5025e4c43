"""Model loads: each model loaded once per run, 3 models × 5 prompts. Ollama: loads seen by
the fake's scheduler (the plugin preloads); llama-server: spawns of a fake binary
(fakes/llama_server_cli.py), also with ``-n 2 --dist loadgroup``."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.harness import PY, ROOT, Bench, Figure, run_pytest, template
from fakes import FakeOllama, ModelScript

NAMES = ("m1", "m2", "m3")
PROMPTS = {"BENCH_PROMPTS": "5"}


def once_each(
    bench: Bench, figure: str, unit: str, counts: dict[str, int], code: int, out: str
) -> None:
    """Met when the pytest run passed and ``counts`` is 1 for every model."""
    bench.report(
        Figure(
            figure,
            max(counts.values()),
            unit,
            "1 per model",
            code == 0 and all(v == 1 for v in counts.values()),
            f"{unit} {counts}; pytest exit {code}" + ("" if code == 0 else f": {out[-300:]}"),
            {unit: counts},
        )
    )


def ollama(bench: Bench, root: Path) -> None:
    script = ModelScript(["Hello", " there"])
    with FakeOllama(dict.fromkeys(NAMES, script)) as fake:
        specs = ",".join(f"ollama:{m}@{fake.url}" for m in NAMES)
        _wall, out, code = run_pytest(["-q", f"--llm-models={specs}"], root, PROMPTS)
        loads = {m: fake.count("load", m) for m in NAMES}
    once_each(bench, "Ollama: model loads per model", "loads", loads, code, out)


def llama_server(bench: Bench, root: Path) -> None:
    binary = root / "llama-server"
    binary.write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{PY}" -m fakes.llama_server_cli "$@"\n'
    )
    binary.chmod(0o755)
    for m in NAMES:
        (root / f"{m}.gguf").write_bytes(b"GGUF" + bytes(60))
    spawn_log = root / "spawns.log"
    for workers in [0] if bench.quick else [0, 2]:
        spawn_log.write_text("")
        args = [
            "-q",
            f"--llm-models={','.join(f'llama-server:{m}.gguf' for m in NAMES)}",
            f"--llm-llama-server-bin={binary}",
            f"--llm-log-dir={root / 'logs'}",
        ]
        args += ["-n", str(workers), "--dist", "loadgroup"] if workers else []
        env = PROMPTS | {
            "LLMBENCH_FAKE_SPAWN_LOG": str(spawn_log),
            # A cache of its own: fake servers (no CPU) must not wait for turns at generating
            # behind the real servers other runs on this machine have spawned.
            "PYTEST_LLMBENCH_CACHE": str(root / "cache"),
        }
        _wall, out, code = run_pytest(args, root, env)
        lines = spawn_log.read_text().split()
        spawns = {m: sum(1 for w in lines if w.endswith(f"{m}.gguf")) for m in NAMES}
        label = f"-n {workers} --dist loadgroup" if workers else "no xdist"
        once_each(bench, f"llama-server: spawns per model, {label}", "spawns", spawns, code, out)


def run(bench: Bench) -> None:
    print("model loads (3 models × 5 prompts)")
    with tempfile.TemporaryDirectory(prefix="llmbench-loads-") as tmp:
        template("prompts", Path(tmp))
        ollama(bench, Path(tmp))
        llama_server(bench, Path(tmp))
