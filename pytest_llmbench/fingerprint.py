"""What a run is recognised by, and told apart by: this machine, this plugin's version, and
what changed between two sets of settings or facts.

Read by the results document and the recordings' manifest alike, and by the comparisons of a
run with a saved one and of a request with its nearest recording.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any


def plugin_version() -> str:
    """The installed plugin's version (``unknown`` when run from a bare checkout)."""
    try:
        return metadata.version("pytest-llmbench")
    except metadata.PackageNotFoundError:
        return "unknown"


def hardware() -> dict[str, Any]:
    """A short hardware summary for the fingerprint."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": platform.system(),
        "python": platform.python_version(),
    }


def changes(before: object, after: object) -> str:
    """Only what differs: ``temperature 0.0 → 0.5, seed 42 → 7`` (dicts key by key)."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [*before, *(k for k in after if k not in before)]
        return ", ".join(
            f"{k} {before.get(k)!r} → {after.get(k)!r}"
            for k in keys
            if before.get(k) != after.get(k)
        )
    return f"{before!r} → {after!r}"
