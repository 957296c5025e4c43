"""llm.score through pytest: per-check columns, diagnoses in item rows, and the judge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fakes import FakeLlamaServer, ModelScript
from pytest_llmbench.checks.judge import verdict_json
from tests.fixtures.fakes import StartLlamaServer

PROGRAM = "```python\nimport sys\nprint('hello', sys.argv[1])\n```"

SCORED = """
from pytest_llmbench import checks

def test_code(llm):
    answer = llm.generate("write it")
    program = answer.code("python")
    score = llm.score(
        syntax=checks.python_syntax(program, truncated=answer.truncated),
        features=checks.features(program, {"sys": checks.imports("sys"), "input": checks.calls("input")}),
        functional=checks.run_program(program, [checks.Step(["bob"], stdout="hello bob")],
                                      truncated=answer.truncated),
    )
    assert score.total >= 80, score.explain()
"""

JUDGED = """
from pytest_llmbench import checks

def test_judged(llm, llm_judge):
    answer = llm.generate("explain")
    verdict = checks.judge(llm_judge, "explain", answer.answer, {"clear": "is clear", "short": "is short"})
    score = llm.score({"judge": verdict})
    assert score.total == 50, score.explain()
"""


def items(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    return json.loads((pytester.path / "r.json").read_text())["items"]


def tokens(text: str) -> list[str]:
    return [text[i : i + 3] for i in range(0, len(text), 3)]


def test_scores_per_check_and_diagnoses(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_s=SCORED)
    good = fake_llama_server(ModelScript(tokens(PROGRAM)))
    ok = pytester.runpytest(f"--llm-models=llama-server@{good.url}", "--llm-json=r.json", "-v")
    ok.assert_outcomes(passed=1)
    ok.stdout.fnmatch_lines(
        [
            "| model *| n *| pass *| fail *| err *| code *|*",
            "| llama-server@:* | 1 *| 1 *| 0 *| 0 *| 80.0 1/1 *|*",
            "checks:",
            "*| code *| syntax *| 100.0 *| 1/1 *|",
            "*| code *| features *| 50.0 *| 0/1 *|",
            "*| code *| functional *| 100.0 *| 1/1 *|",
        ]
    )
    assert items(pytester)[0]["record"]["score"]["weights"] == {
        "syntax": 20,
        "features": 40,
        "functional": 40,
    }
    cut = fake_llama_server(ModelScript(tokens(PROGRAM[:30])))
    truncated = pytester.runpytest(
        f"--llm-models=llama-server@{cut.url}", "--llm-max-tokens=10", "-v"
    )
    truncated.assert_outcomes(failed=1)
    truncated.stdout.fnmatch_lines(["*| failed *| length *|*| truncated at the output cap*"])


def test_judge_verdict_is_scored_and_recorded_apart(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_j=JUDGED)
    verdict = verdict_json({"clear": True, "short": False})
    model = fake_llama_server(ModelScript(["Fine", " answer"]))
    judge = fake_llama_server(ModelScript(tokens(verdict)))
    result = pytester.runpytest(
        f"--llm-models=llama-server@{model.url}",
        f"--llm-judge=llama-server@{judge.url}",
        "--llm-json=r.json",
    )
    result.assert_outcomes(passed=1)
    record = items(pytester)[0]["record"]
    assert len(record["generations"]) == 1 and len(record["judge"]) == 1
    assert record["score"]["checks"][0]["details"].startswith("judged by llama-server@")


def test_a_judge_that_cannot_answer_json_is_an_error_not_a_score(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_j=JUDGED)
    model = fake_llama_server(ModelScript(["Fine"]))
    judge = fake_llama_server(ModelScript(["I", " think", " it", " is", " good"]))
    result = pytester.runpytest(
        f"--llm-models=llama-server@{model.url}", f"--llm-judge=llama-server@{judge.url}"
    )
    attempts = len(judge.calls("POST", "/v1/chat/completions"))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*JudgeError: judge llama-server@* gave no valid JSON verdict in 3 attempt(s)*"]
    )
    assert attempts == 3


def test_without_a_judge_the_fixture_is_none(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(llm_judge):\n    assert llm_judge is None\n")
    pytester.runpytest().assert_outcomes(passed=1)


BROKEN_CHECK = """
from pytest_llmbench import checks

def test_code(llm):
    program = llm.generate("write it").code("python")
    score = llm.score(features=checks.features(program, {"bad": lambda code: 1 / 0}))
    assert score.total >= 0
"""


def test_a_broken_check_errors_the_item_and_names_the_predicate(
    pytester: pytest.Pytester,
    fake_llama_server: StartLlamaServer,
) -> None:
    pytester.makepyfile(test_s=BROKEN_CHECK)
    srv = fake_llama_server(ModelScript([PROGRAM]))
    result = pytester.runpytest(f"--llm-models=llama-server@{srv.url}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*CheckError: features: predicate 'bad' raised ZeroDivisionError: division by zero*"]
    )
    result.stdout.fnmatch_lines(["*| llama-server@*| 1 *| 0 *| 0 *| 1 *"])


def test_a_judged_run_replays_offline(pytester: pytest.Pytester) -> None:
    """The judge's prompt is the same on every run (its block tag is a hash of the prompt,
    not a random nonce), so a recorded judge replays with no server."""
    pytester.makepyfile(test_j=JUDGED)
    verdict = verdict_json({"clear": True, "short": False})
    # with blocks, not the fixture: both servers are gone before the replay runs
    with (
        FakeLlamaServer(ModelScript(["Fine", " answer"])) as model,
        FakeLlamaServer(ModelScript(tokens(verdict))) as judge,
    ):
        models = [f"--llm-models=llama-server@{model.url}", f"--llm-judge=llama-server@{judge.url}"]
        pytester.runpytest(*models, "--llm-record=rec").assert_outcomes(passed=1)
    replayed = pytester.runpytest(*models, "--llm-replay=rec", "--llm-json=r.json")
    replayed.assert_outcomes(passed=1)
    assert items(pytester)[0]["record"]["scores"]["score"] == 50.0
