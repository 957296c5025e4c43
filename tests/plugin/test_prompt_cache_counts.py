"""The prompt-cache caveat from the server's own counts (llama-server ``timings.cache_n``):
marked where the server reused a real share of the prompt, whatever the text says."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fakes import ModelScript
from pytest_llmbench.serve.caveats import prompt_cache_caveat
from tests.fixtures.fakes import StartLlamaServer

TEST = """
def test_answer(llm):
    assert llm.generate("Count from 1 to 4.").answer
    assert llm.generate("Count from 1 to 4.").answer
    assert llm.generate("Count from 2 to 5.").answer
"""


def generations(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    data = json.loads((pytester.path / "r.json").read_text())
    return [g for item in data["items"] for g in item["record"]["generations"]]


@pytest.mark.parametrize("cache", [True, False], ids=["cache-prompt", "no-cache"])
def test_llama_server_repeat_is_marked_from_cache_n(
    pytester: pytest.Pytester, cache: bool, fake_llama_server: StartLlamaServer
) -> None:
    srv = fake_llama_server(ModelScript(["a"], prompt_eval_count=28))
    pytester.makepyfile(test_c=TEST)
    flags = ["--llm-cache-prompt"] if cache else []
    result = pytester.runpytest(f"--llm-models=llama-server@{srv.url}", "--llm-json=r.json", *flags)
    result.assert_outcomes(passed=1)
    first, again, other = generations(pytester)
    assert again["metrics"]["cached_prompt_tokens"] == (27 if cache else 0)
    assert [c["kind"] for c in again["caveats"]] == (["prompt_cache"] if cache else [])
    assert not first["caveats"] and not other["caveats"]  # shares text, reused nothing
    if cache:
        assert (
            again["caveats"][0]["detail"]
            == "the server reused 27 of 28 prompt tokens from its cache"
        )
        result.stdout.fnmatch_lines(
            [
                "*NOTE: llama-server@*: 1 generation(s): part of the prompt came from the server's prompt cache*"
            ]
        )


@pytest.mark.parametrize(
    ("prompt", "cached", "marked"),
    [
        (28, 1, False),
        (31, 1, False),
        (28, 2, False),
        (28, 3, True),
        (52, 47, True),
        (28, 0, False),
        (None, 5, False),
        (28, None, False),
        (0, 0, False),
    ],
)
def test_counts_mark_a_real_share_only(
    prompt: int | None, cached: int | None, marked: bool
) -> None:
    """llama-server keeps a token or two of any earlier prompt (gemma3: 1 of 28): not reuse."""
    assert (prompt_cache_caveat(prompt, cached) is not None) is marked


def _openai_usage(event: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-style server: no llama-server ``timings``; reused and reasoning tokens in
    the usage details (vLLM with prefix caching, OpenAI)."""
    event = {k: v for k, v in event.items() if k != "timings"}
    usage = event.get("usage")
    if usage:
        event["usage"] = {**usage, "completion_tokens_details": {"reasoning_tokens": 5}}
    return event


def test_openai_usage_details_are_the_servers_counts(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    script = ModelScript(["a"], thinking=["hm", "m"], prompt_eval_count=28)
    srv = fake_llama_server(script, alias="gemma", tamper=_openai_usage)
    pytester.makepyfile(test_c=TEST)
    result = pytester.runpytest(f"--llm-models=openai:gemma@{srv.url}/v1", "--llm-json=r.json")
    result.assert_outcomes(passed=1)
    first, again, other = generations(pytester)
    assert again["metrics"]["cached_prompt_tokens"] == 27  # usage.prompt_tokens_details
    assert [c["kind"] for c in again["caveats"]] == ["prompt_cache"]
    assert not first["caveats"] and not other["caveats"]
    assert all(g["metrics"]["thinking_tokens"] == 5 for g in (first, again, other))  # not 2 chunks
