"""Running one hostile program and finding what it left behind — only its own processes, so
that another run sandboxing at the same time (another test session, another worktree) is
never mistaken for a leak."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from pytest_llmbench import checks
from pytest_llmbench.sandbox import Step, run_program

STEP = [Step([], name="run")]
MARK_VAR = "LLMBENCH_HOSTILE_MARK"


def new_mark() -> str:
    return f"hostile-{uuid.uuid4().hex}"


def processes_marked(mark: str) -> list[int]:
    """Live processes whose environment or command line holds ``mark`` (a daemon that
    ``execve``s with an empty environment keeps it on its command line)."""
    found = []
    needle = mark.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            base = Path(f"/proc/{entry}")
            seen = needle in (base / "cmdline").read_bytes()
            if not seen:
                seen = needle in (base / "environ").read_bytes()
            if seen and "State:\tZ" not in (base / "status").read_text():
                found.append(int(entry))
        except OSError:
            continue
    return found


def run(
    code: str, steps: Sequence[Step] = STEP, mark: str | None = None, **kwargs: object
) -> checks.CheckResult:
    """Run ``code`` in the sandbox; it may use ``MARK`` (a name bound to this run's mark).
    Asserts that it ended in time and that none of its processes is left."""
    mark = mark or new_mark()
    started = time.monotonic()
    env = {MARK_VAR: mark, **kwargs.pop("env", {})}  # type: ignore[dict-item]
    result = run_program(f"MARK = {mark!r}\n{code}", steps, env=env, **kwargs)  # type: ignore[arg-type]
    assert time.monotonic() - started < 60
    left = processes_marked(mark)
    assert left == [], f"a sandboxed process outlived its step: {left}\n{result.details}"
    return result
