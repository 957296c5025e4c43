"""prompt_params through pytest: each prompt file arrives as a string carrying its front
matter, which the model never sees."""

from __future__ import annotations

import json

import pytest

from fakes import ModelScript
from tests.fixtures.fakes import StartLlamaServer

TEST = """
from pytest_llmbench.prompts import prompt_params
import pytest

@pytest.mark.parametrize("prompt", prompt_params("prompts"))
def test_prompt(llm, prompt):
    answer = llm.generate(prompt, max_tokens=4).answer
    assert prompt.meta["expected"] in answer, f"{prompt.name}: expected {prompt.meta['expected']}"
"""


def test_prompt_front_matter_pairs_a_prompt_with_its_expected_answer(
    pytester: pytest.Pytester,
    fake_llama_server: StartLlamaServer,
) -> None:
    pytester.makepyfile(test_p=TEST)
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "yes.md").write_text("---\nexpected: Yes\n---\nSay yes.\n")
    (pytester.path / "prompts" / "no.md").write_text("---\nexpected: No\n---\nSay no.\n")
    srv = fake_llama_server(ModelScript(["Yes", "."]))
    result = pytester.runpytest(
        f"--llm-models=llama-server@{srv.url}", "--llm-json=r.json", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: no: expected No*"])
    items = json.loads((pytester.path / "r.json").read_text())["items"]
    sent = [g["messages"][-1]["content"] for i in items for g in i["record"]["generations"]]
    assert sorted(sent) == ["Say no.\n", "Say yes.\n"]  # no front matter reached the model
