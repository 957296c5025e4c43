"""Speed on short everyday prompts: TTFT, decode and prompt tok/s, per model."""

import pytest

PROMPTS = {
    "explain": "Explain in two sentences what a hash map is.",
    "list": "List five uses of Python's itertools module.",
    "rewrite": "Rewrite more politely: 'Send me the report now.'",
}


@pytest.mark.llm(max_tokens=128)
@pytest.mark.parametrize("prompt", PROMPTS.values(), ids=PROMPTS.keys())
def test_speed(llm, prompt):
    answer = llm.generate(prompt)
    assert answer.metrics.output_tokens, "the server reported no output tokens"
    assert answer.metrics.ttft_s is not None
