"""The fixes the plugin's error messages name, followed on the real llama-server: the option
the message names, raised as it says, makes the same run pass."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_server

TEST = """
def test_hello(llm):
    assert llm.generate("Say hello.", max_tokens=4).text is not None
"""


@pytest.mark.parametrize(
    ("option", "too_small", "enough", "says"),
    [
        ("--llm-health-timeout", "0.1", "300", r"Raise (--llm-health-timeout) if the model is big"),
        ("--llm-read-timeout", "0.001", "120", r"Raise (--llm-read-timeout) for slow models"),
    ],
)
def test_the_option_an_error_names_fixes_it_when_raised(
    pytester: pytest.Pytester, gemma_gguf: Path, option: str, too_small: str, enough: str, says: str
) -> None:
    pytester.makepyfile(test_option_advice=TEST)
    base = ["--llm-models=llama-server:gemma3-270m", "--llm-ctx=1024", "-p", "no:cacheprovider"]
    failing = pytester.runpytest(*base, f"{option}={too_small}")
    failing.assert_outcomes(errors=1)  # server trouble, never the model's failure
    named = re.search(says, failing.stdout.str())
    assert named, failing.stdout.str()
    fixed = pytester.runpytest(*base, f"{named[1]}={enough}")
    fixed.assert_outcomes(passed=1)
