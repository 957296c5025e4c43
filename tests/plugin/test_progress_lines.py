"""Lines of ours (a server starting, becoming healthy) do not break pytest's progress line
in a CI log: every result character still follows its file's name, every percentage is there."""

from __future__ import annotations

import re

import pytest

from tests.plugin.test_judge_costs import fake_binary

TESTS = "def test_a(llm):\n    assert llm.generate('Hi', max_tokens=2).text\n\ndef test_b(llm):\n    assert llm.generate('Yo', max_tokens=2).text\n"


def test_server_lines_leave_every_progress_line_whole(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one=TESTS, test_two=TESTS)
    for name in ("m", "n"):
        (pytester.path / f"{name}.gguf").write_bytes(b"GGUF" + bytes(60))
    result = pytester.runpytest(
        "--llm-models=llama-server:m.gguf,llama-server:n.gguf",
        f"--llm-llama-server-bin={fake_binary(pytester.path)}",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=8)
    lines = result.outlines[
        : result.outlines.index(next(x for x in result.outlines if "llmbench leaderboard" in x))
    ]
    assert sum("healthy after" in x for x in lines) == 2
    progress = [x for x in lines if re.match(r"test_(one|two)\.py \S", x)]
    assert not any(re.fullmatch(r"[.EF]+ *(\[ *\d+%\])?", x.strip()) for x in lines), lines
    assert progress and all(
        re.fullmatch(r"test_(one|two)\.py \.+ +\[ *\d+%\]", x) for x in progress
    ), progress
    assert [re.search(r"\d+%", x)[0] for x in progress] == ["25%", "50%", "75%", "100%"]
