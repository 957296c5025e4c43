"""The terminal summary: the leaderboard, the repeats and the comparison tables, the notes and
the gates' verdict, drawn from what the controller hands over (:class:`TerminalReport`); the
run is added up once, elsewhere (:mod:`pytest_llmbench.report.summary`)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmbench.metrics import lookup
from pytest_llmbench.report.leaderboard import render
from pytest_llmbench.report.summary import RunSummary
from pytest_llmbench.report.tables import Column, Fitted, fit, shorten, table_width
from pytest_llmbench.text_safety import fold, for_cell, for_terminal
from pytest_llmbench.verdict.comparison import Comparison, Delta
from pytest_llmbench.verdict.groups import RepeatGroup
from pytest_llmbench.verdict.run_verdict import Verdict


@dataclass(frozen=True)
class TerminalReport:
    """What the terminal summary shows, in the order it is drawn."""

    summary: RunSummary
    mode: str
    """``--llm-leaderboard``: models, items, both, none or auto."""
    replay: str | None = None
    """Where a replayed run's answers came from (its leaderboard title says so)."""
    groups: Sequence[RepeatGroup] = ()
    comparison: Comparison | None = None
    notes: Sequence[str] = ()
    """Lines under the tables (written files, gates, ``WARNING: ...``, ``NOTE: ...``)."""
    skipped_without_models: int = 0
    verdict: Verdict | None = None

    def write(self, terminalreporter: Any, verbose: int) -> None:
        """Draw it with pytest's terminal reporter, within its width."""
        width = terminalreporter._tw.fullwidth  # pytest's own width (COLUMNS, the tty)
        labels = self.summary.labels
        text = render(self.summary, self.mode, verbose, width)
        if text:
            title = "llmbench leaderboard"
            if self.replay is not None:
                # The separator needs room for its own "= " and " =" on each side.
                title += f" — {shorten(for_cell(self.replay), width - len(title) - 11)}"
            terminalreporter.write_sep("=", title)
            terminalreporter.write_line(text)
        if self.groups:
            terminalreporter.write_sep("-", "llmbench repeats")
            terminalreporter.write_line(repeats_table(self.groups, labels, width))
        if self.comparison is not None:
            title = f"llmbench compared with {self.comparison.baseline}"
            model = self.comparison.model()
            if model is not None:
                title += f": {labels.get(model, model)}"
            title = shorten(for_cell(title), width - 6)
            terminalreporter.write_sep("-", title)
            table = comparison_table(self.comparison, labels, width, every=verbose > 0)
            terminalreporter.write_line(table)
        # Folded to the width in a terminal; one line each in a log, where grep finds them.
        fold_to = width if terminalreporter.isatty() else 0
        for line in self.notes:
            terminalreporter.write_line(fold(for_terminal(f"[llmbench] {line}"), fold_to))
        if self.skipped_without_models:
            skipped = self.skipped_without_models
            tests = "LLM test" if skipped == 1 else "LLM tests"
            terminalreporter.write_line(
                f"[llmbench] {skipped} {tests} skipped: no models; pass --llm-models",
                yellow=True,
            )
        if self.verdict is not None:
            terminalreporter.write_sep("-", "llmbench verdict")
            head, *rest = self.verdict.lines()
            terminalreporter.write_line(fold(head, fold_to), bold=True, red=not self.verdict.passed)
            for line in rest:
                terminalreporter.write_line(fold(line, fold_to))


def repeats_table(
    groups: Sequence[RepeatGroup], labels: Mapping[str, str], width: int | None
) -> str:
    """One row per repeat group (model, test, runs, passed, pass@1, pass@k, gate), fitted
    to ``width`` (long model and test names are cut in the middle)."""
    columns = [
        Column("model", tuple(for_cell(labels.get(g.model, g.model)) for g in groups), shrink=True),
        Column("test", tuple(for_cell(g.test) for g in groups), shrink=True),
        Column("runs", tuple(str(len(g.items)) for g in groups)),
        Column("passed", tuple(f"{g.passed}/{len(g.ran)}" for g in groups)),
        Column("pass@1", tuple(_fmt(g.pass_at(1)) for g in groups)),
        Column("pass@k", tuple(f"{_fmt(g.pass_at(g.k))} (k={g.k})" for g in groups)),
        Column("gate", tuple(("ok" if g.ok else "FAILED") if g.gated else "-" for g in groups)),
    ]
    return fit(columns, width).text


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _comparison_columns(
    comparison: Comparison, labels: Mapping[str, str], *, every: bool, model: str | None = None
) -> list[Column]:
    """One row per item and metric (moved ones only unless ``every``); of one ``model``
    without a model column, else of every model with one."""
    rows = [
        d
        for d in (comparison.deltas if every else comparison.moved())
        if model is None or d.key.partition(" :: ")[0] == model
    ]
    notes = tuple(_why(comparison, d) for d in rows)
    keys = [d.key.partition(" :: ") for d in rows]
    columns = [] if model else [
        Column("model", tuple(labels.get(k[0], k[0]) for k in keys), shrink=True)
    ]  # fmt: skip
    columns += [
        Column("test", tuple(k[2] for k in keys), shrink=True),
        Column("metric", tuple(d.metric for d in rows)),
        Column("before", tuple(lookup(d.metric).format(d.before) for d in rows)),
        Column("after", tuple(lookup(d.metric).format(d.after) for d in rows)),
        Column("change", tuple(_change(d) for d in rows)),
    ]
    return columns + ([Column("why", notes, priority=1)] if any(notes) else [])


def _why(comparison: Comparison, delta: Delta) -> str:
    margin = comparison.margin_of(delta)
    if margin is not None:
        return f"> {margin}"
    if delta.noise is not None:
        sign = ">" if delta.beyond_noise else "≤"
        return f"{sign} noise {lookup(delta.metric).format(delta.noise)}"
    return {None: "noise unmeasured", True: "", False: "unchanged"}[delta.beyond_noise]


def comparison_table(
    comparison: Comparison, labels: Mapping[str, str], width: int | None, *, every: bool
) -> str:
    """What moved against the saved run, fitted to ``width``, and a line on what it leaves
    out (``every``: every row, as with ``-v``)."""
    if not comparison.deltas:
        return "(no items in common)"
    moved = comparison.moved()
    unmeasured = comparison.unmeasured()
    within = len(comparison.deltas) - len(moved) - unmeasured
    parts = []
    if every or moved:
        parts.append(_comparison_tables(comparison, labels, width, every))
    if not every:
        hidden = [f"{within} within noise"] if within else []
        if unmeasured:
            hidden.append(f"{unmeasured} timings never repeated (--llm-repeat measures noise)")
        head = "left out" if moved else "nothing moved beyond a margin or the noise; left out"
        if hidden:
            note = f"({head}: {', '.join(hidden)}; -v: all)"
            parts.append("\n".join(textwrap.wrap(note, width or 10_000, break_on_hyphens=False)))
    return "\n".join(parts)


def _comparison_tables(
    comparison: Comparison, labels: Mapping[str, str], width: int | None, every: bool
) -> str:
    """One table; where the model column would squeeze it, one per model under the
    model's label instead (as the items table does)."""
    single = comparison.model()
    if single is not None:
        return _fitted(_comparison_columns(comparison, labels, every=every, model=single), width)
    columns = _comparison_columns(comparison, labels, every=every)
    if width is None or table_width(columns) <= width:
        return _fitted(columns, width)
    out = []
    for model in comparison.models():
        own = _comparison_columns(comparison, labels, every=every, model=model)
        if own[0].cells:
            out.append(f"{labels.get(model, model)}:\n{_fitted(own, width)}")
    return "\n".join(out)


def _fitted(columns: list[Column], width: int | None) -> str:
    fitted: Fitted = fit(columns, width)
    if fitted.dropped:
        return f"{fitted.text}\n(left out to fit: {', '.join(fitted.dropped)}; in --llm-json)"
    return fitted.text


def _change(delta: Delta) -> str:
    """Relative where it can be (``-40.0%``); the difference where the baseline was 0."""
    pct = delta.change_pct
    if pct is not None:
        return f"{pct:+.1f}%"
    sign = "+" if delta.change >= 0 else "-"
    return f"{sign}{lookup(delta.metric).format(abs(delta.change))}"
