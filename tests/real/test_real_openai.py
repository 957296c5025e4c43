"""``openai:MODEL@URL`` against a real OpenAI-compatible server: llama-server started by hand
with an alias and an API key, as a team would run it behind a gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_llmbench.serve.processes import ServerProcess, free_port

pytestmark = pytest.mark.real_server

TEST = """
import pytest

@pytest.mark.llm(max_tokens=12)
def test_words(llm):
    answer = llm.generate("Name three colours.")
    assert answer.metrics.output_tokens
"""


@pytest.fixture(scope="module")
def endpoint(
    llama_server_bin: Path, gemma_gguf: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    argv = [str(llama_server_bin), "-m", str(gemma_gguf), "-a", "gemma", "-c", "2048",
            "--port", str(port), "--host", "127.0.0.1", "--api-key", "sekret"]  # fmt: skip
    log = tmp_path_factory.mktemp("logs") / "server.log"
    process = ServerProcess(argv, log, "openai-test")
    try:
        process.wait_healthy(f"http://127.0.0.1:{port}/health", 120.0, lambda _m: None)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.stop()


def test_streams_with_the_key_and_reads_usage(
    pytester: pytest.Pytester, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMBENCH_API_KEY", "sekret")
    pytester.makepyfile(test_o=TEST)
    result = pytester.runpytest(f"--llm-models=openai:gemma@{endpoint}", "--llm-json=r.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*| openai:gemma*| 1 *| 1 *| 0 *| 0 *"])
    (item,) = json.loads((pytester.path / "r.json").read_text())["items"]
    gen = item["record"]["generations"][0]
    m = gen["metrics"]
    assert gen["finish_reason"] == "length" and gen["truncated"]
    assert m["output_tokens"] == 12 and m["prompt_tokens"] > 5  # from the server's usage
    assert 0 < m["ttft_s"] < m["total_s"] and m["decode_tps"] > 0
    sent = gen["request_settings"]
    assert sent["model"] == "gemma" and sent["stream_options"] == {"include_usage": True}
    assert "cache_prompt" not in sent  # standard fields only


def test_wrong_key_and_wrong_model_are_named(
    pytester: pytest.Pytester, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_o=TEST)
    monkeypatch.setenv("LLMBENCH_API_KEY", "wrong")
    result = pytester.runpytest(f"--llm-models=openai:gemma@{endpoint}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*openai:gemma*HTTP 401*"])

    monkeypatch.setenv("LLMBENCH_API_KEY", "sekret")
    result = pytester.runpytest(f"--llm-models=openai:qwen@{endpoint}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*does not list model 'qwen' (it has: gemma)*"])
