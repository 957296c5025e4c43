"""Timing fidelity against the real llama-server and gemma3-270m: the client's decode rate
against the server's ``predicted_per_second``, and TTFT − ``prompt_ms`` against a bare loop
sending the same body; then generations that end on end-of-sequence (pushed with
``logit_bias``), which the server counts but never streams."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from benchmarks.harness import Bench, Figure, backend, median
from pytest_llmbench.serve.backends import Backend, Timeouts
from pytest_llmbench.serve.backends.llama_cpp import LlamaServerBackend
from pytest_llmbench.serve.generation import Settings
from pytest_llmbench.serve.server_info import ServerOptions
from pytest_llmbench.serve.specs import parse_spec

SETTINGS = Settings(ctx=4096, max_tokens=128)
MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


def bare_sse(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """The same request with a bare loop: stamp each content line as it is read."""
    with httpx.Client(timeout=300, headers={"Connection": "close"}) as client:
        sent = time.perf_counter()
        first = last = None
        events = 0
        final: dict[str, Any] = {}
        with client.stream("POST", url, json=body) as response:
            for line in response.iter_lines():
                now = time.perf_counter()
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                choices = event.get("choices") or [{}]
                if (choices[0].get("delta") or {}).get("content"):
                    events += 1
                    first = now if first is None else first
                    last = now
                if event.get("timings"):
                    final = event
    n = final["usage"]["completion_tokens"]
    assert first is not None and last is not None
    return {
        "ttft_ms": (first - sent) * 1000,
        "decode_tps": (n - 1) / (last - first),
        "server_tps": final["timings"]["predicted_per_second"],
        "prompt_ms": final["timings"]["prompt_ms"],
        "events": events,
    }


def plugin_row(plugin: Backend) -> dict[str, Any]:
    m = plugin.generate(MESSAGES, SETTINGS, Timeouts()).metrics
    assert m.ttft_s and m.decode_tps and m.server_decode_tps and m.server_prompt_ms
    return {
        "ttft_ms": m.ttft_s * 1000,
        "decode_tps": m.decode_tps,
        "server_tps": m.server_decode_tps,
        "prompt_ms": m.server_prompt_ms,
        "tokens": m.output_tokens,
    }


class EosBiased(LlamaServerBackend):
    """Attached to a running llama-server; every request pushes the end-of-sequence token."""

    def __init__(self, url: str, eos_token: int) -> None:
        super().__init__(parse_spec(f"llama-server@{url}"), ServerOptions())
        self.bias = [[eos_token, 6.0]]

    def request_body(self, messages: Any, settings: Settings) -> dict[str, Any]:
        return super().request_body(messages, settings) | {"logit_bias": self.bias}


def eos_rows(url: str, runs: int) -> list[dict[str, Any]]:
    """Generations that end on end-of-sequence: the client's rate against the server's."""
    tokens = httpx.post(
        f"{url}/tokenize", json={"content": "<eos>", "parse_special": True}, timeout=10
    ).json()["tokens"]
    plugin = EosBiased(url, tokens[0])
    plugin.prepare(SETTINGS, lambda _m: None)
    rows = []
    for _ in range(runs):
        g = plugin.generate(MESSAGES, SETTINGS, Timeouts())
        bare = bare_sse(plugin.generate_url(), plugin.request_body(MESSAGES, SETTINGS))
        m = g.metrics
        assert m.decode_tps and m.server_decode_tps
        rows.append(
            {
                "finish": g.finish_reason,
                "tokens": m.output_tokens,
                "streamed_events": bare["events"],
                "plugin_rel": m.decode_tps / m.server_decode_tps - 1,
                "bare_rel": bare["decode_tps"] / bare["server_tps"] - 1,
            }
        )
    return rows


def run(bench: Bench) -> None:
    runs = 5 if bench.quick else 21
    print(f"timing fidelity against the real llama-server ({runs} × 2 generations)")
    try:
        from pytest_llmbench.tools.default_model import embedded_model_path
        from pytest_llmbench.tools.llama_server import find_llama_server

        binary = find_llama_server()
        embedded_model_path()
    except Exception as exc:  # the model package is missing
        bench.skipped("timing fidelity", str(exc))
        return
    if binary is None:
        bench.skipped(
            "timing fidelity", "no llama-server (python -m pytest_llmbench.tools.llama_server)"
        )
        return
    plugin = backend("llama-server:gemma3-270m", llama_server_bin=str(binary), health_timeout_s=120)
    load_s = plugin.prepare(SETTINGS, lambda m: print(f"   {m}"))
    try:
        url, body = plugin.generate_url(), plugin.request_body(MESSAGES, SETTINGS)
        plugin_row(plugin)  # warm-up
        bare_sse(url, body)
        rows: dict[str, list[dict[str, Any]]] = {"plugin": [], "bare": []}
        # A busy machine can slow llama-server down a hundredfold: stop after a bounded time
        # and say how many pairs were measured.
        deadline = time.perf_counter() + (90 if bench.quick else 240)
        for i in range(runs):
            if i >= 3 and time.perf_counter() > deadline:
                print(f"   time budget spent after {i} pairs (busy machine?)")
                break
            for which in ("plugin", "bare") if i % 2 == 0 else ("bare", "plugin"):
                rows[which].append(plugin_row(plugin) if which == "plugin" else bare_sse(url, body))
        eos = eos_rows(plugin.base_url, 3 if bench.quick else 5)
    finally:
        plugin.release()

    def rel(rs: list[dict[str, Any]]) -> list[float]:
        return [(r["decode_tps"] - r["server_tps"]) / r["server_tps"] for r in rs]

    def gap(rs: list[dict[str, Any]]) -> list[float]:
        return [r["ttft_ms"] - r["prompt_ms"] for r in rs]

    n = len(rows["plugin"])
    p_rel = median([abs(x) for x in rel(rows["plugin"])])
    b_rel = median([abs(x) for x in rel(rows["bare"])])
    p_gap, b_gap = median(gap(rows["plugin"])), median(gap(rows["bare"]))
    server_tps = median([r["server_tps"] for r in rows["plugin"]])
    details = {"runs": n, "load_s": load_s, "server_tps_median": server_tps, **rows}
    bench.report(
        Figure(
            "client decode tok/s vs llama-server predicted_per_second, |Δ|/server",
            p_rel * 100,
            "%",
            "≤ 0.5 %",
            p_rel <= 0.005,
            f"median over {n}; signed {median(rel(rows['plugin'])):+.2%}; bare loop |Δ| "
            f"{b_rel:.2%}; server {server_tps:.1f} tok/s",
            details,
        )
    )
    bench.report(
        Figure(
            "TTFT − server prompt_ms, plugin (bare loop + 1 ms allowed)",
            p_gap,
            "ms",
            f"≤ {b_gap + 1:.2f} ms (bare {b_gap:.2f} + 1)",
            p_gap <= b_gap + 1,
            f"median over {n}, interleaved with a bare loop sending the same body",
            details,
        )
    )
    bench.report(
        Figure(
            "the same, generations ended by end-of-sequence: client vs server, signed",
            median([r["plugin_rel"] for r in eos]) * 100,
            "%",
            "report (0 = agree)",
            None,
            f"{len(eos)} runs with logit_bias pushing <eos>: finish {eos[0]['finish']}, "
            f"{eos[0]['tokens']} tokens, {eos[0]['streamed_events']} streamed; a bare loop "
            f"counting every token: {median([r['bare_rel'] for r in eos]) * 100:+.1f} %",
            {"rows": eos},
        )
    )
