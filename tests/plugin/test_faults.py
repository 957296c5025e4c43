"""Failing llama-servers and malformed streams (FakeLlamaServer): one clear message naming
the model, the item errors (never fails), partial metrics kept, the leaderboard prints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fakes import ModelScript
from tests.fixtures.fakes import StartLlamaServer

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


def test_healthy_stream_metrics_and_thinking(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    script = ModelScript(TOKENS, thinking=["hmm", " ok"], token_delay_s=0.03, prompt_eval_count=7)
    srv = fake_llama_server(script, sse_ping_interval=0.01)  # pings between tokens
    result = run(pytester, srv.url)
    body = srv.calls("POST", "/v1/chat/completions")[0]
    result.assert_outcomes(passed=2)
    gen = records(pytester)[0]["generations"][0]
    assert (gen["answer"], gen["thinking"], gen["finish_reason"]) == (
        "Hello there!",
        "hmm ok",
        "stop",
    )
    m = gen["metrics"]
    assert m["output_tokens"] == 7  # 2 thinking + 4 answer + the end-of-sequence token
    assert m["thinking_tokens"] == 2 and m["prompt_tokens"] == 7
    assert 0 < m["ttft_s"] < m["ttfa_s"] < m["total_s"]
    assert m["decode_tps"] == pytest.approx(m["server_decode_tps"], rel=0.3)
    assert gen["server"]["build"] == "b7000-abc"
    assert body["cache_prompt"] is False and body["max_tokens"] == 16384
    assert body["n_predict"] == 16384 and body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.0 and body["seed"] == 42


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            "cut",
            "*StreamError: llama-server@http*: the server cut the stream after 2 token(s) (*; http*/v1/chat/completions)*",
        ),
        ("error_midstream", "*StreamError: *error mid-stream: Context size has been exceeded.*"),
        ("garbage", "*StreamError: *malformed SSE line from the server*"),
        ("stall", "*StreamError: *stall limit: no new token for 1 s (after token 2)*"),
    ],
)
def test_stream_faults_error_the_items_and_keep_partial_metrics(
    pytester: pytest.Pytester, fault: str, message: str, fake_llama_server: StartLlamaServer
) -> None:
    script = ModelScript(TOKENS, fault=fault, fault_after=2, stall_s=5)
    srv = fake_llama_server(script)
    result = run(pytester, srv.url, "--llm-read-timeout=1")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([message])
    result.stdout.fnmatch_lines(
        ["*llmbench leaderboard*", "| llama-server@:* | 2 | 0 * | 0 * | 2 * |*"]
    )
    first = records(pytester)[0]
    assert first["error"]
    if fault != "garbage":
        assert first["generations"][0]["metrics"]["ttft_s"] > 0  # partial figures kept


def test_connection_refused_is_named_and_fails_fast(pytester: pytest.Pytester) -> None:
    result = run(pytester, "http://127.0.0.1:9", "--llm-health-timeout=1")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ServerError: llama-server@http://127.0.0.1:9: not healthy after 1 s (last: ConnectError from http://127.0.0.1:9/health)*"
        ]
    )
    result.stdout.fnmatch_lines(["*(failed earlier in this run)*"])  # the second fails fast


def test_never_healthy_within_the_wait(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    srv = fake_llama_server(ModelScript(TOKENS), loading_s=float("inf"))
    result = run(pytester, srv.url, "--llm-health-timeout=1")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*not healthy after 1 s (last: HTTP 503*Raise --llm-health-timeout*"]
    )


def test_loading_then_healthy_counts_as_load_time(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    srv = fake_llama_server(ModelScript(TOKENS), loading_s=0.5)
    result = run(pytester, srv.url)
    result.assert_outcomes(passed=2)
    # The fake answers 503 for 0.5 s from the first request it gets: the wait is seen
    # however late the run starts (its clock used to start when the fake was built).
    assert records(pytester)[0]["load_s"] >= 0.45


def test_wrong_port_serving_html(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    srv = fake_llama_server(ModelScript(TOKENS, fault="html_404"))
    result = run(pytester, srv.url, "--llm-health-timeout=0.5")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*not healthy after 0.5 s (last: HTTP 404*"])


def test_context_overflow_is_named(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    srv = fake_llama_server(ModelScript(TOKENS, fault="context_overflow"))
    result = run(pytester, srv.url)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*RequestRejected: *rejected the request with HTTP 400*exceeds the available context size*"
        ]
    )


def test_zero_tokens_reply_is_the_models_failure(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    srv = fake_llama_server(ModelScript(TOKENS, fault="zero_tokens"))
    result = run(pytester, srv.url)
    result.assert_outcomes(failed=2)  # the model answered nothing: a real (model) failure
    gen = records(pytester)[0]["generations"][0]
    assert gen["answer"] == "" and gen["metrics"]["output_tokens"] == 0
    assert gen["metrics"]["ttft_s"] is None and gen["metrics"]["decode_tps"] is None


def test_length_finish_is_truncation(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    srv = fake_llama_server(ModelScript(TOKENS))
    run(pytester, srv.url, "--llm-max-tokens=2")
    gen = records(pytester)[0]["generations"][0]
    assert gen["truncated"] is True and gen["metrics"]["output_tokens"] == 2


def test_unicode_line_separators_inside_tokens_survive(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    # llama-server sends U+2028/U+0085 raw inside JSON strings; str.splitlines() (httpx's
    # iter_lines) would cut the event there and report a malformed line.
    srv = fake_llama_server(ModelScript(["a\u2028b", "\x85c", "\u2029d"]))
    result = run(pytester, srv.url)
    result.assert_outcomes(passed=2)
    assert records(pytester)[0]["generations"][0]["answer"] == "a\u2028b\x85c\u2029d"


def test_warmup_generations_are_left_out_of_speed_figures(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    srv = fake_llama_server(ModelScript(TOKENS, token_delay_s=0.005))
    result = run(pytester, srv.url, "--llm-warmup=1")
    result.assert_outcomes(passed=2)
    document = json.loads((pytester.path / "r.json").read_text())
    first, second = (i["record"]["generations"][0] for i in document["items"])
    assert first.get("warmup") is True and "warmup" not in second
    (summary,) = document["models"]
    assert summary["ttft_s_median"] == second["metrics"]["ttft_s"]
    assert summary["generations"] == 2  # still run, scored and counted
