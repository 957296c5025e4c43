"""What a check returns, shared by ``checks/`` and ``sandbox/`` so neither imports the other.

:class:`CheckResult` (named, scored in 0..1, readable, with a diagnosis when known), the
:class:`Score` that weighs an item's checks into one total (an item's record keeps it), the names
of the pitfalls a diagnosis gives (shown in the leaderboard), and :func:`parse_error`, the one
test of whether a program parses (``checks.python_syntax`` scores it; ``run_program`` does not
run what fails it).
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_llmbench.text_safety import for_cell, for_terminal

TRUNCATED = "truncated at the output cap"
INTERACTIVE = "waited for interactive input"
TIMED_OUT = "timed out"
NO_CODE = "no code found"
OUTPUT_LIMIT = "printed more than the output limit"
MEMORY_LIMIT = "used more than the memory limit"
DISK_LIMIT = "wrote more than the disk limit"
ENDED_EARLY = "exited before its tests finished"


def crashed(exit_code: int, last_stderr_line: str) -> str:
    """``crashed (exit N: last stderr line)``."""
    line = for_cell(last_stderr_line.strip()[:120])  # the program's own output
    return f"crashed (exit {exit_code}: {line})" if line else f"crashed (exit {exit_code})"


@dataclass(frozen=True)
class CheckResult:
    """``score`` is in 0..1; ``details`` is for people; ``diagnosis`` names a known pitfall
    ("truncated at the output cap", "waited for interactive input", ...)."""

    name: str
    score: float
    passed: bool
    details: str = ""
    diagnosis: str | None = None
    unguaranteed: tuple[str, ...] = ()
    """The sandbox guarantees that did not hold where this check ran generated code
    (``sandbox.containment.Guarantee`` names); ``details`` draws them as prose."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-shaped: lists, never tuples (the form a results file reads back)."""
        return {**asdict(self), "unguaranteed": list(self.unguaranteed)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        """From :meth:`to_dict`'s form (checked by its reader: ``records``); absent fields
        but the name and score take their defaults."""
        return cls(
            name=str(data["name"]),
            score=float(data["score"]),
            passed=bool(data.get("passed")),
            details=str(data.get("details") or ""),
            diagnosis=data.get("diagnosis"),
            unguaranteed=tuple(map(str, data.get("unguaranteed") or ())),
        )


@dataclass(frozen=True)
class Score:
    total: float
    checks: tuple[CheckResult, ...]
    weights: dict[str, float] = field(default_factory=dict)
    diagnoses: tuple[str, ...] = ()

    def explain(self) -> str:
        """One line per check: score, weight, details and diagnosis."""
        lines = [
            f"score {self.total:.1f}/100"
            + (f" — {'; '.join(self.diagnoses)}" if self.diagnoses else "")
        ]
        for check in self.checks:
            note = f" [{check.diagnosis}]" if check.diagnosis else ""
            lines.append(
                f"  {check.name}: {100 * check.score:.0f}% × weight "
                f"{self.weights.get(check.name, 0):g}{note} — {check.details}"
            )
        return for_terminal("\n".join(lines))  # details and diagnoses quote model output

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "checks": [c.to_dict() for c in self.checks],
            "weights": dict(self.weights),
            "diagnoses": list(self.diagnoses),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Score:
        """From :meth:`to_dict`'s form (checked by its reader: ``records``)."""
        return cls(
            float(data["total"]),
            tuple(CheckResult.from_dict(c) for c in data["checks"]),
            {str(k): float(v) for k, v in (data.get("weights") or {}).items()},
            tuple(data.get("diagnoses") or ()),
        )


def parse_error(code: str) -> SyntaxError | None:
    """The first syntax error of ``code`` (never executes it), or ``None``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes is not an error
            ast.parse(code)
    except SyntaxError as exc:
        return exc
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        return SyntaxError(str(exc))
    return None
