"""The README's commands are the ones CI runs, and every option is documented."""

from pathlib import Path

from pytest_llmbench.config.options import OPTIONS, flag

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    pytest_line = next(line for line in ci_lines if line.startswith("python -m pytest "))
    assert f"&& {pytest_line}\n" in readme


def test_every_option_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    for name, *_ in OPTIONS:
        assert f"| `{flag(name)}` |" in readme, name
