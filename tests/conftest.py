"""Shared fixtures: the real llama-server + embedded model (required in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import httpcore  # noqa: F401 - imported before pytester snapshots sys.modules: see below
import httpx  # noqa: F401
import pytest

from pytest_llmbench.tools.llama_server import find_llama_server

# pytester's in-process runs restore sys.modules afterwards; a module first imported inside
# one is imported again later as a new object, and httpx's lazily built httpcore->httpx
# exception map then no longer matches (httpcore.ConnectError escapes unmapped).


def pytest_configure(config: pytest.Config) -> None:
    # pytester gives each inner run a fresh HOME; keep it pointed at the real build cache.
    from pytest_llmbench.tools.cache import cache_dir

    os.environ.setdefault("PYTEST_LLMBENCH_CACHE", str(cache_dir()))


def _require(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI: .ci/run must install it", pytrace=False)
    pytest.skip(f"{what} not available (run python -m pytest_llmbench.tools.llama_server)")


@pytest.fixture(scope="session")
def llama_server_bin() -> Path:
    found = find_llama_server()
    if found is None:
        _require("llama-server")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def gemma_gguf() -> Path:
    try:
        from pytest_llmbench.tools.default_model import embedded_model_path

        return embedded_model_path()
    except Exception as exc:
        _require(f"the gemma3-270m model ({exc})")
        raise
