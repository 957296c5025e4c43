"""The comparison with a saved run shows what moved: rows beyond their margin or beyond the
noise the repeats measured, one line per item and metric, fitted to the width (snapshots at
80 and 100 columns); every row with -v and in the JSON."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench.config.thresholds import parse_margins
from pytest_llmbench.report.terminal import comparison_table
from pytest_llmbench.verdict.baselines import saved_items
from pytest_llmbench.verdict.comparison import Comparison
from pytest_llmbench.verdict.results import ItemResult

SNAPSHOTS = Path(__file__).parent / "snapshots"
MODEL = "llama-server@http://127.0.0.1:18080"
OTHER = "ollama:qwen3:8b@http://gpu1.lab.example:11434"
LABELS = {MODEL: "llama-server@:18080", OTHER: "ollama:qwen3:8b@gpu1…:11434"}


def item(test: str, score: float, ttft: float, *, quality: float | None = None, rep: int = 0,
         outcome: str = "passed", itl_max: float = 0.05) -> dict[str, Any]:  # fmt: skip
    scores = {"score": score, **({} if quality is None else {"quality": quality})}
    metrics = {"ttft_s": ttft, "decode_tps": 50.0, "itl_max_s": itl_max, "itl_p50_s": 0.02}
    return {
        "nodeid": f"t.py::{test}[{MODEL}-r{rep}]",
        "model": MODEL,
        "test": test,
        "outcome": outcome,
        "record": {"scores": scores, "generations": [{"metrics": metrics}]},
    }


def doc(*items: dict[str, Any]) -> list[ItemResult]:
    """The items of a saved run, typed as the comparison reads them."""
    return saved_items({"items": list(items)})


def test_one_moved_score_of_one_item_is_one_row() -> None:
    """The issue's case: score 100 -> 60 beside TTFT +10.5 % and ITL max +72.5 %."""
    before = doc(item("test_answer", 100, 0.200, itl_max=0.040))
    after = doc(item("test_answer", 60, 0.221, itl_max=0.069, outcome="failed"))
    comparison = Comparison.of("0001_main.json", before, after, parse_margins("score:5"))
    text = comparison_table(comparison, LABELS, 100, every=False)
    lines = text.splitlines()
    assert len(lines) <= 4 and max(map(len, lines)) <= 100, text
    assert lines[2] == "| test_answer | score  | 100.0  | 60.0  | -40.0% | > score:5 |"
    assert comparison.model() == MODEL  # named once, in the title, not on every row
    assert "4 timings never repeated" in text  # left out, and said so
    every = comparison_table(comparison, LABELS, 100, every=True)
    assert {"ttft_s", "itl_max_s"} <= {r.split("|")[2].strip() for r in every.splitlines()[2:]}
    rows = comparison.to_dict()["rows"]
    assert {r["metric"]: r["moved"] for r in rows}["ttft_s"] is False
    assert {r["metric"]: r["beyond_margin"] for r in rows}["score"] == "score:5"


def test_noise_measured_from_repeats_hides_a_timing_within_it_and_shows_one_beyond() -> None:
    before = doc(*(item("test_r", 80, t, rep=n) for n, t in enumerate((0.20, 0.30, 0.25))))
    within = doc(*(item("test_r", 80, t, rep=n) for n, t in enumerate((0.22, 0.31, 0.27))))
    beyond = doc(*(item("test_r", 80, t, rep=n) for n, t in enumerate((0.60, 0.65, 0.62))))
    calm = Comparison.of("b.json", before, within, ())
    assert calm.moved() == []
    assert "nothing moved" in comparison_table(calm, LABELS, 80, every=False)
    moved = Comparison.of("b.json", before, beyond, ())
    assert [d.metric for d in moved.moved()] == ["ttft_s"]
    assert moved.moved()[0].noise == pytest.approx(0.10)


def test_a_record_score_name_is_compared_and_gated() -> None:
    before, after = (
        doc(item("test_q", 90, 0.2, quality=0.5)),
        doc(item("test_q", 90, 0.2, quality=0.333)),
    )
    comparison = Comparison.of("b.json", before, after, parse_margins("quality:0.1"))
    ((failed, margin),) = comparison.failed
    assert (failed.metric, str(margin)) == ("quality", "quality:0.1")
    text = comparison_table(comparison, LABELS, 100, every=False)
    assert "| test_q | quality | 0.500  | 0.333 |" in text


def _many() -> Comparison:
    tests = [
        "test_todo_app[v1]",
        "test_saas_spec",
        "test_humaneval[HumanEval/0]",
        "test_speed[explain]",
    ]
    models = [MODEL, OTHER]

    def at(model: str, it: dict[str, Any]) -> dict[str, Any]:
        return {**it, "model": model, "nodeid": it["nodeid"] + model}

    before = doc(*(at(m, item(t, 90, 0.2, quality=0.8)) for m in models for t in tests))
    after = doc(
        *(
            at(m, item(t, 90 - 20 * (n % 2), 0.2 * (1 + n), quality=0.8 - 0.1 * n))
            for m in models
            for n, t in enumerate(tests)
        )
    )
    return Comparison.of("0007_main.json", before, after, parse_margins("score:5,quality:10%"))


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("every", [False, True])
def test_snapshot_fits_the_width(width: int, every: bool) -> None:
    text = comparison_table(_many(), LABELS, width, every=every)
    assert max(len(line) for line in text.splitlines()) <= width
    snapshot = SNAPSHOTS / f"comparison_{width}{'_v' if every else ''}.txt"
    if os.environ.get("LLMBENCH_UPDATE_SNAPSHOTS"):
        snapshot.write_text(text + "\n")
    assert text + "\n" == snapshot.read_text(), (
        f"regenerate with LLMBENCH_UPDATE_SNAPSHOTS=1: {snapshot}"
    )
