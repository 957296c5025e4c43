"""Run reports: the JSON document (stable, versioned), Markdown leaderboard, HTML page."""

from __future__ import annotations

import datetime as _dt
import html
import os
import platform
from importlib import metadata
from typing import Any

from tabulate import tabulate

from pytest_llmbench.leaderboard import Results, item_rows, model_rows, summarize
from pytest_llmbench.metrics import DECODE_TPS, SCORE
from pytest_llmbench.replay import RecordingInfo
from pytest_llmbench.serving import ServerInfo
from pytest_llmbench.text_safety import for_markdown

SCHEMA_ID = "pytest-llmbench/results"
SCHEMA_VERSION = 1


def plugin_version() -> str:
    try:
        return metadata.version("pytest-llmbench")
    except metadata.PackageNotFoundError:
        return "unknown"


def hardware() -> dict[str, Any]:
    """A short hardware summary for the fingerprint."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": platform.system(),
        "python": platform.python_version(),
    }


def model_fingerprints(results: Results) -> dict[str, dict[str, Any]]:
    """Per model: backend, server build/version, model digest or path, quantization, ctx."""
    prints: dict[str, dict[str, Any]] = {}
    for item in results.ordered():
        if item.model in prints or not item.generations:
            continue
        first = item.generations[0]
        prints[item.model] = ServerInfo.from_dict(first.get("server") or {}).fingerprint()
        prints[item.model]["settings"] = first.get("settings", {})
    return prints


def results_document(
    results: Results, run_settings: dict[str, Any], replay: RecordingInfo | None = None
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
        "settings": run_settings,
        "environment": {"hardware": machine, "models": model_fingerprints(results)},
        "models": [summary.to_dict() for summary in summarize(results)],
        "items": [
            {
                "nodeid": i.nodeid,
                "model": i.model,
                "test": i.test,
                "outcome": i.outcome,
                "record": i.record,
            }
            for i in results.ordered()
        ],
    }


def markdown(results: Results, with_items: bool = False) -> str:
    """The leaderboard as GitHub Markdown (for a pull-request comment or a step summary)."""
    parts = ["## LLM benchmark", ""]
    parts.append(_markdown_table(*model_rows(results)))
    if with_items:
        parts += [
            "",
            "<details><summary>Items</summary>",
            "",
            _markdown_table(*item_rows(results)),
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


def _svg_scatter(points: list[tuple[str, float, float]], xlabel: str, ylabel: str) -> str:
    """A small inline SVG scatter plot (no scripts, no network)."""
    w, h, pad = 520, 320, 50
    if not points:
        return "<p>(no data)</p>"
    xmax = max(p[1] for p in points) * 1.1 or 1
    ymax = max(p[2] for p in points) * 1.1 or 1
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img">',
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - 10}" y2="{h - pad}" stroke="#333"/>',
        f'<line x1="{pad}" y1="10" x2="{pad}" y2="{h - pad}" stroke="#333"/>',
        f'<text x="{w // 2}" y="{h - 12}" text-anchor="middle">{html.escape(xlabel)}</text>',
        f'<text x="14" y="{h // 2}" transform="rotate(-90 14 {h // 2})" '
        f'text-anchor="middle">{html.escape(ylabel)}</text>',
        f'<text x="{pad}" y="{h - pad + 16}">0</text>',
        f'<text x="{w - 10}" y="{h - pad + 16}" text-anchor="end">{xmax:.3g}</text>',
        f'<text x="{pad - 4}" y="16" text-anchor="end">{ymax:.3g}</text>',
    ]
    for label, x, y in points:
        cx = pad + (w - pad - 10) * x / xmax
        cy = (h - pad) - (h - pad - 10) * y / ymax
        out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="#2a6fdb"/>')
        out.append(
            f'<text x="{cx + 7:.1f}" y="{cy - 7:.1f}" font-size="11">{html.escape(label)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _svg_bars(bars: list[tuple[str, float]], unit: str) -> str:
    if not bars:
        return "<p>(no data)</p>"
    w, row = 520, 22
    top = max(v for _, v in bars) or 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{row * len(bars) + 10}">']
    for i, (label, value) in enumerate(bars):
        length = 260 * value / top
        y = 5 + i * row
        out.append(f'<text x="0" y="{y + 14}" font-size="11">{html.escape(label[:40])}</text>')
        out.append(f'<rect x="240" y="{y + 3}" width="{length:.1f}" height="14" fill="#7a9"/>')
        out.append(
            f'<text x="{245 + length:.1f}" y="{y + 14}" font-size="11">'
            f"{value:.3g} {html.escape(unit)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def html_page(results: Results) -> str:
    """One self-contained offline page: leaderboard, score vs decode speed, TTFT, checks."""
    summaries = summarize(results)
    headers, rows = model_rows(results)
    table = tabulate(rows, headers=headers, tablefmt="html", disable_numparse=True)
    scatter = _svg_scatter(
        [
            (s.model, decode, score)
            for s in summaries
            if (decode := s.value(DECODE_TPS)) is not None and (score := s.value(SCORE)) is not None
        ],
        "decode tok/s (median)",
        "score (mean)",
    )
    ttfts = [
        (f"{i.model} {i.test}", g["metrics"]["ttft_s"])
        for i in results.ordered()
        for g in i.generations
        if g.get("metrics", {}).get("ttft_s") is not None
    ]
    checks = [
        (f"{s.model} {name}", value)
        for s in summaries
        for name, value in s.checks.items()
        if value is not None
    ]
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    stamp = f"{created} · plugin {plugin_version()}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pytest-llmbench report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 7px;font-size:13px}}
</style></head><body>
<h1>pytest-llmbench report</h1><p>{html.escape(stamp)}</p>
<h2>Leaderboard</h2>{table}
<h2>Score vs decode speed</h2>{scatter}
<h2>Time to first token (s)</h2>{_svg_bars(ttfts[:200], "s")}
<h2>Checks (mean score per model)</h2>{_svg_bars(checks, "/100")}
</body></html>
"""
