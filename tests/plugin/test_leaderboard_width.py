"""The leaderboard through pytest at 80, 100 and 200 columns (COLUMNS, as pytest reads it):
no line wider than the terminal, short labels, a column per benchmark and per named score."""

from __future__ import annotations

import pytest

from fakes import ModelScript
from tests.fixtures.fakes import StartOllama

TESTS = """
import pytest

@pytest.mark.parametrize("prompt", ["a", "b"])
def test_todo_app(llm, prompt):
    answer = llm.generate(prompt)
    llm.record_score("quality", 80 if prompt == "a" else 60)
    assert answer.answer

def test_speed(llm):
    assert llm.generate("go").answer
"""


@pytest.mark.parametrize("width", [80, 100, 200])
def test_leaderboard_fits_the_terminal(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, width: int, fake_ollama: StartOllama
) -> None:
    pytester.makepyfile(test_w=TESTS)
    monkeypatch.setenv("COLUMNS", str(width))
    script = ModelScript(["Hi", " there", "!"])
    fake = fake_ollama({"qwen3-coder:30b": script, "gemma4:e4b": script})
    specs = f"ollama:qwen3-coder:30b@{fake.url}/,g=ollama:gemma4:e4b@{fake.url}"
    result = pytester.runpytest(f"--llm-models={specs}", "--color=no", "-v")
    result.assert_outcomes(passed=6)
    out = result.stdout.str()
    board = out.split("llmbench leaderboard", 1)[1].split("= 6 passed", 1)[0]
    assert max(len(line) for line in board.splitlines()) <= width, board
    port = fake.url.rsplit(":", 1)[1]
    # Full specs in the header, short labels in the tables.
    result.stdout.fnmatch_lines([f"llmbench: models: ollama:qwen3-coder:30b@{fake.url}/, "
                                 f"g = ollama:gemma4:e4b@{fake.url}"])  # fmt: skip
    assert f"| ollama:qwen3-coder:30b@:{port} " in board and "| g " in board
    assert "http://" not in board
    # One column per benchmark and per record_score name, never one average over them.
    if width == 200:
        result.stdout.fnmatch_lines(
            ["| model *| n *| pass *| fail *| err *| speed *| todo_app *| quality *| TTFT s *"]
        )
        assert "| 1/1 " in board and "| 2/2 " in board and "| 70.0 " in board
    else:
        assert "| benchmark " in board and "| quality " in board  # a table of their own
    assert "items" in board  # -v: the per-item table
