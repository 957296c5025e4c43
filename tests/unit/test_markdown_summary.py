"""The Markdown leaderboard (a GitHub step summary): short labels with their full specs, a
column per benchmark, and what went wrong per model."""

from __future__ import annotations

from pytest_llmbench.report.formats import markdown
from pytest_llmbench.report.summary import summarize
from tests.unit._examples import example_results


def test_markdown_names_models_benchmarks_and_trouble() -> None:
    text = markdown(summarize(example_results()))
    assert "openai:devstral@:18301 = openai:devstral@http://127.0.0.1:18301/v1" in text
    header = next(line for line in text.splitlines() if line.startswith("| model"))
    for column in ("humaneval", "saas_spec", "speed", "todo_app", "quality", "TTFT s", "tok/s"):
        assert f" {column} " in header, column
    assert "**What went wrong**" in text
    assert "- openai:qwen3-coder-30b@:18301: waited for interactive input ×2 (todo_app)" in text
