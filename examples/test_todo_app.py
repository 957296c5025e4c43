"""The "small complete program" benchmark: a CLI todo app, scored syntax 20 + features 40 +
functional 40, with truncation and interactive-input diagnoses for free."""

import pytest

from pytest_llmbench.checks.todo import todo_scorecard

TASK = (
    "Build a Python CLI todo app with SQLite persistence. Commands: add, list, complete, delete"
    "{extra}. Store timestamps, show completion status, pretty-print the list, handle errors, "
    "and include a __main__ block. Respond with ONLY the Python code, no explanation."
)
PROMPTS = {
    "v1": TASK.format(extra=""),
    "v2": TASK.format(extra=" (use argparse or sys.argv, NOT interactive input)"),
}


@pytest.mark.parametrize("prompt", PROMPTS.values(), ids=PROMPTS.keys())
def test_todo_app(llm, prompt):
    answer = llm.generate(prompt)
    program = answer.code("python")
    score = llm.score(todo_scorecard(program, truncated=answer.truncated))
    assert score.total >= 90, score.explain()
