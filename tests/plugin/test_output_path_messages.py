"""An output path that cannot be written is one usage error with one fix, never two."""

from __future__ import annotations

import pytest

MODEL = "--llm-models=llama-server@http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("make", "option", "line"),  # fnmatch patterns of whole lines
    [
        (
            "dir",
            "--llm-json=out",
            "ERROR: --llm-json='out': is a directory; give a file name inside it",
        ),
        (
            "file",
            "--llm-markdown=out/lb.md",
            "ERROR: --llm-markdown='out/lb.md': '*/out' is a file, not a directory; "
            "give a path that can be written",
        ),
    ],
)
def test_one_fix_per_unwritable_output(
    pytester: pytest.Pytester, make: str, option: str, line: str
) -> None:
    if make == "dir":
        (pytester.path / "out").mkdir()
    else:
        (pytester.path / "out").write_text("")
    pytester.makepyfile("def test_x(llm):\n    llm.generate('hi')\n")
    result = pytester.runpytest(MODEL, option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([line])  # the whole line: nothing after the one fix
