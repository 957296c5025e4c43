"""Time limits that hold while a server keeps the connection alive, the client-side output
cap, transport errors by family, redirects, and wrong-typed server values: each ends the
item as an error that names what happened, the partial answer kept (FakeLlamaServer)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fakes import FakeLlamaServer, ModelScript
from fakes._common import Request, Responder
from pytest_llmbench.errors import LLMBenchError, ServerError, StreamError
from pytest_llmbench.serve.backends.base import Timeouts
from pytest_llmbench.serve.backends.llama_cpp import LlamaServerBackend
from pytest_llmbench.serve.backends.openai_compat import OpenAIBackend
from pytest_llmbench.serve.generation import Settings
from pytest_llmbench.serve.server_info import ServerOptions
from pytest_llmbench.serve.specs import parse_spec
from tests.fixtures.fakes import StartLlamaServer

HI = [{"role": "user", "content": "Say hi"}]
TOKENS = ["Hel", "lo", " there", "!"]


def attach(url: str) -> LlamaServerBackend:
    backend = LlamaServerBackend(parse_spec(f"llama-server@{url}"))
    backend.base_url = url
    return backend


def generate_error(url: str, timeouts: Timeouts, settings: Settings | None = None) -> StreamError:
    with pytest.raises(StreamError) as info:
        attach(url).generate(HI, settings or Settings(), timeouts)
    return info.value


# -- time limits -------------------------------------------------------------------------


def test_stall_limit_fires_although_pings_keep_the_connection_alive(
    fake_llama_server: StartLlamaServer,
) -> None:
    # The old read timeout never fired: a ping every 0.05 s reset it for the whole stall.
    script = ModelScript(TOKENS, fault="stall", fault_after=2, stall_s=60)
    srv = fake_llama_server(script, sse_ping_interval=0.05)
    started = time.monotonic()
    exc = generate_error(srv.url, Timeouts(read_s=1.0))
    elapsed = time.monotonic() - started
    assert elapsed < 20  # not the 60 s stall
    message = str(exc)
    assert "stall limit: no new token for 1 s (after token 2)" in message
    assert "the connection stayed open" in message and "partial answer kept" in message
    assert exc.partial is not None and exc.partial.text == "Hello"  # partial answer kept
    assert exc.partial.metrics.ttft_s is not None


def test_stall_limit_counts_from_the_request_while_the_prompt_is_processed(
    fake_llama_server: StartLlamaServer,
) -> None:
    # Headers at once, then only pings for the 60 s of "prompt processing".
    srv = fake_llama_server(ModelScript(TOKENS, prompt_delay_s=60), sse_ping_interval=0.05)
    started = time.monotonic()
    exc = generate_error(srv.url, Timeouts(read_s=1.0))
    assert time.monotonic() - started < 20
    assert "no new token for 1 s (before the first token)" in str(exc)
    assert exc.partial is not None and exc.partial.text == ""


def test_total_limit_ends_a_stream_that_keeps_sending_tokens(
    fake_llama_server: StartLlamaServer,
) -> None:
    script = ModelScript(["x"] * 400, token_delay_s=0.02)  # 8 s of steady tokens
    srv = fake_llama_server(script)
    started = time.monotonic()
    exc = generate_error(srv.url, Timeouts(read_s=30, total_s=1.0))
    assert time.monotonic() - started < 6
    assert "total time limit of 1 s reached (--llm-timeout)" in str(exc)
    assert exc.partial is not None and exc.partial.text.startswith("x")


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers (no headers, no bytes)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_total_limit_covers_a_server_that_never_sends_headers(silent_server: str) -> None:
    started = time.monotonic()
    exc = generate_error(silent_server, Timeouts(read_s=60, total_s=1.0))
    assert time.monotonic() - started < 10  # not the 60 s read timeout
    assert "total time limit of 1 s reached" in str(exc) and "after 0 token(s)" in str(exc)


def test_limits_are_item_errors_naming_the_limit(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_f="def test_answer(llm):\n    assert llm.generate('Say hi').answer\n")
    script = ModelScript(TOKENS, fault="stall", fault_after=1, stall_s=60)
    srv = fake_llama_server(script, sse_ping_interval=0.05)
    result = pytester.runpytest(
        f"--llm-models=llama-server@{srv.url}", "--llm-timeout=1", "--llm-read-timeout=30"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*StreamError: *total time limit of 1 s reached*"])


# -- output cap --------------------------------------------------------------------------


def test_a_server_that_ignores_max_tokens_is_stopped_by_the_token_cap(
    fake_llama_server: StartLlamaServer,
) -> None:
    srv = fake_llama_server(ModelScript(["x"] * 200), ignore_max_tokens=True)
    exc = generate_error(srv.url, Timeouts(), Settings(max_tokens=4))
    assert "ignored the output cap: 21 tokens streamed for max_tokens=4" in str(exc)
    assert exc.partial is not None and exc.partial.text == "x" * 21


def test_the_byte_cap_stops_reading_a_huge_reply(fake_llama_server: StartLlamaServer) -> None:
    # 2 tokens allowed: the client reads ~1.1 MB, never the 30 MB the server sends.
    huge = ["y" * 3_000_000] * 10
    srv = fake_llama_server(ModelScript(huge), ignore_max_tokens=True)
    exc = generate_error(srv.url, Timeouts(), Settings(max_tokens=2))
    assert "ignored the output cap: more than 1,122,304 bytes streamed" in str(exc)


# -- transport errors, redirects -----------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        httpx.WriteTimeout("write timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.WriteError("broken pipe"),
        httpx.LocalProtocolError("illegal header"),
        httpx.PoolTimeout("pool"),
        httpx.ProxyError("proxy said no"),
        httpx.UnsupportedProtocol("gopher"),
        httpx.DecodingError("bad gzip"),
        httpx.TooManyRedirects("loop"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_httpx_error_is_an_item_error_naming_the_server(
    monkeypatch: pytest.MonkeyPatch, error: httpx.HTTPError
) -> None:
    def fail(self: Any, request: httpx.Request) -> httpx.Response:
        raise error

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", fail)
    backend = attach("http://127.0.0.1:9")
    with pytest.raises(LLMBenchError) as info:
        backend.generate(HI, Settings(), Timeouts())
    assert "http://127.0.0.1:9/v1/chat/completions" in str(info.value)
    assert type(error).__name__ in str(info.value)


class RedirectingServer(FakeLlamaServer):
    def handle(self, req: Request, resp: Responder) -> None:
        if req.method == "POST":
            resp.send(307, b"", "text/plain", (("Location", "https://elsewhere/v1/x"),))
        else:
            super().handle(req, resp)


def test_a_redirect_is_named_as_a_redirect() -> None:
    with RedirectingServer(ModelScript(TOKENS)) as srv, pytest.raises(ServerError) as info:
        attach(srv.url).generate(HI, Settings(), Timeouts())
    assert "redirected (HTTP 307) to https://elsewhere/v1/x" in str(info.value)


# -- values of the wrong type --------------------------------------------------------------


def _set(path: str, value: Any) -> Any:
    """A tamper function that sets ``path`` (dotted) in the event that has its parent."""
    *parents, key = path.split(".")

    def tamper(event: dict[str, Any]) -> dict[str, Any]:
        node: Any = event
        for part in parents:
            if not isinstance(node, dict) or part not in node:
                return event
            node = node[part]
        node[key] = value
        return event

    return tamper


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("timings.predicted_per_second", "fast", "timings.predicted_per_second = 'fast'"),
        ("usage.completion_tokens", "5", "usage.completion_tokens = '5'"),
        ("usage.prompt_tokens", -3, "usage.prompt_tokens = -3"),
        ("timings.prompt_ms", True, "timings.prompt_ms = True"),
        ("timings", [1, 2], "event.timings = [1, 2]"),
        ("system_fingerprint", 7, "event.system_fingerprint = 7"),
    ],
)
def test_a_wrong_typed_value_is_an_item_error_naming_field_and_value(
    path: str, value: Any, named: str, fake_llama_server: StartLlamaServer
) -> None:
    srv = fake_llama_server(ModelScript(TOKENS), tamper=_set(path, value))
    exc = generate_error(srv.url, Timeouts())
    assert named in str(exc), str(exc)


def test_wrong_typed_content_is_named(fake_llama_server: StartLlamaServer) -> None:
    def tamper(event: dict[str, Any]) -> dict[str, Any]:
        for choice in event.get("choices") or []:
            if choice["delta"].get("content") == "lo":
                choice["delta"]["content"] = 5
        return event

    srv = fake_llama_server(ModelScript(TOKENS), tamper=tamper)
    exc = generate_error(srv.url, Timeouts())
    assert "choices[0].delta.content = 5, expected a string" in str(exc)
    assert exc.partial is not None and exc.partial.text == "Hel"


def test_a_wrong_typed_figure_never_breaks_the_session_end(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_f="def test_answer(llm):\n    assert llm.generate('Say hi').answer\n")
    tamper = _set("timings.predicted_per_second", "fast")
    srv = fake_llama_server(ModelScript(TOKENS), tamper=tamper)
    result = pytester.runpytest(f"--llm-models=llama-server@{srv.url}", "--llm-json=r.json")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*timings.predicted_per_second = 'fast'*", "*llmbench leaderboard*"]
    )
    assert json.loads((pytester.path / "r.json").read_text())["items"]


# -- llama-server facts ----------------------------------------------------------------------


def test_a_one_token_answer_has_no_server_decode_rate(fake_llama_server: StartLlamaServer) -> None:
    # llama-server reports predicted_per_second = 0.0 for n <= 1: "not reported", not 0.
    srv = fake_llama_server(ModelScript(TOKENS))
    one = attach(srv.url).generate(HI, Settings(max_tokens=1), Timeouts())
    many = attach(srv.url).generate(HI, Settings(), Timeouts())
    assert one.metrics.output_tokens == 1 and one.metrics.server_decode_tps is None
    assert many.metrics.server_decode_tps is not None and many.metrics.server_decode_tps > 0


def test_attaching_to_a_loading_server_waits_for_it(fake_llama_server: StartLlamaServer) -> None:
    # llama-server answers 503 on every route while loading, /v1/models included.
    srv = fake_llama_server(ModelScript(TOKENS), loading_s=0.5, alias="m")
    backend = OpenAIBackend(parse_spec(f"openai:m@{srv.url}"), ServerOptions(health_timeout_s=30))
    backend.prepare(Settings(), lambda _m: None)
    assert backend.generate(HI, Settings(), Timeouts()).answer == "Hello there!"
    srv = fake_llama_server(ModelScript(TOKENS), loading_s=float("inf"))
    backend = OpenAIBackend(parse_spec(f"openai:m@{srv.url}"), ServerOptions(health_timeout_s=0.5))
    with pytest.raises(ServerError, match=r"still answered HTTP 503 after 0.5 s"):
        backend.prepare(Settings(), lambda _m: None)
