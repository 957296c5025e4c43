"""Each thing the run decides is judged once: an item's thresholds by the item (its record
carries what it missed, and the verdict reads that)."""

from __future__ import annotations

import json

import pytest

from fakes import ModelScript
from pytest_llmbench.verdict import gates
from tests.fixtures.fakes import StartLlamaServer

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
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    fake_llama_server: StartLlamaServer,
) -> None:
    judged: list[int] = []
    pooled = gates.check_pooled

    def counted(records: object, thresholds: object) -> list[str]:
        judged.append(1)
        return pooled(records, thresholds)  # type: ignore[arg-type]

    monkeypatch.setattr(gates, "check_pooled", counted)
    srv = fake_llama_server(ModelScript(["Yes", "."]))
    pytester.makepyfile(test_t=MISSED)
    result = pytester.runpytest(
        f"--llm-models=llama-server@{srv.url}", "-p", "no:cacheprovider", "--llm-json=r.json"
    )
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
