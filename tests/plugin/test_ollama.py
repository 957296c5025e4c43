"""The Ollama backend against a scripted server that follows docs/api.md."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.scripted import OllamaScript, ScriptedServer

TEST = """
import pytest

@pytest.mark.parametrize("prompt", ["one", "two"])
def test_answer(llm, prompt):
    assert llm.generate(prompt).answer
"""


def run(pytester: pytest.Pytester, url: str, models: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_o=TEST)
    specs = ",".join(f"ollama:{m}@{url}" for m in models.split(","))
    return pytester.runpytest(f"--llm-models={specs}", "--llm-json=r.json", "--llm-ctx=4096", *args)


def items(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    return json.loads((pytester.path / "r.json").read_text())["items"]


def test_preload_once_per_model_unload_the_previous_and_metrics(pytester: pytest.Pytester) -> None:
    script = OllamaScript(
        {"gemma3:270m": ["Hi", " there"], "qwen3": ["Yo", "!"]}, thinking=["let", " me", " think"]
    )
    with ScriptedServer(script.routes()) as srv:
        result = run(pytester, srv.url, "gemma3:270m,qwen3")
        chats = srv.posts("/api/chat")
    result.assert_outcomes(passed=4)
    # preload gemma, 2 chats, unload gemma, preload qwen, 2 chats, unload qwen at the end
    kinds = [
        (
            "load"
            if not b["messages"] and b.get("keep_alive") != 0
            else "unload"
            if not b["messages"]
            else "chat",
            b["model"],
        )
        for b in chats
    ]
    assert kinds == [
        ("load", "gemma3:270m"),
        ("chat", "gemma3:270m"),
        ("chat", "gemma3:270m"),
        ("unload", "gemma3:270m"),
        ("load", "qwen3"),
        ("chat", "qwen3"),
        ("chat", "qwen3"),
        ("unload", "qwen3"),
    ]
    body = chats[1]
    assert body["options"] == {
        "num_ctx": 4096,
        "num_predict": 16384,
        "temperature": 0.0,
        "seed": 42,
    }
    assert body["stream"] is True
    first = items(pytester)[0]["record"]
    gen = first["generations"][0]
    m = gen["metrics"]
    assert (gen["answer"], gen["thinking"], gen["finish_reason"]) == (
        "Hi there",
        "let me think",
        "stop",
    )
    assert (m["prompt_tokens"], m["output_tokens"], m["thinking_tokens"]) == (12, 5, 3)
    assert m["prompt_tps"] == pytest.approx(300.0)  # 12 tokens / 40 ms, from nanoseconds
    assert m["server_decode_tps"] > 0 and m["ttft_s"] < m["ttfa_s"]
    assert m["load_s"] is not None and m["vram_mb"] == 1024.0
    assert gen["server"]["version"] == "0.12.0" and gen["server"]["quantization"] == "Q4_K_M"
    assert items(pytester)[1]["record"]["generations"][0]["metrics"]["load_s"] is None  # warm


def test_missing_model_says_how_to_pull(pytester: pytest.Pytester) -> None:
    with ScriptedServer(OllamaScript({"other": ["x"]}).routes()) as srv:
        result = run(pytester, srv.url, "gemma3:270m")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ModelNotFound: ollama:gemma3:270m@*: model 'gemma3:270m' is not pulled on * (it has: other:latest). Run `ollama pull gemma3:270m` or pass --llm-pull.*"
        ]
    )


def test_pull_with_progress_then_run(pytester: pytest.Pytester) -> None:
    script = OllamaScript({}, pullable={"gemma3:270m": ["ok"]})
    with ScriptedServer(script.routes()) as srv:
        result = run(pytester, srv.url, "gemma3:270m", "--llm-pull")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*pull: pulling manifest*", "*pull: success*"])


def test_pull_of_unknown_model_is_named(pytester: pytest.Pytester) -> None:
    with ScriptedServer(OllamaScript({}).routes()) as srv:
        result = run(pytester, srv.url, "nope", "--llm-pull")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*`ollama pull nope` failed: pull model manifest: file does not exist*"]
    )


def test_error_line_mid_stream(pytester: pytest.Pytester) -> None:
    script = OllamaScript({"m": ["a", "b", "c"]}, error_after=1)
    with ScriptedServer(script.routes()) as srv:
        result = run(pytester, srv.url, "m")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*StreamError: *Ollama reported an error mid-stream: an error was encountered*"]
    )


def test_num_predict_cap_is_truncation(pytester: pytest.Pytester) -> None:
    with ScriptedServer(OllamaScript({"m": ["a", "b", "c"]}).routes()) as srv:
        run(pytester, srv.url, "m", "--llm-max-tokens=2")
    gen = items(pytester)[0]["record"]["generations"][0]
    assert gen["finish_reason"] == "length" and gen["truncated"]
    assert gen["metrics"]["output_tokens"] == 2


def test_nothing_listening(pytester: pytest.Pytester) -> None:
    result = run(pytester, "http://127.0.0.1:9", "m")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*no Ollama server answers at http://127.0.0.1:9. Start it with `ollama serve`*"]
    )
