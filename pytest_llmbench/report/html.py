"""The HTML report: one offline, self-contained page (no script, no network).

It is where a person goes to see *why*: a matrix of tests × models in which every cell shows
pass/fail, the score and the diagnosis, and opens (``<details>``) to the prompt, the answer
(thinking apart), each check's details and the generation's figures. Above it the per-model
leaderboard and three charts drawn as inline SVG: every chart names its unit, every label is
drawn whole (the chart grows to fit it), and points that share a position share one label.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pytest_llmbench.generate.records import GenerationRecord
from pytest_llmbench.metrics import DECODE_TPS, SCORE, TTFT_S, Metric, generation_metrics
from pytest_llmbench.report.leaderboard import model_rows
from pytest_llmbench.report.summary import RunSummary, benchmark_of, failure_line
from pytest_llmbench.text_safety import for_cell, for_terminal
from pytest_llmbench.verdict.results import ItemResult
from pytest_llmbench.verdict.run_verdict import Verdict

#: Approximate width of one character of the charts' 12 px sans-serif text, in px.
CHAR_PX = 7.2
PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
    "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
)  # fmt: skip
OUTCOME_CLASS = {"passed": "pass", "failed": "fail", "error": "error", "skipped": "skip"}
OUTCOME_TEXT = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#f3f3f3;white-space:nowrap}.num{text-align:right;font-variant-numeric:tabular-nums}
.wrap{overflow-x:auto}.legend li{margin:2px 0}.swatch{display:inline-block;width:11px;height:11px;
margin-right:6px;border-radius:2px;vertical-align:-1px}
.matrix td{min-width:7em;max-width:40em}.matrix th.test{white-space:nowrap}
.pass{background:#e8f6ea}.fail{background:#fdecea}.error{background:#fff4d6}.skip{background:#f1f1f1}
.badge{font-weight:600;font-size:12px;padding:0 5px;border-radius:3px;color:#fff}
.pass .badge{background:#2e7d32}.fail .badge{background:#c62828}.error .badge{background:#b26a00}
.skip .badge{background:#777}.diag{color:#7a2b00;font-size:12px}
summary{cursor:pointer}details[open]>summary{margin-bottom:6px}
pre{white-space:pre-wrap;word-break:break-word;background:#fafafa;border:1px solid #e3e3e3;
padding:6px;max-height:24em;overflow:auto;font-size:12px;margin:2px 0 8px}
.detail h4{margin:8px 0 2px;font-size:13px}.detail table{font-size:12px;margin-bottom:6px}
.verdict{padding:6px 10px;margin:8px 0;border-radius:3px}.verdict ul{margin:4px 0}
.muted{color:#666;font-size:12px}svg text{font:12px system-ui,sans-serif;fill:#222}
"""


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    color: str


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _colors(models: Sequence[str]) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def bar_chart(bars: Sequence[Bar], unit: str, title: str) -> str:
    """Horizontal bars, the whole label left of each bar (the chart is as wide as its longest
    label needs), the value and unit at the bar's end, the unit on the axis."""
    if not bars:
        return '<p class="muted">(no data)</p>'
    label_w = int(max(len(b.label) for b in bars) * CHAR_PX) + 16
    plot_w, row, top = 420, 24, 8
    value_w = 110
    top_value = max(b.value for b in bars) or 1.0
    width = label_w + plot_w + value_w
    height = top + row * len(bars) + 34
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
    ]
    for i, bar in enumerate(bars):
        y = top + i * row
        length = plot_w * bar.value / top_value
        out.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{_e(bar.label)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{length:.1f}" height="15" '
            f'fill="{bar.color}"><title>{_e(bar.label)}: {bar.value:.4g} {_e(unit)}</title></rect>'
            f'<text x="{label_w + length + 5:.1f}" y="{y + 15}">{bar.value:.4g} {_e(unit)}</text>'
        )
    axis_y = top + row * len(bars) + 4
    out.append(
        f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}" stroke="#999"/>'
        f'<text x="{label_w}" y="{axis_y + 16}">0</text>'
        f'<text x="{label_w + plot_w}" y="{axis_y + 16}" text-anchor="end">'
        f"{top_value:.4g} {_e(unit)}</text>"
        f'<text x="{label_w + plot_w / 2:.0f}" y="{axis_y + 28}" text-anchor="middle">'
        f"{_e(title)} ({_e(unit)})</text>"
    )
    out.append("</svg>")
    return "".join(out)


def scatter(
    points: Sequence[tuple[str, float, float, str]],
    x: Metric,
    y: Metric,
    legend: dict[str, int],
    titles: tuple[str, str] = ("decode rate", "score"),
) -> str:
    """One point per model, numbered as in the legend; points at one spot share one label."""
    if not points:
        return '<p class="muted">(no data)</p>'
    x_title, y_title = titles
    w, h, left, bottom, pad = 640, 360, 64, 48, 16
    xmax = max(p[1] for p in points) * 1.1 or 1.0
    ymax = max(max(p[2] for p in points) * 1.1, 1.0)

    def px(v: float) -> float:
        return left + (w - left - pad) * v / xmax

    def py(v: float) -> float:
        return (h - bottom) - (h - bottom - pad) * v / ymax

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="{_e(y.description)}">',
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - pad}" y2="{h - bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{pad}" x2="{left}" y2="{h - bottom}" stroke="#999"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        xv, yv = xmax * frac, ymax * frac
        out.append(
            f'<text x="{px(xv):.1f}" y="{h - bottom + 16}" text-anchor="middle">{xv:.3g}</text>'
            f'<text x="{left - 6}" y="{py(yv) + 4:.1f}" text-anchor="end">{yv:.3g}</text>'
        )
    out.append(
        f'<text x="{(left + w - pad) / 2:.0f}" y="{h - 10}" text-anchor="middle">'
        f"{_e(x_title)} ({_e(x.unit)}, median)</text>"
        f'<text x="16" y="{(h - bottom) / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(h - bottom) / 2:.0f})">{_e(y_title)} ({_e(y.unit)}, mean)'
        f"</text>"
    )
    spots: dict[tuple[int, int], list[str]] = {}
    for label, xv, yv, color in points:
        cx, cy = px(xv), py(yv)
        spots.setdefault((round(cx / 8), round(cy / 8)), []).append(label)
        out.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{color}" fill-opacity="0.8">'
            f"<title>{_e(label)}: {xv:.4g} {_e(x.unit)}, {yv:.4g} {_e(y.unit)}</title></circle>"
        )
    for (gx, gy), labels in spots.items():
        text = ", ".join(str(legend[label]) for label in labels)
        anchor = "end" if gx * 8 > w - 120 else "start"
        dx = -9 if anchor == "end" else 9
        out.append(
            f'<text x="{gx * 8 + dx}" y="{gy * 8 - 8}" text-anchor="{anchor}">{_e(text)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _legend(models: Sequence[str], run: RunSummary, colors: dict[str, str]) -> str:
    items = "".join(
        f'<li><span class="swatch" style="background:{colors[m]}"></span>{i}. '
        f"<b>{_e(run.label(m))}</b>"
        + (f' <span class="muted">{_e(m)}</span>' if run.label(m) != m else "")
        + "</li>"
        for i, m in enumerate(models, 1)
    )
    return f'<ol class="legend" style="list-style:none;padding:0">{items}</ol>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_e(c)}</td>' if _numeric(c) else f"<td>{_e(c)}</td>" for c in row
        )
        + "</tr>"
        for row in rows
    )
    return f'<div class="wrap"><table><tr>{head}</tr>{body}</table></div>'


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("-", "", 1).replace(" ± ", "").isdigit()


def _diagnoses(item: ItemResult) -> list[str]:
    notes = list(item.record.diagnoses)
    if item.record.error:
        notes.append(item.record.error.splitlines()[0])
    if not notes:  # a diagnosis or error says it better than the assertion quoting it
        notes.append(failure_line(item.record))
    return [for_cell(n) for n in notes if n]


def _messages(generation: GenerationRecord) -> str:
    if not generation.messages:
        return '<p class="muted">(prompt not recorded)</p>'
    return "".join(
        f'<div class="muted">{_e(m.role)}</div><pre>{_e(m.content)}</pre>'
        for m in generation.messages
    )


def _figures(generation: GenerationRecord) -> str:
    """The generation's figures with their units (each one's definition on hover)."""
    rows = [
        (m.label, f"{m.format(value)} {m.unit}".strip(), m.description)
        for m in generation_metrics()
        if (value := generation.figure(m.name)) is not None
    ]
    rows.append(("finish", generation.reply.finish_reason or "-", "why the stream ended"))
    for caveat in generation.reply.caveats:
        left_out = (
            f" (left out of the {', '.join(caveat.excludes)} medians)" if caveat.excludes else ""
        )
        rows.append(
            (
                "caveat",
                f"{caveat.kind}: {caveat.detail}{left_out}",
                "why this figure is not like the others",
            )
        )
    body = "".join(
        f'<tr title="{_e(c)}"><td>{_e(a)}</td><td class="num">{_e(b)}</td></tr>' for a, b, c in rows
    )
    return f"<table>{body}</table>"


def _checks(item: ItemResult) -> str:
    checks = item.record.checks
    if not checks:
        return ""
    rows = "".join(
        f"<tr><td>{_e(c.name)}</td><td class='num'>{SCORE.format(100 * c.score)}"
        f"</td><td>{'yes' if c.passed else 'no'}</td>"
        f"<td>{_e(c.diagnosis or '')}</td><td><pre>{_e(c.details)}</pre></td>"
        f"</tr>"
        for c in checks
    )
    return (
        "<h4>Checks</h4><table><tr><th>check</th><th>score /100</th><th>passed</th>"
        f"<th>diagnosis</th><th>details</th></tr>{rows}</table>"
    )


def cell(item: ItemResult) -> str:
    """One item: a summary line (outcome, score, diagnosis) that opens to the whole story."""
    kind = OUTCOME_CLASS.get(item.outcome, "skip")
    score = item.record.scores.get(SCORE.name)
    notes = _diagnoses(item)
    summary = (
        f'<span class="badge">{OUTCOME_TEXT.get(item.outcome, item.outcome.upper())}</span> '
        + ("" if score is None else f"{SCORE.format(score)} ")
        + (f'<span class="diag">{_e("; ".join(notes))}</span>' if notes else "")
    )
    parts = []
    for n, generation in enumerate(item.generations, 1):
        if len(item.generations) > 1:
            parts.append(f"<h4>Generation {n}</h4>")
        parts.append(f"<h4>Prompt</h4>{_messages(generation)}")
        parts.append(f"<h4>Answer</h4><pre>{_e(generation.reply.answer)}</pre>")
        if generation.reply.thinking:
            tokens = generation.reply.metrics.thinking_tokens
            count = f" ({tokens} tokens)" if tokens else ""
            parts.append(
                f"<details><summary>Thinking{count}</summary>"
                f"<pre>{_e(generation.reply.thinking)}</pre></details>"
            )
        parts.append(f"<h4>Figures</h4>{_figures(generation)}")
    parts.append(_checks(item))
    for name, value in item.record.scores.items():
        if name != SCORE.name:
            parts.append(f"<p>score <b>{_e(name)}</b>: {value:.4g}</p>")
    if item.record.failure:
        parts.append(f"<h4>Why it failed</h4><pre>{_e(for_terminal(item.record.failure))}</pre>")
    if item.record.error:
        parts.append(f"<h4>Error</h4><pre>{_e(for_terminal(item.record.error))}</pre>")
    if not item.generations and not item.record.error:
        parts.append('<p class="muted">(no generation)</p>')
    body = "".join(parts)
    return (
        f'<td class="{kind}"><details><summary>{summary}</summary>'
        f'<div class="detail">{body}</div></details></td>'
    )


def matrix(run: RunSummary) -> str:
    """Tests down (grouped by benchmark), models across; repeats stack in one cell."""
    models = run.model_ids()
    by_test: dict[str, dict[str, list[ItemResult]]] = {}
    bench_of: dict[str, str] = {}
    for item in run.items:
        by_test.setdefault(item.test, {}).setdefault(item.model, []).append(item)
        bench_of[item.test] = benchmark_of(item.record)
    head = "".join(f"<th>{_e(run.label(m))}</th>" for m in models)
    rows = []
    for bench in sorted(set(bench_of.values())):
        rows.append(f'<tr><th colspan="{len(models) + 1}">{_e(bench)}</th></tr>')
        for test in sorted(t for t in by_test if bench_of[t] == bench):
            cells = []
            for model in models:
                items = by_test[test].get(model, [])
                if not items:
                    cells.append("<td></td>")
                elif len(items) == 1:
                    cells.append(cell(items[0]))
                else:
                    inner = "".join(f"<table><tr>{cell(i)}</tr></table>" for i in items)
                    cells.append(f"<td>{inner}</td>")
            rows.append(f'<tr><th class="test">{_e(test)}</th>{"".join(cells)}</tr>')
    table = f'<table class="matrix"><tr><th>test</th>{head}</tr>{"".join(rows)}</table>'
    return f'<div class="wrap">{table}</div>'


def _run_notes(
    verdict: Verdict | None, settings: str, warnings: Sequence[str], notes: Sequence[str]
) -> str:
    """The gates' verdict, the run's settings, its warnings and notes."""
    parts = []
    if verdict is not None:
        kind = "pass" if verdict.passed else "fail"
        head, *rest = verdict.lines()
        items = "".join(f"<li>{_e(line.strip())}</li>" for line in rest)
        parts.append(
            f'<div class="verdict {kind}"><b>{_e(head)}</b>'
            + (f"<ul>{items}</ul>" if items else "")
            + "</div>"
        )
    if settings:
        parts.append(f'<p class="muted">Run settings: {_e(settings)}</p>')
    for title, lines in (("Warnings", warnings), ("Notes", notes)):
        if lines:
            body = "".join(f"<li>{_e(for_cell(line))}</li>" for line in lines)
            parts.append(f"<h2>{title}</h2><ul>{body}</ul>")
    return "".join(parts)


def html_page(
    run: RunSummary,
    created: str | None = None,
    version: str = "",
    *,
    verdict: Verdict | None = None,
    settings: str = "",
    warnings: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> str:
    """The whole page for the run ``run``."""
    models = run.model_ids()
    colors = _colors(models)
    number = {m: i for i, m in enumerate(models, 1)}
    label = {m: run.label(m) for m in models}
    summaries = run.models
    headers, rows = model_rows(run)
    speed = [
        Bar(f"{number[s.model]}. {label[s.model]}", v, colors[s.model])
        for s in summaries
        if (v := s.value(DECODE_TPS)) is not None
    ]
    ttft = [
        Bar(f"{number[s.model]}. {label[s.model]}", v, colors[s.model])
        for s in summaries
        if (v := s.value(TTFT_S)) is not None
    ]
    bench_bars = [
        Bar(f"{bench} · {number[m]}. {label[m]}", c.score, colors[m])
        for bench, per_model in run.benchmarks.items()
        for m, c in per_model.items()
        if c.score is not None
    ]
    points = []
    for s in summaries:
        tps, score = s.value(DECODE_TPS), s.value(SCORE)
        if tps is not None and score is not None:
            points.append((s.model, tps, score, colors[s.model]))
    charts = [
        f'<div class="wrap">{bar_chart(bars, unit, title)}</div>'
        for bars, unit, title in (
            (speed, DECODE_TPS.unit, "decode rate, median"),
            (ttft, TTFT_S.unit, "TTFT, median"),
            (bench_bars, SCORE.unit, "mean score"),
        )
    ]
    stamp = created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pytest-llmbench report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{CSS}</style></head><body>
<h1>pytest-llmbench report</h1>
<p class="muted">{_e(stamp)}{f" · plugin {_e(version)}" if version else ""}</p>
{_run_notes(verdict, settings, warnings, notes)}
<h2>Models</h2>{_legend(models, run, colors)}
<h2>Leaderboard</h2>{_table(headers, rows)}
<p class="muted">Benchmark columns: mean score /100 and passed/ran. TTFT: request sent → first
token; tok/s: client decode rate (median).</p>
<h2>Tests × models</h2>
<p class="muted">Each cell: outcome, score /100, diagnosis. Open it for the prompt, the answer
(thinking apart), the checks and the figures.</p>
{matrix(run)}
<h2>Decode speed</h2>{charts[0]}
<h2>Time to first token</h2>{charts[1]}
<h2>Score per benchmark</h2>{charts[2]}
<h2>Score vs decode speed</h2><div class="wrap">{scatter(points, DECODE_TPS, SCORE, number)}</div>
</body></html>
"""
