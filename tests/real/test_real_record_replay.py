"""Smoke test: record a real run against llama-server + gemma3-270m, replay it offline with no
server. The rest of record/replay (labels, missing and bad recordings, links) runs against the
fake in test_record_replay.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_server

TESTS = """
import pytest

@pytest.mark.parametrize("prompt", ["Name a fruit.", "Name a river."])
@pytest.mark.llm(max_tokens=16)
def test_words(llm, prompt):
    answer = llm.generate(prompt)
    llm.record_score("score", 100.0 * ("a" in answer.answer.lower()))
    assert answer.metrics.output_tokens
"""


def items(path: Path) -> dict[str, dict]:
    return {i["nodeid"]: i for i in json.loads(path.read_text())["items"]}


def test_replay_reproduces_scores_and_metrics_offline(
    pytester: pytest.Pytester, llama_server_bin: Path, gemma_gguf: Path
) -> None:
    pytester.makepyfile(test_rec=TESTS)
    model = ["--llm-models=llama-server:gemma3-270m", "--llm-ctx=1024", "-p", "no:cacheprovider"]
    recorded = pytester.runpytest(*model, "--llm-record=rec", "--llm-json=recorded.json")
    recorded.assert_outcomes(passed=2)
    recorded.stdout.fnmatch_lines(["*recorded 2 replies to rec*"])
    files = sorted((pytester.path / "rec").glob("*-1.json"))
    assert len(files) == 2
    events = json.loads(files[0].read_text())["events"]
    assert events and all(t > 0 for t, _, _ in events)  # timing events kept

    started = time.perf_counter()
    replayed = pytester.runpytest(
        *model,
        "--llm-replay=rec",
        "--llm-json=replayed.json",
        "--llm-llama-server-bin=/nonexistent/llama-server",  # proves no server is needed
    )
    elapsed = time.perf_counter() - started
    replayed.assert_outcomes(passed=2)
    replayed.stdout.fnmatch_lines(
        ["llmbench: replayed from rec (recorded * on *, server llama-server b*)"]
    )
    assert not any("starting llama-server" in line for line in replayed.stdout.lines)
    a, b = items(pytester.path / "recorded.json"), items(pytester.path / "replayed.json")
    assert a.keys() == b.keys()
    for nodeid in a:
        ra, rb = a[nodeid]["record"], b[nodeid]["record"]
        assert ra["scores"] == rb["scores"]
        assert [g["metrics"] for g in ra["generations"]] == [
            g["metrics"] for g in rb["generations"]
        ]
        assert [g["answer"] for g in ra["generations"]] == [g["answer"] for g in rb["generations"]]
    assert elapsed < 30
