"""The repeats table fits the width: snapshots at 80 and 100 columns."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_llmbench.report.terminal import repeats_table
from pytest_llmbench.verdict.groups import repeat_groups
from pytest_llmbench.verdict.results import ItemResult
from tests.unit._examples import typed

SNAPSHOTS = Path(__file__).parent / "snapshots"
MODELS = {
    "llama-server@http://127.0.0.1:18080": "llama-server@:18080",
    "ollama:qwen3:8b@http://gpu1.lab.example:11434": "ollama:qwen3:8b@gpu1…:11434",
}


def _items() -> list[ItemResult]:
    items = []
    for m, model in enumerate(MODELS):
        for test in ("test_todo_app[v1]", "test_humaneval[HumanEval/163-long-parameter-id]"):
            for rep in range(5):
                outcome = "failed" if (rep + m) % 4 == 0 else "passed"
                record = typed(
                    {"repeats": 5, "min_pass_rate": 0.8 if "todo" in test else None}, model, test
                )
                nodeid = f"t.py::{test}[{model}-r{rep + 1}]"
                items.append(ItemResult(nodeid, model, test, record, outcome))
    return items


@pytest.mark.parametrize("width", [80, 100])
def test_snapshot_fits_the_width(width: int) -> None:
    text = repeats_table(repeat_groups(_items(), 3), MODELS, width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "| FAILED |" in text and "| ok " in text
    snapshot = SNAPSHOTS / f"repeats_{width}.txt"
    if os.environ.get("LLMBENCH_UPDATE_SNAPSHOTS"):
        snapshot.write_text(text + "\n")
    assert text + "\n" == snapshot.read_text(), (
        f"regenerate with LLMBENCH_UPDATE_SNAPSHOTS=1: {snapshot}"
    )
