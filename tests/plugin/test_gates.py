"""Repeats, pass-rate gates, thresholds, baselines and reports through pytest, against
FakeLlamaServer (none of them needs a real model; tests/real/test_real_gates.py keeps one real smoke run)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import pytest_llmbench
from fakes import ModelScript
from tests.fixtures.fakes import StartLlamaServer


@pytest.fixture
def model(fake_llama_server: StartLlamaServer) -> list[str]:
    srv = fake_llama_server(ModelScript(["Yes", "."]))
    return [f"--llm-models=llama-server@{srv.url}", "-p", "no:cacheprovider"]


REPEATED = """
import pytest

@pytest.mark.llm(repeat=5, temperature=0.7, max_tokens=4, min_pass_rate=MIN)
def test_sampled(llm):
    llm.generate("Say yes.")
    assert llm.settings.seed != 45, "the one sample that fails on purpose"
"""


@pytest.mark.parametrize(("minimum", "exit_code"), [(0.8, 0), (0.9, 1)])
def test_repeats_pass_rate_gate_and_pass_at_k(
    pytester: pytest.Pytester, model: list[str], minimum: float, exit_code: int
) -> None:
    pytester.makepyfile(test_rep=REPEATED.replace("MIN", str(minimum)))
    result = pytester.runpytest(*model, "--llm-json=out.json", "--llm-pass-k=3")
    result.assert_outcomes(passed=4, failed=1)
    assert result.ret == exit_code
    gate = "ok" if exit_code == 0 else "FAILED"
    result.stdout.fnmatch_lines(["*FAILED*test_sampled[[]llama-server@*-r4[]]*"])
    result.stdout.fnmatch_lines(
        [
            f"| llama-s*| test_sampled | 5 * | 4/5 * | 0.80 * | 1.00 (k=3)*| {gate} *|",
        ]
    )
    if exit_code == 0:
        result.stdout.fnmatch_lines(
            [
                "*pass-rate gate OK: llama-server@* test_sampled: 4/5 = 0.80*",
                "*- llmbench verdict -*",
                f"llmbench gate passed: pass rate ≥ {minimum:.2f}",
            ]
        )
    else:  # the verdict names the gate, its figure and its limit, last
        result.stdout.fnmatch_lines(
            [
                "*- llmbench verdict -*",
                f"llmbench gate FAILED: pass rate ≥ {minimum:.2f}",
                "  pass rate: llama-server@:* :: test_sampled: 4/5 = 0.80, min 0.90",
                "=*short test summary info*",
            ]
        )
    document = json.loads((pytester.path / "out.json").read_text())
    seeds = sorted(i["record"]["settings"]["seed"] for i in document["items"])
    assert seeds == [42, 43, 44, 45, 46]  # distinct, recorded seeds
    (group,) = document["repeat_groups"]
    assert (group["pass@1"], group["pass@k"], group["k"]) == (0.8, 1.0, 3)
    assert group["gate_ok"] is (exit_code == 0)


SCORED = """
import os

def test_scored(llm):
    llm.generate("Hi", max_tokens=4)
    llm.record_score("score", float(os.environ["FAKE_SCORE"]))
"""


def test_baseline_save_compare_and_fail_on_regression(
    pytester: pytest.Pytester, model: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_s=SCORED)
    monkeypatch.setenv("FAKE_SCORE", "90")
    saved = pytester.runpytest(*model, "--llm-save=base")
    assert saved.ret == 0
    assert (pytester.path / ".llmbench" / "base.json").is_file()
    saved.stdout.fnmatch_lines(["*saved run: */.llmbench/base.json (history: 0001_base.json)"])
    stored = sorted(
        str(p.relative_to(pytester.path)) for p in (pytester.path / ".llmbench").rglob("*")
    )
    assert stored == [
        ".llmbench/base.json",
        ".llmbench/history",
        ".llmbench/history/0001_base.json",
    ]

    monkeypatch.setenv("FAKE_SCORE", "86")
    within = pytester.runpytest(*model, "--llm-compare=base", "--llm-compare-fail=score:5")
    assert within.ret == 0
    within.stdout.fnmatch_lines(
        [
            "*- llmbench compared with base.json: llama-server@:* -*",
            "| test        | metric | before | after | change |",
            "|-*|",
            "| test_scored | score  | 90.0   | 86.0  | -4.4%  |",
            "(left out: *timings never repeated (--llm-repeat measures noise); -v: all)",
            "*- llmbench verdict -*",
            "llmbench gate passed: compared with base.json, margins score:5",
        ]
    )

    monkeypatch.setenv("FAKE_SCORE", "80")
    beyond = pytester.runpytest(*model, "--llm-compare=base", "--llm-compare-fail=score:5")
    assert beyond.ret == pytest.ExitCode.TESTS_FAILED
    beyond.stdout.fnmatch_lines(
        [
            "*- llmbench verdict -*",
            "llmbench gate FAILED: compared with base.json, margins score:5",
            "  regression: llama-server@:* :: test_scored: score 90 → 80 (-11.1%), beyond margin "
            "score:5",
            "  if the change is intended, accept it: pytest --llm-models=llama-server@http://* "
            "-p no:cacheprovider *--llm-save=base",
        ]
    )
    beyond_quiet = pytester.runpytest(
        *model, "-p", "no:terminal", "--llm-compare=base", "--llm-compare-fail=score:5"
    )
    assert beyond_quiet.ret == pytest.ExitCode.TESTS_FAILED

    other = pytester.runpytest(*model, "--llm-max-tokens=99", "--llm-compare=base")
    other.stdout.fnmatch_lines(
        ["*WARNING: not like for like with base.json: settings: max_tokens 16384 → 99"]
    )


THRESHOLD = """
import pytest

@pytest.mark.llm(thresholds="decode_tps>=1e12")
def test_fast(llm):
    assert llm.generate("Hi", max_tokens=8).text is not None
"""


def test_threshold_failure_shows_value_and_limit(
    pytester: pytest.Pytester, model: list[str]
) -> None:
    pytester.makepyfile(test_t=THRESHOLD)
    result = pytester.runpytest(*model, "--junitxml=j.xml")
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*threshold missed: decode_tps = *, threshold decode_tps>=1e+12*"])
    assert 'name="llm.decode_tps"' in (pytester.path / "j.xml").read_text()


def test_markdown_and_html_reports(
    pytester: pytest.Pytester, model: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SCORE", "75")
    pytester.makepyfile(test_s=SCORED)
    result = pytester.runpytest(
        *model, "--llm-markdown=lb.md", "--llm-html=report.html", "--llm-json=r.json"
    )
    assert result.ret == 0
    md = (pytester.path / "lb.md").read_text()
    assert md.startswith("## LLM benchmark") and "| llama-server@:" in md
    assert "| 75.0 " in md
    page = (pytester.path / "report.html").read_text()
    assert "<svg" in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    ).replace("llama-server@http://", "")
    document = json.loads((pytester.path / "r.json").read_text())
    assert (document["schema"], document["version"]) == ("pytest-llmbench/results", 1)
    schema = json.loads(
        (Path(pytest_llmbench.__file__).parent / "schema" / "results-v1.json").read_text()
    )
    jsonschema.validate(document, schema)
