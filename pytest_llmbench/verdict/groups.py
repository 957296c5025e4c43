"""Repeat groups: the repetitions of one model × test, and the gates judged on them together.

A test run ``N`` times (``--llm-repeat``, ``@pytest.mark.llm(repeat=N)``) gets one verdict per
gate: its pass rate against ``min_pass_rate``, and each threshold against the median of the
values pooled over its repetitions (README: "an item whose median misses one fails").
Built on the controller from the records on the reports, so it is the same under xdist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pytest_llmbench.config.thresholds import Threshold
from pytest_llmbench.verdict.gates import check_pooled, pass_at_k
from pytest_llmbench.verdict.results import ItemResult


@dataclass(frozen=True)
class RepeatGroup:
    model: str
    test: str
    items: tuple[ItemResult, ...]
    pass_k: int

    @property
    def ran(self) -> list[ItemResult]:
        """The repetitions that produced a verdict on the model (not errors or skips)."""
        return [i for i in self.items if i.outcome in ("passed", "failed")]

    @property
    def passed(self) -> int:
        return sum(i.outcome == "passed" for i in self.items)

    @property
    def errors(self) -> int:
        return sum(i.outcome == "error" for i in self.items)

    @property
    def pass_rate(self) -> float | None:
        return self.passed / len(self.ran) if self.ran else None

    @property
    def k(self) -> int:
        return min(self.pass_k, len(self.ran))

    def pass_at(self, k: int) -> float | None:
        return pass_at_k(len(self.ran), self.passed, k) if self.ran else None

    @property
    def min_pass_rate(self) -> float | None:
        rates = (i.record.min_pass_rate for i in self.items)
        return next((r for r in rates if r is not None), None)

    @property
    def pass_rate_ok(self) -> bool | None:
        """The pass-rate gate's verdict; ``None`` when the test has none."""
        gate, rate = self.min_pass_rate, self.pass_rate
        return None if gate is None else (rate is not None and rate >= gate)

    @property
    def thresholds(self) -> tuple[Threshold, ...]:
        return next((t for i in self.items if (t := i.record.thresholds)), ())

    @cached_property
    def thresholds_missed(self) -> list[str]:
        """The thresholds the group's median misses (value, limit and spread), judged once."""
        if not self.thresholds:
            return []
        records = [i.record for i in self.ran]
        return check_pooled(records, self.thresholds)

    @property
    def gated(self) -> bool:
        return self.min_pass_rate is not None or bool(self.thresholds)

    @property
    def ok(self) -> bool:
        """Every gate of the group holds."""
        return self.pass_rate_ok is not False and not self.thresholds_missed

    @property
    def forgiven(self) -> list[str]:
        """Node ids whose failures the group's met pass rate excuses (never an error)."""
        if not self.pass_rate_ok or self.thresholds_missed:
            return []
        return [i.nodeid for i in self.items if i.outcome == "failed"]

    def gate_lines(self) -> list[str]:
        """One line per gate of the group, ``OK`` or ``FAILED``."""
        lines = []
        where = f"{self.model} {self.test}"
        if self.min_pass_rate is not None:
            verdict = "OK" if self.pass_rate_ok else "FAILED"
            rate = "-" if self.pass_rate is None else f"{self.pass_rate:.2f}"
            lines.append(
                f"pass-rate gate {verdict}: {where}: {self.passed}/{len(self.ran)} = {rate} "
                f"(min {self.min_pass_rate:.2f})"
            )
        missed = self.thresholds_missed
        if self.thresholds and not missed:
            lines.append(f"threshold gate OK: {where}: {', '.join(map(str, self.thresholds))}")
        lines.extend(f"threshold gate FAILED: {where}: {m}" for m in missed)
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "test": self.test,
            "n": len(self.items),
            "ran": len(self.ran),
            "passed": self.passed,
            "errors": self.errors,
            "pass_rate": self.pass_rate,
            "pass@1": self.pass_at(1),
            "k": self.k,
            "pass@k": self.pass_at(self.k),
            "min_pass_rate": self.min_pass_rate,
            "gate_ok": self.pass_rate_ok,
            "thresholds": [str(t) for t in self.thresholds],
            "thresholds_missed": self.thresholds_missed,
            "nodeids": [i.nodeid for i in self.items],
        }


def repeat_groups(items: Sequence[ItemResult], pass_k: int) -> list[RepeatGroup]:
    """The repeated items grouped per model × test (in ``items`` order)."""
    groups: dict[tuple[str, str, str], list[ItemResult]] = {}
    for item in items:
        if item.record.repeats > 1:
            where = item.nodeid.rpartition("::")[0]  # the same name in two files: two groups
            groups.setdefault((item.model, where, item.test), []).append(item)
    return [
        RepeatGroup(model, test, tuple(members), pass_k)
        for (model, _, test), members in groups.items()
    ]
