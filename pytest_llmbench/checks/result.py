"""The result of one check: named, scored in 0..1, readable, with a diagnosis when known."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    """``score`` is in 0..1; ``details`` is for people; ``diagnosis`` names a known pitfall
    ("truncated at the output cap", "waited for interactive input", ...)."""

    name: str
    score: float
    passed: bool
    details: str = ""
    diagnosis: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(
            name=str(data["name"]),
            score=float(data["score"]),
            passed=bool(data["passed"]),
            details=str(data.get("details", "")),
            diagnosis=data.get("diagnosis"),
        )
