"""The gates' one verdict, record_score names as metrics, and why each item failed in every
report, through pytest against FakeLlamaServer."""

from __future__ import annotations

import json

import pytest

from fakes import ModelScript
from tests.fixtures.fakes import StartLlamaServer


@pytest.fixture
def model(fake_llama_server: StartLlamaServer) -> list[str]:
    srv = fake_llama_server(ModelScript(["Yes", "."]))
    return [f"--llm-models=llama-server@{srv.url}", "-p", "no:cacheprovider"]


QUALITY = """
import os

def test_quality(llm):
    llm.generate("Hi", max_tokens=4)
    llm.record_score("quality", float(os.environ["FAKE_QUALITY"]))
"""


def test_a_record_score_name_gates_as_a_threshold_and_a_margin(
    pytester: pytest.Pytester, model: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_q=QUALITY)
    monkeypatch.setenv("FAKE_QUALITY", "0.333")
    held = pytester.runpytest(*model, "--llm-thresholds=quality>=0.3", "--llm-save=main")
    assert held.ret == 0
    held.stdout.fnmatch_lines(
        [
            "record_score names (mean per model, each on its own scale):",
            "| score * |",
            "|-*|",
            "| quality | 0.333 * |",
            "llmbench gate passed: thresholds quality>=0.3",
        ]
    )

    missed = pytester.runpytest(*model, "--llm-thresholds=quality>=0.5")
    assert missed.ret == pytest.ExitCode.TESTS_FAILED
    missed.stdout.fnmatch_lines(
        [
            "llmbench gate FAILED: thresholds quality>=0.5",
            "  threshold: llama-server@:* :: test_q*: quality = 0.333, threshold quality>=0.5",
        ]
    )

    monkeypatch.setenv("FAKE_QUALITY", "0.2")
    regressed = pytester.runpytest(*model, "--llm-compare=main", "--llm-compare-fail=quality:0.1")
    assert regressed.ret == pytest.ExitCode.TESTS_FAILED
    regressed.stdout.fnmatch_lines(
        [
            "| test_quality | quality | 0.333  | 0.200 | -39.9% | > quality:0.1 |",
            "*- llmbench verdict -*",
            "llmbench gate FAILED: compared with main.json, margins quality:0.1",
            "  regression: llama-server@:* :: test_quality: quality 0.333 → 0.2 (-39.9%), beyond margin quality:0.1",
            "  if the change is intended, accept it: pytest *--llm-save=main",
        ]
    )


FAILING = r"""
def test_answer(llm):
    answer = llm.generate("Hi", max_tokens=4).text
    assert answer == "42", f"expected 42, got {answer!r} \x1b]0;pwned\x07\x1b[2J"

def test_ok(llm):
    llm.generate("Hi", max_tokens=4)
"""


def test_why_an_item_failed_is_in_every_report_and_escaped_in_the_terminal(
    pytester: pytest.Pytester, model: list[str]
) -> None:
    pytester.makepyfile(test_f=FAILING)
    result = pytester.runpytest(
        *model, "--llm-json=r.json", "--llm-markdown=r.md", "--llm-html=r.html"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "\x1b" not in result.stdout.str()  # pytest's own report of the item too
    result.stdout.fnmatch_lines(["*AssertionError: expected 42, got 'Yes.' \\x1b]0;pwned\\x07*"])
    result.stdout.fnmatch_lines(
        [
            "llmbench FAILED: no gates set",
            "  1 test failed: llama-server@:* :: test_answer",
        ]
    )
    document = json.loads((pytester.path / "r.json").read_text())
    failed = next(i for i in document["items"] if i["outcome"] == "failed")
    assert failed["record"]["failure"].startswith("AssertionError: expected 42, got 'Yes.' \x1b]0;")
    assert document["verdict"]["passed"] is False and document["verdict"]["failed_tests"] == [
        f"{document['items'][0]['model'].replace('http://127.0.0.1', '')} :: test_answer"
    ]
    md = (pytester.path / "r.md").read_text()
    assert md.splitlines()[2] == "**FAILED**: no gates set"  # first, for a step summary
    assert "AssertionError: expected 42, got 'Yes.' \\x1b]0;pwned\\x07\\x1b[2J" in md
    assert "Run settings: max_tokens=16384" in md
    page = (pytester.path / "r.html").read_text()
    assert "\x1b" not in page
    assert (
        "<h4>Why it failed</h4><pre>AssertionError: expected 42, got &#x27;Yes.&#x27; \\x1b]0;"
        in page
    )
    assert "llmbench FAILED: no gates set" in page


def test_a_passing_comparison_says_so(
    pytester: pytest.Pytester, model: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_q=QUALITY)
    monkeypatch.setenv("FAKE_QUALITY", "0.5")
    assert pytester.runpytest(*model, "--llm-save=main").ret == 0
    same = pytester.runpytest(
        *model, "--llm-compare=main", "--llm-compare-fail=quality:0.1", "--llm-markdown=r.md"
    )
    assert same.ret == 0
    same.stdout.fnmatch_lines(
        [
            "*- llmbench compared with main.json: llama-server@:* -*",
            "(nothing moved beyond a margin or the noise; left out: 1 within noise, 10",
            "*- llmbench verdict -*",
            "llmbench gate passed: compared with main.json, margins quality:0.1",
        ]
    )
    assert (
        "**Gate passed**: compared with main.json, margins quality:0.1"
        in (pytester.path / "r.md").read_text()
    )
