"""Controller-side end of the run: gather reports, write reports and baselines, compare,
apply gates to the exit status, print the leaderboard.

Registered only on the controller (never on xdist workers), like pytest's junitxml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tabulate import tabulate

from pytest_llmbench.config import RunConfig
from pytest_llmbench.gates import pass_at_k
from pytest_llmbench.leaderboard import Results, render
from pytest_llmbench.reports import html_page, markdown, results_document, write_json
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

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.results.add(report)

    def repeat_groups(self) -> list[dict[str, Any]]:
        """Per (model, test) with repeats: pass rate, pass@1/pass@k, gate verdict."""
        groups: dict[tuple[str, str], list[Any]] = {}
        for item in self.results.ordered():
            groups.setdefault((item.model, item.test), []).append(item)
        out = []
        for (model, test), items in groups.items():
            if len(items) < 2:
                continue
            ran = [i for i in items if i.outcome in ("passed", "failed")]
            n, c = len(ran), sum(i.outcome == "passed" for i in ran)
            k = min(self.run.pass_k, n) if n else 0
            gate = next(
                (
                    i.record.get("min_pass_rate")
                    for i in items
                    if i.record.get("min_pass_rate") is not None
                ),
                None,
            )
            rate = c / n if n else None
            out.append(
                {
                    "model": model,
                    "test": test,
                    "n": len(items),
                    "ran": n,
                    "passed": c,
                    "errors": sum(i.outcome == "error" for i in items),
                    "pass_rate": rate,
                    "pass@1": pass_at_k(n, c, 1) if n else None,
                    "k": k,
                    "pass@k": pass_at_k(n, c, k) if n else None,
                    "min_pass_rate": gate,
                    "gate_ok": None if gate is None else (rate is not None and rate >= gate),
                    "nodeids": [i.nodeid for i in items],
                }
            )
        return out

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.results.items:
            return
        run = self.run
        groups = self.repeat_groups()
        document = results_document(self.results, run.settings.to_dict())
        document["repeat_groups"] = groups
        self._gate_pass_rates(session, groups)
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
            self._compare(session, store, document)
        if run.save:
            try:
                path = store.save(run.save, document)
                self.lines.append(f"saved run: {path}")
            except StoreError as exc:
                self.lines.append(f"ERROR: {exc}")
                session.exitstatus = pytest.ExitCode.USAGE_ERROR

    def _gate_pass_rates(self, session: pytest.Session, groups: list[dict[str, Any]]) -> None:
        gated = [g for g in groups if g["gate_ok"] is not None]
        if not gated:
            return
        for g in gated:
            verdict = "OK" if g["gate_ok"] else "FAILED"
            rate = "-" if g["pass_rate"] is None else f"{g['pass_rate']:.2f}"
            self.lines.append(
                f"pass-rate gate {verdict}: {g['model']} {g['test']}: {g['passed']}/{g['ran']} "
                f"= {rate} (min {g['min_pass_rate']:.2f})"
            )
        if any(not g["gate_ok"] for g in gated):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        # Failed samples of a gated test that met its pass rate do not fail the run; any
        # other failure or error still does.
        forgiven = {nid for g in gated for nid in g["nodeids"]}
        others = [
            i
            for i in self.results.items.values()
            if i.outcome in ("failed", "error") and i.nodeid not in forgiven
        ]
        gated_errors = [
            i for i in self.results.items.values() if i.nodeid in forgiven and i.outcome == "error"
        ]
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        non_llm_failures = 0
        if tr is not None:
            llm_ids = set(self.results.items)
            non_llm_failures = sum(
                1
                for key in ("failed", "error")
                for r in tr.stats.get(key, [])
                if getattr(r, "nodeid", None) not in llm_ids
            )
        if (
            session.exitstatus == pytest.ExitCode.TESTS_FAILED
            and not others
            and not gated_errors
            and not non_llm_failures
        ):
            session.exitstatus = pytest.ExitCode.OK

    def _compare(self, session: pytest.Session, store: Store, document: dict[str, Any]) -> None:
        try:
            path, base = store.load(str(self.run.compare))
        except StoreError as exc:
            self.lines.append(f"ERROR: {exc}")
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
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
        if failed:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        text = render(self.results, self.run.leaderboard, self.config.get_verbosity())
        if text:
            terminalreporter.write_sep("=", "llmbench leaderboard")
            terminalreporter.write_line(text)
        groups = self.repeat_groups()
        if groups:
            rows = [
                [
                    g["model"],
                    g["test"],
                    str(g["n"]),
                    f"{g['passed']}/{g['ran']}",
                    _fmt(g["pass@1"]),
                    f"{_fmt(g['pass@k'])} (k={g['k']})",
                    "-" if g["gate_ok"] is None else ("ok" if g["gate_ok"] else "FAILED"),
                ]
                for g in groups
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

    def server_warnings(self) -> list[str]:
        """Configuration pitfalls the backends noticed (e.g. a GGUF without a chat template),
        once each, so they are seen next to the figures they affect."""
        seen: dict[str, None] = {}
        for item in self.results.ordered():
            for generation in item.generations:
                for warning in (generation.get("server") or {}).get("warnings") or ():
                    seen.setdefault(str(warning))
        return list(seen)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _write(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
