"""The leaderboard's tables, drawn from the run's summary: fitted to the terminal's width by
:func:`render`, whole for Markdown and HTML (:func:`model_rows`, :func:`item_rows`)."""

from __future__ import annotations

import textwrap

from pytest_llmbench.metrics import (
    DECODE_TPS,
    OUTPUT_TOKENS,
    PROMPT_TPS,
    SCORE,
    SERVER_DECODE_TPS,
    THINKING_TOKENS,
    TRUNCATED,
    TTFA_S,
    TTFT_S,
    Metric,
    column_metrics,
    registry,
    score_metric,
)
from pytest_llmbench.report.summary import ModelSummary, RunSummary, failure_line
from pytest_llmbench.report.tables import Column, Fitted, fit, table_width
from pytest_llmbench.text_safety import for_cell
from pytest_llmbench.verdict.results import ItemResult

#: Which per-model figures stay longest when the terminal is narrow (lower stays longer);
#: a layout choice over the registry's metrics, which define what each one is.
_KEEP = {
    TTFT_S.name: 1,
    DECODE_TPS.name: 2,
    TRUNCATED.name: 3,
    TTFA_S.name: 4,
    THINKING_TOKENS.name: 4,
    OUTPUT_TOKENS.name: 5,
    SERVER_DECODE_TPS.name: 6,
    PROMPT_TPS.name: 7,
}


def _shown_metrics(summaries: list[ModelSummary]) -> list[Metric]:
    """The registry's leaderboard metrics (the total score aside: benchmarks have their own
    columns), plus time to first answer and thinking tokens when a model thought."""
    thought = any(s.value(THINKING_TOKENS) for s in summaries)
    extra = (TTFA_S, THINKING_TOKENS) if thought else ()
    wanted = {m.name for m in (*column_metrics(), *extra)} - {SCORE.name}
    return [m for m in registry() if m.name in wanted and m.summary]


def _carries_data(metric: Metric, summaries: list[ModelSummary]) -> bool:
    """Some model has a figure for it (and, for a count such as truncations or output tokens,
    not 0: known answers, ``answers:DIR``, count no tokens)."""
    if not any(s.has(metric) for s in summaries):
        return False
    counted = metric.source == "flag" or metric.summary == ("count",)
    return not (counted and not any(s.value(metric) for s in summaries))


def model_columns(run: RunSummary, *, benchmarks: bool = True) -> list[Column]:
    """The per-model table: label, counts, one column per benchmark and named score, then
    the speed figures that carry data in this run."""
    summaries = list(run.models)
    models = run.model_ids()
    columns = [
        Column("model", tuple(run.label(m) for m in models), shrink=True),
        Column("n", tuple(str(s.items) for s in summaries)),
        Column("pass", tuple(str(s.passed) for s in summaries)),
        Column("fail", tuple(str(s.failed) for s in summaries)),
        Column("err", tuple(str(s.errors) for s in summaries)),
    ]
    if benchmarks:
        columns += benchmark_columns(run, models)
    for metric in _shown_metrics(summaries):
        if _carries_data(metric, summaries):
            cells = tuple(s.cell(metric) for s in summaries)
            columns.append(Column(metric.label, cells, _KEEP.get(metric.name, 9)))
    return columns


def benchmark_columns(run: RunSummary, models: list[str]) -> list[Column]:
    """One column per benchmark (``score passed/ran``) and per named score (mean)."""
    columns = []
    for bench, per_model in run.benchmarks.items():
        cells = tuple(per_model[m].text() if m in per_model else "" for m in models)
        columns.append(Column(bench, cells))
    for name, means in run.named.items():
        shown = score_metric(name)  # on the test's own scale, not /100
        cells = tuple(shown.format(means[m]) if m in means else "-" for m in models)
        columns.append(Column(name, cells))
    return columns


def model_rows(run: RunSummary) -> tuple[list[str], list[list[str]]]:
    """One row per model, every column (for Markdown and HTML, where width is no issue)."""
    columns = model_columns(run)
    rows = [list(r) for r in zip(*(c.cells for c in columns), strict=True)]
    return [c.header for c in columns], rows


def matrix_columns(run: RunSummary) -> list[Column]:
    """Benchmarks down, models across: ``score passed/ran`` cells."""
    cells = run.benchmarks
    columns = [Column("benchmark", tuple(cells), shrink=True)]
    for model in run.model_ids():
        column = [cells[b][model].text() if model in cells[b] else "" for b in cells]
        columns.append(Column(run.label(model), tuple(column), shrink=True))
    return columns


def named_columns(run: RunSummary, *, across: bool) -> list[Column]:
    """The ``record_score`` names, each on its own scale: names down and models across, or
    (``across`` False, where models are too many) one row per name × model."""
    named = run.named
    if across:
        columns = [Column("score", tuple(named), shrink=True)]
        for model in run.model_ids():
            column = tuple(
                score_metric(n).format(named[n][model]) if model in named[n] else "-" for n in named
            )
            columns.append(Column(run.label(model), column, shrink=True))
        return columns
    rows = [
        (n, model, score_metric(n).format(v))
        for n, per in named.items()
        for model, v in per.items()
    ]
    return [
        Column("score", tuple(r[0] for r in rows), shrink=True),
        Column("model", tuple(run.label(r[1]) for r in rows), shrink=True),
        Column("mean", tuple(r[2] for r in rows)),
    ]


def long_columns(run: RunSummary) -> list[Column]:
    """One row per benchmark × model (where models are too many to go across)."""
    rows = [
        (bench, run.label(model), cell)
        for bench, per_model in run.benchmarks.items()
        for model, cell in per_model.items()
    ]
    return [
        Column("benchmark", tuple(r[0] for r in rows), shrink=True),
        Column("model", tuple(r[1] for r in rows), shrink=True),
        Column("score", tuple(SCORE.format(r[2].score) for r in rows)),
        Column("passed", tuple(f"{r[2].passed}/{r[2].ran}" for r in rows)),
        Column("err", tuple(str(r[2].errors) for r in rows)),
    ]


def check_columns(run: RunSummary) -> list[Column]:
    """Per model × benchmark × check: the check's mean score and how often it passed."""
    keys, cells = list(run.checks), list(run.checks.values())
    return [
        Column("model", tuple(run.label(k[0]) for k in keys), shrink=True),
        Column("benchmark", tuple(k[1] for k in keys), shrink=True),
        Column("check", tuple(k[2] for k in keys), shrink=True),
        Column("score", tuple(SCORE.format(c.score) for c in cells)),
        Column("passed", tuple(f"{c.passed}/{c.ran}" for c in cells)),
    ]


#: Per-item figures of the last generation in the items table.
ITEM_COLUMNS = (TTFT_S, DECODE_TPS, SERVER_DECODE_TPS, OUTPUT_TOKENS)


def _diagnosis(item: ItemResult) -> str:
    notes = list(item.record.diagnoses)
    if item.record.error:
        notes.append(item.record.error.splitlines()[0][:200])
    if not notes:  # a diagnosis or error says it better than the assertion quoting it
        notes.append(failure_line(item.record))
    return "; ".join(n for n in notes if n)


def item_columns(run: RunSummary) -> list[Column]:
    """One row per model × test item."""
    items = run.items
    last = [i.generations[-1] if i.generations else None for i in items]
    columns = [
        Column("model", tuple(run.label(i.model) for i in items), shrink=True),
        Column("test", tuple(i.test for i in items), shrink=True),
        Column("outcome", tuple(i.outcome for i in items)),
    ]
    for n, metric in enumerate(ITEM_COLUMNS):
        cells = tuple(metric.format(None if g is None else g.figure(metric.name)) for g in last)
        columns.append(Column(metric.label, cells, 3 + n))  # before the diagnosis is cut
    columns += [
        Column("finish", tuple((g and g.reply.finish_reason) or "-" for g in last), 1),
        Column("score", tuple(SCORE.format(i.record.scores.get(SCORE.name)) for i in items)),
        Column("diagnosis", tuple(_diagnosis(i) for i in items), shrink=True),
    ]
    return columns


def item_rows(run: RunSummary) -> tuple[list[str], list[list[str]]]:
    """One row per model × test item, every column."""
    columns = item_columns(run)
    rows = [list(r) for r in zip(*(c.cells for c in columns), strict=True)]
    return [c.header for c in columns], rows


def problems(run: RunSummary, width: int | None, limit: int = 5) -> list[str]:
    """What went wrong, per model (``RunSummary.problems``): each diagnosis or error once,
    with how often and where, the most frequent first."""
    lines = []
    for model, ranked in run.problems.items():
        parts = []
        for problem in ranked[:limit]:
            benches = problem.benchmarks
            count = f" ×{len(benches)}" if len(benches) > 1 else ""
            parts.append(f"{problem.note}{count} ({', '.join(dict.fromkeys(benches))})")
        if len(ranked) > limit:
            parts.append(f"{len(ranked) - limit} more (-v, --llm-html)")
        text = for_cell(f"{run.label(model)}: " + "; ".join(parts))
        wrapped = textwrap.wrap(
            text, width or 10_000, subsequent_indent="  ", break_on_hyphens=False
        )
        lines += wrapped or [text]
    return lines


def _items(run: RunSummary, width: int | None) -> str:
    """The items table; where the model column would squeeze it, one table per model under
    the model's name instead."""
    columns = _safe(item_columns(run))
    if width is None or table_width(columns) <= width:
        return _section("items:", fit(columns, width), width)
    out = []
    for model in run.model_ids():
        keep = [i for i, item in enumerate(run.items) if item.model == model]
        own = [Column(c.header, tuple(c.cells[i] for i in keep), c.priority, c.shrink)
               for c in columns[1:]]  # fmt: skip
        out.append(_section(f"items of {run.label(model)}:", fit(own, width), width))
    return "\n\n".join(out)


def _section(title: str, fitted: Fitted, width: int | None) -> str:
    text = f"{title}\n{fitted.text}" if title else fitted.text
    if fitted.dropped:
        note = (
            f"(left out to fit {width} columns: {', '.join(fitted.dropped)}; "
            f"all in --llm-json / --llm-html)"
        )
        text += "\n" + "\n".join(textwrap.wrap(note, width or 10_000, break_on_hyphens=False))
    return text


def _safe(columns: list[Column]) -> list[Column]:
    """Cells as they may be shown: escape sequences from outside text shown, not obeyed."""
    return [
        Column(for_cell(c.header), tuple(map(for_cell, c.cells)), c.priority, c.shrink)
        for c in columns
    ]


def render(run: RunSummary, mode: str, verbose: int, width: int | None = None) -> str:
    """The leaderboard text for ``mode`` (models, items, both, none, auto) within ``width``
    columns: per model (counts, a column per benchmark, speed), benchmarks × models when the
    benchmark columns do not fit beside TTFT, tok/s and trunc, what went wrong; with ``-v`` (or
    ``both``) also per check and per item."""
    if not run.items or mode == "none":
        return ""
    parts = []
    if mode in ("models", "both", "auto"):
        wide = fit(_safe(model_columns(run)), width)
        first = {TTFT_S.label, DECODE_TPS.label, TRUNCATED.label}  # kept before benchmarks
        if not (first & set(wide.dropped) or wide.shortened):
            parts.append(_section("", wide, width))
        else:  # benchmarks go to a table of their own, so the speed figures stay
            parts.append(
                _section("", fit(_safe(model_columns(run, benchmarks=False)), width), width)
            )
            across = _safe(matrix_columns(run))
            if width is None or table_width(across) <= width:
                matrix = fit(across, width)
            else:
                matrix = fit(_safe(long_columns(run)), width)
            parts.append(_section("benchmarks (mean score /100, passed/ran):", matrix, width))
            if run.named:
                across = _safe(named_columns(run, across=True))
                if width is not None and table_width(across) > width:
                    across = _safe(named_columns(run, across=False))
                title = "record_score names (mean per model, each on its own scale):"
                parts.append(_section(title, fit(across, width), width))
        trouble = problems(run, width)
        if trouble:
            parts.append("\n".join(["what went wrong:", *trouble]))
    detail = mode == "both" or (mode == "auto" and verbose > 0)
    if detail and any(i.record.checks for i in run.items):
        parts.append(_section("checks:", fit(_safe(check_columns(run)), width), width))
    if mode in ("items", "both") or (mode == "auto" and verbose > 0):
        parts.append(_items(run, width))
    return "\n\n".join(parts)
