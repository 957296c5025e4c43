"""What a judge costs: it honours the run's caps (output tokens, stall limit) unless the call
sets its own, and a judge that is a model under test shares that model's server."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from fakes import ModelScript
from pytest_llmbench.checks.judge import verdict_json
from tests.fixtures.fakes import StartLlamaServer

ROOT = Path(__file__).resolve().parents[2]

JUDGED = """
from pytest_llmbench import checks

def test_judged(llm, llm_judge):
    answer = llm.generate("explain")
    verdict = checks.judge(llm_judge, "explain", answer.answer, {"clear": "is clear"})
    llm.score({"judge": verdict})
"""

BOTH_GENERATE = """
def test_model_then_judge(llm, llm_judge):
    assert llm.generate("a question").answer
    assert llm_judge.generate("grade it").answer

def test_judge_only(llm_judge):
    assert llm_judge.generate("grade it").answer
"""


def tokens(text: str) -> list[str]:
    return [text[i : i + 3] for i in range(0, len(text), 3)]


@pytest.mark.parametrize(("args", "cap"), [((), 1024), (("--llm-max-tokens=200",), 200)])
def test_the_judge_cap_is_the_run_cap_when_lower(
    pytester: pytest.Pytester, args: tuple[str, ...], cap: int, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_j=JUDGED)
    verdict = verdict_json({"clear": True})
    model = fake_llama_server(ModelScript(["Fine"]))
    judge = fake_llama_server(ModelScript(tokens(verdict)))
    result = pytester.runpytest(
        f"--llm-models=llama-server@{model.url}", f"--llm-judge=llama-server@{judge.url}", *args
    )
    bodies = judge.calls("POST", "/v1/chat/completions")
    result.assert_outcomes(passed=1)
    assert [body["max_tokens"] for body in bodies] == [cap]


def test_a_stalled_judge_is_stopped_by_the_run_stall_limit(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_j=JUDGED)
    stalled = ModelScript(
        tokens(verdict_json({"clear": True})), fault="stall", fault_after=2, stall_s=60
    )
    started = time.perf_counter()
    model = fake_llama_server(ModelScript(["Fine"]))
    judge = fake_llama_server(stalled)
    result = pytester.runpytest(
        f"--llm-models=llama-server@{model.url}",
        f"--llm-judge=llama-server@{judge.url}",
        "--llm-read-timeout=1",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*StreamError: *stall limit: no new token for 1 s*"])
    assert time.perf_counter() - started < 30  # not the judge's 60 s stall, three times


def fake_binary(root: Path) -> Path:
    binary = root / "llama-server"
    binary.write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m fakes.llama_server_cli "$@"\n'
    )
    binary.chmod(0o755)
    return binary


@pytest.mark.parametrize("judge", ["llama-server:m.gguf", "j=llama-server:m.gguf"])
def test_a_judge_that_is_the_model_under_test_shares_its_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, judge: str
) -> None:
    pytester.makepyfile(test_j=BOTH_GENERATE)
    (pytester.path / "m.gguf").write_bytes(b"GGUF" + bytes(60))
    spawns = pytester.path / "spawns.log"
    monkeypatch.setenv("LLMBENCH_FAKE_SPAWN_LOG", str(spawns))
    monkeypatch.setenv("PYTEST_LLMBENCH_CACHE", str(pytester.path / "cache"))
    result = pytester.runpytest_subprocess(
        "--llm-models=llama-server:m.gguf",
        f"--llm-judge={judge}",
        f"--llm-llama-server-bin={fake_binary(pytester.path)}",
        "--llm-json=r.json",
        f"--llm-log-dir={pytester.path / 'logs'}",
    )
    result.assert_outcomes(passed=2)
    assert len(spawns.read_text().splitlines()) == 1  # before: two servers of m.gguf
    records = [i["record"] for i in json.loads((pytester.path / "r.json").read_text())["items"]]
    both = next(r for r in records if r["test"] == "test_model_then_judge")
    assert len(both["generations"]) == 1 and len(both["judge"]) == 1  # still kept apart


def test_a_judge_on_another_model_keeps_its_own_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_j=BOTH_GENERATE)
    for name in ("m", "judge"):
        (pytester.path / f"{name}.gguf").write_bytes(b"GGUF" + bytes(60))
    spawns = pytester.path / "spawns.log"
    monkeypatch.setenv("LLMBENCH_FAKE_SPAWN_LOG", str(spawns))
    monkeypatch.setenv("PYTEST_LLMBENCH_CACHE", str(pytester.path / "cache"))
    result = pytester.runpytest_subprocess(
        "--llm-models=llama-server:m.gguf",
        "--llm-judge=llama-server:judge.gguf",
        f"--llm-llama-server-bin={fake_binary(pytester.path)}",
        f"--llm-log-dir={pytester.path / 'logs'}",
    )
    result.assert_outcomes(passed=2)
    started = sorted(line.split()[1] for line in spawns.read_text().splitlines())
    assert started == ["judge.gguf", "m.gguf"]
