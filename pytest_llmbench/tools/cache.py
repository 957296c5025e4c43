"""Where pytest-llmbench keeps what it builds or assembles once per machine."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$PYTEST_LLMBENCH_CACHE``, else ``$XDG_CACHE_HOME/pytest-llmbench``, else
    ``~/.cache/pytest-llmbench``."""
    explicit = os.environ.get("PYTEST_LLMBENCH_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pytest-llmbench"
