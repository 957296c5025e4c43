"""VRAM of a spawned server from nvidia-smi's CSV (no GPU here: a stand-in nvidia-smi)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_llmbench.serve.vram import process_vram_mb


def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str) -> Path:
    script = tmp_path / "nvidia-smi"
    args = tmp_path / "args"
    script.write_text(f'#!/bin/sh\necho "$@" > {args}\ncat <<"EOF"\n{output}EOF\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    return args


def test_sums_the_processes_rows_and_asks_for_plain_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --format=csv,noheader,nounits: "pid, used_memory [MiB]" per compute process and GPU.
    args = fake_smi(tmp_path, monkeypatch, "4242, 1536\n999, 80\n4242, 512\n")
    assert process_vram_mb(4242) == 2048.0  # the model split over two GPUs
    assert "--query-compute-apps=pid,used_memory" in args.read_text()
    assert "nounits" in args.read_text()


@pytest.mark.parametrize("output", ["", "999, 80\n", "4242, [N/A]\n", "No devices were found\n"])
def test_absent_or_unreadable_is_none_never_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    fake_smi(tmp_path, monkeypatch, output)
    assert process_vram_mb(4242) is None


def test_no_nvidia_smi_is_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert process_vram_mb(1) is None
