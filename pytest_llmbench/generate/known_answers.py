"""Known answers: the model spec ``answers:DIR`` serves a fixed answer per test, no server.

A check is proven the way a model is benchmarked: ``--llm-models=answers:tests/known/good,
answers:tests/known/bad`` runs every test on the answers kept in each folder, through the
test's own scoring, and puts each folder on the leaderboard as a model.

Layout: ``DIR/<test file stem>/<test name>.md``, the test name as in its id without the model
(``test_todo_app[v1]``; a method: ``TestX.test_y[p]``), made safe for any file system by
:func:`file_name`; a test's second generation reads ``<test name>.2.md``, and so on. A file may
start with front matter::

    ---
    expect: fail                 # this answer must fail the test (default: pass)
    note: complete does nothing  # shown with the verdict
    finish_reason: length        # served as cut at the output cap (default: stop)
    ---

An answer that gets the verdict it expects is fine (an expected failure is reported as
pytest's ``xfailed``, and as a failure on the leaderboard); a good answer that fails, or a bad
answer that passes, fails the run naming the file. A test with no known answer in DIR at all is
skipped; one whose neighbours have answers but it has none is an error naming the file.
Metrics are absent (no timing: nothing was generated), never 0.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from pytest_llmbench.answer_text import split_thinking
from pytest_llmbench.errors import LLMBenchError
from pytest_llmbench.front_matter import FrontMatterError, split
from pytest_llmbench.generate.records import AnswerFile
from pytest_llmbench.serve.backends.base import Asked
from pytest_llmbench.serve.generation import Generation, Metrics
from pytest_llmbench.serve.server_info import ServerInfo
from pytest_llmbench.serve.specs import ModelSpec

SUFFIX = ".md"
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,=+[]()")
_MAX_NAME_BYTES = 180
Expect = Literal["pass", "fail"]
_CHOICES: dict[str, tuple[str, ...]] = {
    "expect": ("pass", "fail"),
    "finish_reason": ("stop", "length"),
}
_KEYS = ("expect", "finish_reason", "note")


class KnownAnswerError(LLMBenchError):
    """A known answer that is missing or cannot be read; the message names the file."""


@dataclass(frozen=True)
class KnownAnswer:
    """One answer file: its text and what it declares in its front matter."""

    path: Path
    text: str
    expect: Expect = "pass"
    finish_reason: str = "stop"
    note: str | None = None

    def reference(self) -> AnswerFile:
        """What the item's record keeps (the leaderboard reads ``expect``)."""
        return AnswerFile(str(self.path), self.expect, self.note)


def file_name(test: str, generation: int = 1) -> str:
    """The file of ``test``'s ``generation``-th answer: characters outside letters, digits
    and ``_-.,=+[]()`` written as ``%XX`` (UTF-8), a trailing dot kept off (Windows), a long
    name shortened with a hash of the whole."""
    name = "".join(
        c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
        for c in test
    )
    if name.endswith("."):
        name = name[:-1] + "%2E"
    if len(name) > _MAX_NAME_BYTES:
        digest = hashlib.sha256(test.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        name = f"{name[: _MAX_NAME_BYTES - 17]}~{digest}"
    return name + ("" if generation == 1 else f".{generation}") + SUFFIX


def read_answer(path: Path) -> KnownAnswer:
    """Read an answer file (UTF-8) and its front matter; :class:`KnownAnswerError` naming the
    file and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnownAnswerError(f"known answer {path} cannot be read: {exc}") from None
    try:
        fields, body = split(text)
    except FrontMatterError as exc:
        raise KnownAnswerError(f"known answer {path}: {exc}") from None
    found: dict[str, str] = {}
    for field in fields:
        key, value = field.key, field.value
        if key not in _KEYS:
            raise KnownAnswerError(
                f"known answer {path}, line {field.line}: {f'{key}: {value}'[:60]!r} is not one of "
                f"{', '.join(f'{k}: ...' for k in _KEYS)}"
            )
        choices = _CHOICES.get(key)
        if choices is not None and value not in choices:
            raise KnownAnswerError(
                f"known answer {path}, line {field.line}: {key}: {value!r}; use one of "
                f"{', '.join(choices)}"
            )
        found[key] = value
    return KnownAnswer(
        path,
        body,
        expect="fail" if found.get("expect") == "fail" else "pass",
        finish_reason=found.get("finish_reason", "stop"),
        note=found.get("note") or None,
    )


def item_name(node: pytest.Item, test: str) -> str:
    """``test`` (the item's name without the model) with its class: ``TestX.test_y[p]``."""
    parents = node.nodeid.split("::")[1:-1]
    return ".".join([*parents, test])


class ItemAnswers:
    """The known answers of one item: the n-th generation is served the n-th file."""

    def __init__(self, spec: ModelSpec, folder: Path, test: str) -> None:
        self.spec = spec
        self.folder = folder
        self.test = test
        self.served = 0
        self.first = self._read(1)
        self.server_info = ServerInfo(backend="answers", model_id=str(Path(spec.model)))

    @classmethod
    def of(cls, spec: ModelSpec, node: pytest.Item, test: str) -> ItemAnswers:
        """The answers of ``node`` in ``answers:DIR``; skips the item when its test function
        has no answer there at all."""
        folder = Path(spec.model) / node.path.stem
        name = item_name(node, test)
        function = item_name(node, getattr(node, "originalname", node.name))
        stem = file_name(function)[: -len(SUFFIX)]
        files = folder.iterdir() if folder.is_dir() else iter(())
        if not any(p.name == f"{stem}{SUFFIX}" or p.name.startswith(f"{stem}[") for p in files):
            pytest.skip(
                f"{spec.id}: no known answers for {function} (looked for "
                f"{folder / file_name(name)})"
            )
        return cls(spec, folder, name)

    def _read(self, generation: int) -> KnownAnswer:
        path = self.folder / file_name(self.test, generation)
        if not path.is_file():
            which = "" if generation == 1 else f" (its generation {generation})"
            raise KnownAnswerError(
                f"{self.spec.id}: no known answer for {self.test}{which}: {path} does not "
                f"exist, though the test has other known answers in {self.folder}; write it "
                f"(front matter `expect: fail` for a bad answer)"
            )
        answer = read_answer(path)
        if generation > 1 and answer.expect != "pass":
            raise KnownAnswerError(
                f"known answer {path}: `expect` belongs in the item's first answer "
                f"({file_name(self.test)}), which decides the item's verdict"
            )
        return answer

    def generate_in_flight(self, asked: Asked) -> Generation:
        """The next answer as a generation: no timing, nothing measured (metrics absent);
        no server, no load (what ``asked`` says of them has nothing to act on)."""
        self.served += 1
        answer = self.first if self.served == 1 else self._read(self.served)
        thinking, text = split_thinking(answer.text)
        return Generation(
            model=self.spec.id,
            text=answer.text,
            answer=text,
            thinking=thinking,
            finish_reason=answer.finish_reason,
            metrics=Metrics(),
            settings=asked.settings,
            server=self.server_info,
            request={"messages": asked.messages, "answer_file": str(answer.path)},
        )


def hold_to_expectation(
    report: pytest.TestReport,
    answer: KnownAnswer,
    excinfo: pytest.ExceptionInfo[BaseException] | None,
    *,
    gated: bool = False,
) -> None:
    """Hold the call's report to the verdict ``answer`` expects.

    A failure is a verdict on the answer when it is an assertion (or ``pytest.fail``) or a
    threshold the answer's scores missed (``gated``); anything else (an exception, the
    ``--llm-strict`` audit of a test that never scores) is a broken test or check, never an
    expected failure.
    """
    note = f" ({answer.note})" if answer.note else ""
    if report.outcome == "passed" and answer.expect == "fail":
        report.outcome = "failed"
        report.longrepr = (
            f"known answer {answer.path} is marked `expect: fail`{note} but the test passed: "
            f"the check does not catch it"
        )
        return
    if report.outcome != "failed":
        return
    if excinfo is None:
        verdict, how = gated, "a gate that says nothing about the answer"
    else:
        verdict = excinfo.errisinstance((AssertionError, pytest.fail.Exception))
        how = f"raising {excinfo.typename}"
    if answer.expect == "fail" and verdict:
        report.outcome = "skipped"
        report.wasxfail = f"known bad answer {answer.path}{note}"
    elif answer.expect == "fail":
        report.longrepr = (
            f"known answer {answer.path} is marked `expect: fail`, but the test failed by {how}, "
            f"not by an assertion: a bug in the test or its check, not a verdict\n\n"
            f"{report.longreprtext}"
        )
    else:
        report.longrepr = (
            f"known answer {answer.path} should pass (it is not marked `expect: fail`) but "
            f"the test failed:\n\n{report.longreprtext}"
        )
