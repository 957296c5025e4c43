"""The terminal leaderboard fits pytest's width: snapshots at 80, 100 and 200 columns of a
run like ``pytest examples`` on six models, and the layout rules each snapshot relies on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_llmbench.report.leaderboard import render
from pytest_llmbench.report.summary import summarize
from tests.unit._examples import example_results

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.mark.parametrize("width", [80, 100, 200])
@pytest.mark.parametrize("verbose", [0, 1])
def test_snapshot_fits_the_width(width: int, verbose: int) -> None:
    text = render(summarize(example_results()), "auto", verbose, width)
    assert max(len(line) for line in text.splitlines()) <= width
    snapshot = SNAPSHOTS / f"leaderboard_{width}{'_v' if verbose else ''}.txt"
    if os.environ.get("LLMBENCH_UPDATE_SNAPSHOTS"):
        snapshot.write_text(text + "\n")
    assert text + "\n" == snapshot.read_text(), (
        f"regenerate with LLMBENCH_UPDATE_SNAPSHOTS=1: {snapshot}"
    )
