"""Harness overhead: per-item time outside generation in a real pytest run against a fake
llama-server / Ollama that answers at once (a bare httpx item as the yardstick), and the
collection of 10,000 items."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.harness import (
    MESSAGES,
    Bench,
    Figure,
    backend,
    junit_cases,
    median,
    run_pytest,
    template,
)
from fakes import FakeLlamaServer, FakeOllama, ModelScript
from pytest_llmbench.serve.backends import Backend, Timeouts
from pytest_llmbench.serve.generation import Settings

SCRIPT = ModelScript(["Hello", ",", " world", "."])


def outside_ms(plugin: Backend, runs: int = 20) -> tuple[float, float]:
    """In-process medians, in ms: ``prepare()`` of a warm model, and ``generate()`` time
    outside the generation's own clock (client set-up, Generation, memory probe)."""
    plugin.prepare(Settings(), lambda m: None)
    prepare_ms, generate_ms = [], []
    for _ in range(runs):
        started = time.perf_counter()
        plugin.prepare(Settings(), lambda m: None)
        prepare_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        g = plugin.generate(MESSAGES, Settings(), Timeouts())
        generate_ms.append((time.perf_counter() - started - (g.metrics.total_s or 0)) * 1000)
    return median(prepare_ms), median(generate_ms)


def per_item(bench: Bench) -> None:
    n = 60 if bench.quick else 200
    print(f"per-item overhead ({n} items against fakes that answer at once)")
    with (
        tempfile.TemporaryDirectory(prefix="llmbench-bench-") as tmp,
        FakeLlamaServer(SCRIPT) as llama,
        FakeOllama({"m": SCRIPT}) as ollama,
    ):
        kinds = {"llama-server": f"llama-server@{llama.url}", "Ollama": f"ollama:m@{ollama.url}"}
        per: dict[str, list[float]] = {kind: [] for kind in [*kinds, "bare"]}
        walls: dict[str, list[float]] = {kind: [] for kind in per}
        for _ in range(1 if bench.quick else 2):
            for kind in per:
                where = Path(tmp) / kind
                template("bare" if kind == "bare" else "prompts", where)
                args = ["-q", "--junitxml=junit.xml", "-o", "junit_family=xunit1"]
                args += [f"--llm-models={kinds[kind]}"] if kind in kinds else []
                env = {"BENCH_PROMPTS": str(n), "BENCH_URL": llama.url}
                wall, out, code = run_pytest(args, where, env)
                if code != 0:
                    raise RuntimeError(f"overhead run ({kind}) failed:\n{out[-3000:]}")
                cases = junit_cases(where / "junit.xml")
                assert len(cases) == n, (kind, len(cases))
                walls[kind].append(wall)
                per[kind] += [c["time"] - float(c["props"]["llm.total_s"]) for c in cases]
        inproc = {kind: outside_ms(backend(spec)) for kind, spec in kinds.items()}
    bare_ms = median(per["bare"]) * 1000
    for kind in kinds:
        value = median(per[kind]) * 1000
        prepare_ms, generate_ms = inproc[kind]
        bench.report(
            Figure(
                f"per-item time outside generation, {kind} attached",
                value,
                "ms",
                "< 20 ms",
                value < 20,
                f"median over {n} items (JUnit setup+call+teardown − generation total_s); a "
                f"bare pytest item doing the same request: {bare_ms:.1f} ms; in-process: warm "
                f"prepare() {prepare_ms:.1f} ms, generate() outside its own clock "
                f"{generate_ms:.1f} ms; whole run {median(walls[kind]):.1f} s wall vs "
                f"{median(walls['bare']):.1f} s bare",
                {"items": n, "wall_s": walls[kind], "bare_wall_s": walls["bare"]},
            )
        )


def collection(bench: Bench) -> None:
    """The plugin's collection of models × prompts, alternating with plain pytest collecting
    as many items of one parametrized test without the plugin."""
    models, prompts = (30, 100) if bench.quick else (100, 100)
    specs = ",".join(f"openai:m{i}@http://127.0.0.1:9" for i in range(models))
    runs = {
        "plugin": (["--collect-only", "-q", f"--llm-models={specs}"], prompts),
        "plain": (["--collect-only", "-q", "-p", "no:llmbench"], models * prompts),
    }
    walls: dict[str, list[float]] = {"plugin": [], "plain": []}
    with tempfile.TemporaryDirectory(prefix="llmbench-collect-") as tmp:
        template("prompts", Path(tmp) / "plugin")
        template("plain", Path(tmp) / "plain")
        for _ in range(1 if bench.quick else 3):
            for kind, (args, n) in runs.items():
                where = Path(tmp) / kind
                wall, out, code = run_pytest(args, where, {"BENCH_PROMPTS": str(n)})
                if code != 0 or f"{models * prompts} tests collected" not in out:
                    raise RuntimeError(f"collection run ({kind}) failed ({code}):\n{out[-2000:]}")
                walls[kind].append(wall)
    plugin_s, plain_s = median(walls["plugin"]), median(walls["plain"])
    label = f"collection of {models} models × {prompts} prompts (--collect-only -q)"
    details = {"walls_s": walls, "items": models * prompts}
    bench.report(
        Figure(
            label,
            plugin_s,
            "s",
            "< 5 s at 10,000 items",
            plugin_s < 5 * models * prompts / 10_000,
            f"median of {len(walls['plugin'])} subprocess runs, interpreter start included",
            details,
        )
    )
    bench.report(
        Figure(
            f"{label} ÷ plain pytest collecting as many items",
            plugin_s / plain_s,
            "ratio",
            "report",
            None,
            f"plain pytest, one test parametrized {models * prompts} times, without the "
            f"plugin: {plain_s:.2f} s",
            details,
        )
    )


def run(bench: Bench) -> None:
    per_item(bench)
    collection(bench)
