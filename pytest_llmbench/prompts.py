"""Prompts kept in files: read them strictly, and parametrize a test over a folder of them.

::

    @pytest.mark.parametrize("prompt", prompt_params("prompts"))   # prompts/*.md, ids = stems
    def test_prompt(llm, prompt):
        answer = llm.generate(prompt)
        assert prompt.meta["expected"] in answer.answer      # from the file's front matter

Each parameter is a :class:`PromptFile`: the prompt's text (a ``str``, so it goes wherever a
prompt does) with the file's ``name``, ``path`` and front matter ``meta`` (``key: value`` lines
between two ``---`` lines at the top: never sent to the model). ``llm.generate(Path(
"prompts/todo.md"))`` reads the file the same way.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pytest_llmbench.errors import LLMBenchError
from pytest_llmbench.front_matter import FrontMatterError, split


class PromptFileError(LLMBenchError, ValueError):
    """A prompt file is missing, unreadable, empty or not UTF-8 text."""


class PromptFile(str):
    """A prompt read from a file: its text, still a ``str``, with where it came from and what
    its front matter says (``prompt.meta["expected"]``)."""

    path: Path
    meta: Mapping[str, str]

    def __new__(cls, text: str, path: Path, meta: Mapping[str, str] | None = None) -> PromptFile:
        prompt = super().__new__(cls, text)
        prompt.path = path
        prompt.meta = MappingProxyType(dict(meta or {}))
        return prompt

    def __reduce__(self) -> tuple[type[PromptFile], tuple[str, Path, dict[str, str]]]:
        return PromptFile, (str(self), self.path, dict(self.meta))

    @property
    def name(self) -> str:
        """The file name without its suffix (the test id ``prompt_params`` gives it)."""
        return self.path.stem


def load_prompt(path: str | os.PathLike[str]) -> PromptFile:
    """The text of a UTF-8 prompt file (a byte-order mark is dropped), without its front
    matter, which becomes the prompt's ``meta``.

    Never guesses another encoding: a prompt silently decoded wrong would be benchmarked as
    something else than the author wrote.
    """
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise PromptFileError(f"prompt file {str(file)!r} not found; check the path") from None
    except OSError as exc:
        raise PromptFileError(
            f"prompt file {str(file)!r} cannot be read ({exc.strerror or exc}); check its "
            f"permissions"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PromptFileError(
            f"prompt file {str(file)!r} is not UTF-8 text: byte 0x{data[exc.start]:02x} at "
            f"offset {exc.start} (line {line}); re-save it as UTF-8 (e.g. `iconv -f latin1 "
            f"-t utf-8`)"
        ) from None
    try:
        fields, text = split(text)
    except FrontMatterError as exc:
        raise PromptFileError(f"prompt file {str(file)!r}: {exc}") from None
    if not text.strip():
        raise PromptFileError(f"prompt file {str(file)!r} is empty; write the prompt in it")
    return PromptFile(text, file, {f.key: f.value for f in fields})


def prompt_params(directory: str | os.PathLike[str], pattern: str = "*.md") -> list[Any]:
    """One ``pytest.param(PromptFile, id=stem)`` per file matching ``pattern`` (a glob, default
    ``*.md``; ``"*"`` takes every file) directly in ``directory``, sorted by name. A relative
    ``directory`` is taken from the calling test file's folder.

    Every file is read when the test module is collected, so a bad one is a collection error
    naming the file, before any model is started. A file the pattern leaves out (a ``.txt``
    prompt beside ``.md`` ones) is refused the same way rather than silently skipped; hidden
    files (``.gitkeep``) and sub-folders are ignored.
    """
    import pytest

    folder = Path(directory)
    if not folder.is_absolute():
        caller = sys._getframe(1).f_code.co_filename  # cheap, unlike inspect.stack()
        folder = Path(caller).resolve().parent / folder
    if not folder.is_dir():
        raise PromptFileError(f"prompt folder {str(folder)!r} not found; check the path")
    files = sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("."))
    if not files:
        raise PromptFileError(f"no prompt files match {pattern!r} in {str(folder)!r}")
    skipped = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p not in files
    )
    if skipped:
        raise PromptFileError(
            f"prompt folder {str(folder)!r} has files that pattern {pattern!r} leaves out: "
            f"{', '.join(skipped)}; pass pattern='*' to take them too, or move them out"
        )
    return [pytest.param(load_prompt(p), id=p.stem) for p in files]
