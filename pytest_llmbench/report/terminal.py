"""The terminal summary: the leaderboard, the repeats and the comparison tables, the notes and
the gates' verdict, drawn from what the controller hands over (:class:`TerminalReport`); the
run is added up once, elsewhere (:mod:`pytest_llmbench.report.summary`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmbench.report.leaderboard import render
from pytest_llmbench.report.summary import RunSummary
from pytest_llmbench.report.tables import Column, fit, shorten
from pytest_llmbench.text_safety import fold, for_cell, for_terminal
from pytest_llmbench.verdict.comparison import Comparison
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
            table = self.comparison.render(labels, width, every=verbose > 0)
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
