"""Each thing the run decides is judged once: an item's thresholds by the item (its record
carries what it missed, and the verdict reads that), a repeat group's by the group."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType

import pytest

from fakes import ModelScript
from pytest_llmbench.verdict import gates, groups
from tests.fixtures.fakes import StartLlamaServer

Judged = Callable[[ModuleType, str], tuple[list[int], pytest.RunResult]]


@pytest.fixture
def judged_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_llama_server: StartLlamaServer
) -> Judged:
    """Run ``tests`` against a fake server, counting the calls of ``module.check_pooled`` (the
    one judge of thresholds) as seen from ``module``."""

    def run(module: ModuleType, tests: str) -> tuple[list[int], pytest.RunResult]:
        judged: list[int] = []
        pooled = module.check_pooled

        def counted(records: object, thresholds: object) -> list[str]:
            judged.append(1)
            return pooled(records, thresholds)  # type: ignore[no-any-return]

        monkeypatch.setattr(module, "check_pooled", counted)
        srv = fake_llama_server(ModelScript(["Yes", "."]))
        pytester.makepyfile(test_t=tests)
        return judged, pytester.runpytest(
            f"--llm-models=llama-server@{srv.url}", "-p", "no:cacheprovider", "--llm-json=r.json"
        )

    return run


MISSED = """
import pytest

@pytest.mark.llm(thresholds="decode_tps>=1e12")
def test_fast(llm):
    assert llm.generate("Hi", max_tokens=8).text is not None

@pytest.mark.llm(thresholds="decode_tps>=1e12")
def test_fast_and_wrong(llm):
    assert llm.generate("Hi", max_tokens=8).text == "something else"
"""


def test_an_items_thresholds_are_judged_once_and_its_record_carries_what_it_missed(
    pytester: pytest.Pytester, judged_run: Judged
) -> None:
    judged, result = judged_run(gates, MISSED)
    result.assert_outcomes(failed=2)
    assert len(judged) == 2  # once per item: never again on the controller
    records = {
        i["test"]: i["record"] for i in json.loads((pytester.path / "r.json").read_text())["items"]
    }
    for test in ("test_fast", "test_fast_and_wrong"):
        [missed] = records[test]["thresholds_missed"]
        assert missed.startswith("decode_tps = ") and "threshold decode_tps>=1e+12" in missed
    # The verdict lists both misses (read from the records); the wrong answer is not also
    # a failed test, as before.
    result.stdout.fnmatch_lines(
        [
            "*llmbench gate FAILED: thresholds decode_tps>=1e+12*",
            "*threshold: * :: test_fast: decode_tps = *",
            "*threshold: * :: test_fast_and_wrong: decode_tps = *",
        ]
    )
    assert not any("test failed" in line or "tests failed" in line for line in result.stdout.lines)


REPEATED = """
import pytest

@pytest.mark.llm(repeat=3, thresholds="decode_tps>=1e12")
def test_fast(llm):
    assert llm.generate("Hi", max_tokens=8).text is not None
"""


def test_a_repeat_groups_pooled_thresholds_are_judged_once(judged_run: Judged) -> None:
    judged, result = judged_run(groups, REPEATED)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert len(judged) == 1  # the group's median, once: however many ask whether it held
    result.stdout.fnmatch_lines(["*threshold: * :: test_fast: decode_tps = *(median of 3: *"])
