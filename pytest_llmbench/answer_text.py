"""Pulling what to validate out of an answer: code blocks, thinking, YAML/SQL/JSON in prose."""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*\n", re.MULTILINE)
_ALIASES = {
    "python": {"python", "py", "python3", "py3"},
    "yaml": {"yaml", "yml", "docker-compose", "compose"},
    "sql": {"sql", "postgresql", "postgres", "psql", "sqlite"},
    "json": {"json", "jsonc"},
    "bash": {"bash", "sh", "shell", "console"},
}
_CODE_START = re.compile(
    r"^\s*(#!|import |from \w[\w.]* import |def |class |if __name__|@\w|#)", re.MULTILINE
)


@dataclass(frozen=True)
class Block:
    """A fenced block: its tag (lower case), body, whether it was closed, and where it lies in
    the text (``start``: its opening fence, ``end``: after its closing fence)."""

    tag: str
    body: str
    closed: bool
    start: int
    end: int


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced block of ``text``; a fence left open runs to the end."""
    out: list[Block] = []
    pos = 0
    while True:
        opening = _FENCE.search(text, pos)
        if opening is None:
            return out
        fence, tag = opening.group(1), opening.group(2).lower()
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE)
        end = closing.search(text, opening.end())
        if end is None:
            out.append(Block(tag, text[opening.end() :], False, opening.start(), len(text)))
            return out
        out.append(Block(tag, text[opening.end() : end.start()], True, opening.start(), end.end()))
        pos = end.end()


def _blocks(text: str) -> list[tuple[str, str, bool]]:
    """(tag, body, closed) for every fenced block."""
    return [(b.tag, b.body, b.closed) for b in fenced_blocks(text)]


def _matches(tag: str, language: str | None) -> bool:
    if language is None:
        return True
    return tag in _ALIASES.get(language, {language})


def extract_blocks(text: str | None, language: str | None) -> list[str]:
    """Every fenced block tagged as ``language`` (aliases: py, yml, docker-compose, ...)."""
    if not text:
        return []
    return [body for tag, body, _closed in _blocks(text) if _matches(tag, language)]


def extract_code(text: str | None, language: str | None = "python") -> str | None:
    """The code to validate in an answer, or ``None`` when there is none.

    Rule: the longest fenced block tagged for ``language``; else the longest untagged block;
    else, when the whole answer looks like code (no fences, starts like a program), the
    answer itself. A fence left open by truncation counts, up to the end of the text.
    """
    if not text or not text.strip():
        return None
    blocks = _blocks(text)
    tagged = [body for tag, body, _ in blocks if tag and _matches(tag, language)]
    untagged = [body for tag, body, _ in blocks if not tag]
    for candidates in (tagged, untagged):
        candidates = [c for c in candidates if c.strip()]
        if candidates:
            return max(candidates, key=len)
    if not blocks and language in (None, "python") and _CODE_START.search(text[:500]):
        return text.strip("\n")
    return None


_THINK = re.compile(r"<think>(.*?)(?:</think>|\Z)", re.DOTALL)


def split_thinking(text: str | None) -> tuple[str, str]:
    """(thinking, answer) for inline ``<think>…</think>`` blocks; an unclosed block (cut by
    truncation) is all thinking."""
    if not text:
        return "", ""
    thinking = [m.group(1).strip() for m in _THINK.finditer(text)]
    answer = _THINK.sub("", text)
    return "\n".join(t for t in thinking if t), answer.strip()


def strip_thinking(text: str | None) -> str:
    """The answer without inline thinking."""
    return split_thinking(text)[1]
