"""The run's one verdict on its gates, for a person reading a CI log or step summary.

Passed or FAILED (the same answer as the exit status, decided by
:func:`pytest_llmbench.verdict.outcome.exit_status`), each failed gate with its figure and limit,
what else failed, and, when a saved run was not matched, the command that accepts the change.
Drawn last in the terminal summary and first in the Markdown report.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmbench.text_safety import for_cell, for_markdown

#: Options left out of the accept command: it saves, it does not compare again.
_DROPPED = ("--llm-save", "--llm-compare", "--llm-compare-fail")


@dataclass(frozen=True)
class GateFailure:
    """One missed gate: which, where, and its figure against its limit."""

    gate: str
    """``threshold``, ``pass rate``, ``regression`` or ``no result``."""
    where: str
    """``model :: test``."""
    detail: str
    """The figure and the limit: ``score 90.0 → 60.0 (-33.3%), beyond margin score:5``."""

    def text(self) -> str:
        return f"{self.gate}: {self.where}: {self.detail}"

    def to_dict(self) -> dict[str, str]:
        return {"gate": self.gate, "where": self.where, "detail": self.detail}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    failures: tuple[GateFailure, ...] = ()
    failed_tests: tuple[str, ...] = ()
    """Failed tests whose failure is not a gate's (assertions, errors in the test)."""
    errors: int = 0
    """Items that errored (server trouble, setup), never counted against a model."""
    problems: tuple[str, ...] = ()
    """Files that could not be written or read (the run did not do all it was asked)."""
    checked: tuple[str, ...] = ()
    """What was gated: ``thresholds score>=80``, ``compared with 0001_main.json``."""
    accept: str | None = None
    """The command that makes this run the baseline (when a comparison failed)."""

    def head(self) -> str:
        word = "passed" if self.passed else "FAILED"
        if not self.checked:
            return f"llmbench {word}: no gates set"
        return f"llmbench gate {word}: {'; '.join(self.checked)}"

    def reasons(self) -> list[str]:
        out = [f.text() for f in self.failures]
        if self.failed_tests:
            names = ", ".join(self.failed_tests[:3])
            more = len(self.failed_tests) - 3
            out.append(
                f"{_count(len(self.failed_tests), 'test')} failed: {names}"
                + (f" and {more} more" if more > 0 else "")
            )
        if self.errors:
            out.append(
                f"{_count(self.errors, 'item')} errored (server or setup trouble: not counted "
                f"against the model, but the run is not complete)"
            )
        out += list(self.problems)
        return out

    def lines(self) -> list[str]:
        """The terminal form: the head, one indented line per reason, the accept command."""
        out = [self.head(), *(f"  {r}" for r in self.reasons())]
        if self.accept:
            out.append(f"  if the change is intended, accept it: {self.accept}")
        return [for_cell(line) for line in out]

    def markdown(self) -> str:
        head = self.head().removeprefix("llmbench ")
        word, _, what = head.partition(": ")
        parts = [f"**{word[0].upper()}{word[1:]}**: {for_markdown(what)}"]
        reasons = self.reasons()
        if reasons:
            parts += ["", *(f"- {for_markdown(r)}" for r in reasons)]
        if self.accept:
            parts += ["", "If the change is intended, accept it:", "", "```", self.accept, "```"]
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failures": [f.to_dict() for f in self.failures],
            "failed_tests": list(self.failed_tests),
            "errors": self.errors,
            "problems": list(self.problems),
            "checked": list(self.checked),
            "accept": self.accept,
        }


def accept_command(args: Sequence[str], name: str) -> str:
    """``pytest ARGS --llm-save=NAME``: this run's own arguments, less comparing and saving."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        option = arg.split("=", 1)[0]
        if option in _DROPPED:
            skip = "=" not in arg
            continue
        kept.append(arg)
    return shlex.join(["pytest", *kept, f"--llm-save={name}"])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
