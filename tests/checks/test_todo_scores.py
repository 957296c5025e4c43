"""The published todo-app outcomes come out of this code exactly (BRIEF.md)."""

from pathlib import Path

import pytest

from pytest_llmbench import checks
from pytest_llmbench.checks.todo import todo_scorecard

PROGRAMS = Path(__file__).parent / "programs"


def score(name: str, truncated: bool = False) -> checks.Score:
    code = (PROGRAMS / name).read_text()
    return checks.combine(todo_scorecard(code, truncated=truncated))


def test_complete_correct_program_scores_100() -> None:
    result = score("todo_good.py")
    assert result.total == 100
    assert result.diagnoses == ()


def test_interactive_menu_scores_60_waiting_for_input() -> None:
    result = score("todo_interactive.py")
    assert result.total == 60
    assert result.diagnoses == (checks.INTERACTIVE,)


def test_truncated_program_scores_28_as_truncation_not_bad_code() -> None:
    result = score("todo_truncated.txt", truncated=True)
    assert result.total == pytest.approx(28)
    assert result.diagnoses == (checks.TRUNCATED,)
    assert "missing: delete, error handling, main block" in result.explain()


def test_same_cut_without_the_length_finish_is_only_a_syntax_error() -> None:
    result = score("todo_truncated.txt", truncated=False)
    assert result.total == pytest.approx(28)
    assert checks.TRUNCATED not in result.diagnoses  # never guessed from bad syntax
