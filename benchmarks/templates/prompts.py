"""BENCH_PROMPTS prompts for every model in --llm-models; each must stream some tokens."""

import os

import pytest

PROMPTS = [f"prompt number {i}" for i in range(int(os.environ["BENCH_PROMPTS"]))]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_prompt(llm, prompt):
    assert llm.generate(prompt).metrics.output_tokens
