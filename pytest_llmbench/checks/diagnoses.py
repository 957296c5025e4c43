"""The names of the pitfalls the checks recognise (shown in the leaderboard)."""

from pytest_llmbench.text_safety import for_cell

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
