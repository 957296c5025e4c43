"""The settings shown are the ones used: per-test overrides after collection, the item's
settings in the JSON, marker typos answered with every valid key."""

from __future__ import annotations

import json

import pytest

from fakes import ModelScript
from pytest_llmbench.config.plan import MARKER_KEYS
from tests.fixtures.fakes import StartOllama

TESTS = """
import pytest

@pytest.mark.llm(max_tokens=256, temperature=0.5)
def test_short(llm):
    assert llm.generate("hi").answer

def test_default(llm):
    assert llm.generate("hi", seed=7).answer
"""


def test_marker_typo_lists_every_valid_key(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("import pytest\n@pytest.mark.llm(repeats=3)\ndef test_x(llm):\n    pass\n")
    result = pytester.runpytest("--llm-models=ollama:m@http://127.0.0.1:9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    line = next(ln for ln in result.stderr.lines if "unknown keyword" in ln)
    assert "repeats" in line
    for key in ("repeat", "min_pass_rate", "thresholds", "max_tokens", "ctx", "think"):
        assert key in MARKER_KEYS and key in line.split("valid keys:")[1], key


def test_header_json_and_overrides_say_what_was_used(
    pytester: pytest.Pytester, fake_ollama: StartOllama
) -> None:
    pytester.makepyfile(test_s=TESTS)
    fake = fake_ollama({"m": ModelScript(["Hi", "!"])})
    result = pytester.runpytest(f"--llm-models=m=ollama:m@{fake.url}", "--llm-json=r.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            f"llmbench: models: m = ollama:m@{fake.url}",
            "llmbench: run settings: max_tokens=16384 ctx=16384 temperature=0.0 seed=42 *",
            "llmbench: test_short: max_tokens=256 temperature=0.5 (marker)",
        ]
    )
    doc = json.loads((pytester.path / "r.json").read_text())
    by_test = {i["test"]: i["record"] for i in doc["items"]}
    assert by_test["test_short"]["settings"]["max_tokens"] == 256
    assert by_test["test_short"]["generations"][0]["settings"]["max_tokens"] == 256
    # A per-call override is what the item used, and what its record says.
    assert by_test["test_default"]["settings"]["seed"] == 7
    assert doc["settings"]["max_tokens"] == 16384  # the run's own settings


def test_an_override_reads_as_its_value_never_a_python_repr(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest\n"
        "@pytest.mark.llm(stop=['END', '###'], top_p=0.9)\n"
        "def test_stops(llm):\n    pass\n"
    )
    result = pytester.runpytest("--llm-models=ollama:m@http://127.0.0.1:9", "--collect-only")
    result.stdout.fnmatch_lines(['llmbench: test_stops: top_p=0.9 stop="END" "###" (marker)'])
    assert "['END'" not in result.stdout.str()
