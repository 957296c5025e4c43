"""What one item contributes to the leaderboard: built in the test, shipped on its report.

Only builtins go into ``report.user_properties`` (pytest-xdist serializes them with execnet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

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
        }


RECORD_KEY = pytest.StashKey[ItemRecord]()


def record_from_report(report: pytest.TestReport) -> dict[str, Any] | None:
    for name, value in report.user_properties:
        if name == PROPERTY and isinstance(value, dict):
            return value
    return None
