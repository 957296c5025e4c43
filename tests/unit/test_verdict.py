"""The verdict's text: its head, its reasons, the accept command, its Markdown."""

from __future__ import annotations

from pytest_llmbench.verdict.run_verdict import GateFailure, Verdict, accept_command


def test_the_accept_command_keeps_the_run_and_saves_instead_of_comparing() -> None:
    args = ["tests/llm", "--llm-compare", "main", "--llm-compare-fail=score:5", "-k", "todo",
            "--llm-save=old", "--llm-models=ollama:qwen3:8b"]  # fmt: skip
    assert accept_command(args, "main") == (
        "pytest tests/llm -k todo --llm-models=ollama:qwen3:8b --llm-save=main"
    )
    assert accept_command(["-k", "a b"], "main") == "pytest -k 'a b' --llm-save=main"


def test_head_reasons_and_markdown() -> None:
    failed = Verdict(
        passed=False,
        failures=(
            GateFailure(
                "regression", "m :: test_a", "score 100 → 60 (-40.0%), beyond margin score:5"
            ),
        ),
        failed_tests=("m :: t1", "m :: t2", "m :: t3", "m :: t4"),
        errors=1,
        checked=("compared with main.json, margins score:5",),
        accept="pytest --llm-save=main",
    )
    assert failed.lines() == [
        "llmbench gate FAILED: compared with main.json, margins score:5",
        "  regression: m :: test_a: score 100 → 60 (-40.0%), beyond margin score:5",
        "  4 tests failed: m :: t1, m :: t2, m :: t3 and 1 more",
        "  1 item errored (server or setup trouble: not counted against the model, but the run is not complete)",
        "  if the change is intended, accept it: pytest --llm-save=main",
    ]
    assert (
        failed.markdown().splitlines()[0]
        == "**Gate FAILED**: compared with main.json, margins score:5"
    )
    assert "```\npytest --llm-save=main\n```" in failed.markdown()
    assert Verdict(passed=True).lines() == ["llmbench passed: no gates set"]
    assert Verdict(passed=True).markdown() == "**Passed**: no gates set"
