"""Deciding the run: each missed gate as a :class:`GateFailure`, and the one :class:`Verdict`.

The controller gathers (the results, the repeat groups, the comparison with a saved run) and
calls :func:`decide` once; the reports draw what it returns. Nothing is judged again here: an
item's thresholds are judged on its worker (``BenchItem``) and its record carries what it
missed; a repeat group's pooled thresholds and pass rate are judged by the group.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import pytest

from pytest_llmbench.config.thresholds import Margin
from pytest_llmbench.verdict.comparison import Comparison, missing_items, relabel
from pytest_llmbench.verdict.groups import RepeatGroup
from pytest_llmbench.verdict.results import ItemResult, Results
from pytest_llmbench.verdict.run_verdict import GateFailure, Verdict


@dataclass(frozen=True)
class BaselineGates:
    """This run against a saved one: the comparison, its missed gates (regressions, items
    without a result) and the lines listing the saved items this run has no result for."""

    comparison: Comparison
    name: str
    """The name a run saved to accept this run's change would have (``main``)."""
    failures: tuple[GateFailure, ...]
    lines: tuple[str, ...]

    @classmethod
    def of(
        cls,
        comparison: Comparison,
        name: str,
        base: Sequence[ItemResult],
        results: Results,
        collected: Collection[str],
        margins: Sequence[Margin],
    ) -> BaselineGates:
        failures = []
        for delta, margin in comparison.failed:
            pct = delta.change_pct
            failures.append(
                GateFailure(
                    "regression",
                    relabel(delta.key, results.labels),
                    f"{delta.metric} {delta.before:.3g} → {delta.after:.3g}"
                    + ("" if pct is None else f" ({pct:+.1f}%)")
                    + f", beyond margin {margin}",
                )
            )
        lines = []
        for key, nodeids in missing_items(base, results.ordered()).items():
            if not any(_was_collected(n, collected) for n in nodeids):
                lines.append(f"not in this run: {key} (in {comparison.baseline})")
                continue
            # Collected (so ran, or should have) but produced nothing: a gate must not pass it.
            lines.append(
                f"NO RESULT {key}: in {comparison.baseline}, collected in this run but produced "
                f"no result (skipped, errored or not run)"
            )
            if margins:
                where = relabel(key, results.labels)
                failures.append(
                    GateFailure("no result", where, f"in {comparison.baseline}, none here")
                )
        return cls(comparison, name, tuple(failures), tuple(lines))


def forgiven(groups: Sequence[RepeatGroup]) -> set[str]:
    """Failed samples whose repeat group met its gates."""
    return {nodeid for group in groups for nodeid in group.forgiven}


def missed_gates(groups: Sequence[RepeatGroup], baseline: BaselineGates | None) -> int:
    """The gates missed beyond the items' own: repeat groups', and the saved run's."""
    return sum(not group.ok for group in groups) + (
        0 if baseline is None else len(baseline.failures)
    )


def decide(
    status: int,
    results: Results,
    groups: Sequence[RepeatGroup],
    *,
    failures: Mapping[str, int],
    baseline: BaselineGates | None,
    margins: Sequence[Margin],
    problems: Sequence[str],
    accept: str | None,
) -> Verdict:
    """The gates' verdict for exit status ``status`` (one rule: ``outcome.exit_status``).

    ``failures``: failed calls per node id; ``margins``: ``--llm-compare-fail``'s;
    ``problems``: files that could not be written or read; ``accept``: the command that
    accepts a missed comparison (used only when one was missed)."""
    label = results.labels.get
    gate_failures: list[GateFailure] = []
    judged: set[str] = set()  # samples a gate judges: counted by their gate, not as failed tests
    for group in groups:
        where = f"{label(group.model, group.model)} :: {group.test}"
        if group.min_pass_rate is not None:
            judged.update(item.nodeid for item in group.items)
        if group.pass_rate_ok is False:
            rate = "-" if group.pass_rate is None else f"{group.pass_rate:.2f}"
            gate_failures.append(
                GateFailure(
                    "pass rate",
                    where,
                    f"{group.passed}/{len(group.ran)} = {rate}, min {group.min_pass_rate:.2f}",
                )
            )
        gate_failures += [GateFailure("threshold", where, m) for m in group.thresholds_missed]
    ordered = results.ordered()
    for item in ordered:
        missed = item.record.thresholds_missed  # judged once, by the item
        if item.outcome != "failed" or not missed or item.record.expects_failure:
            continue  # a known bad answer missing its threshold: the verdict it expects
        where = f"{label(item.model, item.model)} :: {item.test}"
        gate_failures += [GateFailure("threshold", where, m) for m in missed]
        judged.add(item.nodeid)
    compared = () if baseline is None else baseline.failures
    excused = forgiven(groups) | judged

    def name(nodeid: str) -> str:
        """``model :: test`` for an LLM item, else pytest's node id."""
        item = results.items.get(nodeid)
        return nodeid if item is None else f"{label(item.model, item.model)} :: {item.test}"

    return Verdict(
        passed=status == pytest.ExitCode.OK,
        failures=(*gate_failures, *compared),
        failed_tests=tuple(
            name(nodeid)
            for nodeid in failures
            if nodeid not in excused and not _errored(results, nodeid)
        ),
        errors=sum(item.outcome == "error" for item in ordered),
        problems=tuple(problems),
        checked=tuple(_checked(ordered, groups, baseline, margins)),
        accept=accept if compared else None,
    )


def _errored(results: Results, nodeid: str) -> bool:
    """Server trouble in the call (counted among the errors, never as the model's failure)."""
    item = results.items.get(nodeid)
    return item is not None and item.outcome == "error"


def _checked(
    ordered: Sequence[ItemResult],
    groups: Sequence[RepeatGroup],
    baseline: BaselineGates | None,
    margins: Sequence[Margin],
) -> list[str]:
    """What the run gated on, for the verdict's head line."""
    thresholds = dict.fromkeys(str(t) for i in ordered for t in i.record.thresholds)
    out = []
    if thresholds:
        out.append(f"thresholds {', '.join(thresholds)}")
    rates = dict.fromkeys(f"{g.min_pass_rate:.2f}" for g in groups if g.min_pass_rate)
    if rates:
        out.append(f"pass rate ≥ {', '.join(rates)}")
    known = [i.record.known_answer.expect for i in ordered if i.record.known_answer]
    if any(known):
        out.append(
            f"known answers: {known.count('pass')} must pass, {known.count('fail')} must fail"
        )
    if baseline is not None:
        listed = ", ".join(map(str, margins))
        out.append(
            f"compared with {baseline.comparison.baseline}"
            + (f", margins {listed}" if listed else " (no margins: not gated)")
        )
    return out


def _was_collected(nodeid: str, collected: Collection[str]) -> bool:
    # xdist's --dist loadgroup appends "@group" to the ids it reports.
    return nodeid in collected or any(c.startswith(nodeid + "@") for c in collected)
