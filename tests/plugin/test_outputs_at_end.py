"""The session's end writes each output on its own, names what failed and exits non-zero; text
from the server reaches the terminal and the Markdown escaped."""

from __future__ import annotations

import errno
import json
import os

import pytest

from fakes import ModelScript
from fakes.llama_server import MIDSTREAM_ERROR
from pytest_llmbench import controller, output_files
from tests.fixtures.fakes import StartLlamaServer

BLOCKS_MARKDOWN = """
import os

def test_answer(llm):
    assert llm.generate("Say hi").answer
    os.mkdir("lb.md")  # the Markdown path becomes a directory while the run goes on
"""


def test_one_output_failing_never_stops_the_others(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_f=BLOCKS_MARKDOWN)
    srv = fake_llama_server(ModelScript(["Hi"]))
    result = pytester.runpytest(
        f"--llm-models=llama-server@{srv.url}", "--llm-json=r.json", "--llm-markdown=lb.md",
        "--llm-html=r.html", "--llm-save=base",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # outcome.exit_status: an output not written
    result.stdout.fnmatch_lines(
        ["*ERROR: Markdown leaderboard lb.md not written: lb.md is not a regular file*"]
    )
    assert "Traceback" not in result.stdout.str()
    assert json.loads((pytester.path / "r.json").read_text())["items"]
    assert "<svg" in (pytester.path / "r.html").read_text()
    assert (pytester.path / ".llmbench" / "base.json").is_file()


def test_results_that_cannot_be_assembled_still_leave_the_other_reports(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_llama_server: StartLlamaServer
) -> None:
    def broken(*args: object) -> None:
        raise ValueError("could not convert string to float: 'fast'")

    monkeypatch.setattr(controller, "results_document", broken)
    pytester.makepyfile(test_f="def test_answer(llm):\n    assert llm.generate('Say hi').answer\n")
    srv = fake_llama_server(ModelScript(["Hi"]))
    result = pytester.runpytest(
        f"--llm-models=llama-server@{srv.url}", "--llm-json=r.json", "--llm-markdown=lb.md",
        "--llm-html=r.html", "--llm-save=base",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([
        "*llmbench leaderboard*",
        "*ERROR: results not assembled (ValueError: could not convert string to float: 'fast'): "
        "no JSON, baseline or comparison this run*",
        "*Markdown leaderboard: lb.md*",
        "*HTML report: r.html*",
    ])  # fmt: skip
    assert (pytester.path / "lb.md").is_file() and (pytester.path / "r.html").is_file()
    assert not (pytester.path / "r.json").exists()


def test_a_full_disk_at_the_end_leaves_no_empty_files(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_f="def test_answer(llm):\n    assert llm.generate('Say hi').answer\n")

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output_files.os, "fsync", disk_full)
    srv = fake_llama_server(ModelScript(["Hi"]))
    result = pytester.runpytest(
        f"--llm-models=llama-server@{srv.url}", "--llm-json=r.json", "--llm-save=base"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([
        "*ERROR: results JSON r.json not written: cannot write r.json: No space left on device*",
        "*ERROR: --llm-save base: run not saved: cannot write */history/0001_base.json: No space left*",
    ])  # fmt: skip
    assert not (pytester.path / "r.json").exists()
    storage = pytester.path / ".llmbench"
    assert [p.name for p in storage.rglob("*") if p.is_file()] == []


HOSTILE = "evil\x1b]0;pwned\x07 \x1b[2J \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ a|b <b>bold</b>"

PIPED = """
import pytest

@pytest.mark.parametrize("case", ["a|b<i>"])
def test_answer(llm, case):
    assert llm.generate("Say hi").answer
"""


def test_server_text_is_shown_escaped_in_the_terminal_and_markdown(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_llama_server: StartLlamaServer
) -> None:
    monkeypatch.setitem(MIDSTREAM_ERROR, "message", HOSTILE)
    pytester.makepyfile(test_f=PIPED)
    srv = fake_llama_server(ModelScript(["Hel", "lo"], fault="error_midstream", fault_after=1))
    result = pytester.runpytest(
        f"--llm-models=llama-server@{srv.url}", "--llm-markdown=lb.md", "--llm-leaderboard=both"
    )
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "\x1b" not in out and "\x07" not in out
    result.stdout.fnmatch_lines([
        "StreamError: *error mid-stream: evil\\x1b]0;pwned\\x07 \\x1b[[]2J \\x1b]8;;http://x*",
    ])  # fmt: skip
    result.stdout.fnmatch_lines(["llmbench FAILED: no gates set", "  1 item errored (server *"])
    assert "test failed" not in out  # an error is not the model's failure, in the verdict too
    md = (pytester.path / "lb.md").read_text()
    assert "\x1b" not in md and "<i>" not in md
    (row,) = [line for line in md.splitlines() if "test_answer[" in line]
    assert "test_answer[a\\|b&lt;i&gt;]" in row
    assert row.count("|") - row.count("\\|") == 11  # 10 columns: no cell split by a pipe
