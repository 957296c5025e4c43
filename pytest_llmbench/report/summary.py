"""The run added up once (:func:`summarize`, a :class:`RunSummary`): per-model summaries (the
leaderboard's rows, the HTML charts and the JSON ``models``), per benchmark and per named score;
the terminal, Markdown, HTML and JSON only draw it.

A :class:`ModelSummary` holds outcome counts and each registry metric's summary statistics,
read by :class:`~pytest_llmbench.metrics.Metric` (``summary.value(TTFT_S)``), never by a
string key. A dict only in the JSON (``to_dict`` / ``from_dict``, keys as in schema v1:
``ttft_s_median``, ``load_s``, ``score_mean``...).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llmbench.check_result import CheckResult
from pytest_llmbench.generate.records import ItemRecord
from pytest_llmbench.metrics import SCORE, Metric, Stat, pass_rate, registry
from pytest_llmbench.report.tables import shorten
from pytest_llmbench.serve.caveats import notes as caveat_notes
from pytest_llmbench.verdict.results import ItemResult, Results

_COUNTS = ("items", "passed", "failed", "errors", "skipped", "generations")


@dataclass(frozen=True)
class ModelSummary:
    model: str
    items: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    generations: int = 0
    pass_rate: float | None = None
    """passed / (passed + failed): errors and skips are not the model's result."""
    figures: Mapping[str, Mapping[Stat, float | None]] = field(default_factory=dict)
    """Per metric name, its summary statistics (see ``Metric.summary``)."""
    checks: Mapping[str, float | None] = field(default_factory=dict)
    """Mean score (0..100) per check name, over the scored items."""

    @classmethod
    def of(cls, model: str, items: Sequence[tuple[str, ItemRecord]]) -> ModelSummary:
        """Summarize one model's items, given as (outcome, item record) pairs."""
        outcomes = [outcome for outcome, _ in items]
        records = [record for _, record in items]
        checks: dict[str, list[float]] = {}
        for record in records:
            for check in record.checks:
                checks.setdefault(check.name, []).append(100 * check.score)
        return cls(
            model=model,
            items=len(items),
            passed=outcomes.count("passed"),
            failed=outcomes.count("failed"),
            errors=outcomes.count("error"),
            skipped=outcomes.count("skipped"),
            generations=sum(len(r.generations) for r in records),
            pass_rate=pass_rate(outcomes),
            figures={m.name: m.summarize(records) for m in registry() if m.summary},
            checks={name: statistics.fmean(v) for name, v in checks.items()},
        )

    def value(self, metric: Metric, stat: Stat | None = None) -> float | None:
        """``metric``'s statistic ``stat`` (default: the first of its summary, the one shown)."""
        if not metric.summary:
            raise ValueError(f"{metric.name} has no per-model summary")
        return self.figures.get(metric.name, {}).get(stat or metric.summary[0])

    def has(self, metric: Metric) -> bool:
        """Whether this model has a figure for ``metric`` (a leaderboard cell that is not
        ``-``): a column empty for every model carries no data for the run."""
        if metric.source != "score" and not self.generations:
            return False
        return self.value(metric) is not None

    def cell(self, metric: Metric) -> str:
        """The leaderboard text: the first statistic in the metric's format, ``± stdev``
        where it has one, ``-`` where there is no figure."""
        if not self.has(metric):
            return "-"
        text = metric.format(self.value(metric))
        if "stdev" in metric.summary:
            spread = self.value(metric, "stdev")
            if spread is not None:
                text += f" ± {metric.format(spread)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model}
        out.update({name: getattr(self, name) for name in _COUNTS})
        out["pass_rate"] = self.pass_rate
        for metric in registry():
            for stat, value in self.figures.get(metric.name, {}).items():
                out[metric.key(stat)] = value
        out["checks"] = dict(self.checks)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSummary:
        """From a results document's ``models`` entry; statistics it lacks stay absent."""
        figures = {
            m.name: {s: data[m.key(s)] for s in m.summary if m.key(s) in data}
            for m in registry()
            if m.summary
        }
        return cls(
            model=str(data["model"]),
            **{name: int(data.get(name) or 0) for name in _COUNTS},
            pass_rate=data.get("pass_rate"),
            figures=figures,
            checks=dict(data.get("checks") or {}),
        )


def failure_line(record: ItemRecord) -> str:
    """The first line of why the test failed (its assertion message), or ``""``."""
    lines = (record.failure or "").strip().splitlines()
    return shorten(lines[0], 200) if lines else ""


@dataclass(frozen=True)
class Problem:
    """One thing that went wrong for a model (a diagnosis, an error, or else why its test
    failed), with the benchmark of each item it happened in."""

    note: str
    benchmarks: tuple[str, ...]


def benchmark_of(record: ItemRecord) -> str:
    """The benchmark an item belongs to: the name its test gives, else the test function's
    name without its parameters and ``test_`` prefix (``test_todo_app[v1]`` -> ``todo_app``)."""
    name = record.benchmark or record.test or "?"
    base = name.split("[", 1)[0]
    return base.removeprefix("test_") or base


@dataclass(frozen=True)
class BenchmarkCell:
    """One model on one benchmark: its items' mean score and how many passed."""

    items: int
    passed: int
    ran: int
    errors: int
    score: float | None

    def text(self) -> str:
        """``60.0 1/2`` (mean score /100, passed/ran); ``2/3`` when nothing was scored."""
        counts = f"{self.passed}/{self.ran}" if self.ran else "-"
        if self.errors:
            counts += f" {self.errors}E"
        return counts if self.score is None else f"{SCORE.format(self.score)} {counts}"


@dataclass(frozen=True)
class CheckCell:
    """One check of one model on one benchmark: its mean score (0..100) and how often it
    passed."""

    score: float
    passed: int
    ran: int


def _check_cells(items: Sequence[ItemResult]) -> dict[tuple[str, str, str], CheckCell]:
    """Per (model, benchmark, check name), in order of appearance: its mean and passes."""
    groups: dict[tuple[str, str, str], list[CheckResult]] = {}
    for item in items:
        bench = benchmark_of(item.record)
        for check in item.record.checks:
            groups.setdefault((item.model, bench, check.name), []).append(check)
    return {
        key: CheckCell(
            statistics.fmean(100 * c.score for c in checks),
            sum(c.passed for c in checks),
            len(checks),
        )
        for key, checks in groups.items()
    }


def _benchmark_cells(items: Sequence[ItemResult]) -> dict[str, dict[str, BenchmarkCell]]:
    """Per benchmark (in order of appearance), per model: score and pass counts."""
    groups: dict[str, dict[str, list[ItemResult]]] = {}
    for item in items:
        groups.setdefault(benchmark_of(item.record), {}).setdefault(item.model, []).append(item)
    out: dict[str, dict[str, BenchmarkCell]] = {}
    for bench in sorted(groups):
        out[bench] = cells = {}
        for model, of_model in groups[bench].items():
            outcomes = [i.outcome for i in of_model]
            scores = [v for i in of_model for v in SCORE.values(i.record)]
            cells[model] = BenchmarkCell(
                len(of_model),
                outcomes.count("passed"),
                outcomes.count("passed") + outcomes.count("failed"),
                outcomes.count("error"),
                statistics.fmean(scores) if scores else None,
            )
    return out


def _named_scores(items: Sequence[ItemResult]) -> dict[str, dict[str, float]]:
    """``llm.record_score(name, value)`` names other than the total: mean per model."""
    values: dict[str, dict[str, list[float]]] = {}
    for item in items:
        for name, value in item.record.scores.items():
            if name != SCORE.name:
                values.setdefault(name, {}).setdefault(item.model, []).append(float(value))
    return {
        name: {model: statistics.fmean(v) for model, v in per.items()}
        for name, per in values.items()
    }


@dataclass(frozen=True)
class RunSummary:
    """The run added up, once per run: what every report draws."""

    items: tuple[ItemResult, ...]
    """Every item, in ``--llm-models`` order, then by node id."""
    labels: Mapping[str, str]
    """Short table labels by model id; the id where none is given."""
    models: tuple[ModelSummary, ...]
    """One summary per model, in ``--llm-models`` order."""
    benchmarks: Mapping[str, Mapping[str, BenchmarkCell]]
    """Per benchmark (sorted), per model: score and pass counts."""
    named: Mapping[str, Mapping[str, float]]
    """Per ``record_score`` name (the total aside), the mean per model."""
    checks: Mapping[tuple[str, str, str], CheckCell]
    """Per (model, benchmark, check name), in order of appearance: mean score and passes."""
    caveat_notes: tuple[str, ...] = ()
    """Why some figures are not like the others: one line per model and kind of caveat."""
    server_warnings: tuple[str, ...] = ()
    """Configuration pitfalls the backends noticed (a GGUF without a chat template), once each."""
    warnings: tuple[str, ...] = ()
    """Every configuration pitfall, once each: the backends' and the sandbox's missing
    guarantees (read from the checks' records)."""
    problems: Mapping[str, tuple[Problem, ...]] = field(default_factory=dict)
    """What went wrong, per model with anything (in ``--llm-models`` order): each diagnosis
    or error once, the most frequent first."""

    def label(self, model: str) -> str:
        return self.labels.get(model, model)

    def model_ids(self) -> list[str]:
        return [s.model for s in self.models]

    def of_model(self, model: str) -> list[ItemResult]:
        return [item for item in self.items if item.model == model]


def summarize(results: Results) -> RunSummary:
    """Add the run up: one summary per model (the leaderboard's rows, the JSON report's
    ``models``), per benchmark and per named score, each model's problems, the warnings."""
    items = tuple(results.ordered())
    by_model: dict[str, list[tuple[str, ItemRecord]]] = {}
    for item in items:
        by_model.setdefault(item.model, []).append((item.outcome, item.record))
    server_warnings = tuple(
        dict.fromkeys(w for i in items for g in i.generations for w in g.reply.server.warnings)
    )
    return RunSummary(
        items=items,
        labels=dict(results.labels),
        models=tuple(ModelSummary.of(model, of) for model, of in by_model.items()),
        benchmarks=_benchmark_cells(items),
        named=_named_scores(items),
        checks=_check_cells(items),
        caveat_notes=tuple(
            caveat_notes((i.model, g.reply.caveats) for i in items for g in i.generations)
        ),
        server_warnings=server_warnings,
        warnings=(*server_warnings, *_sandbox_warnings(items)),
        problems=_problems(items),
    )


def _sandbox_warnings(items: Sequence[ItemResult]) -> list[str]:
    """The sandbox's missing guarantees, read from the items' checks."""
    # Loaded only now: the plugin loads no sandbox module unless a check runs.
    from pytest_llmbench.sandbox.containment import sandbox_warnings

    return sandbox_warnings(check for item in items for check in item.record.checks)


def _problems(items: Sequence[ItemResult]) -> dict[str, tuple[Problem, ...]]:
    """Each model's diagnoses and errors (a failure's first line where it has neither, a
    missed threshold aside: the verdict names it), tallied over its items."""
    by_model: dict[str, dict[str, list[str]]] = {}
    for item in items:
        notes = list(item.record.diagnoses)
        if item.record.error:
            first = item.record.error.splitlines()[0]
            notes.append(shorten(first.removeprefix(f"{item.model}: "), 160))
        failure = failure_line(item.record)
        if failure and not notes and not failure.startswith("threshold missed"):
            notes.append(shorten(failure, 160))
        where = by_model.setdefault(item.model, {})
        for note in notes:
            where.setdefault(note, []).append(benchmark_of(item.record))
    return {
        model: tuple(
            Problem(note, tuple(benches))
            for note, benches in sorted(where.items(), key=lambda kv: -len(kv[1]))
        )
        for model, where in by_model.items()
        if where
    }
