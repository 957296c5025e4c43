"""Measure the plugin without disturbing what it measures.

    .venv/bin/python benchmarks/run.py [--quick] [--only 1,3] [--out PATH]

Prints every figure with its target and pass/miss, and writes them with the machine they came
from to ``benchmarks/results.json``. Everything that is compared is measured side by side in
one run, alternating, and reported as medians (the machines this runs on are shared and noisy).

1. stream parsing throughput: the plugin's real path (``Backend.generate``) against a bare
   httpx line loop, on a loopback server that streams pre-built replies as fast as the
   socket allows (llama-server SSE and Ollama NDJSON).
2. timing fidelity against the real llama-server and gemma3-270m: client decode rate vs the
   server's ``predicted_per_second``, and TTFT − ``prompt_ms`` against a bare loop.
3. harness overhead: per-item time outside generation in a real pytest run, collection of
   10,000 items, leaderboard rendering over 10,000 results.
4. model loads: each model loaded exactly once per run (Ollama preloads, llama-server spawns).
5. sandbox cost: one functional step vs a bare ``python -c pass`` (when the sandbox exists).
6. scale-out with pytest-xdist: N rate-limited servers, ``-n N --dist loadgroup``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import check_streaming  # noqa: E402
from fakes import FakeServer, script_tokens  # noqa: E402

from pytest_llmbench.backends.base import Backend, Timeouts  # noqa: E402
from pytest_llmbench.backends.llama_server import LlamaServerBackend  # noqa: E402
from pytest_llmbench.backends.ollama import OllamaBackend  # noqa: E402
from pytest_llmbench.generation import Settings  # noqa: E402
from pytest_llmbench.serving import ServerOptions  # noqa: E402
from pytest_llmbench.specs import parse_spec  # noqa: E402

PY = sys.executable
MESSAGES = [{"role": "user", "content": "Go."}]


@dataclass
class Figure:
    """One measured figure, its target and whether it was met (``None``: not measured)."""

    figure: str
    value: float | None
    unit: str
    target: str
    met: bool | None
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)


FIGURES: list[Figure] = []


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def report(fig: Figure) -> Figure:
    FIGURES.append(fig)
    mark = {True: "MET ", False: "MISS", None: "SKIP" if fig.value is None else "INFO"}[fig.met]
    value = fmt(fig.value)
    print(f"  [{mark}] {fig.figure}: {value} {fig.unit} (target {fig.target})", flush=True)
    if fig.notes:
        for line in textwrap.wrap(fig.notes, 96):
            print(f"         {line}")
    return fig


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 2**20, 1)
    versions = {}
    for name in ("httpx", "pytest", "xdist", "tabulate"):
        with contextlib.suppress(ImportError):
            versions[name] = getattr(importlib.import_module(name), "__version__", "?")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": platform.platform(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "other_model_servers_at_start": busy_servers(),
        "versions": versions,
    }


def busy_servers() -> list[str]:
    """Model servers already running here (they take the CPU the measured ones need)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            argv = cmdline.read_bytes().split(b"\0")
            name = Path(argv[0].decode(errors="replace")).name
            if name in ("llama-server", "ollama"):
                found.append(f"{cmdline.parent.name}:{name}")
    return found


def pytest_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("CI", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # The plugin of the tree this script belongs to (also when it is a copy of another
    # commit, to measure a "before"): ahead of the editable install.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_pytest(args: list[str], cwd: Path, timeout: float = 300) -> tuple[float, str, int]:
    """``python -m pytest ARGS`` in ``cwd``: (wall seconds, output, exit code)."""
    started = time.perf_counter()
    proc = subprocess.run(
        [PY, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=pytest_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return time.perf_counter() - started, proc.stdout + proc.stderr, proc.returncode


def junit_cases(path: Path) -> list[dict[str, Any]]:
    """Per testcase: name, time (setup + call + teardown) and its ``llm.*`` properties."""
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        failed = case.find("failure") is not None or case.find("error") is not None
        cases.append(
            {
                "name": case.get("name"),
                "time": float(case.get("time") or 0),
                "props": props,
                "failed": failed,
            }
        )
    return cases


# --------------------------------------------------------------------------- 1. throughput


@contextlib.contextmanager
def blast_server(tokens: int) -> Iterator[str]:
    """``fakes.py blast`` in its own process (it must not share our GIL)."""
    proc = subprocess.Popen(
        [PY, str(HERE / "fakes.py"), "blast", "--tokens", str(tokens)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"blast server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        proc.wait(10)


def bare_lines(url: str, body: dict[str, Any]) -> float:
    """Seconds for a bare httpx loop that only reads the lines of one streamed reply."""
    with httpx.Client(timeout=60, headers={"Connection": "close"}) as client:
        started = time.perf_counter()
        with client.stream("POST", url, json=body) as response:
            for _line in response.iter_lines():
                pass
        return time.perf_counter() - started


def plugin_generate(backend: Backend, tokens: int, expected: str) -> float:
    """Seconds for ``Backend.generate`` on one reply of ``tokens`` tokens (checked)."""
    started = time.perf_counter()
    generation = backend.generate(MESSAGES, Settings(), Timeouts())
    elapsed = time.perf_counter() - started
    if generation.metrics.output_tokens != tokens or generation.text != expected:
        raise AssertionError(
            f"plugin decoded {generation.metrics.output_tokens} tokens / "
            f"{len(generation.text)} chars, expected {tokens} / {len(expected)}"
        )
    return elapsed


def decode_only(backend: Backend, tokens: int) -> float:
    """Seconds for the decoding alone: ``iter_deltas`` into an ``Accumulator`` on an open
    stream (no client set-up, no Generation, no memory probe)."""
    from pytest_llmbench.streaming import Accumulator

    body = backend.request_body(MESSAGES, Settings())
    with httpx.Client(timeout=60, headers={"Connection": "close"}) as client:
        started = time.perf_counter()
        with client.stream("POST", backend.generate_url(), json=body) as response:
            acc = Accumulator()
            for delta in backend.iter_deltas(response):
                acc.add(delta, time.perf_counter())
        elapsed = time.perf_counter() - started
    if acc.clock.token_events != tokens:
        raise AssertionError(f"decoded {acc.clock.token_events} token events, not {tokens}")
    return elapsed


def fig_throughput(quick: bool) -> None:
    tokens = 200_000
    repeats = 3 if quick else 9
    expected = "".join(script_tokens(tokens))
    print(f"1. stream parsing throughput ({tokens:,} tokens per stream, {repeats} repeats)")
    check_cases = 300 if quick else 1500
    checked, problems = check_streaming.check(check_cases, seed=int(time.time()) % 10_000)
    report(
        Figure(
            "1 bulk decoding reads streams exactly as json.loads line by line",
            len(problems),
            "mismatches",
            "0",
            not problems,
            f"{checked} random SSE / NDJSON streams cut into random reads "
            f"(benchmarks/check_streaming.py): text, timestamps, counts, errors compared"
            + (f"; first: {problems[0][:300]}" if problems else ""),
        )
    )
    with blast_server(tokens) as url:
        llama = LlamaServerBackend(parse_spec(f"llama-server@{url}"))
        llama.base_url = url
        ollama = OllamaBackend(parse_spec(f"ollama:m@{url}"))
        ollama.base_url = url
        cases: dict[str, dict[str, Callable[[], float]]] = {
            "llama-server SSE": {
                "plugin": lambda: plugin_generate(llama, tokens, expected),
                "bare": lambda: bare_lines(f"{url}/v1/chat/completions", {"stream": True}),
                "decode": lambda: decode_only(llama, tokens),
            },
            "Ollama NDJSON": {
                "plugin": lambda: plugin_generate(ollama, tokens, expected),
                "bare": lambda: bare_lines(f"{url}/api/chat", {"model": "m", "messages": MESSAGES}),
                "decode": lambda: decode_only(ollama, tokens),
            },
        }
        for fns in cases.values():  # warm-up: imports, first connections
            for fn in fns.values():
                fn()
        times: dict[str, dict[str, list[float]]] = {
            k: {"plugin": [], "bare": [], "decode": []} for k in cases
        }
        for i in range(repeats):
            for name, fns in cases.items():
                order = list(fns.items())
                for which, fn in order if i % 2 == 0 else order[::-1]:
                    times[name][which].append(fn())
    for name, t in times.items():
        plugin_tps = [tokens / s for s in t["plugin"]]
        bare_tps = [tokens / s for s in t["bare"]]
        paired = [b / p for p, b in zip(t["plugin"], t["bare"], strict=True)]
        p_med, b_med = median(plugin_tps), median(bare_tps)
        d_med = median([tokens / s for s in t["decode"]])
        details = {
            "decode_only_median_tok_s": round(d_med),
            "tokens_per_stream": tokens,
            "repeats": repeats,
            "plugin_tok_s": [round(x) for x in plugin_tps],
            "bare_tok_s": [round(x) for x in bare_tps],
            "bare_median_tok_s": round(b_med),
            "paired_ratios": [round(x, 3) for x in paired],
        }
        report(
            Figure(
                f"1 stream throughput, {name}, plugin",
                p_med,
                "tok/s",
                "≥ 100,000",
                p_med >= 100_000,
                f"median of {repeats}; Backend.generate end to end (new connection, decode, "
                f"Accumulator, Generation); decoding alone (iter_deltas + Accumulator on an "
                f"open stream): {d_med:,.0f} tok/s; bare httpx iter_lines loop: "
                f"{b_med:,.0f} tok/s",
                details,
            )
        )
        ratio = median(paired)
        report(
            Figure(
                f"1 stream throughput, {name}, plugin ÷ bare",
                ratio,
                "ratio",
                "≥ 0.8",
                ratio >= 0.8,
                f"median of paired ratios (range {min(paired):.2f}–{max(paired):.2f}); "
                f"decoding alone ÷ bare: {d_med / b_med:.2f}",
                details,
            )
        )


# --------------------------------------------------------------------------- 2. fidelity


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
    timings = final["timings"]
    n = final["usage"]["completion_tokens"]
    assert first is not None and last is not None
    return {
        "ttft_ms": (first - sent) * 1000,
        "decode_tps": (n - 1) / (last - first),
        "server_tps": timings["predicted_per_second"],
        "prompt_ms": timings["prompt_ms"],
        "predicted_ms": timings["predicted_ms"],
        "tokens": n,
        "events": events,
    }


def eos_probe(
    backend: LlamaServerBackend, settings: Settings, messages: list[dict[str, Any]], runs: int
) -> dict[str, Any] | None:
    """Generations that end on the end-of-sequence token (pushed with ``logit_bias``), which
    llama-server counts in ``predicted_n`` and its decode time but never streams."""
    try:
        answer = httpx.post(
            f"{backend.base_url}/tokenize",
            json={"content": "<eos>", "parse_special": True},
            timeout=10,
        ).json()
        eos_id = answer["tokens"][0]
        body = backend.request_body(messages, settings) | {"logit_bias": [[eos_id, 6.0]]}
    except (httpx.HTTPError, KeyError, IndexError, ValueError):
        return None
    setattr(backend, "request_body", lambda _messages, _settings: body)  # noqa: B010
    rows = []
    try:
        for _ in range(runs):
            g = backend.generate(messages, settings, Timeouts())
            bare = bare_sse(backend.generate_url(), body)
            m = g.metrics
            if not (m.decode_tps and m.server_decode_tps and m.server_decode_ms):
                return None
            rows.append(
                {
                    "finish": g.finish_reason,
                    "tokens": m.output_tokens,
                    "streamed_events": bare["events"],
                    "plugin_rel": m.decode_tps / m.server_decode_tps - 1,
                    "bare_rel": bare["decode_tps"] / bare["server_tps"] - 1,
                    "span_minus_predicted_ms": ((m.output_tokens or 0) - 1) / m.decode_tps * 1000
                    - m.server_decode_ms,
                    "corrected_rel": ((m.output_tokens or 0) - 2)
                    / ((m.output_tokens or 0) - 1)
                    * m.decode_tps
                    / m.server_decode_tps
                    - 1,
                }
            )
    finally:
        del backend.request_body  # back to the class's method
    return {"eos_token": eos_id, "rows": rows}


def fig_fidelity(quick: bool) -> None:
    runs = 5 if quick else 21
    print(f"2. timing fidelity against the real llama-server ({runs} × 2 generations)")
    try:
        from pytest_llmbench.tools.default_model import embedded_model_path
        from pytest_llmbench.tools.llama_server import find_llama_server

        binary = find_llama_server()
        embedded_model_path()
    except Exception as exc:  # the model package or binary is missing
        binary, reason = None, str(exc)
    else:
        reason = "no llama-server binary (python -m pytest_llmbench.tools.llama_server)"
    if binary is None:
        report(Figure("2 timing fidelity", None, "", "-", None, f"skipped: {reason}"))
        return
    backend = LlamaServerBackend(
        parse_spec("llama-server:gemma3-270m"),
        ServerOptions(llama_server_bin=str(binary), health_timeout_s=120),
    )
    settings = Settings(ctx=4096, max_tokens=128)
    messages = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
    load_s = backend.prepare(settings, lambda m: print(f"   {m}"))
    try:
        url = backend.generate_url()
        body = backend.request_body(messages, settings)
        backend.generate(messages, settings, Timeouts())  # warm-up
        bare_sse(url, body)
        plugin_rows: list[dict[str, Any]] = []
        bare_rows: list[dict[str, Any]] = []
        # A busy machine can slow llama-server down a hundredfold (see figure 6): keep going
        # for a bounded time and say how many pairs were measured.
        deadline = time.perf_counter() + (90 if quick else 240)
        for i in range(runs):
            if i >= 3 and time.perf_counter() > deadline:
                print(f"   time budget spent after {i} pairs (busy machine?)")
                break
            for which in ("plugin", "bare") if i % 2 == 0 else ("bare", "plugin"):
                if which == "bare":
                    bare_rows.append(bare_sse(url, body))
                    continue
                m = backend.generate(messages, settings, Timeouts()).metrics
                assert m.ttft_s and m.decode_tps and m.server_decode_tps and m.server_prompt_ms
                plugin_rows.append(
                    {
                        "ttft_ms": m.ttft_s * 1000,
                        "decode_tps": m.decode_tps,
                        "server_tps": m.server_decode_tps,
                        "prompt_ms": m.server_prompt_ms,
                        "predicted_ms": m.server_decode_ms,
                        "tokens": m.output_tokens,
                    }
                )
        eos = eos_probe(backend, settings, messages, 3 if quick else 5)
    finally:
        backend.release()

    def rel(rows: list[dict[str, Any]]) -> list[float]:
        return [abs(r["decode_tps"] - r["server_tps"]) / r["server_tps"] for r in rows]

    def signed(rows: list[dict[str, Any]]) -> list[float]:
        return [(r["decode_tps"] - r["server_tps"]) / r["server_tps"] for r in rows]

    def gap(rows: list[dict[str, Any]]) -> list[float]:
        return [r["ttft_ms"] - r["prompt_ms"] for r in rows]

    runs = len(plugin_rows)
    p_rel, b_rel = median(rel(plugin_rows)), median(rel(bare_rows))
    p_gap, b_gap = median(gap(plugin_rows)), median(gap(bare_rows))
    paired_gap = median([p - b for p, b in zip(gap(plugin_rows), gap(bare_rows), strict=True)])
    # What the server's decode window leaves out: the client's first-to-last token span
    # against predicted_ms, token counts, and multi-token events.
    spans = [(r["tokens"] - 1) / r["decode_tps"] * 1000 - r["predicted_ms"] for r in plugin_rows]
    details = {
        "runs": runs,
        "load_s": load_s,
        "server_tps_median": median([r["server_tps"] for r in plugin_rows]),
        "plugin_decode_tps_median": median([r["decode_tps"] for r in plugin_rows]),
        "bare_decode_tps_median": median([r["decode_tps"] for r in bare_rows]),
        "plugin_signed_rel_diff_median": median(signed(plugin_rows)),
        "bare_signed_rel_diff_median": median(signed(bare_rows)),
        "bare_abs_rel_diff_median": b_rel,
        "plugin_span_minus_predicted_ms_median": median(spans),
        "tokens_median": median([r["tokens"] for r in plugin_rows]),
        "bare_content_events_median": median([r["events"] for r in bare_rows]),
        "prompt_ms_median": median([r["prompt_ms"] for r in plugin_rows]),
        "plugin_ttft_ms_median": median([r["ttft_ms"] for r in plugin_rows]),
        "bare_ttft_ms_median": median([r["ttft_ms"] for r in bare_rows]),
        "plugin_rows": plugin_rows,
        "bare_rows": bare_rows,
    }
    report(
        Figure(
            "2 client decode tok/s vs server predicted_per_second, |Δ|/server",
            p_rel * 100,
            "%",
            "≤ 0.5 %",
            p_rel <= 0.005,
            f"median over {runs}; signed median {details['plugin_signed_rel_diff_median']:+.2%}"
            f" (bare loop: |Δ| {b_rel:.2%}, signed "
            f"{details['bare_signed_rel_diff_median']:+.2%}); server "
            f"{details['server_tps_median']:.1f} tok/s; client first→last span − "
            f"predicted_ms = {details['plugin_span_minus_predicted_ms_median']:+.2f} ms",
            details,
        )
    )
    report(
        Figure(
            "2 TTFT − server prompt_ms, plugin (bare loop + 1 ms allowed)",
            p_gap,
            "ms",
            f"≤ {b_gap + 1:.2f} ms (bare {b_gap:.2f} + 1)",
            p_gap <= b_gap + 1,
            f"median over {runs}, interleaved; paired difference plugin − bare: median "
            f"{paired_gap:+.2f} ms; prompt_ms median "
            f"{details['prompt_ms_median']:.1f} ms; TTFT plugin "
            f"{details['plugin_ttft_ms_median']:.1f} ms / bare "
            f"{details['bare_ttft_ms_median']:.1f} ms",
            details,
        )
    )
    if eos is None or not eos["rows"]:
        return
    rows = eos["rows"]
    report(
        Figure(
            "2 generations ended by end-of-sequence: client decode tok/s vs server, signed",
            median([r["plugin_rel"] for r in rows]) * 100,
            "%",
            "report (0 = agree)",
            None,
            f"{len(rows)} runs with logit_bias pushing <eos> (token {eos['eos_token']}): finish "
            f"{rows[0]['finish']}, {rows[0]['tokens']} tokens counted by the server, "
            f"{rows[0]['streamed_events']} streamed; bare loop "
            f"{median([r['bare_rel'] for r in rows]) * 100:+.1f} %; client first→last span − "
            f"predicted_ms {median([r['span_minus_predicted_ms'] for r in rows]):+.1f} ms (one "
            f"token); with (n − 2) instead of (n − 1) the client figure is "
            f"{median([r['corrected_rel'] for r in rows]) * 100:+.2f} % off",
            eos,
        )
    )


# --------------------------------------------------------------------------- 3. overhead

ITEMS_TEST = """
import pytest

@pytest.mark.parametrize("i", range({n}))
def test_item(llm, i):
    g = llm.generate(f"prompt {{i}}")
    assert g.text
"""

BARE_TEST = """
import os, time
import httpx, pytest

CLIENT = httpx.Client(headers={{"Connection": "close"}})
URL = os.environ.get("FAKE_URL", "{url}") + "/v1/chat/completions"

@pytest.mark.parametrize("i", range({n}))
def test_item(record_property, i):
    started = time.perf_counter()
    with CLIENT.stream("POST", URL, json={{"messages": [], "stream": True}}) as r:
        text = [line for line in r.iter_lines()]
    record_property("llm.total_s", time.perf_counter() - started)
    assert text
"""

COLLECT_TEST = """
import pytest

PROMPTS = [f"prompt number {{i}}" for i in range({n})]

@pytest.mark.parametrize("prompt", PROMPTS)
def test_prompt(llm, prompt):
    llm.generate(prompt)
"""


@contextlib.contextmanager
def shared_ssl_clients() -> Iterator[None]:
    """Diagnostic: every ``httpx.Client`` made meanwhile defaults to one shared SSL context."""
    context = httpx.create_ssl_context()
    original = httpx.Client.__init__

    def init(self: httpx.Client, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("verify", context)
        original(self, *args, **kwargs)

    httpx.Client.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        httpx.Client.__init__ = original  # type: ignore[method-assign]


def outside_ms(backend: Backend, runs: int = 20) -> tuple[float, float]:
    """In-process medians: ``prepare()`` of a warm model, and ``generate()`` time outside the
    generation's own clock (client set-up, Generation, memory probe), in ms."""
    backend.prepare(Settings(), lambda m: None)
    prepare_ms, generate_ms = [], []
    for _ in range(runs):
        started = time.perf_counter()
        backend.prepare(Settings(), lambda m: None)
        prepare_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        g = backend.generate(MESSAGES, Settings(), Timeouts())
        total = (time.perf_counter() - started) * 1000
        generate_ms.append(total - (g.metrics.total_s or 0) * 1000)
    return median(prepare_ms), median(generate_ms)


def fig_overhead(quick: bool) -> None:
    n = 60 if quick else 200
    print(f"3. harness overhead ({n} items against an instant fake server)")
    kinds = {"llama-server": "llama-server@{url}", "Ollama": "ollama:m@{url}", "bare": ""}
    with tempfile.TemporaryDirectory(prefix="llmbench-bench-") as tmp, FakeServer(tokens=8) as fake:
        root = Path(tmp)
        for kind, spec in kinds.items():
            (root / kind).mkdir()
            test = BARE_TEST.format(n=n, url=fake.url) if not spec else ITEMS_TEST.format(n=n)
            (root / kind / "test_items.py").write_text(test)
        common = ["-q", "--junitxml=junit.xml", "-o", "junit_family=xunit1"]
        walls: dict[str, list[float]] = {k: [] for k in kinds}
        per_item: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(1 if quick else 2):
            for kind, spec in kinds.items():
                args = list(common)
                if spec:
                    args.append(f"--llm-models={spec.format(url=fake.url)}")
                wall, out, code = run_pytest(args, root / kind)
                if code != 0:
                    raise RuntimeError(f"overhead run ({kind}) failed:\n{out[-3000:]}")
                cases = junit_cases(root / kind / "junit.xml")
                assert len(cases) == n, (kind, len(cases))
                walls[kind].append(wall)
                for case in cases:
                    per_item[kind].append(case["time"] - float(case["props"]["llm.total_s"]))
        # Where the time goes, in-process; the Ollama memory probe again with every
        # httpx.Client given one shared SSL context instead of loading certifi's bundle.
        inproc = {
            "llama-server": outside_ms(LlamaServerBackend(parse_spec(f"llama-server@{fake.url}"))),
            "Ollama": outside_ms(OllamaBackend(parse_spec(f"ollama:m@{fake.url}"))),
        }
        with shared_ssl_clients():
            shared = outside_ms(OllamaBackend(parse_spec(f"ollama:m@{fake.url}")))
    bare_ms = median(per_item["bare"]) * 1000
    for kind in ("llama-server", "Ollama"):
        value = median(per_item[kind]) * 1000
        prepare_ms, generate_ms = inproc[kind]
        details = {
            "items": n,
            "wall_s": walls[kind],
            "bare_wall_s": walls["bare"],
            "outside_ms_median": value,
            "bare_pytest_outside_ms_median": bare_ms,
            "warm_prepare_ms_median": prepare_ms,
            "generate_outside_clock_ms_median": generate_ms,
        }
        note = (
            f"median over {n} items (JUnit setup+call+teardown − generation total_s); a bare "
            f"pytest item doing the same request: {bare_ms:.1f} ms; in-process: warm prepare() "
            f"{prepare_ms:.1f} ms, generate() outside its own clock {generate_ms:.1f} ms"
        )
        if kind == "Ollama":
            details["generate_outside_clock_ms_with_shared_ssl_context"] = shared[1]
            note += (
                f" ({shared[1]:.1f} ms when the memory probe's httpx.Client gets a shared SSL "
                f"context: OllamaBackend.memory() builds a client per generation)"
            )
        note += (
            f"; whole run {median(walls[kind]):.1f} s wall vs {median(walls['bare']):.1f} s bare"
        )
        report(
            Figure(
                f"3 per-item time outside generation, {kind} attached",
                value,
                "ms",
                "< 20 ms",
                value < 20,
                note,
                details,
            )
        )

    models, prompts = (30, 100) if quick else (100, 100)
    with tempfile.TemporaryDirectory(prefix="llmbench-collect-") as tmp:
        root = Path(tmp)
        (root / "test_collect.py").write_text(COLLECT_TEST.format(n=prompts))
        specs = ",".join(f"openai:m{i}@http://127.0.0.1:9" for i in range(models))
        walls_c = []
        for _ in range(1 if quick else 3):
            wall, out, code = run_pytest(["--collect-only", "-q", f"--llm-models={specs}"], root)
            if code != 0 or f"{models * prompts} tests collected" not in out:
                raise RuntimeError(f"collection run failed ({code}):\n{out[-2000:]}")
            walls_c.append(wall)
    wall_c = median(walls_c)
    report(
        Figure(
            f"3 collection of {models} models × {prompts} prompts (--collect-only -q)",
            wall_c,
            "s",
            "< 5 s" if not quick else "< 5 s (at 10,000 items)",
            wall_c < 5 * models * prompts / 10_000,
            f"median of {len(walls_c)} subprocess runs, interpreter start included",
            {"walls_s": walls_c, "items": models * prompts},
        )
    )

    fig_leaderboard(10_000)


def synthetic_reports(n: int, models: int) -> tuple[list[str], list[Any]]:
    import pytest

    from pytest_llmbench.records import PROPERTY

    model_ids = [f"openai:m{i}@http://127.0.0.1:9" for i in range(models)]
    reports = []
    for i in range(n):
        model = model_ids[i % models]
        nodeid = f"test_x.py::test_prompt[{model}-prompt {i // models}]"
        gen = {
            "model": model,
            "text": "x",
            "answer": "x",
            "thinking": "",
            "finish_reason": "stop",
            "truncated": False,
            "metrics": {
                "ttft_s": 0.05 + (i % 7) / 100,
                "ttfa_s": 0.05,
                "total_s": 1.0,
                "prompt_tokens": 12,
                "output_tokens": 100 + i % 13,
                "decode_tps": 50.0 + i % 11,
                "server_decode_tps": 50.1 + i % 11,
                "prompt_tps": 300.0,
                "server_prompt_ms": 40.0,
                "server_decode_ms": 1980.0,
            },
            "settings": {},
            "server": {"backend": "openai"},
        }
        record = {
            "model": model,
            "test": f"test_prompt[prompt {i // models}]",
            "settings": {},
            "generations": [gen],
            "judge": [],
            "scores": {"score": float(i % 100)},
            "score": None,
            "load_s": None,
            "error": None,
        }
        phases: tuple[tuple[Literal["setup", "call", "teardown"], dict[str, Any]], ...] = (
            ("setup", {"model": model, "test": record["test"]}),
            ("call", record),
            ("teardown", {"model": model, "test": record["test"]}),
        )
        for when, data in phases:
            outcome: Literal["passed", "failed"] = (
                "failed" if when == "call" and i % 10 == 0 else "passed"
            )
            location = ("test_x.py", 1, "test_prompt")
            rep = pytest.TestReport(nodeid, location, {}, outcome, None, when)
            setattr(rep, PROPERTY, data)
            rep.user_properties.append((PROPERTY, data))
            reports.append(rep)
    return model_ids, reports


def fig_leaderboard(n: int) -> None:
    from pytest_llmbench.leaderboard import Results, render

    model_ids, reports = synthetic_reports(n, 100)
    times: dict[str, list[float]] = {"add": [], "auto": [], "both": []}
    for _ in range(3):
        results = Results(model_ids)
        started = time.perf_counter()
        for rep in reports:
            results.add(rep)
        times["add"].append(time.perf_counter() - started)
        for mode in ("auto", "both"):
            started = time.perf_counter()
            text = render(results, mode, 0)
            times[mode].append(time.perf_counter() - started)
            assert text.count("\n") >= (100 if mode == "auto" else n), mode
    add_s, auto_s, both_s = (median(times[k]) for k in ("add", "auto", "both"))
    report(
        Figure(
            f"3 leaderboard render over {n:,} results (default: per-model table)",
            auto_s,
            "s",
            "< 1 s",
            auto_s < 1,
            f"median of 3; 100 models; feeding {3 * n:,} reports to Results.add took {add_s:.2f} s",
            {"add_s": times["add"], "render_auto_s": times["auto"]},
        )
    )
    report(
        Figure(
            f"3 leaderboard render over {n:,} results (-v / both: + {n:,} item rows)",
            both_s,
            "s",
            "< 1 s",
            both_s < 1,
            "median of 3",
            {"render_both_s": times["both"]},
        )
    )


# --------------------------------------------------------------------------- 4. loads

LOADS_TEST = """
import pytest

@pytest.mark.parametrize("prompt", ["a", "b", "c", "d", "e"])
def test_prompt(llm, prompt):
    assert llm.generate(prompt).text
"""


def fig_loads(quick: bool) -> None:
    print("4. model loads (3 models × 5 prompts)")
    names = ("m1", "m2", "m3")
    with tempfile.TemporaryDirectory(prefix="llmbench-loads-") as tmp:
        root = Path(tmp)
        (root / "test_loads.py").write_text(LOADS_TEST)
        # Ollama: a preload per model is a load.
        with FakeServer(models=names, tokens=8) as fake:
            specs = ",".join(f"ollama:{m}@{fake.url}" for m in names)
            _wall, out, code = run_pytest(["-q", f"--llm-models={specs}"], root)
            loads = {m: fake.counts[f"load {m}"] for m in names}
            unloads = {m: fake.counts[f"unload {m}"] for m in names}
            gens = {m: fake.counts[f"generate {m}"] for m in names}
        ok = code == 0 and all(v == 1 for v in loads.values())
        report(
            Figure(
                "4 Ollama: preloads per model (3 models × 5 prompts)",
                max(loads.values()),
                "loads",
                "1 per model",
                ok,
                f"preloads {loads}, unloads {unloads}, generations {gens}; pytest exit {code}",
                {"loads": loads, "unloads": unloads, "generations": gens},
            )
        )
        # llama-server spawned on a GGUF: a spawn is a load (a fake binary counts them).
        spawn_log = root / "spawns.log"
        binary = root / "llama-server"
        binary.write_text(f'#!/bin/sh\nexec "{PY}" "{HERE / "fakes.py"}" llama-bin "$@"\n')
        binary.chmod(0o755)
        for m in names:
            (root / f"{m}.gguf").write_bytes(b"GGUF" + bytes(60))
        os.environ["LLMBENCH_FAKE_SPAWN_LOG"] = str(spawn_log)
        try:
            results = {}
            for workers in [0] if quick else [0, 2]:
                spawn_log.write_text("")
                args = [
                    "-q",
                    f"--llm-models={','.join(f'llama-server:{m}.gguf' for m in names)}",
                    f"--llm-llama-server-bin={binary}",
                    f"--llm-log-dir={root / 'logs'}",
                ]
                if workers:
                    args += ["-n", str(workers), "--dist", "loadgroup"]
                _wall, out, code = run_pytest(args, root)
                lines = spawn_log.read_text().split()
                spawns = {m: sum(1 for w in lines if w.endswith(f"{m}.gguf")) for m in names}
                results[workers] = (spawns, code, out)
        finally:
            os.environ.pop("LLMBENCH_FAKE_SPAWN_LOG", None)
        for workers, (spawns, code, out) in results.items():
            ok = code == 0 and all(v == 1 for v in spawns.values())
            label = f"-n {workers} --dist loadgroup" if workers else "no xdist"
            report(
                Figure(
                    f"4 llama-server spawns per model, {label}",
                    max(spawns.values()),
                    "spawns",
                    "1 per model",
                    ok,
                    f"spawns {spawns}; pytest exit {code}"
                    + ("" if code == 0 else f": {out.strip().splitlines()[-1][:200]}"),
                    {"spawns": spawns},
                )
            )


# --------------------------------------------------------------------------- 5. sandbox


def fig_sandbox(quick: bool) -> None:
    print("5. sandbox cost")
    name = "5 sandbox: one functional step over bare `python -I -c pass`"
    try:
        with contextlib.suppress(ImportError):  # checks imports the sandbox: load it first
            importlib.import_module("pytest_llmbench.checks")
        sandbox = importlib.import_module("pytest_llmbench.sandbox")
        run_program, step_type = sandbox.run_program, sandbox.Step
    except (ImportError, AttributeError) as exc:
        report(
            Figure(name, None, "ms", "< 100 ms", None, f"skipped: no sandbox.run_program ({exc})")
        )
        return
    program = "print('ok')\n"

    def step() -> Any:
        result = run_program(program, [step_type(args=(), stdout="ok")])
        if not getattr(result, "passed", True):
            raise RuntimeError(f"the trivial program did not pass: {result}")
        return result

    def bare() -> None:
        subprocess.run([PY, "-I", "-c", "pass"], check=True)

    def plain() -> None:
        subprocess.run([PY, "-c", "pass"], check=True)

    sandbox_s: list[float] = []
    bare_s: list[float] = []
    plain_s: list[float] = []
    try:
        step()
        bare()
        for i in range(5 if quick else 15):
            for which in ("s", "b") if i % 2 == 0 else ("b", "s"):
                started = time.perf_counter()
                step() if which == "s" else bare()
                (sandbox_s if which == "s" else bare_s).append(time.perf_counter() - started)
            started = time.perf_counter()
            plain()
            plain_s.append(time.perf_counter() - started)
    except Exception as exc:
        signature = inspect.signature(run_program)
        report(
            Figure(name, None, "ms", "< 100 ms", None, f"skipped: run_program{signature}: {exc!r}")
        )
        return
    over = (median(sandbox_s) - median(bare_s)) * 1000
    report(
        Figure(
            name,
            over,
            "ms",
            "< 100 ms",
            over < 100,
            f"run_program(print('ok'), one Step) {median(sandbox_s) * 1000:.1f} ms vs "
            f"`python -I -c pass` {median(bare_s) * 1000:.1f} ms (the sandbox runs python -I; "
            f"plain `python -c pass` in this venv: {median(plain_s) * 1000:.1f} ms); medians "
            f"of {len(bare_s)}, alternating",
            {"sandbox_ms": [x * 1000 for x in sandbox_s], "bare_ms": [x * 1000 for x in bare_s]},
        )
    )


# --------------------------------------------------------------------------- 6. scale-out

SCALE_TEST = """
import pytest

@pytest.mark.parametrize("prompt", [f"p{{i}}" for i in range({k})])
def test_prompt(llm, prompt):
    assert llm.generate(prompt).metrics.output_tokens == {tokens}
"""


def _run_on_servers(
    root: Path, n: int, rate: float, tokens: int, models: Callable[[list[str]], str]
) -> tuple[float, list[dict[str, Any]], list[int]]:
    """``pytest -n N --dist loadgroup`` in ``root`` against N fake servers streaming at
    ``rate``; ``models`` turns their URLs into the --llm-models value. Returns the wall time,
    the JUnit cases and the generations each server served."""
    with contextlib.ExitStack() as stack:
        fakes = [stack.enter_context(FakeServer(tokens=tokens, rate=rate)) for _ in range(n)]
        args = ["-q", f"--llm-models={models([f.url for f in fakes])}", "--junitxml=junit.xml"]
        args += ["-n", str(n), "--dist", "loadgroup"]
        wall, out, code = run_pytest(args, root, timeout=600)
        if code != 0:
            raise RuntimeError(f"run on {n} server(s) failed:\n{out[-3000:]}")
        cases = junit_cases(root / "junit.xml")
        return wall, cases, [f.counts["POST /v1/chat/completions"] for f in fakes]


def fig_scaleout(quick: bool) -> None:
    rate, tokens = 50.0, 100
    k = 3 if quick else 6
    ns = [1, 2, 4]
    print(f"6. scale-out (N servers at {rate:.0f} tok/s, {tokens} tokens per reply, {k} prompts)")
    rows: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="llmbench-scale-") as tmp:
        root = Path(tmp)
        (root / "test_scale.py").write_text(SCALE_TEST.format(k=k, tokens=tokens))
        for n in ns:
            wall, cases, per_server = _run_on_servers(
                root, n, rate, tokens, lambda urls: ",".join(f"llama-server@{u}" for u in urls)
            )
            gen = [float(c["props"].get("llm.total_s") or 0) for c in cases]
            tps = [float(c["props"].get("llm.decode_tps") or 0) for c in cases]
            rows[n] = {
                "wall_s": wall,
                "items": len(cases),
                "items_per_s": len(cases) / wall,
                "tokens_per_s": len(cases) * tokens / wall,
                "generation_s_sum": sum(gen),
                "busy_fraction": sum(gen) / (n * wall),
                "client_decode_tps_median": median(tps),
                "client_decode_tps_min": min(tps),
                "generations_per_server": per_server,
            }
    base = rows[1]["tokens_per_s"]
    for n, row in rows.items():
        speedup = row["tokens_per_s"] / base
        fixed = row["wall_s"] - k * tokens / rate
        report(
            Figure(
                f"6 scale-out N={n} (-n {n} --dist loadgroup, {n} × {k} items)",
                row["tokens_per_s"],
                "tok/s",
                f"report; ideal speed-up ×{n}",
                None,
                f"speed-up ×{speedup:.2f} vs N=1; {row['items_per_s']:.2f} items/s, wall "
                f"{row['wall_s']:.1f} s of which {fixed:.1f} s is not streaming (start, "
                f"{n} worker(s), collection, teardown), generation "
                f"busy {row['busy_fraction']:.0%} of N × wall, client decode tok/s median "
                f"{row['client_decode_tps_median']:.2f} (min {row['client_decode_tps_min']:.2f}, "
                f"servers stream 50), generations per server {row['generations_per_server']}",
                row | {"speedup": speedup, "fixed_s": fixed},
            )
        )
    fig_scaleout_pool(rate, tokens, k, base)
    if not quick:
        fig_parallel_real()


def fig_scaleout_pool(rate: float, tokens: int, k: int, base_tps: float) -> None:
    """One model on a pool of N endpoints (``@URL1+...+URLN``): N × k items, one row."""
    with tempfile.TemporaryDirectory(prefix="llmbench-pool-") as tmp:
        root = Path(tmp)
        for n in (2, 4):
            (root / "test_scale.py").write_text(SCALE_TEST.format(k=k * n, tokens=tokens))
            wall, cases, per_server = _run_on_servers(
                root, n, rate, tokens, lambda urls: "llama-server@" + "+".join(urls)
            )
            tps = len(cases) * tokens / wall
            report(
                Figure(
                    f"6 scale-out, one model on a pool of N={n} (-n {n}, {n * k} items)",
                    tps,
                    "tok/s",
                    f"report; ideal speed-up ×{n}",
                    None,
                    f"speed-up ×{tps / base_tps:.2f} vs one server; wall {wall:.1f} s; "
                    f"generations per endpoint {per_server}; one leaderboard row",
                    {"wall_s": wall, "items": len(cases), "per_server": per_server},
                )
            )


PARALLEL_TEST = """
import pytest

@pytest.mark.llm(max_tokens=16)
@pytest.mark.parametrize("prompt", ["Tell a story.", "Describe the sea."])
def test_prompt(llm, prompt):
    assert llm.generate(prompt).metrics.output_tokens
"""


def fig_parallel_real() -> None:
    """Two real llama-servers on this machine, one after the other vs side by side."""
    try:
        from pytest_llmbench.tools.default_model import embedded_model_path
        from pytest_llmbench.tools.llama_server import find_llama_server

        gguf = embedded_model_path()
        if find_llama_server() is None:
            raise RuntimeError("no llama-server binary")
    except Exception as exc:
        report(
            Figure("6 two real llama-servers side by side", None, "", "-", None, f"skipped: {exc}")
        )
        return
    rows = {}
    threads = max(1, (os.cpu_count() or 2) // 2)
    with tempfile.TemporaryDirectory(prefix="llmbench-parallel-") as tmp:
        root = Path(tmp)
        (root / "test_parallel.py").write_text(PARALLEL_TEST)
        (root / "copy.gguf").symlink_to(gguf)
        for run in ("-n 1", "-n 2", f"-n 2 -t {threads}"):
            n = int(run.split()[1])
            args = [
                "-q",
                "--llm-models=llama-server:gemma3-270m,llama-server:copy.gguf",
                "--llm-ctx=2048",
                "--junitxml=junit.xml",
                "-n",
                str(n),
                "--dist",
                "loadgroup",
            ]
            if "-t" in run:
                args.append(f"--llm-server-args=-t {threads}")
            try:
                wall, out, code = run_pytest(args, root, timeout=240)
            except subprocess.TimeoutExpired:
                rows[run] = {"wall_s": 240.0, "decode_tps_median": 0.0, "server_tps": 0.0}
                continue
            if code != 0:
                raise RuntimeError(f"parallel real run {run} failed:\n{out[-3000:]}")
            cases = junit_cases(root / "junit.xml")
            tps = [float(c["props"].get("llm.decode_tps") or 0) for c in cases]
            srv = [float(c["props"].get("llm.server_decode_tps") or 0) for c in cases]
            rows[run] = {
                "wall_s": wall,
                "decode_tps_median": median(tps),
                "server_tps": median(srv),
            }
    base = rows["-n 1"]["decode_tps_median"]
    text = "; ".join(
        f"{run}: {row['decode_tps_median']:.1f} tok/s (server {row['server_tps']:.1f}), wall "
        f"{row['wall_s']:.1f} s"
        for run, row in rows.items()
    )
    for run in list(rows)[1:]:
        report(
            Figure(
                f"6 two real llama-servers side by side ({run}): decode tok/s ÷ one at a time",
                rows[run]["decode_tps_median"] / base,
                "ratio",
                "report (1.0 = undisturbed)",
                None,
                f"gemma3-270m and a copy, 2 × 2 items of 16 tokens, {os.cpu_count()} cores; {text}",
                rows,
            )
        )


# --------------------------------------------------------------------------- main

ALL: dict[int, Callable[[bool], None]] = {
    1: fig_throughput,
    2: fig_fidelity,
    3: fig_overhead,
    4: fig_loads,
    5: fig_sandbox,
    6: fig_scaleout,
}


def markdown(figures: list[Figure], info: dict[str, Any]) -> str:
    lines = [
        f"Measured on {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"{info['date'][:10]} (`python benchmarks/run.py`).",
        "",
        "| figure | value | target | met |",
        "|---|---|---|---|",
    ]
    for f in figures:
        value = "-" if f.value is None else f"{fmt(f.value)} {f.unit}"
        met = {True: "yes", False: "**no**", None: "skipped" if f.value is None else "n/a"}[f.met]
        lines.append(f"| {f.figure} | {value} | {f.target} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (~2 minutes)")
    parser.add_argument("--only", default="", help="comma-separated figure numbers, e.g. 1,3")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = parser.parse_args(argv)
    wanted = [int(x) for x in args.only.split(",") if x.strip()] or list(ALL)
    out = args.out or (HERE / "results.json" if not args.only else None)
    info = machine()
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"load {info['load_average_at_start']}"
    )
    if info["other_model_servers_at_start"]:
        print(f"warning: model servers already running: {info['other_model_servers_at_start']}")
    started = time.perf_counter()
    for number in wanted:
        t0 = time.perf_counter()
        ALL[number](args.quick)
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    info["duration_s"] = round(time.perf_counter() - started, 1)
    info["quick"] = args.quick
    print()
    print(markdown(FIGURES, info))
    if out is not None:
        data = {"machine": info, "figures": [asdict(f) for f in FIGURES]}
        out.write_text(json.dumps(data, indent=2, default=str) + "\n")
        print(f"\nwrote {out}")
    missed = [f.figure for f in FIGURES if f.met is False]
    print(f"{len(FIGURES)} figures, {len(missed)} missed, {info['duration_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
