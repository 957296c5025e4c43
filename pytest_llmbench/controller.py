"""Controller-side end of the run: gather reports, write reports and baselines, compare,
hand the run to verdict/decide.py for its verdict, print the leaderboard and, last, that verdict.

Registered only on the controller (never on xdist workers), like pytest's junitxml.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench.config.run_config import RUN_DIR_KEY, RunConfig
from pytest_llmbench.generate.replay import RecordingInfo, recording_info
from pytest_llmbench.output_files import write_atomic
from pytest_llmbench.report.formats import RunNotes, html_page, markdown, results_document
from pytest_llmbench.report.summary import RunSummary, summarize
from pytest_llmbench.report.terminal import TerminalReport
from pytest_llmbench.serve.specs import labels
from pytest_llmbench.text_safety import for_markdown
from pytest_llmbench.verdict.baselines import (
    Store,
    StoreError,
    fingerprint_mismatches,
    run_name,
    saved_items,
)
from pytest_llmbench.verdict.comparison import Comparison
from pytest_llmbench.verdict.decide import BaselineGates, decide, forgiven, missed_gates
from pytest_llmbench.verdict.groups import RepeatGroup, repeat_groups
from pytest_llmbench.verdict.outcome import NO_MODELS, counts_as_failure, exit_status
from pytest_llmbench.verdict.results import Results
from pytest_llmbench.verdict.run_verdict import Verdict, accept_command


class Controller:
    def __init__(self, config: pytest.Config, run: RunConfig) -> None:
        self.config = config
        self.run = run
        self.results = Results([s.id for s in run.specs], labels(run.specs))
        self.lines: list[str] = []
        """Notes for the terminal summary (written files, compare, gates)."""
        self.groups: list[RepeatGroup] = []
        self.failures: dict[str, int] = {}
        """Failed calls per node id, counted as pytest counts ``session.testsfailed``: only
        these can be a forgiven sample's (a failed setup or teardown never is)."""
        self.comparison: Comparison | None = None
        self.baseline: BaselineGates | None = None
        """The comparison with a saved run and its missed gates (``--llm-compare``)."""
        self.decided: Verdict | None = None
        """The run's verdict at its exit status, drawn last in the terminal."""
        self.usage_errors = 0
        self.problems: list[str] = []
        self.exitstatus: int | None = None
        self.skipped_without_models: set[str] = set()
        self.collected: set[str] = set()
        """Node ids collected in this run (to tell a baseline item left out from one that
        ran and produced nothing)."""
        self.summary: RunSummary | None = None
        """The run added up (:meth:`added_up`), once all its reports are in."""
        self.replay: RecordingInfo | None = (
            recording_info(Path(run.replay_dir)) if run.replay_dir else None
        )

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Every xdist worker shares the run's folder (its spawned servers)."""
        node.workerinput[RUN_DIR_KEY] = self.run.server_options.run_dir

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
            self.lines.extend(line for line in group.gate_lines() if " gate OK: " in line)
        pytest_status = session.exitstatus

        def status() -> int:
            return exit_status(
                pytest_status,
                testsfailed=session.testsfailed,
                failures=self.failures,
                forgiven=forgiven(self.groups),
                gate_failures=missed_gates(self.groups, self.baseline),
                usage_errors=self.usage_errors,
                stopped=bool(session.shouldfail or session.shouldstop),
            )

        if self.results.items:
            self._write_outputs(status)
        session.exitstatus = self.exitstatus = status()
        if self.results.items:  # the files were decided before saving; this is the last word
            self.decided = self.verdict(self.exitstatus)

    # -- the verdict -----------------------------------------------------------------------

    def verdict(self, status: int) -> Verdict:
        """The gates' verdict for exit status ``status``, decided in :mod:`verdict.decide`."""
        baseline = self.baseline
        args = self.config.invocation_params.args
        accept = None if baseline is None else accept_command(args, baseline.name)
        return decide(
            status,
            self.results,
            self.groups,
            failures=self.failures,
            baseline=baseline,
            margins=self.run.compare_fail,
            problems=self.problems,
            accept=accept,
        )

    # -- files -----------------------------------------------------------------------------

    def _write_outputs(self, status: Callable[[], int]) -> None:
        run = self.run
        try:
            document = results_document(self.added_up(), run.settings, self.replay)
            document["repeat_groups"] = [group.to_dict() for group in self.groups]
        except Exception as exc:  # still write what does not need it: Markdown, HTML
            self._output_failed(
                f"results not assembled ({type(exc).__name__}: {exc}): no JSON, baseline or "
                f"comparison this run"
            )
            self._write_files(None, self.verdict(status()))
            return
        store = Store(Path(self.config.rootpath, run.storage))
        if run.compare:
            self._compare(store, document)
        verdict = self.verdict(status())
        document["verdict"] = verdict.to_dict()
        document["notes"] = [*self.warnings(), *self.notes()]
        if self.comparison is not None:
            document["comparison"] = self.comparison.to_dict()
        self._write_files(document, verdict)
        if run.save:
            try:
                saved = store.save(run.save, document)
                self.lines.append(f"saved run: {saved.path} (history: {saved.history.name})")
            except (StoreError, OSError) as exc:
                self._output_failed(f"--llm-save {run.save}: run not saved: {exc}")
        self._count_recordings()

    def _write_files(self, document: dict[str, Any] | None, verdict: Verdict) -> None:
        """Each requested file on its own: one that cannot be made or written is named and
        fails the run, and never stops the others (``document`` None: no JSON, said once)."""
        notes = self.run_notes(verdict)
        outputs: list[tuple[str, str, Callable[[], str]]] = [
            ("json", "results JSON", lambda: json.dumps(document, indent=1, default=str)),
            ("markdown", "Markdown leaderboard", lambda: self._markdown(notes)),
            ("html", "HTML report", lambda: html_page(self.added_up(), notes)),
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

    def run_notes(self, verdict: Verdict) -> RunNotes:
        """What the Markdown and HTML reports say beside the tables."""
        return RunNotes(
            verdict=verdict,
            settings=self.run.settings,
            warnings=tuple(self.warnings()),
            notes=tuple(self.notes()),
        )

    def _markdown(self, notes: RunNotes) -> str:
        text = markdown(self.added_up(), notes, with_items=True)
        if self.replay is not None:
            title, rest = text.split("\n", 1)
            text = f"{title} — {for_markdown(self.replay.label())}\n{rest}"
        return text

    def _output_failed(self, message: str) -> None:
        """One ``ERROR:`` line; the exit status says the run did not do all it was asked."""
        self.lines.append(f"ERROR: {message}")
        self.problems.append(message)
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
            generation.reply.recording is not None
            for item in self.results.ordered()
            for generation in (*item.record.generations, *item.record.judge)
        )
        self.lines.append(f"recorded {count} repl{'y' if count == 1 else 'ies'} to {target}")

    # -- the baseline ----------------------------------------------------------------------

    def _compare(self, store: Store, document: dict[str, Any]) -> None:
        try:  # found and checked at configure time; read again now, it may have changed
            path, base = store.load(self.run.compare_path or str(self.run.compare))
        except StoreError as exc:
            self._output_failed(f"--llm-compare: {exc}")
            return
        base_items = saved_items(base)  # checked when it was loaded
        comparison = Comparison.of(
            path.name, base_items, self.results.ordered(), self.run.compare_fail
        )
        self.comparison = comparison
        for note in fingerprint_mismatches(base, document):
            self.lines.append(f"WARNING: not like for like with {path.name}: {note}")
        self.baseline = BaselineGates.of(
            comparison, run_name(path), base_items, self.results, self.collected,
            self.run.compare_fail,
        )  # fmt: skip
        self.lines += self.baseline.lines

    # -- the terminal ----------------------------------------------------------------------

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        TerminalReport(
            summary=self.added_up(),
            mode=self.run.leaderboard,
            replay=None if self.replay is None else self.replay.label(),
            groups=self.groups,
            comparison=self.comparison,
            notes=[
                *self.lines,
                *(f"WARNING: {warning}" for warning in self.warnings()),
                *(f"NOTE: {caveat}" for caveat in self.notes()),
            ],
            skipped_without_models=len(self.skipped_without_models),
            verdict=self.decided,
        ).write(terminalreporter, self.config.get_verbosity())

    def warnings(self) -> list[str]:
        """Configuration pitfalls (the backends' and the sandbox's), added up with the run."""
        return list(self.added_up().warnings)

    def notes(self) -> list[str]:
        """Why some figures are not like the others (caveats), one line per model and kind."""
        return list(self.added_up().caveat_notes)

    def added_up(self) -> RunSummary:
        """The run added up, once (every report draws it): at the session's end, when no
        report is still to come."""
        if self.summary is None:
            self.summary = summarize(self.results)
        return self.summary
