"""Does the program parse?"""

from __future__ import annotations

import ast
import warnings

from pytest_llmbench.checks import diagnoses
from pytest_llmbench.checks.result import CheckResult


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


def python_syntax(code: str | None, *, truncated: bool = False) -> CheckResult:
    """Score 1 when ``code`` parses as Python. ``truncated`` comes from the finish reason: a
    program cut at the output cap is diagnosed as such, not as "bad code"."""
    if not code or not code.strip():
        return CheckResult("syntax", 0.0, False, "no code found", diagnoses.NO_CODE)
    error = parse_error(code)
    if error is None:
        return CheckResult("syntax", 1.0, True, f"parses ({len(code.splitlines())} lines)")
    where = f"line {error.lineno}: " if error.lineno else ""
    details = f"SyntaxError at {where}{error.msg}"
    if truncated:
        return CheckResult(
            "syntax", 0.0, False, f"{details} (the answer hit the output cap)", diagnoses.TRUNCATED
        )
    return CheckResult("syntax", 0.0, False, details)
