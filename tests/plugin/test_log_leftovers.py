"""Spawned servers' logs: a run leaves no /tmp/llmbench-logs-* behind unless a server failed
(its error names a log there) or --llm-log-dir asks for them."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.plugin.test_judge_costs import fake_binary

TEST = "def test_hi(llm):\n    assert llm.generate('Hi', max_tokens=2).text\n"


@pytest.fixture
def tmp_root(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = pytester.path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    pytester.makepyfile(test_hi=TEST)
    (pytester.path / "m.gguf").write_bytes(b"GGUF" + bytes(60))
    return root


def test_no_log_folder_is_left_after_a_clean_run(pytester: pytest.Pytester, tmp_root: Path) -> None:
    binary = fake_binary(pytester.path)
    result = pytester.runpytest(
        "--llm-models=llama-server:m.gguf", f"--llm-llama-server-bin={binary}"
    )
    result.assert_outcomes(passed=1)
    assert list(tmp_root.glob("llmbench-logs-*")) == []
    kept = pytester.runpytest(
        "--llm-models=llama-server:m.gguf", f"--llm-llama-server-bin={binary}", "--llm-log-dir=logs"
    )
    kept.assert_outcomes(passed=1)
    assert [p.suffix for p in (pytester.path / "logs").iterdir()] == [".log"]


def test_the_logs_of_a_server_that_failed_are_kept_and_named(
    pytester: pytest.Pytester, tmp_root: Path
) -> None:
    broken = pytester.path / "llama-server"
    broken.write_text("#!/bin/sh\necho 'error: cannot load model' >&2\nexit 1\n")
    broken.chmod(0o755)
    result = pytester.runpytest(
        "--llm-models=llama-server:m.gguf", f"--llm-llama-server-bin={broken}"
    )
    result.assert_outcomes(errors=1)
    (folder,) = tmp_root.glob("llmbench-logs-*")
    result.stdout.fnmatch_lines([f"*server logs kept in {folder} (a server failed)*"])
    assert "cannot load model" in next(folder.iterdir()).read_text()
