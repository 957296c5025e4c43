"""Failing servers and malformed streams: one clear message naming the model, the item
errors (never fails), partial metrics kept, the run goes on and the leaderboard prints."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from tests.scripted import ScriptedServer, jsonr, llama_routes, sse_tokens

TEST = """
def test_answer(llm):
    answer = llm.generate("Say hi")
    assert answer.answer

def test_second(llm):
    assert llm.generate("Again").answer
"""

TOKENS = ["Hel", "lo", " there", "!"]


def run(pytester: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_f=TEST)
    return pytester.runpytest(f"--llm-models=llama-server@{url}", "--llm-json=r.json", *args)


def records(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    return [i["record"] for i in json.loads((pytester.path / "r.json").read_text())["items"]]


def serve(stream: Callable[[dict[str, Any] | None], Iterable[bytes]]) -> ScriptedServer:
    return ScriptedServer(llama_routes(stream))


def test_healthy_stream_metrics_and_thinking(pytester: pytest.Pytester) -> None:
    with serve(lambda b: sse_tokens(TOKENS, reasoning=["hmm", " ok"], delay=0.01)) as srv:
        result = run(pytester, srv.url)
    result.assert_outcomes(passed=2)
    gen = records(pytester)[0]["generations"][0]
    assert (gen["answer"], gen["thinking"], gen["finish_reason"]) == (
        "Hello there!",
        "hmm ok",
        "stop",
    )
    m = gen["metrics"]
    assert m["output_tokens"] == 6 and m["thinking_tokens"] == 2 and m["prompt_tokens"] == 7
    assert 0 < m["ttft_s"] < m["ttfa_s"] < m["total_s"]
    assert m["decode_tps"] == pytest.approx(m["server_decode_tps"], rel=0.25)
    body = srv.posts("/v1/chat/completions")[0]
    assert body is not None and body["cache_prompt"] is False and body["max_tokens"] == 16384
    assert body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.0 and body["seed"] == 42


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            {"cut_after": 2},
            "*StreamError: llama-server@http*: the stream ended without [[]DONE[]]*",
        ),
        ({"error_after": 2}, "*StreamError: *error mid-stream: model crashed*"),
        ({"garbage_after": 1}, "*StreamError: *malformed SSE line from the server: '{not json'*"),
        (
            {"stall_after": 2, "stall_s": 5},
            "*StreamError: *no data for 1.0 s (stalled stream after the first token)*",
        ),
    ],
)
def test_stream_faults_error_the_item_and_keep_partial_metrics(
    pytester: pytest.Pytester, fault: dict[str, Any], message: str
) -> None:
    calls: list[int] = []

    def stream(_body: dict[str, Any] | None) -> Iterable[bytes]:
        calls.append(1)
        return sse_tokens(TOKENS, **fault) if len(calls) == 1 else sse_tokens(TOKENS)

    with serve(stream) as srv:
        result = run(pytester, srv.url, "--llm-read-timeout=1")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([message])
    result.stdout.fnmatch_lines(
        ["*llmbench leaderboard*", "*| llama-server@http*| 2 *| 1 *| 0 *| 1 *"]
    )
    first = records(pytester)[0]
    assert first["error"]
    if "garbage_after" not in fault:
        assert first["generations"][0]["metrics"]["ttft_s"] > 0  # partial figures kept


def test_connection_refused_is_a_setup_error_with_the_fix(pytester: pytest.Pytester) -> None:
    result = run(pytester, "http://127.0.0.1:9")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*ServerError: llama-server@http://127.0.0.1:9: cannot reach http://127.0.0.1:9/health*"]
    )
    result.stdout.fnmatch_lines(["*(failed earlier in this run)*"])  # the second fails fast


def test_wrong_port_serving_html(pytester: pytest.Pytester) -> None:
    with ScriptedServer({}) as srv:
        result = run(pytester, srv.url)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*/health answered HTTP 404 (text/html)*Is this the right server and port?*"]
    )


def test_context_overflow_is_named(pytester: pytest.Pytester) -> None:
    error = {
        "error": {
            "code": 400,
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 9000,
            "n_ctx": 4096,
            "message": "request (9000 tokens) exceeds the available "
            "context size (4096 tokens), try increasing it",
        }
    }
    routes = llama_routes(lambda b: sse_tokens(TOKENS))
    routes["POST /v1/chat/completions"] = lambda _b: jsonr(error, 400)
    with ScriptedServer(routes) as srv:
        result = run(pytester, srv.url)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*RequestRejected: *rejected the request with HTTP 400*exceeds the available context size*"
        ]
    )


def test_zero_tokens_reply(pytester: pytest.Pytester) -> None:
    with serve(lambda b: sse_tokens([])) as srv:
        result = run(pytester, srv.url)
    result.assert_outcomes(failed=2)  # the model answered nothing: a real (model) failure
    gen = records(pytester)[0]["generations"][0]
    assert gen["answer"] == "" and gen["metrics"]["output_tokens"] == 0
    assert gen["metrics"]["ttft_s"] is None and gen["metrics"]["decode_tps"] is None


def test_length_finish_is_truncation(pytester: pytest.Pytester) -> None:
    with serve(lambda b: sse_tokens(TOKENS, finish="length")) as srv:
        run(pytester, srv.url)
    gen = records(pytester)[0]["generations"][0]
    assert gen["truncated"] is True
