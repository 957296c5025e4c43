"""Text from outside (model answers, program output, server error bodies, judge reasons) made
safe to show.

Such text can hold escape sequences that act on the terminal that prints it: ``\\x1b]0;…``
retitles the window, ``\\x1b[2J`` clears the screen, OSC 8 hides a link behind harmless text,
a carriage return overwrites what was printed, bidirectional overrides reorder what is read.
Each function here shows those characters escaped (``\\x1b``, ``\\u202e``), so they are seen,
not obeyed. The JSON results keep the raw text (JSON escapes control characters itself).

- :func:`for_terminal`: multi-line text for the terminal (newline and tab kept).
- :func:`for_cell`: one table cell or one line: newlines and tabs shown escaped too.
- :func:`for_markdown`: one Markdown table cell: also ``|`` escaped and no raw HTML.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI), and the Unicode bidirectional
# embedding/override/isolate controls and marks.
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_TERMINAL = re.compile(f"[{_UNSAFE}]")
_LINE = re.compile(f"[{_UNSAFE}\n\t]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_MARKDOWN = {"|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;"}
_MARKDOWN_RE = re.compile("[|<>&]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: str) -> str:
    """``text`` with every control character but newline and tab shown escaped."""
    return _TERMINAL.sub(_escape, text)


def for_cell(text: str) -> str:
    """``text`` as one line: every control character, newline and tab shown escaped."""
    return _LINE.sub(_escape, text)


def for_markdown(text: str) -> str:
    """``text`` as one Markdown table cell: one line, ``|`` escaped, HTML shown as text."""
    return _MARKDOWN_RE.sub(lambda m: _MARKDOWN[m.group()], for_cell(text))


__all__ = ["for_cell", "for_markdown", "for_terminal"]


def fold(line: str, width: int, indent: str = "    ") -> str:
    """``line`` folded at spaces to ``width`` columns, continuation lines indented (a long
    word such as a path is never split, so it stays copyable)."""
    import textwrap

    if width < 40 or len(line) <= width:
        return line
    return "\n".join(
        textwrap.wrap(
            line,
            width,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
    )
