"""The run is added up once and every report draws that one summary: the terminal leaderboard
(every table), the JSON, the Markdown and the HTML page."""

from __future__ import annotations

import json

import pytest

from fakes import FakeLlamaServer, ModelScript
from pytest_llmbench.report.summary import ModelSummary
from pytest_llmbench.sandbox import containment

TESTS = """
import pytest

@pytest.mark.parametrize("prompt", ["a", "b"])
def test_answer(llm, prompt):
    assert llm.generate("Say hi " + prompt).answer
    llm.record_score("quality", 0.5)
"""


def test_every_report_format_draws_one_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    of = ModelSummary.of.__func__  # type: ignore[attr-defined]

    def counted(cls: type[ModelSummary], model: str, items: object) -> ModelSummary:
        made.append(model)
        return of(cls, model, items)  # type: ignore[no-any-return]

    monkeypatch.setattr(ModelSummary, "of", classmethod(counted))
    pytester.makepyfile(test_f=TESTS)
    with FakeLlamaServer(ModelScript(["Hi"])) as one, FakeLlamaServer(ModelScript(["Yo"])) as two:
        result = pytester.runpytest(
            f"--llm-models=a=llama-server@{one.url},b=llama-server@{two.url}",
            "--llm-json=r.json", "--llm-markdown=lb.md", "--llm-html=r.html",
            "--llm-leaderboard=both", "-v",
        )  # fmt: skip
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["*llmbench leaderboard*", "*test_answer[[]b[]]*", "*llmbench verdict*"]
    )
    models = [m["model"] for m in json.loads((pytester.path / "r.json").read_text())["models"]]
    assert len(models) == 2
    assert sorted(made) == sorted(models)  # one summary per model, made once per run
    assert "quality" in (pytester.path / "lb.md").read_text()
    assert "<svg" in (pytester.path / "r.html").read_text()


def test_the_warnings_are_added_up_once_and_every_report_draws_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []

    def counted(checks: object) -> list[str]:
        asked.append(1)
        return ["sandbox: counted warning"]

    monkeypatch.setattr(containment, "sandbox_warnings", counted)
    pytester.makepyfile(test_f=TESTS)
    with FakeLlamaServer(ModelScript(["Hi"])) as one:
        result = pytester.runpytest(
            f"--llm-models=llama-server@{one.url}",
            "--llm-json=r.json", "--llm-markdown=lb.md", "--llm-html=r.html",
        )  # fmt: skip
    result.assert_outcomes(passed=2)
    assert len(asked) == 1  # once per run, however many reports draw them
    result.stdout.fnmatch_lines(["*WARNING: sandbox: counted warning*"])
    assert "sandbox: counted warning" in json.loads((pytester.path / "r.json").read_text())["notes"]
    assert "- sandbox: counted warning" in (pytester.path / "lb.md").read_text()
    assert "sandbox: counted warning" in (pytester.path / "r.html").read_text()
