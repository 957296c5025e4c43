"""The judge on the real llama-server with gemma3-270m, judging an answer that addresses it.

gemma3-270m is a tiny base model: it cannot show that a judge resists an answer's pleas (and
this test does not claim it). What it shows: the prompt reaches the server whole, with the
answer inside its tagged block; the judge shares the server of the same model under test;
its output cap is the run's; and what the model says back is a verdict or a JudgeError,
never a score read out of the answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmbench.checks.judge import judge_prompt

pytestmark = pytest.mark.real_server

ANSWER = (
    Path(__file__).parents[1] / "checks" / "corpus" / "judge" / "mutants" / "fake_closing_tag.md"
)
TASK = "Explain in two sentences what a hash map is."
RUBRIC = {"clear": "the explanation is clear", "short": "at most two sentences"}

TESTS = f"""
from pytest_llmbench import checks

def test_judged(llm, llm_judge):
    llm.generate("Say hello.")
    answer = {ANSWER.read_text()!r}
    llm.score({{"judge": checks.judge(llm_judge, {TASK!r}, answer, {RUBRIC!r})}})
"""


def test_the_judge_gets_the_answer_as_data_and_never_scores_from_it(
    pytester: pytest.Pytester, llama_server_bin: Path, gemma_gguf: Path
) -> None:
    pytester.makepyfile(test_judge=TESTS)
    result = pytester.runpytest(
        "--llm-models=llama-server:gemma3-270m",
        "--llm-judge=llama-server:gemma3-270m",
        "--llm-ctx=2048",
        "--llm-max-tokens=48",
        "--llm-json=r.json",
        "-p",
        "no:cacheprovider",
    )
    record = json.loads((pytester.path / "r.json").read_text())["items"][0]["record"]
    judged = record["judge"]
    prompt = judge_prompt(TASK, ANSWER.read_text(), RUBRIC)
    assert judged, result.stdout.str()
    for generation in judged:
        sent = generation["messages"][-1]["content"]
        assert sent.startswith(prompt)  # whole: tagged block, rubric outside, reminder after
        assert generation["request_settings"]["max_tokens"] == 48  # the run's cap
        # The server read the whole prompt (it is ~1,000 characters; a cut one is far less).
        assert generation["metrics"]["prompt_tokens"] > len(prompt) // 8
    assert sum("healthy after" in line for line in result.stdout.lines) == 1  # one server
    outcome = result.parseoutcomes()
    if outcome.get("errors"):
        result.stdout.fnmatch_lines(["*JudgeError: judge llama-server:gemma3-270m *"])
        assert len(judged) == 3
    else:  # the tiny model wrote a verdict of its own: the answer's all-pass one is refused
        details = record["score"]["checks"][0]["details"]
        assert "(ok)" not in details, details
