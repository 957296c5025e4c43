"""The Ollama backend against FakeOllama, which follows docs/api.md and server/routes.go."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from fakes import ModelScript
from fakes.ollama import VERSIONS
from tests.fixtures.fakes import StartOllama

TEST = """
import pytest

@pytest.mark.parametrize("prompt", ["one", "two"])
def test_answer(llm, prompt):
    assert llm.generate(prompt).answer
"""


@pytest.fixture(params=VERSIONS, ids=[f"ollama-{v}" for v in VERSIONS])
def version(request: pytest.FixtureRequest) -> str:
    """Each test runs against the fake's v0.12 and current (v0.30+) behaviour."""
    return str(request.param)


def run(pytester: pytest.Pytester, url: str, models: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_o=TEST)
    specs = ",".join(f"ollama:{m}@{url}" for m in models.split(","))
    return pytester.runpytest(f"--llm-models={specs}", "--llm-json=r.json", "--llm-ctx=4096", *args)


def items(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    return json.loads((pytester.path / "r.json").read_text())["items"]


def test_one_load_per_model_previous_unloaded_and_metrics(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    gemma = ModelScript(
        ["Hi", " there"],
        thinking=["let", " me", " think"],
        token_delay_s=0.01,
        load_delay_s=0.2,
        size=2 << 30,
        size_vram=1 << 30,
        quantization_level="Q4_K_M",
    )
    qwen = ModelScript(["Yo", "!"], token_delay_s=0.01)
    fake = fake_ollama({"gemma3:270m": gemma, "qwen3": qwen}, version=version)
    result = run(pytester, fake.url, "gemma3:270m,qwen3")
    events = list(fake.events)
    chats = fake.calls("POST", "/api/chat")
    result.assert_outcomes(passed=4)
    assert events == [
        ("load", "gemma3:270m"),
        ("unload", "gemma3:270m"),
        ("load", "qwen3:latest"),
        ("unload", "qwen3:latest"),
    ]
    body = chats[1]
    assert body["options"] == {
        "num_ctx": 4096,
        "num_predict": 16384,
        "temperature": 0.0,
        "seed": 42,
    }
    assert body["stream"] is True and body["messages"] == [{"role": "user", "content": "one"}]
    gen = items(pytester)[0]["record"]["generations"][0]
    m = gen["metrics"]
    assert (gen["answer"], gen["thinking"], gen["finish_reason"]) == (
        "Hi there",
        "let me think",
        "stop",
    )
    assert m["output_tokens"] == 6  # 3 thinking + 2 answer + the end-of-sequence token
    assert m["thinking_tokens"] == 3 and m["prompt_tokens"] == 10
    assert m["server_decode_tps"] > 0 and m["prompt_tps"] > 0
    assert 0 < m["ttft_s"] < m["ttfa_s"] < m["total_s"]
    assert m["load_s"] >= 0.2  # the preload paid the load; the chat's TTFT did not
    assert m["ttft_s"] < 0.2
    assert m["vram_mb"] == 1024.0
    assert gen["server"]["version"] == version and gen["server"]["quantization"] == "Q4_K_M"
    assert items(pytester)[1]["record"]["generations"][0]["metrics"]["load_s"] is None  # warm


def test_missing_model_says_how_to_pull(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    fake = fake_ollama({"other": ModelScript(["x"])}, version=version)
    result = run(pytester, fake.url, "gemma3:270m")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ModelNotFound: ollama:gemma3:270m@*: model 'gemma3:270m' is not pulled on * (it has: other:latest). Run `ollama pull gemma3:270m` or pass --llm-pull.*"
        ]
    )


def test_pull_with_progress_then_run(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    fake = fake_ollama({}, pull_catalog={"gemma3:270m": ModelScript(["ok"])}, version=version)
    result = run(pytester, fake.url, "gemma3:270m", "--llm-pull")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*pull: pulling manifest*", "*pull: success*"])


def test_pull_of_unknown_model_is_named(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    fake = fake_ollama({}, version=version)
    result = run(pytester, fake.url, "nope", "--llm-pull")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*`ollama pull nope` failed: pull model manifest: file does not exist*"]
    )


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("error_midstream", "*StreamError: *Ollama reported an error mid-stream: *"),
        ("cut", "*StreamError: *cut the stream*"),
        ("garbage", "*StreamError: *malformed NDJSON line*"),
    ],
)
def test_stream_faults_error_the_item(
    pytester: pytest.Pytester, version: str, fault: str, message: str, fake_ollama: StartOllama
) -> None:
    fake = fake_ollama(
        {"m": ModelScript(["a", "b", "c"], fault=fault, fault_after=1)}, version=version
    )
    result = run(pytester, fake.url, "m")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([message])


def test_num_predict_cap_is_truncation(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    fake = fake_ollama({"m": ModelScript(["a", "b", "c"])}, version=version)
    run(pytester, fake.url, "m", "--llm-max-tokens=2")
    gen = items(pytester)[0]["record"]["generations"][0]
    assert gen["finish_reason"] == "length" and gen["truncated"]
    assert gen["metrics"]["output_tokens"] == 2


def test_nothing_listening(pytester: pytest.Pytester) -> None:
    result = run(pytester, "http://127.0.0.1:9", "m")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*no Ollama server answers at http://127.0.0.1:9. Start it with `ollama serve`*"]
    )


def test_starts_ollama_serve_when_nothing_answers_and_stops_it_after(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, version: str
) -> None:
    """No server at $OLLAMA_HOST, an `ollama` binary on PATH: the plugin starts `ollama
    serve` there, waits until it answers, benchmarks, and stops it at the end."""
    repo = Path(__file__).resolve().parents[2]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "ollama"
    fake.write_text(
        f'#!/bin/sh\nPYTHONPATH={repo} exec {sys.executable} -m fakes.ollama_cli "$@"\n'
    )
    fake.chmod(0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    starts = tmp_path / "starts.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")
    monkeypatch.setenv("LLMBENCH_FAKE_OLLAMA_LOG", str(starts))
    monkeypatch.setenv("LLMBENCH_FAKE_OLLAMA_VERSION", version)
    pytester.makepyfile(test_o=TEST)
    result = pytester.runpytest("--llm-models=ollama:m", f"--llm-log-dir={tmp_path}", "-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*ollama:m: starting `ollama serve` at http://127.0.0.1:{port}*"])
    assert starts.read_text().count("serve ") == 1
    assert "Listening on" in (tmp_path / f"ollama-serve-127.0.0.1-{port}.log").read_text()
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):  # stopped at session end
        s.connect(("127.0.0.1", port))


def test_pull_without_a_route_to_the_registry_is_not_a_wrong_name(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    """Offline, Ollama's pull fails on DNS (D11): the hint is the network, not the name."""
    fake = fake_ollama({}, registry_reachable=False, version=version)
    result = run(pytester, fake.url, "gemma3:270m", "--llm-pull")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ServerError: *`ollama pull gemma3:270m` failed: the Ollama "
            "server could not reach the registry (pull model manifest: *no "
            "such host). Check the server's network (DNS, proxy*"
        ]
    )
    assert "Check the model name" not in result.stdout.str()


@pytest.mark.parametrize("vram", [0, None], ids=["cpu", "profile-default"])
def test_memory_on_a_cpu_server_is_the_model_size_and_no_vram(
    pytester: pytest.Pytester, version: str, vram: int | None, fake_ollama: StartOllama
) -> None:
    """/api/ps size_vram 0 (a CPU server; the 0.33.0 profile's default, D7): no VRAM figure
    at all, never 0.0; the model's size is the memory figure."""
    script = ModelScript(["a"], size=345_201_704, size_vram=vram)
    fake = fake_ollama({"m": script}, version=version)
    result = run(pytester, fake.url, "m")
    result.assert_outcomes(passed=2)
    m = items(pytester)[0]["record"]["generations"][0]["metrics"]
    assert m["model_mb"] == pytest.approx(345_201_704 / 2**20)
    cpu = vram == 0 or not version.startswith("0.12")
    assert m["vram_mb"] == (None if cpu else pytest.approx(345_201_704 / 2**20))
    summary = json.loads((pytester.path / "r.json").read_text())["models"][0]
    assert summary["model_mb"] == pytest.approx(329.2, abs=0.1)


def test_thinking_tokens_are_counted_by_the_server_not_by_chunks(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    """The 0.33.0 profile merges a blank thinking token into the next chunk (D14): 4 tokens
    in 3 chunks; the count is eval_count less the answer and the end-of-sequence token."""
    thinker = ModelScript(["Yes", "."], thinking=["let", "\n\n", "me", " think"])
    fake = fake_ollama({"m": thinker}, version=version)
    run(pytester, fake.url, "m")
    m = items(pytester)[0]["record"]["generations"][0]["metrics"]
    assert m["output_tokens"] == 7 and m["thinking_tokens"] == 4


@pytest.mark.parametrize("template", ["{{ .Prompt }}", " {{.Prompt}}\n"])
def test_a_model_without_chat_template_is_warned(
    pytester: pytest.Pytester, version: str, template: str, fake_ollama: StartOllama
) -> None:
    fake = fake_ollama(
        {"m": ModelScript(["a"], template=template), "n": ModelScript(["b"])}, version=version
    )
    result = run(pytester, fake.url, "m,n")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*WARNING: ollama:m@*: the Ollama model has no chat template "
            "(/api/show template *), so each prompt reaches the model as "
            "bare text*"
        ]
    )
    assert "WARNING: ollama:n@" not in result.stdout.str()  # a library model's template
