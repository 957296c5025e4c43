"""Front matter: ``key: value`` lines between two ``---`` lines at the top of a text file.

Read by prompt files (metadata such as an expected answer) and known answers (``expect: fail``)
alike. Values are text, a trailing `` # comment`` dropped and one pair of surrounding quotes
removed; blank lines and ``#`` lines are skipped. A first line ``---`` never closed by another
is an error, so a typo never sends the metadata to the model as part of the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass


class FrontMatterError(ValueError):
    """Front matter that cannot be read; the message says where and how to fix it."""


@dataclass(frozen=True)
class Field:
    line: int
    """1-based line number in the file."""
    key: str
    value: str


def split(text: str) -> tuple[tuple[Field, ...], str]:
    """The front matter's fields and the text after it (``text`` whole when it has none)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n") != "---":
        return (), text
    end = next((i for i, line in enumerate(lines[1:], 1) if line.rstrip("\r\n") == "---"), 0)
    if not end:
        raise FrontMatterError(
            "its front matter (from the first line, ---) is never closed by a line ---; close "
            "it, or start a text that begins with --- with an empty front matter (two lines ---)"
        )
    fields = []
    for number, line in enumerate(lines[1:end], 2):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, colon, value = stripped.partition(":")
        key, value = key.strip(), value.split(" #", 1)[0].strip()
        if not colon or not key:
            raise FrontMatterError(f"line {number}: {stripped[:60]!r} is not `key: value`")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields.append(Field(number, key, value))
    return tuple(fields), "".join(lines[end + 1 :])
