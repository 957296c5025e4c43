"""The real-Ollama fixture's own logic: where the build is looked for, what a missing one is
called, the CPU check, and an extraction that racing workers share."""

from __future__ import annotations

import io
import tarfile
import threading
from pathlib import Path

import pytest

from tests.fixtures import real_ollama

CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma f16c bmi2 avx512f avx512cd\n"


def test_missing_cpu_flags_are_named() -> None:
    lacking = real_ollama.missing_cpu_flags(CPUINFO)
    assert "avx512bw" in lacking and "avx512_bf16" in lacking
    assert "avx2" not in lacking and "avx512f" not in lacking
    assert real_ollama.missing_cpu_flags("no flags line") == list(real_ollama.CPU_FLAGS)
    everything = "flags : " + " ".join(real_ollama.CPU_FLAGS)
    assert real_ollama.missing_cpu_flags(everything) == []


def test_a_missing_tarball_names_where_it_was_looked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(real_ollama.DIR_ENV, str(tmp_path))
    reason = real_ollama.missing()
    assert reason is not None
    assert str(tmp_path / real_ollama.TARBALL) in reason and real_ollama.DIR_ENV in reason
    monkeypatch.delenv(real_ollama.DIR_ENV)
    candidates = real_ollama.tarball_candidates()
    assert candidates[0] == real_ollama.REPO.parent / "shared" / "ollama" / real_ollama.TARBALL


def test_ci_or_the_env_var_requires_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(real_ollama.REQUIRE_ENV, raising=False)
    assert not real_ollama.required()
    monkeypatch.setenv(real_ollama.REQUIRE_ENV, "1")
    assert real_ollama.required()
    monkeypatch.delenv(real_ollama.REQUIRE_ENV)
    monkeypatch.setenv("CI", "true")
    assert real_ollama.required()


def _tarball(folder: Path) -> None:
    with tarfile.open(folder / real_ollama.TARBALL, "w:xz") as tar:
        for name, data in (
            (f"{real_ollama.TOP}/bin/ollama", b"#!/bin/sh\n"),
            (f"{real_ollama.TOP}/lib/x", b"x" * 4096),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))


def test_extraction_is_atomic_and_shared_by_racing_workers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _tarball(tmp_path)
    cache = tmp_path / "cache"
    monkeypatch.setenv(real_ollama.DIR_ENV, str(tmp_path))
    monkeypatch.setenv("PYTEST_LLMBENCH_CACHE", str(cache))
    found: list[Path] = []
    errors: list[BaseException] = []

    def extract() -> None:
        try:
            found.append(real_ollama.extracted())
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    workers = [threading.Thread(target=extract) for _ in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert errors == []
    assert set(found) == {cache / f"ollama-{real_ollama.VERSION}" / real_ollama.TOP}
    assert (found[0] / "bin" / "ollama").read_bytes() == b"#!/bin/sh\n"
    assert sorted(p.name for p in cache.iterdir()) == [
        f"ollama-{real_ollama.VERSION}"
    ]  # no scratch left
    assert real_ollama.extracted() == found[0]  # a second session reuses it
