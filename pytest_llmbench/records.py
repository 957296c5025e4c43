"""What one item contributes to the leaderboard: built in the test, shipped on its report.

The record rides as a plain dict in the report attribute ``llmbench``: pytest serializes a
report's ``__dict__`` for pytest-xdist, so it reaches the controller, and unlike
``user_properties`` it is not dumped into JUnit XML (which gets flat metric properties).
Only builtins go in it (execnet cannot ship dataclasses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_llmbench.metrics import generation_metrics

PROPERTY = "llmbench"


@dataclass
class ItemRecord:
    """Mutable while the test runs; frozen into a dict when its report is made."""

    model: str
    test: str
    settings: dict[str, Any] = field(default_factory=dict)
    generations: list[dict[str, Any]] = field(default_factory=list)
    judge: list[dict[str, Any]] = field(default_factory=list)
    """The judge model's generations, kept apart from the model's own figures."""
    scores: dict[str, float] = field(default_factory=dict)
    score: dict[str, Any] | None = None
    load_s: float | None = None
    error: str | None = None
    failure: str | None = None
    """Why the test failed (its assertion or exception, or the missed gate), as raw text."""
    repeat: int = 0
    """Index of this repetition (0 when not repeated)."""
    repeats: int = 1
    """How many repetitions the item's plan asks for: above 1, its gates are pooled."""
    min_pass_rate: float | None = None
    thresholds: list[str] = field(default_factory=list)
    benchmark: str | None = None
    """The benchmark named by the test's marker; ``None``: its function name is used."""
    known_answer: dict[str, Any] | None = None
    """The answer file that served an ``answers:DIR`` item, and the verdict it expects."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "test": self.test,
            "settings": self.settings,
            "generations": self.generations,
            "judge": self.judge,
            "scores": self.scores,
            "score": self.score,
            "load_s": self.load_s,
            "error": self.error,
            "failure": self.failure,
            "repeat": self.repeat,
            "repeats": self.repeats,
            "min_pass_rate": self.min_pass_rate,
            "thresholds": self.thresholds,
            "benchmark": self.benchmark,
            "known_answer": self.known_answer,
        }


def record_from_report(report: pytest.TestReport) -> dict[str, Any] | None:
    value = getattr(report, PROPERTY, None)
    return value if isinstance(value, dict) else None


def junit_properties(record: dict[str, Any]) -> list[tuple[str, object]]:
    """Flat ``llm.*`` properties for JUnit XML: model, every metric the last generation
    reported, scores."""
    props: list[tuple[str, object]] = [("llm.model", record["model"])]
    gens = record.get("generations") or []
    if gens:
        last = gens[-1]
        props.append(("llm.finish_reason", last.get("finish_reason")))
        for metric in generation_metrics():
            value = last.get("metrics", {}).get(metric.name)
            if value is not None:
                props.append((f"llm.{metric.name}", value))
    for name, value in (record.get("scores") or {}).items():
        props.append((f"llm.score.{name}", value))
    if record.get("error"):
        props.append(("llm.error", str(record["error"]).splitlines()[0]))
    return props


#: Characters of each prompt message kept in the record (the HTML report shows them).
PROMPT_CHARS = 20_000


def prompt_messages(request: dict[str, Any]) -> list[dict[str, str]]:
    """The prompt of a request body as ``[{role, content}]``, each content cut to
    :data:`PROMPT_CHARS` (the record travels on every report; the request itself is dropped)."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        prompt = request.get("prompt")
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else []
    out = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        text = content if isinstance(content, str) else str(content or "")
        if len(text) > PROMPT_CHARS:
            text = f"{text[:PROMPT_CHARS]}… [{len(text) - PROMPT_CHARS} more characters]"
        out.append({"role": str(message.get("role") or "user"), "content": text})
    return out
