"""Lines under the leaderboard fold to the terminal's width (issue 15: nothing wraps)."""

from __future__ import annotations

from pytest_llmbench.text_safety import fold

WARNING = (
    "[llmbench] WARNING: llama-server:gemma3-270m: the GGUF has no chat template, so "
    "llama-server formats prompts with its ChatML fallback, which may not be this model's "
    "format; pass --llm-server-args='--no-jinja --chat-template NAME' or use a GGUF that has one "
    "/root/.cache/pytest-llmbench/models/gemma-3-270m-q4_k_m.gguf"
)


def test_a_long_line_folds_within_the_width_and_keeps_every_word() -> None:
    for width in (80, 100, 200):
        lines = fold(WARNING, width).splitlines()
        assert all(len(line) <= width for line in lines), width
        assert lines[0].startswith("[llmbench] WARNING: llama-server:gemma3-270m:")
        assert all(line.startswith("    ") for line in lines[1:])
        assert " ".join(line.strip() for line in lines).split() == WARNING.split()


def test_paths_are_never_split_and_short_or_unfolded_lines_stay_as_they_are() -> None:
    path = "/root/.cache/pytest-llmbench/models/gemma-3-270m-q4_k_m.gguf"
    assert any(
        line.strip() == path or line.endswith(path) for line in fold(WARNING, 80).splitlines()
    )
    assert fold("short", 80) == "short"
    assert fold(WARNING, 0) == WARNING  # not a terminal: one line, for grep
