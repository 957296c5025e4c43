"""Controller-side end of the run: gather reports, write reports and baselines, compare,
apply gates to the exit status, print the leaderboard.

Registered only on the controller (never on xdist workers), like pytest's junitxml.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tabulate import tabulate

from pytest_llmbench.caveats import notes as caveat_notes
from pytest_llmbench.config import RunConfig
from pytest_llmbench.groups import RepeatGroup, repeat_groups
from pytest_llmbench.leaderboard import Results, render
from pytest_llmbench.outcome import NO_MODELS, counts_as_failure, exit_status
from pytest_llmbench.outputs import write_atomic
from pytest_llmbench.replay import RecordingInfo, recording_info
from pytest_llmbench.reports import html_page, markdown, results_document
from pytest_llmbench.serving import ServerInfo
from pytest_llmbench.specs import labels
from pytest_llmbench.store import (
    Store,
    StoreError,
    compare,
    fingerprint_mismatches,
    format_deltas,
    missing_items,
    regressions,
)
from pytest_llmbench.text_safety import fold, for_cell, for_markdown, for_terminal


class Controller:
    def __init__(self, config: pytest.Config, run: RunConfig) -> None:
        self.config = config
        self.run = run
        self.results = Results([s.id for s in run.specs], labels(run.specs))
        self.lines: list[str] = []
        """Notes for the terminal summary (written files, compare, gates)."""
        self.tables: list[tuple[str, str]] = []
        self.groups: list[RepeatGroup] = []
        self.failures: dict[str, int] = {}
        """Failed calls per node id, counted as pytest counts ``session.testsfailed``: only
        these can be a forgiven sample's (a failed setup or teardown never is)."""
        self.regressions = 0
        self.usage_errors = 0
        self.skipped_without_models: set[str] = set()
        self.collected: set[str] = set()
        """Node ids collected in this run (to tell a baseline item left out from one that
        ran and produced nothing)."""
        self.replay: RecordingInfo | None = (
            recording_info(Path(run.replay_dir)) if run.replay_dir else None
        )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected.update(item.nodeid for item in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.collected.update(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.results.add(report)
        if report.when == "call" and counts_as_failure(report):
            self.failures[report.nodeid] = self.failures.get(report.nodeid, 0) + 1
        if report.skipped and NO_MODELS in str(report.longrepr):
            self.skipped_without_models.add(report.nodeid)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.groups = repeat_groups(self.results.ordered(), self.run.pass_k)
        for group in self.groups:
            self.lines.extend(group.gate_lines())
        if self.results.items:
            self._write_outputs()
        session.exitstatus = exit_status(
            session.exitstatus,
            testsfailed=session.testsfailed,
            failures=self.failures,
            forgiven={nodeid for group in self.groups for nodeid in group.forgiven},
            gate_failures=sum(not group.ok for group in self.groups) + self.regressions,
            usage_errors=self.usage_errors,
            stopped=bool(session.shouldfail or session.shouldstop),
        )

    def _write_outputs(self) -> None:
        run = self.run
        try:
            document = results_document(self.results, run.settings.to_dict(), self.replay)
            document["repeat_groups"] = [group.to_dict() for group in self.groups]
        except Exception as exc:  # still write what does not need it: Markdown, HTML
            self._output_failed(
                f"results not assembled ({type(exc).__name__}: {exc}): no JSON, baseline or "
                f"comparison this run"
            )
            self._write_files(None)
            return
        self._write_files(document)
        store = Store(Path(self.config.rootpath, run.storage))
        if run.compare:
            self._compare(store, document)
        if run.save:
            try:
                path = store.save(run.save, document)
                self.lines.append(f"saved run: {path}")
            except (StoreError, OSError) as exc:
                self._output_failed(f"--llm-save {run.save}: run not saved: {exc}")
        self._count_recordings()

    def _write_files(self, document: dict[str, Any] | None) -> None:
        """Each requested file on its own: one that cannot be made or written is named and
        fails the run, and never stops the others (``document`` None: no JSON, said once)."""
        outputs: list[tuple[str, str, Callable[[], str]]] = [
            ("json", "results JSON", lambda: json.dumps(document, indent=1, default=str)),
            ("markdown", "Markdown leaderboard", self._markdown),
            ("html", "HTML report", lambda: html_page(self.results)),
        ]
        for name, what, render_text in outputs:
            target = self.run.outputs.get(name)
            if not target or (name == "json" and document is None):
                continue
            try:
                write_atomic(Path(target), render_text())
            except Exception as exc:  # rendering or writing: reported, the rest still written
                reason = str(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
                self._output_failed(f"{what} {target} not written: {reason}")
            else:
                self.lines.append(f"{what}: {target}")

    def _markdown(self) -> str:
        text = markdown(self.results, with_items=True)
        if self.replay is not None:
            title, rest = text.split("\n", 1)
            text = f"{title} — {for_markdown(self.replay.label())}\n{rest}"
        return text

    def _output_failed(self, message: str) -> None:
        """One ``ERROR:`` line; the exit status says the run did not do all it was asked."""
        self.lines.append(f"ERROR: {message}")
        self.usage_errors += 1

    def _count_recordings(self) -> None:
        target = self.run.record_dir or (
            self.run.replay_dir if self.run.replay_missing == "record" else None
        )
        if target is None:
            return
        # Written by whichever process ran the item (xdist workers too); each generation
        # names its recording on the report.
        count = sum(
            "recording" in generation
            for item in self.results.ordered()
            for generation in (*item.record.get("generations", ()), *item.record.get("judge", ()))
        )
        self.lines.append(f"recorded {count} repl{'y' if count == 1 else 'ies'} to {target}")

    def _compare(self, store: Store, document: dict[str, Any]) -> None:
        try:  # found and checked at configure time; read again now, it may have changed
            path, base = store.load(self.run.compare_path or str(self.run.compare))
        except StoreError as exc:
            self._output_failed(f"--llm-compare: {exc}")
            return
        deltas = compare(base, document)
        self.tables.append(
            (
                f"compared with {path.name}",
                tabulate(
                    [[for_cell(cell) for cell in row] for row in format_deltas(deltas)],
                    headers=["item", "metric", "before", "after", "change"],
                    tablefmt="github",
                    disable_numparse=True,
                )
                if deltas
                else "(no common items)",
            )
        )
        for note in fingerprint_mismatches(base, document):
            self.lines.append(f"WARNING: not like for like with {path.name}: {note}")
        failed = regressions(deltas, self.run.compare_fail)
        for delta, margin in failed:
            pct = delta.change_pct
            self.lines.append(
                f"REGRESSION {delta.key}: {delta.metric} {delta.before:.3g} -> {delta.after:.3g}"
                + ("" if pct is None else f" ({pct:+.1f}%)")
                + f", beyond margin {margin}"
            )
        self.regressions += len(failed)
        unfinished = self._missing(path.name, missing_items(base, document))
        if self.run.compare_fail:
            self.regressions += len(unfinished)

    def _missing(self, baseline: str, missing: dict[str, list[str]]) -> list[str]:
        """List the baseline's items without a result in this run; returns those that were
        collected (so ran, or should have) but produced nothing: a gate must not pass them."""
        unfinished = []
        for key, nodeids in missing.items():
            if any(self._was_collected(n) for n in nodeids):
                unfinished.append(key)
                self.lines.append(
                    f"NO RESULT {key}: in {baseline}, collected in this run but produced no "
                    f"result (skipped, errored or not run)"
                )
            else:
                self.lines.append(f"not in this run: {key} (in {baseline})")
        return unfinished

    def _was_collected(self, nodeid: str) -> bool:
        # xdist's --dist loadgroup appends "@group" to the ids it reports.
        return nodeid in self.collected or any(c.startswith(nodeid + "@") for c in self.collected)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        width = terminalreporter._tw.fullwidth  # pytest's own width (COLUMNS, the tty)
        text = render(self.results, self.run.leaderboard, self.config.get_verbosity(), width)
        if text:
            title = "llmbench leaderboard"
            if self.replay is not None:
                title += f" — {for_cell(self.replay.label())}"
            terminalreporter.write_sep("=", title)
            terminalreporter.write_line(text)
        if self.groups:
            rows = [
                [
                    g.model,
                    g.test,
                    str(len(g.items)),
                    f"{g.passed}/{len(g.ran)}",
                    _fmt(g.pass_at(1)),
                    f"{_fmt(g.pass_at(g.k))} (k={g.k})",
                    ("ok" if g.ok else "FAILED") if g.gated else "-",
                ]
                for g in self.groups
            ]
            terminalreporter.write_sep("-", "llmbench repeats")
            terminalreporter.write_line(
                tabulate(
                    rows,
                    headers=["model", "test", "runs", "passed", "pass@1", "pass@k", "gate"],
                    tablefmt="github",
                    disable_numparse=True,
                )
            )
        for title, table in self.tables:
            terminalreporter.write_sep("-", f"llmbench {title}")
            terminalreporter.write_line(table)
        # Folded to the width in a terminal; one line each in a log, where grep finds them.
        fold_to = width if terminalreporter.isatty() else 0

        def note(text: str) -> None:
            terminalreporter.write_line(fold(for_terminal(f"[llmbench] {text}"), fold_to))

        for line in self.lines:
            note(line)
        for warning in self.server_warnings():
            note(f"WARNING: {warning}")
        ordered = self.results.ordered()
        from pytest_llmbench.sandbox.containment import sandbox_warnings  # loaded only now

        for warning in sandbox_warnings(item.record for item in ordered):
            note(f"WARNING: {warning}")
        for caveat in caveat_notes((i.model, g) for i in ordered for g in i.generations):
            note(f"NOTE: {caveat}")
        skipped = len(self.skipped_without_models)
        if skipped:
            tests = "LLM test" if skipped == 1 else "LLM tests"
            terminalreporter.write_line(
                f"[llmbench] {skipped} {tests} skipped: no models; pass --llm-models",
                yellow=True,
            )

    def server_warnings(self) -> list[str]:
        """Configuration pitfalls the backends noticed (e.g. a GGUF without a chat template),
        once each, so they are seen next to the figures they affect."""
        seen: dict[str, None] = {}
        for item in self.results.ordered():
            for generation in item.generations:
                for warning in ServerInfo.from_dict(generation.get("server") or {}).warnings:
                    seen.setdefault(str(warning))
        return list(seen)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
