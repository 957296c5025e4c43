"""The time limits against the real llama-server (gemma3-270m): a ~6,000-word prompt with
``"sse_ping_interval": 1`` gets its 200 headers at once, then only ``:`` pings while the
prompt is processed (tens of seconds on 2 cores) -- the case where a read timeout never
fires. Both limits must end the generation anyway, naming which one fired."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_llmbench.errors import StreamError
from pytest_llmbench.serve.backends.base import Messages, Timeouts
from pytest_llmbench.serve.backends.llama_cpp import LlamaServerBackend
from pytest_llmbench.serve.backends.openai_compat import OpenAIBackend
from pytest_llmbench.serve.generation import Settings
from pytest_llmbench.serve.processes import ServerProcess, free_port
from pytest_llmbench.serve.server_info import ServerOptions
from pytest_llmbench.serve.specs import parse_spec

pytestmark = pytest.mark.real_server

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "old",
    "men",
    "sing",
]
LONG = [{"role": "user", "content": " ".join(WORDS[i % len(WORDS)] for i in range(6000))}]
SETTINGS = Settings(ctx=16384, max_tokens=8)


class PingingBackend(LlamaServerBackend):
    """Asks the server for an SSE ping after every second of silence."""

    def request_body(self, messages: Messages, settings: Settings) -> dict[str, Any]:
        return {**super().request_body(messages, settings), "sse_ping_interval": 1}


@pytest.fixture(scope="module")
def backend(llama_server_bin: Path, gemma_gguf: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    options = ServerOptions(
        llama_server_bin=str(llama_server_bin),
        health_timeout_s=120,
        log_dir=str(tmp_path_factory.mktemp("logs")),
    )
    backend = PingingBackend(parse_spec("llama-server:gemma3-270m"), options)
    backend.prepare(SETTINGS, lambda _m: None)
    yield backend
    backend.release()


def test_real_server_sends_headers_then_pings_while_it_reads_the_prompt(
    backend: PingingBackend,
) -> None:
    body = backend.request_body(LONG, SETTINGS)
    started = time.monotonic()
    seen: list[tuple[float, str]] = []
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", backend.generate_url(), json=body) as response,
    ):
        headers_s = time.monotonic() - started
        for line in response.iter_lines():
            seen.append((time.monotonic() - started, line))
            if sum(1 for _, text in seen if text == ":") >= 2:
                break
    assert response.status_code == 200 and headers_s < 5, headers_s
    lines = [text for _, text in seen if text]
    assert lines[:2] == [":", ":"], lines  # pings before any token: the prompt is being read


def _wait_idle(backend: PingingBackend) -> None:
    """Until no slot is processing: a request given up on is cancelled only between prompt
    batches, and a request queued behind it gets no headers and no pings meanwhile."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        slots = httpx.get(f"{backend.base_url}/slots", timeout=10)
        if slots.status_code != 200 or not any(s.get("is_processing") for s in slots.json()):
            return
        time.sleep(0.2)


def _request_s(exc: StreamError) -> float:
    """Request sent -> given up, from the partial generation (a spawned server first waits
    for its machine-wide turn at generating, which the limits do not count)."""
    assert exc.partial is not None and exc.partial.metrics.total_s is not None
    return float(exc.partial.metrics.total_s)


def test_real_stall_limit_fires_while_the_server_pings(backend: PingingBackend) -> None:
    _wait_idle(backend)
    with pytest.raises(StreamError) as info:
        backend.generate(LONG, SETTINGS, Timeouts(read_s=3))
    assert 3 <= _request_s(info.value) < 15
    message = str(info.value)
    assert "stall limit: no new token for 3 s (before the first token)" in message
    assert "the connection stayed open" in message


def test_real_total_limit_fires_while_the_server_pings(backend: PingingBackend) -> None:
    _wait_idle(backend)
    with pytest.raises(StreamError) as info:
        backend.generate(LONG, SETTINGS, Timeouts(read_s=300, total_s=3))
    assert 3 <= _request_s(info.value) < 15
    assert "total time limit of 3 s reached (--llm-timeout) after 0 token(s)" in str(info.value)


def test_real_one_token_answer_has_no_server_decode_rate(backend: PingingBackend) -> None:
    short = [{"role": "user", "content": "Count to ten."}]
    one = backend.generate(short, Settings(ctx=16384, max_tokens=1), Timeouts())
    assert one.metrics.output_tokens == 1
    assert one.metrics.server_decode_tps is None  # the server wrote 0.0: not reported
    many = backend.generate(short, Settings(ctx=16384, max_tokens=16), Timeouts())
    m = many.metrics
    assert m.itl_p50_s is not None and m.itl_max_s is not None
    assert 0 < m.itl_p50_s <= m.itl_max_s


def test_openai_attach_to_a_loading_real_server_waits(
    llama_server_bin: Path, gemma_gguf: Path, tmp_path: Path
) -> None:
    port = free_port()
    process = ServerProcess(
        [str(llama_server_bin), "-m", str(gemma_gguf), "--port", str(port), "-c", "512",
         "-np", "1", "-a", "gemma"],
        tmp_path / "server.log",
        "gemma",
    )  # fmt: skip
    try:
        backend = OpenAIBackend(
            parse_spec(f"openai:gemma@http://127.0.0.1:{port}"), ServerOptions(health_timeout_s=120)
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # attach while it answers 503 "Loading model"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 503:
                    break
            except httpx.HTTPError:
                time.sleep(0.01)
        backend.prepare(Settings(ctx=512), lambda _m: None)
        answer = backend.generate(
            [{"role": "user", "content": "Hi"}], Settings(ctx=512, max_tokens=4), Timeouts()
        )
        assert answer.metrics.output_tokens
    finally:
        process.stop()
