"""Does the program parse?"""

from __future__ import annotations

from pytest_llmbench.check_result import NO_CODE, TRUNCATED, CheckResult, parse_error


def python_syntax(code: str | None, *, truncated: bool = False) -> CheckResult:
    """Score 1 when ``code`` parses as Python. ``truncated`` comes from the finish reason: a
    program cut at the output cap is diagnosed as such, not as "bad code"."""
    if not code or not code.strip():
        return CheckResult("syntax", 0.0, False, "no code found", NO_CODE)
    error = parse_error(code)
    if error is None:
        return CheckResult("syntax", 1.0, True, f"parses ({len(code.splitlines())} lines)")
    where = f"line {error.lineno}: " if error.lineno else ""
    details = f"SyntaxError at {where}{error.msg}"
    if truncated:
        return CheckResult(
            "syntax", 0.0, False, f"{details} (the answer hit the output cap)", TRUNCATED
        )
    return CheckResult("syntax", 0.0, False, details)
