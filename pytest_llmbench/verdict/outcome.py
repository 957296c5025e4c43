"""What an item's reports mean, and what the run's exit status is: each decided here once.

An item's outcome is folded from its setup/call/teardown reports by :func:`fold`, through
:func:`phase_outcome`, which reads only the report and the record it carries (so workers and
the xdist controller agree).
Server trouble is an *error*, never the model's failure: a call that failed with an item
record carrying an ``error`` is an error, as is any failed setup or teardown.

The run's exit status is decided by :func:`exit_status`, once, in ``pytest_sessionfinish``
(the pytest-benchmark pattern, never raised in the terminal summary): pytest's own status,
less the failed samples that a met pass-rate gate forgives, plus the gates' verdicts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Literal, Protocol, get_args

import pytest

from pytest_llmbench.generate.records import ItemRecord, record_from_report
from pytest_llmbench.typed_json import Invalid

NO_MODELS = "no models: pass --llm-models=SPEC (or set llm_models in the ini file)"
"""Why LLM tests are skipped when the run names no model (counted in the summary)."""

Outcome = Literal["pending", "passed", "failed", "error", "skipped"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)


class PhaseReport(Protocol):
    """The parts of a ``pytest.TestReport`` read here (also what xdist ships)."""

    @property
    def when(self) -> str | None: ...

    @property
    def outcome(self) -> str: ...


def phase_outcome(report: PhaseReport, record: ItemRecord | None) -> Outcome | None:
    """What one phase says about its item (``record``: the one ``report`` carries);
    ``None`` when it says nothing yet (setup passed)."""
    if report.outcome == "skipped":
        return "failed" if expected_failure(report, record) else "skipped"
    if report.outcome == "passed":
        return None if report.when == "setup" else "passed"
    infra = record is not None and bool(record.error)
    return "failed" if report.when == "call" and not infra else "error"


def reported_outcome(report: PhaseReport) -> Outcome | None:
    """:func:`phase_outcome` of ``report`` with the record it carries; a record that does
    not read makes the phase an error (its item's figures cannot be told)."""
    try:
        record = record_from_report(report)
    except Invalid:
        return "error"
    return phase_outcome(report, record)


def expected_failure(report: PhaseReport, record: ItemRecord | None) -> bool:
    """A known bad answer (``answers:DIR``, ``expect: fail``) that failed its test as
    expected: pytest's ``xfailed``, and on the leaderboard the failure it is."""
    return (
        report.when == "call"
        and hasattr(report, "wasxfail")
        and record is not None
        and record.expects_failure
    )


def fold(previous: Outcome, report: PhaseReport, record: ItemRecord | None) -> Outcome:
    """The item's outcome after ``report``: the first phase that did not pass decides."""
    phase = phase_outcome(report, record)
    if phase is None or previous not in ("pending", "passed"):
        return previous
    return phase


def counts_as_failure(report: pytest.TestReport | pytest.CollectReport) -> bool:
    """pytest's own rule for ``session.testsfailed`` (an xfail that failed is not one)."""
    return report.failed and not hasattr(report, "wasxfail")


def exit_status(
    current: int,
    *,
    testsfailed: int,
    failures: Mapping[str, int],
    forgiven: Collection[str],
    gate_failures: int,
    usage_errors: int = 0,
    stopped: bool = False,
) -> int:
    """The run's exit status.

    ``current`` is pytest's status (``session.exitstatus``), ``testsfailed`` its count of failed
    reports, ``failures`` the same count per node id, ``forgiven`` the node ids of the samples of
    repeat groups that met their pass rate, ``gate_failures`` the missed gates (pass rates,
    pooled thresholds, baseline regressions), ``usage_errors`` outputs that could not be
    written or read, ``stopped`` whether the run stopped early (``-x``, ``--maxfail``: then
    nothing is forgiven). Interruptions and internal errors are left as they are.
    """
    if current not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return current
    if usage_errors:
        return pytest.ExitCode.USAGE_ERROR
    if gate_failures:
        return pytest.ExitCode.TESTS_FAILED
    excused = sum(count for nodeid, count in failures.items() if nodeid in forgiven)
    if current == pytest.ExitCode.TESTS_FAILED and 0 < excused >= testsfailed and not stopped:
        return pytest.ExitCode.OK  # every failure pytest counted is a forgiven sample
    return current
