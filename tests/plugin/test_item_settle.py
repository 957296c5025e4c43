"""What an item's object (item.BenchItem) decides when its reports are made, against
FakeLlamaServer: the strict audit, the unscored warning, JUnit ``llm.*`` properties, server
trouble as one ERROR line, and the record shipped on the report (also under xdist)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from fakes import ModelScript
from tests.fixtures.fakes import StartLlamaServer

UNJUDGED = """
def test_only_generates(llm):
    llm.generate("Hi")

def test_asserts(llm):
    assert llm.generate("Hi").text is not None
"""


@pytest.fixture
def model(fake_llama_server: StartLlamaServer) -> str:
    return f"--llm-models=llama-server@{fake_llama_server(ModelScript(['Hel', 'lo'])).url}"


def test_unscored_warning_and_strict_audit(pytester: pytest.Pytester, model: str) -> None:
    pytester.makepyfile(test_u=UNJUDGED)
    result = pytester.runpytest(model, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert sum("LLMBenchUnscoredWarning" in line for line in result.stdout.lines) == 1
    result.stdout.fnmatch_lines(
        ["*LLMBenchUnscoredWarning: test_only_generates generated 1 answer(s)*"]
    )
    strict = pytester.runpytest(model, "-p", "no:cacheprovider", "--llm-strict")
    strict.assert_outcomes(passed=1, failed=1)
    strict.stdout.fnmatch_lines(["*--llm-strict: test_only_generates generated*"])
    assert strict.ret == pytest.ExitCode.TESTS_FAILED


SCORED = """
def test_scored(llm):
    assert llm.generate("Hi").answer == "Hello"
    llm.record_score("tokens", 2)
"""


@pytest.mark.parametrize("args", [(), ("-n", "2")])
def test_junit_properties_and_the_record_on_the_report(
    pytester: pytest.Pytester, model: str, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_s=SCORED)
    result = pytester.runpytest(
        model, "-p", "no:cacheprovider", "--junitxml=j.xml", "--llm-json=r.json", *args
    )
    result.assert_outcomes(passed=1)
    (case,) = ET.parse(pytester.path / "j.xml").getroot().iter("testcase")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["llm.model"].startswith("llama-server@http://")
    assert props["llm.finish_reason"] == "stop" and props["llm.output_tokens"] == "3"
    assert props["llm.score.tokens"] == "2.0"
    assert "llmbench" not in props  # the full record stays off the XML
    (item,) = json.loads((pytester.path / "r.json").read_text())["items"]
    record: dict[str, Any] = item["record"]
    assert (item["outcome"], record["error"], record["repeats"]) == ("passed", None, 1)
    assert record["generations"][0]["answer"] == "Hello"


JUDGED = """
def test_judged(llm, llm_judge):
    llm.generate("explain")
    llm_judge.generate("judge it")
"""


def test_judge_trouble_is_the_items_error_named_as_the_judges(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_j=JUDGED)
    good = fake_llama_server(ModelScript(["ok"]))
    judge = fake_llama_server(ModelScript(["x"], fault="cut", fault_after=0))
    result = pytester.runpytest(
        f"--llm-models=llama-server@{good.url}",
        f"--llm-judge=llama-server@{judge.url}",
        "-p",
        "no:cacheprovider",
        "--junitxml=j.xml",
        "--llm-json=r.json",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*StreamError: llama-server@http*: the server cut the stream*"])
    assert "Traceback" not in result.stdout.str() and "httpx" not in result.stdout.str()
    (item,) = json.loads((pytester.path / "r.json").read_text())["items"]
    assert item["outcome"] == "error" and item["record"]["error"].startswith("judge: ")
    (case,) = ET.parse(pytester.path / "j.xml").getroot().iter("testcase")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["llm.error"].startswith("judge: ")
