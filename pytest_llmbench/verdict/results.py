"""The run's results on the controller: each item's outcome and record, gathered from the
reports (the same with and without pytest-xdist: everything read here travels on them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest

from pytest_llmbench.generate.records import (
    GenerationRecord,
    ItemRecord,
    record_from_report,
    unreadable,
)
from pytest_llmbench.typed_json import Invalid
from pytest_llmbench.verdict.outcome import Outcome, fold


@dataclass
class ItemResult:
    """The outcome of one model × test item, folded from its setup/call/teardown reports."""

    nodeid: str
    model: str
    test: str
    record: ItemRecord
    outcome: Outcome = "pending"

    @property
    def generations(self) -> list[GenerationRecord]:
        return self.record.generations


class Results:
    """Fed by ``pytest_runtest_logreport``; identical with and without pytest-xdist because
    everything it reads travels on the reports."""

    def __init__(self, model_order: Sequence[str], labels: Mapping[str, str] | None = None) -> None:
        self.model_order = list(model_order)
        self.labels = dict(labels or {})
        """Short table labels by model id (``specs.labels``); the id where none is given."""
        self.items: dict[str, ItemResult] = {}

    def add(self, report: pytest.TestReport) -> None:
        unread = False
        try:
            record = record_from_report(report)
        except Invalid as problem:
            record, unread = unreadable(report, problem), True
        if record is None:
            return
        item = self.items.get(report.nodeid)
        if item is None:
            item = self.items[report.nodeid] = ItemResult(
                report.nodeid, record.model, record.test, record
            )
        elif record.shipped:
            item.record = record
        item.outcome = "error" if unread else fold(item.outcome, report, record)

    def ordered(self) -> list[ItemResult]:
        def key(item: ItemResult) -> tuple[int, str]:
            try:
                return (self.model_order.index(item.model), item.nodeid)
            except ValueError:
                return (len(self.model_order), item.nodeid)

        return sorted(self.items.values(), key=key)
