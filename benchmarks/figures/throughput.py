"""Stream decoding throughput: the plugin's real path (``Backend.generate``) against a bare
httpx line loop, on replies replayed as fast as the socket allows (benchmarks/replay.py):
llama-server SSE and Ollama NDJSON, as fakes/ writes them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from benchmarks.harness import MESSAGES, Bench, Figure, backend, median, own_process
from benchmarks.replay import script_tokens, settings
from pytest_llmbench.serve.backends import Backend, Timeouts
from pytest_llmbench.serve.streaming import Accumulator

TOKENS = 200_000


def bare_lines(url: str, body: dict[str, Any]) -> float:
    """Seconds for a bare httpx loop that only reads the lines of one streamed reply."""
    with httpx.Client(timeout=60, headers={"Connection": "close"}) as client:
        started = time.perf_counter()
        with client.stream("POST", url, json=body) as response:
            for _line in response.iter_lines():
                pass
        return time.perf_counter() - started


def plugin_generate(plugin: Backend, expected: str) -> float:
    """Seconds for ``Backend.generate`` on one reply (its text and token count checked)."""
    started = time.perf_counter()
    generation = plugin.generate(MESSAGES, settings(TOKENS), Timeouts())
    elapsed = time.perf_counter() - started
    if generation.metrics.output_tokens != TOKENS or generation.text != expected:
        raise AssertionError(
            f"plugin decoded {generation.metrics.output_tokens} tokens / "
            f"{len(generation.text)} chars, expected {TOKENS} / {len(expected)}"
        )
    return elapsed


def decode_only(plugin: Backend) -> float:
    """Seconds for the decoding alone: ``iter_deltas`` into an ``Accumulator`` on an open
    stream (no client set-up, no Generation, no memory probe)."""
    body = plugin.request_body(MESSAGES, settings(TOKENS))
    with httpx.Client(timeout=60, headers={"Connection": "close"}) as client:
        started = time.perf_counter()
        with client.stream("POST", plugin.generate_url(), json=body) as response:
            acc = Accumulator()
            for delta in plugin.iter_deltas(response):
                acc.add(delta, time.perf_counter())
        elapsed = time.perf_counter() - started
    if acc.clock.token_events != TOKENS:
        raise AssertionError(f"decoded {acc.clock.token_events} token events, not {TOKENS}")
    return elapsed


def run(bench: Bench) -> None:
    repeats = 3 if bench.quick else 9
    expected = "".join(script_tokens(TOKENS))
    print(f"stream throughput ({TOKENS:,} tokens per stream, {repeats} repeats)")
    with own_process("benchmarks.replay", "--tokens", str(TOKENS)) as url:
        cases: dict[str, dict[str, Callable[[], float]]] = {}
        for name, spec in (("llama-server SSE", "llama-server"), ("Ollama NDJSON", "ollama:m")):
            plugin = backend(f"{spec}@{url}")
            cases[name] = {
                "plugin": lambda p=plugin: plugin_generate(p, expected),
                "bare": lambda p=plugin: bare_lines(p.generate_url(), {}),
                "decode": lambda p=plugin: decode_only(p),
            }
        for fns in cases.values():  # warm-up: imports, first connections
            for fn in fns.values():
                fn()
        times = {name: {which: [] for which in fns} for name, fns in cases.items()}
        for i in range(repeats):  # alternating, so drifting load hits both alike
            for name, fns in cases.items():
                order = list(fns.items())
                for which, fn in order if i % 2 == 0 else order[::-1]:
                    times[name][which].append(fn())
    for name, t in times.items():
        plugin_tps = median([TOKENS / s for s in t["plugin"]])
        bare_tps = median([TOKENS / s for s in t["bare"]])
        decode_tps = median([TOKENS / s for s in t["decode"]])
        paired = [b / p for p, b in zip(t["plugin"], t["bare"], strict=True)]
        details = {"repeats": repeats, "tokens_per_stream": TOKENS, "seconds": t}
        bench.report(
            Figure(
                f"stream throughput, {name}, plugin",
                plugin_tps,
                "tok/s",
                "≥ 100,000",
                plugin_tps >= 100_000,
                f"median of {repeats}; Backend.generate end to end (new connection, decode, "
                f"Accumulator, Generation); decoding alone: {decode_tps:,.0f} tok/s; bare "
                f"httpx iter_lines loop: {bare_tps:,.0f} tok/s",
                details,
            )
        )
        ratio = median(paired)
        bench.report(
            Figure(
                f"stream throughput, {name}, plugin ÷ bare httpx line loop",
                ratio,
                "ratio",
                "report",
                None,
                f"median of paired ratios (range {min(paired):.2f}–{max(paired):.2f}); "
                f"decoding alone ÷ bare: {decode_tps / bare_tps:.2f}",
                details,
            )
        )
