"""The metrics vocabulary: every figure the plugin reports, defined once.

Each :class:`Metric` says what it is called, its unit, which way is better, its short
leaderboard label and number format, where its value is read from an item record, and which
per-model statistics summarize it. The leaderboard, thresholds, baseline margins, JUnit
properties and the JSON, Markdown and HTML reports all read it from :data:`REGISTRY`.

Adding a metric is one entry here plus its computation (a
:class:`~pytest_llmbench.serve.generation.Metrics` field for a per-generation figure);
``tests/unit/test_metrics.py`` checks that the two, and the results JSON schema, agree.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Source = Literal["generation", "flag", "score", "outcomes"]
"""Where a value comes from: ``generation`` a field of each generation's ``metrics``;
``flag`` a boolean of each generation (counted); ``score`` the item's total score;
``outcomes`` the pass/fail outcomes of a group of items (repeats)."""

Stat = Literal["median", "p90", "sum", "max", "count", "mean", "stdev"]
"""Per-model statistics. Speed figures (``median``, ``p90``) skip warm-up generations and
those whose caveats leave the metric out (``pytest_llmbench.serve.caveats``);
``sum``, ``max`` and ``count`` (an integer total, 0 when nothing was reported) take every
generation; ``mean``/``stdev`` are over items (scores)."""


class Measured(Protocol):
    """What a metric reads in one generation (``records.GenerationRecord``)."""

    def figure(self, name: str) -> float | None: ...

    def flag(self, name: str) -> bool: ...

    def counts_toward_speed(self, metric: str) -> bool: ...


class Figures(Protocol):
    """What a metric reads in one item record (``records.ItemRecord``)."""

    @property
    def scores(self) -> Mapping[str, float]: ...

    @property
    def generations(self) -> Sequence[Measured]: ...


#: Statistics whose JSON key is the metric's bare name (the others are ``name_stat``).
BARE_STATS: tuple[Stat, ...] = ("sum", "max", "count")


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    """Short column header (``TTFT s``)."""
    unit: str
    higher_is_better: bool | None
    """``None``: a count or a duration that depends on the answer's length, not gated."""
    digits: int
    """Decimals shown."""
    description: str
    source: Source = "generation"
    summary: tuple[Stat, ...] = ()
    """Per-model statistics in the JSON ``models`` summary; the first one is shown."""
    column: bool = False
    """Shown in the per-model leaderboard (where a model has data for it)."""

    def __str__(self) -> str:
        return self.name

    @property
    def gated(self) -> bool:
        """Usable in thresholds and baseline margins (it has a better direction)."""
        return self.higher_is_better is not None

    @property
    def per_item(self) -> bool:
        """Has values in one item record (everything but pass rates over repeats)."""
        return self.source != "outcomes"

    def format(self, value: float | None) -> str:
        """The value as shown: :attr:`digits` decimals, or (``digits`` < 0) that many
        significant digits without an exponent (``0.333``, ``12.3``, ``1234``)."""
        if value is None:
            return "-"
        if self.digits >= 0:
            return f"{value:.{self.digits}f}"
        if value == 0 or not math.isfinite(value):
            return f"{value:g}"
        decimals = -self.digits - 1 - math.floor(math.log10(abs(value)))
        return f"{value:.{min(max(decimals, 0), 6)}f}"

    def key(self, stat: Stat) -> str:
        """The JSON key of one summary statistic: ``ttft_s_median``, ``load_s``."""
        return self.name if stat in BARE_STATS else f"{self.name}_{stat}"

    def values(self, record: Figures, *, timed_only: bool = False) -> list[float]:
        """The metric's values in one item record: one per generation that reported it, or
        the item's score. ``timed_only`` skips warm-up generations and the generations whose
        caveats leave this metric out."""
        if self.source == "score":
            score = record.scores.get(self.name)
            return [] if score is None else [float(score)]
        if self.source == "outcomes":
            raise ValueError(f"{self.name} is a figure of a group of items, not of one item")
        gens = [g for g in record.generations if not timed_only or g.counts_toward_speed(self.name)]
        if self.source == "flag":
            return [1.0 if g.flag(self.name) else 0.0 for g in gens]
        raw = (g.figure(self.name) for g in gens)
        return [v for v in raw if v is not None]

    def worse_by(self, before: float, after: float) -> float:
        """How much worse ``after`` is than ``before`` (negative when it improved)."""
        change = after - before
        return -change if self.higher_is_better else change

    def summarize(self, records: Sequence[Figures]) -> dict[Stat, float | None]:
        """This metric's :attr:`summary` statistics over the item records of one model."""
        timed = [v for r in records for v in self.values(r, timed_only=True)]
        every = [v for r in records for v in self.values(r)]
        return {stat: STATS[stat](timed if stat in TIMED_STATS else every) for stat in self.summary}


def p90(values: Iterable[float]) -> float | None:
    """The 90th percentile by the nearest-rank method."""
    clean = sorted(values)
    if not clean:
        return None
    return clean[min(len(clean) - 1, max(0, round(0.9 * len(clean) + 0.5) - 1))]


TIMED_STATS: tuple[Stat, ...] = ("median", "p90")
"""Statistics of speed: warm-ups and caveated figures left out."""

STATS: Mapping[Stat, Callable[[list[float]], float | None]] = {
    "median": lambda v: statistics.median(v) if v else None,
    "p90": p90,
    "sum": lambda v: sum(v) if v else None,
    "max": lambda v: max(v) if v else None,
    "count": lambda v: int(sum(v)),
    "mean": lambda v: statistics.fmean(v) if v else None,
    "stdev": lambda v: statistics.stdev(v) if len(v) > 1 else None,
}


def _m(
    name: str,
    label: str,
    unit: str,
    higher_is_better: bool | None,
    digits: int,
    description: str,
    **kw: Any,
) -> Metric:
    return Metric(name, label, unit, higher_is_better, digits, description, **kw)


# Registry order is the leaderboard's column order.
LOAD_S = _m(
    "load_s", "load s", "s", False, 2,
    "model load paid before this generation (spawn -> healthy, or the preload)",
    summary=("sum",), column=True,
)  # fmt: skip
TTFT_S = _m(
    "ttft_s", "TTFT s", "s", False, 3,
    "request sent -> first streamed token of any kind (thinking or answer)",
    summary=("median", "p90"), column=True,
)  # fmt: skip
TTFA_S = _m(
    "ttfa_s", "TTFA s", "s", False, 3, "request sent -> first answer token (after any thinking)",
    summary=("median",),
)  # fmt: skip
TOTAL_S = _m("total_s", "total s", "s", False, 2, "request sent -> end of stream")
DECODE_TPS = _m(
    "decode_tps", "tok/s", "tok/s", True, 1,
    "client decode rate: (output tokens - 1) / (last token time - first token time)",
    summary=("median", "p90"), column=True,
)  # fmt: skip
SERVER_DECODE_TPS = _m(
    "server_decode_tps", "srv tok/s", "tok/s", True, 1, "the server's own decode rate",
    summary=("median",), column=True,
)  # fmt: skip
PROMPT_TPS = _m(
    "prompt_tps", "prompt tok/s", "tok/s", True, 1, "server-reported prompt processing rate",
    summary=("median",), column=True,
)  # fmt: skip
OUTPUT_TOKENS = _m(
    "output_tokens", "out tok", "tokens", None, 0, "server-reported output tokens",
    summary=("count",), column=True,
)  # fmt: skip
TRUNCATED = _m(
    "truncated", "trunc", "generations", None, 0, "generations that stopped at the output cap",
    source="flag", summary=("count",), column=True,
)  # fmt: skip
PEAK_RSS_MB = _m(
    "peak_rss_mb", "RSS MB", "MB", False, 0, "peak resident memory of a spawned server",
    summary=("max",), column=True,
)  # fmt: skip
SCORE = _m(
    "score", "score", "/100", True, 1, "the item's total score (llm.score or record_score)",
    source="score", summary=("mean", "stdev"), column=True,
)  # fmt: skip
PROMPT_TOKENS = _m("prompt_tokens", "prompt tok", "tokens", None, 0, "prompt tokens")
THINKING_TOKENS = _m(
    "thinking_tokens", "think tok", "tokens", None, 0,
    "thinking tokens (the server's count where it gives one, else streamed thinking chunks)",
    summary=("count",),
)  # fmt: skip
CACHED_PROMPT_TOKENS = _m(
    "cached_prompt_tokens", "cached tok", "tokens", None, 0, "prompt tokens served from cache"
)
SERVER_PROMPT_MS = _m(
    "server_prompt_ms", "srv prompt ms", "ms", None, 1, "server-reported prompt time"
)
SERVER_DECODE_MS = _m(
    "server_decode_ms", "srv decode ms", "ms", None, 1, "server-reported decode time"
)
SERVER_LOAD_S = _m(
    "server_load_s", "srv load s", "s", None, 2,
    "server-reported wait for the model in this request (Ollama load_duration; a reload "
    "during the run shows here)",
)  # fmt: skip
VRAM_MB = _m("vram_mb", "VRAM MB", "MB", False, 0, "GPU memory the model occupies")
MODEL_MB = _m(
    "model_mb", "model MB", "MB", False, 0,
    "memory the server says the loaded model holds, CPU and GPU (Ollama /api/ps size)",
    summary=("max",), column=True,
)  # fmt: skip
ITL_P50_S = _m(
    "itl_p50_s", "ITL p50 s", "s", False, 4,
    "inter-token latency: median gap between consecutive streamed tokens (client clock)",
    summary=("median",),
)  # fmt: skip
ITL_P90_S = _m(
    "itl_p90_s", "ITL p90 s", "s", False, 4, "inter-token latency, 90th percentile",
    summary=("median",),
)  # fmt: skip
ITL_P99_S = _m(
    "itl_p99_s", "ITL p99 s", "s", False, 4, "inter-token latency, 99th percentile",
    summary=("median",),
)  # fmt: skip
ITL_MAX_S = _m(
    "itl_max_s", "ITL max s", "s", False, 3,
    "the longest gap between two streamed tokens (a model paging weights shows it)",
    summary=("max",),
)  # fmt: skip
PASS_RATE = _m(
    "pass_rate", "pass rate", "", True, 2, "passed / (passed + failed) over a test's repeats",
    source="outcomes",
)  # fmt: skip

REGISTRY: tuple[Metric, ...] = (
    LOAD_S,
    TTFT_S,
    TTFA_S,
    TOTAL_S,
    DECODE_TPS,
    SERVER_DECODE_TPS,
    PROMPT_TPS,
    OUTPUT_TOKENS,
    TRUNCATED,
    PEAK_RSS_MB,
    MODEL_MB,
    SCORE,
    PROMPT_TOKENS,
    THINKING_TOKENS,
    CACHED_PROMPT_TOKENS,
    SERVER_PROMPT_MS,
    SERVER_DECODE_MS,
    SERVER_LOAD_S,
    VRAM_MB,
    ITL_P50_S,
    ITL_P90_S,
    ITL_P99_S,
    ITL_MAX_S,
    PASS_RATE,
)


def registry() -> tuple[Metric, ...]:
    """Every metric, in leaderboard column order (read at call time, so one entry added to
    :data:`REGISTRY` reaches every reader)."""
    return REGISTRY


def metric(name: str) -> Metric:
    """The metric called ``name``; ``KeyError`` lists the known names."""
    for candidate in registry():
        if candidate.name == name:
            return candidate
    raise KeyError(f"unknown metric {name!r}; known: {', '.join(m.name for m in registry())}")


#: What a name given to ``llm.record_score`` may look like to be gated (thresholds, margins).
SCORE_NAME = re.compile(r"[a-z][a-z0-9_]*")


def score_metric(name: str) -> Metric:
    """The metric of a score a test records under its own name (``llm.record_score("quality",
    0.8)``): on the test's own scale, higher is better, shown to 3 significant digits."""
    if name == SCORE.name:
        return SCORE
    return Metric(
        name, name, "", True, -3, f"the score a test records as llm.record_score({name!r}, ...)",
        source="score", summary=("mean", "stdev"),
    )  # fmt: skip


def is_named_score(name: str) -> bool:
    """Whether ``name`` is a ``record_score`` name rather than one of the registry's metrics."""
    return bool(SCORE_NAME.fullmatch(name)) and all(m.name != name for m in registry())


def lookup(name: str) -> Metric:
    """The registry's metric ``name``, else the ``record_score`` name ``name``."""
    return score_metric(name) if is_named_score(name) else metric(name)


def record_metrics(record: Figures) -> tuple[Metric, ...]:
    """The comparable figures of one item record: the registry's per-item metrics with a
    better direction, then each score recorded under its own name."""
    named = (score_metric(n) for n in record.scores if is_named_score(n))
    return (*gated_metrics(per_item=True), *named)


def generation_metrics() -> tuple[Metric, ...]:
    """The figures measured per generation (the ``metrics`` of a generation record)."""
    return tuple(m for m in registry() if m.source == "generation")


def column_metrics() -> tuple[Metric, ...]:
    """The per-model leaderboard's metric columns."""
    return tuple(m for m in registry() if m.column)


def gated_metrics(*, per_item: bool) -> tuple[Metric, ...]:
    """Metrics with a better direction (thresholds, margins, comparisons); ``per_item``
    leaves out figures of a group of items (pass rates over repeats)."""
    return tuple(m for m in registry() if m.gated and (m.per_item or not per_item))


def pass_rate(outcomes: Iterable[str]) -> float | None:
    """Passed over passed + failed (errors and skips are not the model's result)."""
    ran = [o for o in outcomes if o in ("passed", "failed")]
    return ran.count("passed") / len(ran) if ran else None
