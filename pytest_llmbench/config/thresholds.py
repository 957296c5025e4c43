"""One grammar for limits on metrics, keyed on the metrics registry.

- a threshold bounds an item's median: ``score>=80``, ``ttft_s<=5``, ``quality>=0.5`` (a
  name the test gives ``llm.record_score``);
- a margin allows a regression against a saved baseline: ``score:5`` (absolute) or
  ``decode_tps:10%`` (relative).

Terms are separated by commas; one list may also be given as several strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pytest_llmbench.metrics import Metric, gated_metrics, is_named_score, lookup

_TERM = re.compile(
    r"(?P<metric>[a-z][a-z0-9_]*)\s*(?P<op>>=|<=|:)\s*(?P<amount>-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*(?P<pct>%?)"
)


@dataclass(frozen=True)
class Threshold:
    """``score>=80``, ``decode_tps>=20``, ``ttft_s<=5``."""

    metric: str
    op: str
    limit: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.limit:g}"

    @property
    def spec(self) -> Metric:
        return lookup(self.metric)

    def holds(self, value: float) -> bool:
        return value >= self.limit if self.op == ">=" else value <= self.limit


@dataclass(frozen=True)
class Margin:
    """A regression allowance: ``score:5`` (absolute) or ``decode_tps:10%`` (relative)."""

    metric: str
    amount: float
    relative: bool

    def __str__(self) -> str:
        return f"{self.metric}:{self.amount:g}{'%' if self.relative else ''}"

    @property
    def spec(self) -> Metric:
        return lookup(self.metric)

    def exceeded(self, before: float, after: float) -> bool:
        """Whether going from ``before`` to ``after`` is worse than this margin allows."""
        worse = self.spec.worse_by(before, after)
        if self.relative:
            if before == 0:
                return False
            worse = 100 * worse / abs(before)
        return worse > self.amount


def _terms(text: str | Iterable[str]) -> list[str]:
    parts = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    return [p for p in (p.strip() for p in parts) if p]


def _bad(kind: str, term: str, forms: str, names: tuple[str, ...], example: str) -> ValueError:
    return ValueError(
        f"bad {kind} {term!r}: write {forms} with METRIC one of {', '.join(names)} or a name "
        f"your tests give llm.record_score (e.g. {example})"
    )


def _known(name: str, gated: tuple[str, ...]) -> bool:
    """A gated metric of the registry, or a ``record_score`` name (not a registry metric
    without a better direction, such as ``output_tokens``)."""
    return name in gated or is_named_score(name)


def parse_thresholds(text: str | Iterable[str]) -> tuple[Threshold, ...]:
    """Parse ``"score>=80,ttft_s<=5"`` (or a list of such); ``ValueError`` names the fix."""
    names = tuple(m.name for m in gated_metrics(per_item=True))
    out = []
    for term in _terms(text):
        match = _TERM.fullmatch(term)
        if not match or match["op"] == ":" or match["pct"] or not _known(match["metric"], names):
            raise _bad("threshold", term, "METRIC>=N or METRIC<=N", names, "score>=80,ttft_s<=5")
        out.append(Threshold(match["metric"], match["op"], float(match["amount"])))
    return tuple(out)


def parse_margins(text: str | Iterable[str]) -> tuple[Margin, ...]:
    """Parse ``"score:5,decode_tps:10%"``; ``ValueError`` names the fix."""
    names = tuple(m.name for m in gated_metrics(per_item=False))
    out = []
    for term in _terms(text):
        match = _TERM.fullmatch(term)
        if (
            not match
            or match["op"] != ":"
            or match["amount"].startswith("-")
            or not _known(match["metric"], names)
        ):
            raise _bad(
                "margin",
                term,
                "METRIC:AMOUNT or METRIC:PCT%",
                names,
                "score:5,decode_tps:10%",
            )
        out.append(Margin(match["metric"], float(match["amount"]), bool(match["pct"])))
    return tuple(out)
