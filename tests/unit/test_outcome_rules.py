"""The outcome fold and the exit-status rule, case by case."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from pytest_llmbench.config.thresholds import parse_thresholds
from pytest_llmbench.generate.records import record_from_report
from pytest_llmbench.verdict.outcome import Outcome, exit_status, fold

OK, FAILED = pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED


def phase(when: str, outcome: str, error: str | None = None) -> Any:
    return SimpleNamespace(
        when=when, outcome=outcome, llmbench={"model": "m", "test": "t", "error": error}
    )


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ([("setup", "passed")], "pending"),
        ([("setup", "passed"), ("call", "passed"), ("teardown", "passed")], "passed"),
        ([("setup", "passed"), ("call", "failed"), ("teardown", "passed")], "failed"),
        ([("setup", "passed"), ("call", "failed", "StreamError"), ("teardown", "passed")], "error"),
        ([("setup", "failed", "ServerError"), ("teardown", "passed")], "error"),
        ([("setup", "failed")], "error"),
        ([("setup", "skipped"), ("teardown", "passed")], "skipped"),
        ([("setup", "passed"), ("call", "skipped"), ("teardown", "passed")], "skipped"),
        ([("setup", "passed"), ("call", "passed"), ("teardown", "failed")], "error"),
        ([("setup", "passed"), ("call", "failed"), ("teardown", "failed")], "failed"),
    ],
)
def test_the_first_phase_that_did_not_pass_decides(
    phases: list[tuple[str, ...]], expected: Outcome
) -> None:
    outcome: Outcome = "pending"
    for args in phases:
        report = phase(*args)
        outcome = fold(outcome, report, record_from_report(report))
    assert outcome == expected


@pytest.mark.parametrize(
    ("current", "testsfailed", "failures", "gates", "usage", "expected"),
    [
        (OK, 0, {}, 0, 0, OK),
        (FAILED, 1, {"plain": 1}, 0, 0, FAILED),
        (FAILED, 1, {"gated-r2": 1}, 0, 0, OK),  # a forgiven sample only
        (FAILED, 2, {"gated-r2": 1, "plain": 1}, 0, 0, FAILED),
        (FAILED, 1, {}, 0, 0, FAILED),  # a collection error, say: never excused
        (OK, 0, {}, 1, 0, FAILED),  # a missed gate alone
        (FAILED, 1, {"gated-r2": 1}, 0, 1, pytest.ExitCode.USAGE_ERROR),
        (pytest.ExitCode.INTERRUPTED, 1, {"gated-r2": 1}, 1, 0, pytest.ExitCode.INTERRUPTED),
        (pytest.ExitCode.NO_TESTS_COLLECTED, 0, {}, 0, 0, pytest.ExitCode.NO_TESTS_COLLECTED),
    ],
)
def test_exit_status(
    current: int, testsfailed: int, failures: dict[str, int], gates: int, usage: int, expected: int
) -> None:
    status = exit_status(
        current,
        testsfailed=testsfailed,
        failures=failures,
        forgiven={"gated-r2"},
        gate_failures=gates,
        usage_errors=usage,
    )
    assert status == expected


def test_a_threshold_reads_back_as_written() -> None:
    # Thresholds travel as text on the records and are read again on the controller.
    for text in ("decode_tps>=1000000", "ttft_s<=0.00001", "score>=80"):
        (threshold,) = parse_thresholds(text)
        assert parse_thresholds(str(threshold)) == (threshold,)
