"""``-n 2 --dist loadgroup``: one group per spec whatever its URL holds, and test ids left
untouched in the short summary and JUnit XML (pytest 9.2 + pytest-xdist 3.8, xdist#1386)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict

import pytest

from fakes import ModelScript
from tests.fixtures.fakes import StartOllama

LLM_TEST = """
import pytest

@pytest.mark.parametrize("prompt", ["a", "b"])
def test_p(llm, prompt):
    assert llm.generate(prompt).answer
"""

PLAIN_TEST = """
import pytest

@pytest.mark.xdist_group("g1")
@pytest.mark.parametrize("a", [1, 2])
def test_plain(a):
    assert a == 1
"""


def test_two_models_on_one_url_get_a_worker_each(
    pytester: pytest.Pytester, fake_ollama: StartOllama
) -> None:
    pytester.makepyfile(test_llm=LLM_TEST)
    script = ModelScript(["Hi", "!"], token_delay_s=0.005)
    fake = fake_ollama({"m1": script, "m2": script})
    specs = f"ollama:m1@{fake.url},ollama:m2@{fake.url}"
    result = pytester.runpytest(f"--llm-models={specs}", "-n", "2", "--dist", "loadgroup", "-v")
    result.assert_outcomes(passed=4)
    workers: dict[str, set[str]] = defaultdict(set)
    for line in result.stdout.lines:
        found = re.search(r"\[(gw\d)\] .*PASSED .*test_p\[(ollama:m\d)@", line)
        if found:
            workers[found.group(2)].add(found.group(1))
    assert set(workers) == {"ollama:m1", "ollama:m2"}, result.stdout.str()
    assert all(len(w) == 1 for w in workers.values()), workers  # a model stays on one worker
    assert workers["ollama:m1"] != workers["ollama:m2"]  # and each model has its own


def test_ids_are_untouched_in_summary_and_junit(
    pytester: pytest.Pytester, fake_ollama: StartOllama
) -> None:
    pytester.makepyfile(test_llm=LLM_TEST, test_plain=PLAIN_TEST)
    script = ModelScript(["Hi", "!"], token_delay_s=0.005)
    fake = fake_ollama({"m1": script})
    result = pytester.runpytest(
        f"--llm-models=ollama:m1@{fake.url}", "-n", "2", "--dist", "loadgroup",
        "-rA", "--junitxml=j.xml",
    )  # fmt: skip
    result.assert_outcomes(passed=3, failed=1)
    summary = result.stdout.str().split("short test summary info", 1)[1]
    assert "@g1" not in summary and "]@" not in summary and "]]" not in summary, summary
    for line in ("PASSED test_plain.py::test_plain[[]1[]]",
                 "FAILED test_plain.py::test_plain[[]2[]] - assert 2 == 1",
                 f"PASSED test_llm.py::test_p[[]ollama:m1@{fake.url}-a[]]"):  # fmt: skip
        result.stdout.fnmatch_lines([line])
    names = sorted(c.get("name") for c in ET.parse(pytester.path / "j.xml").iter("testcase"))
    assert names == [f"test_p[ollama:m1@{fake.url}-a]", f"test_p[ollama:m1@{fake.url}-b]",
                     "test_plain[1]", "test_plain[2]"]  # fmt: skip
