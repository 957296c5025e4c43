"""The real llama-server with the real gemma3-270m GGUF: plumbing and metrics, not quality."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from pytest_llmbench.errors import ServerError
from pytest_llmbench.serve.backends.base import Timeouts
from pytest_llmbench.serve.backends.llama_cpp import LlamaServerBackend
from pytest_llmbench.serve.generation import Settings
from pytest_llmbench.serve.server_info import ServerOptions
from pytest_llmbench.serve.specs import parse_spec

pytestmark = pytest.mark.real_server


@pytest.fixture(scope="module")
def backend(llama_server_bin: Path, gemma_gguf: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    options = ServerOptions(
        llama_server_bin=str(llama_server_bin),
        health_timeout_s=120,
        log_dir=str(tmp_path_factory.mktemp("logs")),
    )
    backend = LlamaServerBackend(parse_spec("llama-server:gemma3-270m"), options)
    messages: list[str] = []
    load_s = backend.prepare(Settings(ctx=4096), messages.append)
    backend.load_s = load_s  # type: ignore[attr-defined]
    yield backend
    backend.release()


def test_spawn_waits_through_health_and_records_server_facts(backend: LlamaServerBackend) -> None:
    info = backend.server_info
    assert backend.load_s is not None and backend.load_s > 0  # type: ignore[attr-defined]
    # The health poll saw the server not ready (refused or 503 "Loading model") before 200.
    assert info.health_seen[-1] == "HTTP 200"
    assert len(info.health_seen) >= 2, info.health_seen
    assert info.total_slots == 1 and info.n_ctx == 4096
    assert info.model_id == "llama-server:gemma3-270m"
    assert info.build
    assert "im_start" in (info.chat_template or "")  # no template in the GGUF: ChatML


def test_real_stream_metrics_are_consistent(backend: LlamaServerBackend) -> None:
    settings = Settings(ctx=4096, max_tokens=48)
    gens = [
        backend.generate(
            [{"role": "user", "content": f"Count to ten, take {i}."}], settings, Timeouts()
        )
        for i in range(3)
    ]
    for g in gens:
        m = g.metrics
        assert m.ttft_s is not None and 0 < m.ttft_s < m.total_s  # type: ignore[operator]
        assert m.output_tokens is not None and 0 < m.output_tokens <= 48
        assert m.prompt_tokens is not None and m.prompt_tokens > 5
        assert m.server_decode_tps is not None and m.server_decode_tps > 0
        assert m.prompt_tps is not None and m.prompt_tps > 0
        assert m.cached_prompt_tokens == 0  # cache_prompt is off by default
        assert m.peak_rss_mb is not None and m.peak_rss_mb > 100
        assert g.request["cache_prompt"] is False and g.request["n_predict"] == 48
        assert g.text and g.answer
    # Client (n-1)/Δt against the server's own predicted_per_second: same convention.
    ratios = [
        g.metrics.decode_tps / g.metrics.server_decode_tps
        for g in gens
        if g.metrics.decode_tps and g.metrics.server_decode_tps
    ]
    assert ratios and 0.8 < statistics.median(ratios) < 1.25, ratios


def test_small_cap_is_flagged_as_truncation(backend: LlamaServerBackend) -> None:
    g = backend.generate(
        [{"role": "user", "content": "Write a long story about a dragon."}],
        Settings(ctx=4096, max_tokens=8),
        Timeouts(),
    )
    assert g.finish_reason == "length"
    assert g.truncated
    assert g.metrics.output_tokens == 8


def test_missing_server_exit_shows_log_tail(llama_server_bin: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    options = ServerOptions(
        llama_server_bin=str(llama_server_bin), health_timeout_s=60, log_dir=str(tmp_path)
    )
    backend = LlamaServerBackend(parse_spec(f"llama-server:{bad}"), options)
    with pytest.raises(ServerError, match="exited with code") as info:
        backend.prepare(Settings(ctx=512), lambda _m: None)
    assert "Last lines of" in str(info.value)
    assert backend.lease is None
    assert backend._servers is None  # its own run folder is gone


def test_port_taken_between_probe_and_bind_is_retried(
    llama_server_bin: Path, gemma_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from pytest_llmbench.serve.backends import llama_cpp as module
    from pytest_llmbench.serve.processes import free_port

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        monkeypatch.setattr(module, "free_port", lambda: next(ports, None) or free_port())
        options = ServerOptions(
            llama_server_bin=str(llama_server_bin), health_timeout_s=60, log_dir=str(tmp_path)
        )
        backend = LlamaServerBackend(parse_spec("llama-server:gemma3-270m"), options)
        try:
            assert backend.prepare(Settings(ctx=512), lambda _m: None) is not None
            assert backend.base_url != f"http://127.0.0.1:{taken}"
            logs = sorted(p.name for p in tmp_path.glob("*.log"))
            assert any(str(taken) in name for name in logs) and len(logs) == 2
        finally:
            backend.release()
