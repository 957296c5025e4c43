"""What real Ollama does to the figures, on both lines the fake follows (v0.12, current):
keep-alive, reloads, the prompt cache, the capped context, over-long prompts, async unload."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fakes import ModelScript
from fakes.ollama import VERSIONS
from tests.fixtures.fakes import StartOllama


@pytest.fixture(params=VERSIONS, ids=[f"ollama-{v}" for v in VERSIONS])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(pytester: pytest.Pytester, test: str, specs: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_o=test)
    return pytester.runpytest(f"--llm-models={specs}", "--llm-json=r.json", *args)


def generations(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    data = json.loads((pytester.path / "r.json").read_text())
    return [g for item in data["items"] for g in item["record"]["generations"]]


def summary(pytester: pytest.Pytester) -> dict[str, Any]:
    models = json.loads((pytester.path / "r.json").read_text())["models"]
    return dict(models[0])


SLOW_ITEMS = """
import time
import pytest

@pytest.mark.parametrize("prompt", ["one", "two", "three"])
def test_answer(llm, prompt):
    time.sleep(0.4)  # longer than the server's keep-alive below
    assert llm.generate(prompt).answer
"""


def test_keep_alive_keeps_the_model_loaded_and_load_duration_is_recorded(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    fake = fake_ollama(
        {"m": ModelScript(["a"], load_delay_s=0.3)}, version=version, default_keep_alive_s=0.2
    )
    result = run(pytester, SLOW_ITEMS, f"ollama:m@{fake.url}")
    chats = fake.calls("POST", "/api/chat")
    loads = fake.count("load", "m")
    result.assert_outcomes(passed=3)
    assert loads == 1  # Ollama's own keep-alive (0.2 s here) would have unloaded it twice
    assert all(body["keep_alive"] == "60m" for body in chats[:-1])  # the last one unloads
    gens = generations(pytester)
    assert all(0 <= g["metrics"]["server_load_s"] < 0.25 for g in gens)
    assert not any(g["caveats"] for g in gens)
    assert gens[0]["server"]["n_ctx"] == 16384  # as asked: below the trained 131072
    assert "WARNING" not in result.stdout.str()


JUDGED = """
def test_answer(llm, llm_judge):
    assert llm.generate("first question").answer
    assert llm_judge.generate("a verdict, please").answer  # evicts the model under test
    assert llm.generate("second question").answer
    assert llm.generate("third question").answer
"""


def test_reload_during_the_run_is_named_and_kept_out_of_ttft(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    models = {"m": ModelScript(["a"], load_delay_s=0.6), "judge": ModelScript(["ok"])}
    fake = fake_ollama(models, version=version, max_loaded=1)
    result = run(pytester, JUDGED, f"ollama:m@{fake.url}", f"--llm-judge=ollama:judge@{fake.url}")
    loads = fake.count("load", "m")
    result.assert_outcomes(passed=1)
    # The judge's preload evicts the model before its first generation, its verdict again
    # before the second: two reloads (plus the preload); the third finds it loaded.
    assert loads == 3
    first, second, warm = generations(pytester)
    for reloaded in (first, second):
        assert [c["kind"] for c in reloaded["caveats"]] == ["reloaded"]
        assert reloaded["metrics"]["server_load_s"] >= 0.6
        assert reloaded["metrics"]["ttft_s"] > 0.6 > warm["metrics"]["ttft_s"]
    assert not warm["caveats"]
    result.stdout.fnmatch_lines(
        [
            "*NOTE: ollama:m@*: 2 generation(s): the model was loaded again during the run*"
            "(reloaded during the run: TTFT includes 0.6 s of load); left out of the "
            "ttfa_s, ttft_s medians*"
        ]
    )
    assert summary(pytester)["ttft_s_median"] == warm["metrics"]["ttft_s"]


REPEATED = """
def test_answer(llm):
    prompt = "Summarise the plot of Hamlet in three sentences, for a reader who never saw it."
    first = llm.generate(prompt)
    again = llm.generate(prompt)
    other = llm.generate("Name a prime.")
    assert first.answer and again.answer and other.answer
"""


def test_prompt_cache_reuse_is_marked_and_kept_out_of_prompt_rate_and_ttft(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    script = ModelScript(["a"], prompt_eval_count=200, prompt_delay_s=0.2)
    fake = fake_ollama({"m": script}, version=version)
    result = run(pytester, REPEATED, f"ollama:m@{fake.url}")
    result.assert_outcomes(passed=1)
    first, again, other = generations(pytester)
    # What Ollama does: the repeat counts all 200 prompt tokens but evaluates one of them.
    assert again["metrics"]["prompt_tokens"] == first["metrics"]["prompt_tokens"] == 200
    assert again["metrics"]["prompt_tps"] > 5 * first["metrics"]["prompt_tps"]
    assert [c["kind"] for c in again["caveats"]] == ["prompt_cache"]
    assert not first["caveats"] and not other["caveats"]
    clean = sorted(g["metrics"]["prompt_tps"] for g in (first, other))
    assert summary(pytester)["prompt_tps_median"] == pytest.approx(sum(clean) / 2)
    assert first["server"]["prompt_cache"] == "on: Ollama cannot turn it off"
    result.stdout.fnmatch_lines(
        [
            "*NOTE: ollama:m@*: 1 generation(s): part of the prompt came "
            "from the server's prompt cache*prompt evaluated *x faster "
            "than this model's recent uncached * tok/s; 100% of it was "
            "sent before*left out of the prompt_tps, ttfa_s, ttft_s medians*"
        ]
    )


ONE = "def test_answer(llm):\n    assert llm.generate('hi').answer\n"


def test_capped_context_is_read_recorded_and_warned(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    fake = fake_ollama({"m": ModelScript(["a"], context_length=2048)}, version=version)
    result = run(pytester, ONE, f"ollama:m@{fake.url}", "--llm-ctx=8192")
    result.assert_outcomes(passed=1)
    (gen,) = generations(pytester)
    assert gen["server"]["n_ctx"] == 2048 and gen["settings"]["ctx"] == 8192
    result.stdout.fnmatch_lines(
        [
            "*WARNING: ollama:m@*: Ollama runs this model with a context "
            "of 2048 tokens, not the 8192 asked for*"
        ]
    )


def test_over_long_prompt_is_one_clear_error_naming_the_context(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    """v0.12.0 cuts the prompt silently, the current line answers 400: both say so."""
    fake = fake_ollama({"m": ModelScript(["a"], prompt_eval_count=5000)}, version=version)
    result = run(pytester, ONE, f"ollama:m@{fake.url}", "--llm-ctx=4096")
    result.assert_outcomes(errors=1)  # the server's doing, never the model's failure
    if version.startswith("0.12"):
        result.stdout.fnmatch_lines(
            [
                "*GenerationError: ollama:m@*: the prompt filled the whole "
                "context of 4096 tokens*Shorten the prompt or raise "
                "--llm-ctx.*"
            ]
        )
    else:
        result.stdout.fnmatch_lines(
            [
                "*RequestRejected: ollama:m@*: the prompt does not fit the "
                "context of 4096 tokens (num_ctx): Ollama answered HTTP "
                "400: request (5000 tokens) exceeds the available context "
                "size (4096 tokens)*"
            ]
        )


def test_unload_waits_until_ps_no_longer_lists_the_model(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    models = {"a": ModelScript(["x"]), "b": ModelScript(["y"])}
    fake = fake_ollama(models, version=version, unload_delay_s=0.5)
    result = run(pytester, ONE, f"ollama:a@{fake.url},ollama:b@{fake.url}")
    events = list(zip(fake.events, fake.event_times, strict=True))
    preloads = [t for (e, n), t in events if e == "load" and n == "b:latest"]
    result.assert_outcomes(passed=2)
    unloaded_a = next(t for (e, n), t in events if e == "unload" and n == "a:latest")
    assert [e for e, _ in events][:3] == [
        ("load", "a:latest"),
        ("unload", "a:latest"),
        ("load", "b:latest"),
    ]
    assert preloads[0] >= unloaded_a


def test_model_names_match_case_insensitively(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    fake = fake_ollama({"gemma3:270m": ModelScript(["a"])}, version=version)
    result = run(pytester, ONE, f"ollama:Gemma3:270M@{fake.url}")
    result.assert_outcomes(passed=1)


COUNTING = """
def test_answer(llm):
    for i in range(1, 7):
        assert llm.generate(f"Count from {i} to {i + 3}.").answer
    assert llm.generate("Count from 6 to 9.").answer
"""


def test_shared_text_without_reuse_is_not_marked(
    pytester: pytest.Pytester, version: str, fake_ollama: StartOllama
) -> None:
    """Six prompts sharing 46 % of their text: the 0.33.0 profile reuses one token of each
    (gemma3's checkpoints, D6), v0.12 their common prefix (under 2x faster): none is marked;
    the exact repeat at the end is (issue 20: 5 of 6 were marked from the text)."""
    script = ModelScript(["a"], prompt_eval_count=200, prompt_delay_s=0.1)
    fake = fake_ollama({"m": script}, version=version)
    result = run(pytester, COUNTING, f"ollama:m@{fake.url}")
    result.assert_outcomes(passed=1)
    *counts, repeat = generations(pytester)
    assert [c["kind"] for g in counts for c in g["caveats"]] == []
    assert [c["kind"] for c in repeat["caveats"]] == ["prompt_cache"]
