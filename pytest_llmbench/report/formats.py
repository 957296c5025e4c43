"""Run reports: the JSON document (stable, versioned), Markdown leaderboard, HTML page."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from tabulate import tabulate

from pytest_llmbench.fingerprint import hardware, plugin_version
from pytest_llmbench.generate.replay import RecordingInfo
from pytest_llmbench.report import html
from pytest_llmbench.report.leaderboard import item_rows, model_rows, problems
from pytest_llmbench.report.summary import RunSummary
from pytest_llmbench.schema import SCHEMA_ID, SCHEMA_VERSION
from pytest_llmbench.serve.generation import Settings
from pytest_llmbench.text_safety import for_markdown
from pytest_llmbench.verdict.run_verdict import Verdict


def model_fingerprints(run: RunSummary) -> dict[str, dict[str, Any]]:
    """Per model: backend, server build/version, model digest or path, quantization, ctx."""
    prints: dict[str, dict[str, Any]] = {}
    for item in run.items:
        if item.model in prints or not item.generations:
            continue
        first = item.generations[0]
        prints[item.model] = first.reply.server.fingerprint()
        prints[item.model]["settings"] = first.reply.settings.to_dict()
    return prints


def results_document(
    run: RunSummary, settings: Settings, replay: RecordingInfo | None = None
) -> dict[str, Any]:
    """The full results as JSON-able data (schema/results-v1.json). A replayed run says so
    and carries the recording machine, not the one that replayed it (the server facts of
    each model come from the recordings themselves)."""
    machine = hardware() if replay is None else (replay.hardware or {})
    return {
        "schema": SCHEMA_ID,
        "version": SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "plugin_version": plugin_version(),
        "replayed": replay is not None,
        **({"replay": replay.to_dict()} if replay is not None else {}),
        "settings": settings.to_dict(),
        "environment": {"hardware": machine, "models": model_fingerprints(run)},
        "models": [summary.to_dict() for summary in run.models],
        "items": [
            {
                "nodeid": i.nodeid,
                "model": i.model,
                "test": i.test,
                "outcome": i.outcome,
                "record": i.record.to_dict(),
            }
            for i in run.items
        ],
    }


@dataclass(frozen=True)
class RunNotes:
    """What the Markdown and HTML reports say beside the tables: the gates' verdict, the
    run's settings, and the warnings and notes printed under the terminal leaderboard."""

    verdict: Verdict | None = None
    settings: Settings | None = None
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def settings_text(self) -> str:
        """``max_tokens=512, temperature=0.0, seed=42, stop="END" "###"`` (unset and empty
        ones left out; a list as its quoted items, never a Python repr)."""
        return "" if self.settings is None else self.settings.text()


def markdown(run: RunSummary, notes: RunNotes | None = None, with_items: bool = False) -> str:
    """The leaderboard as GitHub Markdown (for a pull-request comment or a step summary): the
    gates' verdict first, then the tables, what went wrong, the settings, warnings, notes."""
    notes = notes or RunNotes()
    parts = ["## LLM benchmark", ""]
    if notes.verdict is not None:
        parts += [notes.verdict.markdown(), ""]
    named = [m for m in run.model_ids() if run.label(m) != m]
    if named:
        legend = ", ".join(f"{for_markdown(run.label(m))} = {for_markdown(m)}" for m in named)
        parts += [f"Models: {legend}", ""]
    parts.append(_markdown_table(*model_rows(run)))
    trouble = problems(run, None)
    if trouble:
        parts += ["", "**What went wrong**", ""] + [f"- {for_markdown(t)}" for t in trouble]
    if notes.settings:
        parts += ["", f"Run settings: {for_markdown(notes.settings_text())}"]
    for title, lines in (("Warnings", notes.warnings), ("Notes", notes.notes)):
        if lines:
            parts += ["", f"**{title}**", ""] + [f"- {for_markdown(line)}" for line in lines]
    if with_items:
        parts += [
            "",
            "<details><summary>Items</summary>",
            "",
            _markdown_table(*item_rows(run)),
            "",
            "</details>",
        ]
    return "\n".join(parts) + "\n"


def _markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub table whose cells cannot break it (``|``) or inject HTML or escapes."""
    return tabulate(
        [[for_markdown(cell) for cell in row] for row in rows],
        headers=[for_markdown(h) for h in headers],
        tablefmt="github",
        disable_numparse=True,
    )


def html_page(run: RunSummary, notes: RunNotes | None = None) -> str:
    """The offline HTML page (see :mod:`pytest_llmbench.report.html`)."""
    notes = notes or RunNotes()
    return html.html_page(
        run,
        version=plugin_version(),
        verdict=notes.verdict,
        settings=notes.settings_text(),
        warnings=notes.warnings,
        notes=notes.notes,
    )
