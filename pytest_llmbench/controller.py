"""Controller-side end of the run: gather reports, write reports and baselines, compare,
apply gates to the exit status, print the leaderboard.

Registered only on the controller (never on xdist workers), like pytest's junitxml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tabulate import tabulate

from pytest_llmbench.caveats import notes as caveat_notes
from pytest_llmbench.config import RunConfig
from pytest_llmbench.groups import RepeatGroup, repeat_groups
from pytest_llmbench.leaderboard import Results, render
from pytest_llmbench.outcome import NO_MODELS, counts_as_failure, exit_status
from pytest_llmbench.reports import html_page, markdown, results_document, write_json
from pytest_llmbench.serving import ServerInfo
from pytest_llmbench.store import (
    Store,
    StoreError,
    compare,
    fingerprint_mismatches,
    format_deltas,
    regressions,
)


class Controller:
    def __init__(self, config: pytest.Config, run: RunConfig) -> None:
        self.config = config
        self.run = run
        self.results = Results([s.id for s in run.specs])
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
        document = results_document(self.results, run.settings.to_dict())
        document["repeat_groups"] = [group.to_dict() for group in self.groups]
        outputs = run.outputs
        if outputs.get("json"):
            write_json(str(outputs["json"]), document)
            self.lines.append(f"results JSON: {outputs['json']}")
        if outputs.get("markdown"):
            _write(str(outputs["markdown"]), markdown(self.results, with_items=True))
            self.lines.append(f"Markdown leaderboard: {outputs['markdown']}")
        if outputs.get("html"):
            _write(str(outputs["html"]), html_page(self.results))
            self.lines.append(f"HTML report: {outputs['html']}")
        store = Store(Path(self.config.rootpath, run.storage))
        if run.compare:
            self._compare(store, document)
        if run.save:
            try:
                path = store.save(run.save, document)
                self.lines.append(f"saved run: {path}")
            except StoreError as exc:
                self.lines.append(f"ERROR: {exc}")
                self.usage_errors += 1

    def _compare(self, store: Store, document: dict[str, Any]) -> None:
        try:
            path, base = store.load(str(self.run.compare))
        except StoreError as exc:
            self.lines.append(f"ERROR: {exc}")
            self.usage_errors += 1
            return
        deltas = compare(base, document)
        self.tables.append(
            (
                f"compared with {path.name}",
                tabulate(
                    format_deltas(deltas),
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

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        text = render(self.results, self.run.leaderboard, self.config.get_verbosity())
        if text:
            terminalreporter.write_sep("=", "llmbench leaderboard")
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
        for line in self.lines:
            terminalreporter.write_line(f"[llmbench] {line}")
        for warning in self.server_warnings():
            terminalreporter.write_line(f"[llmbench] WARNING: {warning}")
        ordered = self.results.ordered()
        for note in caveat_notes((i.model, g) for i in ordered for g in i.generations):
            terminalreporter.write_line(f"[llmbench] NOTE: {note}")
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


def _write(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
