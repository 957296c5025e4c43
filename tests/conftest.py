"""Shared fixtures: the real llama-server + embedded model (required in CI), the real Ollama;
the fakes' fixtures come from ``tests/fixtures/fakes.py``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpcore  # noqa: F401 - imported before pytester snapshots sys.modules: see below
import httpx  # noqa: F401
import pytest

from pytest_llmbench.tools.llama_server import find_llama_server
from tests.fixtures import real_ollama as ollama_build
from tests.fixtures.real_ollama import RealOllama

# pytester's in-process runs restore sys.modules afterwards; a module first imported inside
# one is imported again later as a new object, and httpx's lazily built httpcore->httpx
# exception map then no longer matches (httpcore.ConnectError escapes unmapped).

pytest_plugins = ["tests.fixtures.fakes"]


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


@pytest.fixture(scope="session")
def real_ollama(gemma_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealOllama]:
    """The real Ollama v0.33.0-rc2 (CPU) serving ``gemma3-270m`` and ``gemma3-think``, one
    server per session (``tests/fixtures/real_ollama.py``); skipped naming what is missing,
    failed instead where CI requires it."""
    reason = ollama_build.missing()
    if reason is not None:
        if ollama_build.required():
            pytest.fail(
                f"real Ollama required ({ollama_build.REQUIRE_ENV} / CI) but {reason}",
                pytrace=False,
            )
        pytest.skip(reason)
    server = ollama_build.start(tmp_path_factory.mktemp("ollama"), gemma_gguf)
    try:
        yield server
    finally:
        server.stop()
