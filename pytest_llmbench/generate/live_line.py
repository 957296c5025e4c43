"""A live line while a long generation streams: model, tokens so far, tok/s, seconds.

In a terminal the line is drawn after whatever pytest has written on its current line (a row
of dots, or ``-v``'s test id), at most twice a second, and erased with backspaces before
pytest writes again, so pytest's own output is never overwritten. Without a terminal (CI, a
pipe) it is one ordinary line every 30 s instead. It only appears once a generation has run
for a few seconds, and never with ``-q``.

The streaming loop calls :meth:`LiveLine.tick` for each delta and :meth:`LiveLine.clear`
when the stream ends (``Backend.live``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pytest


class LiveLine:
    """The live line of one run (see the module docstring).

    ``raw`` writes to the terminal without pytest's knowledge of the current line (so its
    column arithmetic stays right once the line is erased); ``None`` means no terminal, and
    ``log`` then writes whole lines. ``room`` is how many columns are free on the current line.
    """

    def __init__(
        self,
        *,
        raw: Callable[[str], None] | None,
        log: Callable[[str], None],
        room: Callable[[], int],
        suspend: Callable[[], AbstractContextManager[Any]] = nullcontext,
        after_s: float = 3.0,
        tty_every_s: float = 0.5,
        log_every_s: float = 30.0,
    ) -> None:
        self.raw = raw
        self.log = log
        self.room = room
        self.suspend = suspend
        self.after_s = after_s
        self.every_s = tty_every_s if raw is not None else log_every_s
        self.shown = 0
        """Characters of the line now on screen (terminal)."""
        self.last: float | None = None
        self.sent: float | None = None

    def tick(self, label: str, tokens: int, sent: float, first: float | None, now: float) -> None:
        if sent != self.sent:  # a new generation
            self.clear()
            self.sent, self.last = sent, None
        elapsed = now - sent
        due = max(sent + self.after_s, sent + self.every_s if self.raw is None else 0.0)
        if self.last is not None:
            due = self.last + self.every_s
        if now < due:
            return
        self.last = now
        rate = (tokens - 1) / (now - first) if first is not None and now > first else None
        text = (
            f"[llmbench] {label}: {tokens} tokens"
            + ("" if rate is None else f", {rate:.1f} tok/s")
            + f", {elapsed:.0f} s"
        )
        with self.suspend():
            if self.raw is None:
                self.log(text)
            else:
                self._draw(f"  {text}", self.raw)

    def _draw(self, text: str, raw: Callable[[str], None]) -> None:
        room = self.room() - 1
        if room < 24:  # no space left on pytest's line: show nothing rather than wrap
            self._erase(raw)
            return
        text = text[:room]
        pad = max(0, self.shown - len(text))
        raw("\b" * self.shown + text + " " * pad + "\b" * pad)
        self.shown = len(text)

    def _erase(self, raw: Callable[[str], None]) -> None:
        if self.shown:
            n, self.shown = self.shown, 0
            raw("\b" * n + " " * n + "\b" * n)

    def clear(self) -> None:
        """Take the line away (the stream ended, or pytest is about to write)."""
        if self.shown and self.raw is not None:
            with self.suspend():
                self._erase(self.raw)
        self.sent = None

    # pytest hooks (registered as a plugin): erase before pytest writes an item's outcome.
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.clear()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logfinish(self) -> None:
        self.clear()


def live_line(config: pytest.Config) -> LiveLine | None:
    """The run's live line, registered with pytest; ``None`` with ``-q``, without a terminal
    reporter (xdist workers) or when output is not captured (``-s``: the test's own prints
    share the line)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.get_verbosity() < 0:
        return None
    capman = config.pluginmanager.get_plugin("capturemanager")
    if capman is None or config.getoption("capture", "fd") == "no":
        return None

    tw = reporter._tw
    stream = tw._file  # pytest's own stream, written past its line bookkeeping

    def raw(text: str) -> None:
        stream.write(text)
        stream.flush()

    line = LiveLine(
        raw=raw if reporter.isatty and not os.environ.get("CI") else None,
        log=progress.write if (progress := progress_lines(config)) else reporter.write_line,
        room=lambda: int(tw.fullwidth - tw.width_of_current_line),
        suspend=capman.global_and_fixture_disabled,
    )
    config.pluginmanager.register(line, "llmbench-live-line")
    return line


class ProgressLines:
    """Lines of our own (a server starting, the live line's log form) written between
    pytest's progress lines without breaking them: a line they cut short is resumed with its
    file name before its next result, so in a CI log, where nothing is redrawn, each result
    character still follows its file. Registered with pytest (its hooks see the results)."""

    def __init__(self, reporter: Any) -> None:
        self.reporter = reporter
        self.cut: Path | None = None
        """The file whose progress line a line of ours cut short."""

    def write(self, line: str) -> None:
        current = self.reporter.currentfspath
        self.reporter.write_line(line)
        if isinstance(current, Path):  # not verbose: results go on one line per file
            self.cut = current

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        if self.cut is not None and self.reporter.config.rootpath / location[0] == self.cut:
            self.reporter.currentfspath = self.cut  # the same file: pytest adds to its line
        else:
            self.cut = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        cut, self.cut = self.cut, None
        if cut is not None and self.reporter._tw.width_of_current_line == 0:
            self.reporter.write(f"{os.path.relpath(cut, self.reporter.startpath)} ")
            self.reporter.currentfspath = cut


def progress_lines(config: pytest.Config) -> ProgressLines | None:
    """The run's writer of lines between progress lines (``None`` without a terminal
    reporter, as on xdist workers)."""
    found = config.pluginmanager.get_plugin("llmbench-progress-lines")
    if isinstance(found, ProgressLines):
        return found
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return None
    lines = ProgressLines(reporter)
    config.pluginmanager.register(lines, "llmbench-progress-lines")
    return lines
