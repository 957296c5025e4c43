from typing import Any

import pytest

from pytest_llmbench.metrics import (
    DECODE_TPS,
    OUTPUT_TOKENS,
    PEAK_RSS_MB,
    SCORE,
    TRUNCATED,
    TTFT_S,
)
from pytest_llmbench.report.leaderboard import render
from pytest_llmbench.report.summary import summarize
from pytest_llmbench.serve.backends.ollama import model_matches, ollama_base_url
from pytest_llmbench.verdict.results import Results
from tests.unit._examples import fake_report as report


def gen(ttft: float, tps: float, out: int, truncated: bool = False) -> dict[str, Any]:
    return {
        "metrics": {"ttft_s": ttft, "decode_tps": tps, "output_tokens": out, "load_s": None},
        "truncated": truncated,
        "finish_reason": "length" if truncated else "stop",
    }


def feed(
    results: Results,
    nodeid: str,
    model: str,
    outcomes: tuple[str, str, str],
    record: dict[str, Any],
) -> None:
    base = {"model": model, "test": nodeid.split("::")[-1]}
    results.add(report(nodeid, "setup", outcomes[0], base))
    if outcomes[0] == "passed":
        results.add(report(nodeid, "call", outcomes[1], {**base, **record}))
    results.add(report(nodeid, "teardown", outcomes[2], base))


def test_outcomes_medians_and_scores_fold_per_model() -> None:
    results = Results(["b", "a"])
    feed(
        results,
        "t::x[a]",
        "a",
        ("passed", "passed", "passed"),
        {
            "generations": [gen(0.1, 50, 10), gen(0.3, 70, 20, truncated=True)],
            "scores": {"score": 80.0},
        },
    )
    feed(
        results,
        "t::y[a]",
        "a",
        ("passed", "failed", "passed"),
        {"generations": [gen(0.2, 60, 5)], "scores": {"score": 40.0}},
    )
    feed(
        results,
        "t::z[a]",
        "a",
        ("passed", "failed", "passed"),
        {"generations": [], "error": "StreamError: cut"},
    )
    feed(results, "t::x[b]", "b", ("failed", "", "passed"), {})
    (b, a) = summarize(results).models  # in --llm-models order
    assert (b.model, b.errors, b.generations) == ("b", 1, 0)
    assert (a.items, a.passed, a.failed, a.errors) == (3, 1, 1, 1)
    assert a.value(TTFT_S) == pytest.approx(0.2)
    assert a.value(DECODE_TPS) == 60
    assert (a.value(OUTPUT_TOKENS), a.value(TRUNCATED), a.value(SCORE)) == (35, 1, 60.0)
    assert (b.cell(TRUNCATED), a.cell(TRUNCATED), a.cell(SCORE)) == ("-", "1", "60.0 ± 28.3")
    assert (b.has(TTFT_S), a.has(TTFT_S), a.has(PEAK_RSS_MB)) == (False, True, False)
    text = render(summarize(results), "both", verbose=0)
    assert "| a     | 3 | 1    | 1    | 1   | " in text
    assert "StreamError: cut" in text  # the item row names the infrastructure error
    assert render(summarize(results), "none", verbose=2) == ""
    assert "| test " not in render(summarize(results), "auto", verbose=0)
    assert "| test " in render(summarize(results), "auto", verbose=1)


def _unmeasured(truncated: bool) -> dict[str, Any]:
    """A generation that was not timed (a known answer, ``answers:DIR``)."""
    return {
        "metrics": {"ttft_s": None, "decode_tps": None, "output_tokens": None, "load_s": None},
        "truncated": truncated,
        "finish_reason": "length" if truncated else "stop",
    }


@pytest.mark.parametrize("width", [80, 100, 120])
def test_benchmarks_move_to_their_table_before_trunc_is_left_out(width: int) -> None:
    """``pytest examples --llm-models=answers:…good,answers:…bad`` at 100 columns showed the
    benchmarks inline and left out ``trunc`` (the bad folder's answer cut at the output cap),
    which the same run at 80 columns showed: a wider terminal showed less."""
    good, bad = "answers:examples/known/good", "answers:examples/known/bad"
    results = Results([good, bad])
    for model, outcome in ((good, "passed"), (bad, "failed")):
        for k, bench in enumerate(("humaneval", "saas_spec", "speed", "todo_app")):
            record = {"generations": [_unmeasured(model == bad and k == 3)],
                      "scores": {"score": 100.0 if outcome == "passed" else 3.3}}  # fmt: skip
            setup = "skipped" if bench == "speed" else "passed"  # no known answer: skipped
            feed(results, f"t::test_{bench}[{model}]", model,
                 (setup, outcome, "passed"), record)  # fmt: skip
    text = render(summarize(results), "auto", verbose=0, width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "| trunc |" in text
    assert "left out" not in text
    assert "todo_app" in text


@pytest.mark.parametrize(
    ("env", "url"),
    [
        (None, "http://127.0.0.1:11434"),
        ("gpu1", "http://gpu1:11434"),
        ("gpu1:9999", "http://gpu1:9999"),
        (":9999", "http://127.0.0.1:9999"),
        ("http://gpu1", "http://gpu1:80"),
        ("https://gpu1", "https://gpu1:443"),
        ("0.0.0.0:11434", "http://127.0.0.1:11434"),
    ],
)
def test_ollama_host_resolution(env: str | None, url: str) -> None:
    assert ollama_base_url(env) == url


def test_ollama_names_default_to_latest() -> None:
    assert model_matches("llama3", "llama3:latest")
    assert model_matches("library/llama3:8b", "library/llama3:8b")
    assert not model_matches("llama3:8b", "llama3:latest")
