"""Decoding streamed replies (SSE and NDJSON) and timing them on the client's clock.

Backends turn wire events into :class:`Delta` records, one per event (``json.loads`` per
event: 0.3-0.4 M tok/s here, see ``benchmarks/``); :class:`Accumulator` stamps each as it
arrives on the client's clock and splits inline thinking from the answer.
:func:`iter_lines` cuts the text read from the socket into lines in linear time.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from pytest_llmbench.errors import StreamError
from pytest_llmbench.serve.reply_limits import check_depth

_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


def iter_sse_data(lines: Iterable[str]) -> Iterator[str]:
    """Yield the ``data`` payload of each Server-Sent Event (multi-line data joined by ``\\n``).

    Comment lines (``:``, llama-server's pings) and other fields are skipped. An old
    llama-server ``error: {...}`` line is turned into a ``{"error": ...}`` payload.
    """
    pending: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            payload = line[6:] if line.startswith("data: ") else line[5:]
            if pending:
                pending.append(payload)
            else:
                pending = [payload]
            continue
        if not line:
            if pending:
                yield "\n".join(pending)
                pending = []
            continue
        if line.startswith(":"):
            continue
        if line.startswith("error:"):
            yield json.dumps({"error": line[6:].strip()})
    if pending:
        yield "\n".join(pending)


_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
"""The C scanner behind ``json.loads`` (one call per event instead of three)."""


def parse_json_line(payload: str, model: str, wire: str) -> dict[str, Any]:
    """``json.loads`` of one object, with a :class:`StreamError` that names the model and
    quotes the line; a line nesting too deep is refused unparsed (``ReplyLimitError``)."""
    check_depth(payload)
    try:
        value, end = _scan_once(payload, 0)
        if end != len(payload):
            raise ValueError(payload)
    except (StopIteration, ValueError):
        try:  # the exact json.loads verdict (surrounding whitespace, errors)
            value = json.loads(payload)
        except ValueError:
            raise StreamError(
                f"{model}: malformed {wire} line from the server: {payload[:200]!r}. "
                f"Check that the URL points at the right kind of server."
            ) from None
    if not isinstance(value, dict):
        raise StreamError(f"{model}: unexpected {wire} value (not an object): {payload[:200]!r}")
    return value


def iter_lines(chunks: Iterable[str]) -> Iterator[str]:
    """The complete lines of streamed text, in time linear in its length.

    ``\\n``, ``\\r\\n`` and a lone ``\\r`` end a line (as SSE says). Unlike httpx's
    ``iter_lines`` (``str.splitlines``), U+2028, U+2029, U+0085, ``\\x1c``-``\\x1e``, ``\\v`` and
    ``\\f`` do not: servers send them raw inside JSON strings (llama-server does), and
    splitting there broke the JSON. A line that spans many reads is kept as a list of pieces
    and joined once. An unterminated last line is yielded at the end.
    """
    carry: list[str] = []
    cr = False  # the previous piece ended with "\r": a "\n" here is part of "\r\n"
    for text in chunks:
        if cr:
            cr = False
            if text.startswith("\n"):
                text = text[1:]
        if "\r" in text:
            cr = text.endswith("\r")
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            if text:
                carry.append(text)
            continue
        lines = text.split("\n")
        if carry:
            carry.append(lines[0])
            lines[0] = "".join(carry)
            carry = []
        last = lines.pop()
        if last:
            carry.append(last)
        yield from lines
    if carry:
        yield "".join(carry)


class FinalFacts:
    """A backend's typed figures from the final event(s) of a stream, as its reader read
    them from the server's JSON (each backend has its own kind)."""

    __slots__ = ()

    def merged(self, later: FinalFacts) -> FinalFacts:
        """These facts with a later event's (``later`` replaces them unless overridden)."""
        return later

    def as_reply(self) -> dict[str, Any]:
        """The facts as the server sent them, for a message."""
        return {}


@dataclass(slots=True)
class Delta:
    """A piece of a reply: answer text, thinking text, and/or final facts."""

    content: str = ""
    thinking: str = ""
    finish_reason: str | None = None
    final: FinalFacts | None = None
    """Server figures carried by this event (usage, timings, Ollama durations), typed."""


@dataclass(slots=True)
class StreamClock:
    """Client-side timestamps of one stream (``time.perf_counter`` seconds)."""

    sent: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    first_answer: float | None = None
    last_token: float | None = None
    done: float | None = None
    token_events: int = 0
    thinking_events: int = 0
    token_times: list[float] = field(default_factory=list)
    """Arrival time of every streamed token (answer or thinking), in order."""


StreamEvent = tuple[float, str, str]
"""One delta as a recording keeps it: (seconds since the request was sent, content, thinking)."""


class Accumulator:
    """Collects deltas of one stream, with their arrival times.

    ``<think>`` tags inside the content are split into thinking as the text streams, so that
    the first *answer* token is timed correctly for models that think inline.
    """

    def __init__(self, events: list[StreamEvent] | None = None) -> None:
        self.clock = StreamClock()
        self.events = events
        """Where each delta's (seconds since sent, content, thinking) goes, when recording."""
        self.answer_parts: list[str] = []
        self.thinking_parts: list[str] = []
        self.raw_parts: list[str] = []
        self.finish_reason: str | None = None
        self.final: FinalFacts | None = None
        """The final event(s)' figures, merged in order (``None`` before any)."""
        self._in_think = False
        self._pending = ""

    def add(self, delta: Delta, now: float) -> None:
        clock = self.clock
        if self.events is not None and (delta.content or delta.thinking):
            self.events.append((now - clock.sent, delta.content, delta.thinking))
        if delta.thinking:
            self.thinking_parts.append(delta.thinking)
            clock.thinking_events += 1
            self._stamp(now)
        if delta.content:
            self.raw_parts.append(delta.content)
            self._stamp(now)
            if self._split_inline_thinking(delta.content) and clock.first_answer is None:
                clock.first_answer = now
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason
        if delta.final is not None:
            self.final = delta.final if self.final is None else self.final.merged(delta.final)

    def _stamp(self, now: float) -> None:
        clock = self.clock
        if clock.first_token is None:
            clock.first_token = now
        clock.last_token = now
        clock.token_events += 1
        clock.token_times.append(now)

    def _split_inline_thinking(self, text: str) -> bool:
        """Route ``text`` to answer or thinking; True when some answer text was added."""
        if not self._in_think and "<" not in text and not self._pending:
            self.answer_parts.append(text)  # fast path: nearly every token
            return not text.isspace()
        buf = self._pending + text
        self._pending = ""
        added = False
        while buf:
            tag = _THINK_CLOSE if self._in_think else _THINK_OPEN
            idx = buf.find(tag)
            if idx < 0:
                keep = _partial_tag_suffix(buf, tag)
                body, self._pending = (buf[: len(buf) - keep], buf[len(buf) - keep :])
                if self._in_think:
                    self.thinking_parts.append(body)
                    if body:
                        self.clock.thinking_events += 1
                elif body:
                    self.answer_parts.append(body)
                    added = added or bool(body.strip())
                break
            body = buf[:idx]
            if self._in_think:
                self.thinking_parts.append(body)
                self.clock.thinking_events += 1
            elif body:
                self.answer_parts.append(body)
                added = added or bool(body.strip())
            self._in_think = not self._in_think
            buf = buf[idx + len(tag) :]
        return added

    def finish(self, now: float) -> None:
        if self._pending:
            (self.thinking_parts if self._in_think else self.answer_parts).append(self._pending)
            self._pending = ""
        self.clock.done = now

    @property
    def text(self) -> str:
        return "".join(self.raw_parts)

    @property
    def answer(self) -> str:
        return "".join(self.answer_parts).strip()

    @property
    def thinking(self) -> str:
        return "".join(self.thinking_parts).strip()


def _partial_tag_suffix(buf: str, tag: str) -> int:
    """Length of the longest suffix of ``buf`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(buf)), 0, -1):
        if buf.endswith(tag[:n]):
            return n
    return 0


def decode_rate(tokens: int | None, first: float | None, last: float | None) -> float | None:
    """(tokens - 1) / (last - first): llama-server's convention, the first token being the
    end of prompt processing."""
    if tokens is None or first is None or last is None or tokens < 2 or last <= first:
        return None
    return (tokens - 1) / (last - first)


@dataclass(frozen=True)
class InterTokenLatency:
    """Gaps between consecutive streamed tokens on the client's clock, in seconds: the
    median, p90, p99 (linear interpolation between the closest ranks, as numpy's default
    and the serving benchmarks) and the longest."""

    p50_s: float
    p90_s: float
    p99_s: float
    max_s: float

    @classmethod
    def of(cls, times: list[float]) -> InterTokenLatency | None:
        """From token arrival times; ``None`` with fewer than two tokens (no gap)."""
        gaps = [b - a for a, b in pairwise(times)]
        if not gaps:
            return None
        if len(gaps) == 1:
            return cls(gaps[0], gaps[0], gaps[0], gaps[0])
        cuts = statistics.quantiles(gaps, n=100, method="inclusive")
        return cls(statistics.median(gaps), cuts[89], cuts[98], max(gaps))
