"""Decoding streamed replies (SSE and NDJSON) and timing them on the client's clock.

Backends turn wire events into :class:`Delta` records; :class:`Accumulator` stamps them as
they arrive on the client's clock and splits inline thinking from the answer.

Speed: a stream is read in the pieces the socket delivers. Each piece is cut into complete
units (SSE events, NDJSON lines) by :class:`Regions`; a run of one-token events in the
server's exact usual shape is then decoded in bulk (:class:`SSETokenRuns`,
:class:`NDJSONTokenRuns`: a few C-level string operations per piece, not per token, with an
exact check that the text is what ``json.loads`` would read the same way) and handed over as
one :class:`Delta` with a ``batch``. Anything else takes the per-event path (``json.loads``).
A server streaming in real time delivers one event per read, so both paths stamp each token
when it arrives.
"""

from __future__ import annotations

import json
import re
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate, repeat
from json import decoder as _json_decoder
from typing import Any

from pytest_llmbench.errors import StreamError

#: ``_scanstring(s, i, strict)``: the JSON string literal whose body starts at ``s[i]``, and the
#: index after its closing quote; what ``json.loads`` uses (the C version where there is one).
_scanstring: Callable[[str, int, bool], tuple[str, int]] = _json_decoder.scanstring  # type: ignore[attr-defined]

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
            # One data line per event is the common case: yield it at once rather than
            # waiting for the blank line, so the token is timestamped on arrival.
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


def parse_json_line(payload: str, model: str, wire: str) -> dict[str, Any]:
    """``json.loads`` with a :class:`StreamError` that names the model and quotes the line."""
    try:
        value = json.loads(payload)
    except ValueError:
        raise StreamError(
            f"{model}: malformed {wire} line from the server: {payload[:200]!r}. "
            f"Check that the URL points at the right kind of server."
        ) from None
    if not isinstance(value, dict):
        raise StreamError(f"{model}: unexpected {wire} value (not an object): {payload[:200]!r}")
    return value


class Regions:
    """Cuts streamed text into regions of complete units: SSE events (``end="\\n\\n"``, a
    blank line ends an event) or NDJSON lines (``end="\\n"``).

    Line ends are normalised to ``\\n`` (``\\r\\n`` and a lone ``\\r`` end a line too, as SSE
    says). Unlike httpx's ``iter_lines`` (``str.splitlines``), U+2028, U+2029, U+0085,
    ``\\x1c``-``\\x1e``, ``\\v`` and ``\\f`` do not end a line: servers send them raw inside
    JSON strings (llama-server does), and splitting there broke the JSON.
    """

    def __init__(self, end: str) -> None:
        self.end = end
        self._carry = ""
        self._cr = False

    def feed(self, text: str) -> str:
        """The complete units that ``text`` finishes ("" when none); the rest waits."""
        if self._cr:  # the previous piece ended with "\r": a "\n" here is part of "\r\n"
            self._cr = False
            if text.startswith("\n"):
                text = text[1:]
        if "\r" in text:
            self._cr = text.endswith("\r")
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        buf = self._carry + text if self._carry else text
        cut = buf.rfind(self.end)
        if cut < 0:
            self._carry = buf
            return ""
        cut += len(self.end)
        self._carry = buf[cut:]
        return buf[:cut]

    def flush(self) -> str:
        """What is left at the end of the stream (an unterminated unit), or ""."""
        rest, self._carry = self._carry, ""
        return rest


_JSON_SPECIAL = re.compile(r'["\\\x00-\x1f]')
"""What a JSON string body cannot hold as itself: quote, backslash, control characters."""


def _plain(text: str) -> bool:
    """No character of :data:`_JSON_SPECIAL` in ``text`` (a quicker test than the regex; it
    also says no for some harmless characters, such as U+00A0, which only costs speed)."""
    return '"' not in text and "\\" not in text and text.isprintable()


_DECODED: dict[str, str] = {}
"""Bodies with escapes already decoded (``\\n`` and the like recur all the time)."""


def decode_json_strings(bodies: list[str], joined: str | None = None) -> list[str] | None:
    """Decode the bodies of JSON string literals (the text between the quotes) exactly as
    ``json.loads`` would, or ``None`` when one is not a valid body. ``joined``: the bodies
    joined, when the caller has it already.

    Bodies without a quote, backslash or control character are their own value (nearly all
    tokens), so only the others are decoded one by one.
    """
    if joined is None:
        joined = "".join(bodies)
    if _plain(joined):
        return bodies
    out = list(bodies)
    ends = list(accumulate(map(len, bodies)))
    done = -1
    for match in _JSON_SPECIAL.finditer(joined):
        i = bisect_right(ends, match.start())
        if i == done:
            continue
        done = i
        body = bodies[i]
        value = _DECODED.get(body)
        if value is None:
            literal = f'"{body}"'
            try:
                value, end = _scanstring(literal, 1, True)
            except ValueError:
                return None
            if end != len(literal):  # an unescaped quote inside
                return None
            if len(_DECODED) < 4096:
                _DECODED[body] = value
        out[i] = value
    return out


#: llama-server's event for one answer token, up to the token's text.
SSE_TOKEN_PREFIX = 'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"'
_SSE_CONTENT = '"content":"'
_SSE_TOKEN_OPEN = SSE_TOKEN_PREFIX[: -len(_SSE_CONTENT)]
_SSE_TOKEN_CLOSE = '"}}],'


class SSETokenRuns:
    r"""Bulk decoding of runs of llama-server's one-token SSE events.

    Such an event is ``SSE_TOKEN_PREFIX + <JSON string body> + suffix + "\n\n"``, where the
    suffix (``"}}],"created":...,"object":"chat.completion.chunk"}``) is the same for every
    token of a stream. Once the per-event path has handled one token event and
    :meth:`accept` was given its suffix, a region of complete events is split at
    ``"content":"`` (a short needle: ``str.split`` pays per occurrence for a long one); every
    piece between two token events must then end with the same text (the suffix, the blank
    line and the next event's opening), which is cut off in C (``str.removesuffix``), and
    the rest is the token's JSON string body, decoded exactly (:func:`decode_json_strings`).
    """

    def __init__(self) -> None:
        self.suffix: str | None = None
        self._end = ""
        self._between = ""

    def learn(self, payload: str) -> tuple[str, dict[str, Any]] | None:
        """For a data payload that starts like a token event: its suffix and the rest of the
        object (everything but ``choices``), or ``None`` when it does not have that shape."""
        start = len(SSE_TOKEN_PREFIX) - len("data: ")
        try:
            _text, end = _scanstring(payload, start, True)
        except ValueError:
            return None
        suffix = payload[end - 1 :]
        if not suffix.startswith(_SSE_TOKEN_CLOSE) or "\n" in suffix:
            return None
        try:
            rest = json.loads("{" + suffix[len(_SSE_TOKEN_CLOSE) :])
        except ValueError:
            return None
        if not isinstance(rest, dict) or "choices" in rest:
            return None
        return suffix, rest

    def accept(self, suffix: str) -> None:
        """Decode events with this suffix in bulk from now on (see :meth:`learn`)."""
        self.suffix = suffix
        self._end = suffix + "\n\n"
        self._between = self._end + _SSE_TOKEN_OPEN

    def split(self, region: str) -> tuple[str, list[str], str] | None:
        """``(events before, token texts, events after)`` for a region of complete events
        holding a run of at least two token events, else ``None`` (use the per-event path)."""
        if self.suffix is None:
            return None
        pieces = region.split(_SSE_CONTENT)
        if len(pieces) < 3:
            return None
        first, last, middle = pieces[0], pieces[-1], pieces[1:-1]
        start = len(first) - len(_SSE_TOKEN_OPEN)
        if not first.endswith(_SSE_TOKEN_OPEN) or (start and not first.endswith("\n\n", 0, start)):
            return None
        stop = last.find(self._end)
        if stop < 0:
            return None
        bodies = list(map(str.removesuffix, middle, repeat(self._between)))
        bodies.append(last[:stop])
        joined = "".join(bodies)
        # Each piece in the middle must have lost exactly its ending (the suffix, the blank
        # line and the next event's opening): check the total length (the pieces' lengths
        # follow from the region's, split having removed len(pieces) - 1 needles).
        middle_len = len(region) - len(first) - len(last) - len(_SSE_CONTENT) * (len(pieces) - 1)
        if len(joined) != middle_len - len(self._between) * len(middle) + stop:
            return None
        texts = decode_json_strings(bodies, joined)
        if texts is None:
            return None
        return first[:start], texts, last[stop + len(self._end) :]


_ND_MODEL = '{"model":"'
_ND_STAMP = '","created_at":"'
_ND_KEY_END = 't":"'
"""Ends both ``"created_at":"`` and ``"content":"``: a short needle for ``str.split``."""
_ND_AFTER_STAMP = '","message":{"role":"assistant","conten'
_ND_END = '"},"done":false}\n'


class NDJSONTokenRuns:
    r"""Bulk decoding of runs of Ollama's one-token NDJSON lines,
    ``{"model":M,"created_at":T,"message":{"role":"assistant","content":C},"done":false}``.

    Once :meth:`learn` has seen the model name, a region of complete lines is split at
    ``t":"`` (the end of both ``"created_at":"`` and ``"content":"``), so the pieces
    alternate ``T + ","message":...,"conten`` and ``C + "},"done":false}\n{"model":M,
    "created_a``; each must end with exactly that text (cut off in C with
    ``str.removesuffix``, checked by total length), T must be a plain string and C is a JSON
    string body, decoded exactly (:func:`decode_json_strings`). Together that proves every
    line has exactly that shape.
    """

    def __init__(self) -> None:
        self._head: str | None = None
        self._between = ""

    def learn(self, line: str) -> None:
        """Remember the model name of a line in the usual shape (a plain string)."""
        if self._head is not None or not line.startswith(_ND_MODEL):
            return
        stop = line.find(_ND_STAMP)
        if stop < 0 or _JSON_SPECIAL.search(line, len(_ND_MODEL), stop) is not None:
            return
        self._head = line[: stop + len(_ND_STAMP) - len(_ND_KEY_END)]
        self._between = _ND_END + self._head

    def split(self, region: str) -> list[str] | None:
        """The token texts when every line of ``region`` is a token line, else ``None``."""
        pieces = region.split(_ND_KEY_END)
        if len(pieces) < 5 or len(pieces) % 2 == 0 or pieces[0] != self._head:
            return None
        raw_stamps, raw_bodies = pieces[1::2], pieces[2::2]
        last = raw_bodies.pop()
        if not last.endswith(_ND_END):
            return None
        stamps = "".join(map(str.removesuffix, raw_stamps, repeat(_ND_AFTER_STAMP)))
        bodies = list(map(str.removesuffix, raw_bodies, repeat(self._between)))
        bodies.append(last[: -len(_ND_END)])
        joined = "".join(bodies)
        # Every piece must have lost exactly its ending: check the total length (the pieces'
        # lengths follow from the region's, split having removed len(pieces) - 1 needles).
        inner = len(region) - len(pieces[0]) - len(_ND_KEY_END) * (len(pieces) - 1)
        expected = (
            inner
            - len(_ND_AFTER_STAMP) * len(raw_stamps)
            - len(self._between) * len(raw_bodies)
            - len(_ND_END)
        )
        if len(stamps) + len(joined) != expected or not _plain(stamps):
            return None
        return decode_json_strings(bodies, joined)


@dataclass(slots=True)
class Delta:
    """A piece of a reply: answer text, thinking text, and/or final facts."""

    content: str = ""
    thinking: str = ""
    finish_reason: str | None = None
    final: dict[str, Any] | None = None
    """Server figures carried by this event (usage, timings, Ollama durations)."""
    batch: list[str] | None = None
    """Answer text of several one-token events that arrived in the same read, one non-empty
    string per event; the same as one ``Delta(content=part)`` per part, stamped together."""


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


class Accumulator:
    """Collects deltas of one stream, with their arrival times.

    ``<think>`` tags inside the content are split into thinking as the text streams, so that
    the first *answer* token is timed correctly for models that think inline.
    """

    def __init__(self, record_events: bool = False) -> None:
        self.clock = StreamClock()
        self.events: list[tuple[float, str, str]] | None = [] if record_events else None
        """(seconds since sent, content, thinking) per delta, when recording."""
        self.answer_parts: list[str] = []
        self.thinking_parts: list[str] = []
        self.raw_parts: list[str] = []
        self.finish_reason: str | None = None
        self.final: dict[str, Any] = {}
        self._in_think = False
        self._pending = ""

    def add(self, delta: Delta, now: float) -> None:
        if delta.batch is not None:
            self._add_batch(delta.batch, now)
            return
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
        if delta.final:
            self.final.update(delta.final)

    def _add_batch(self, parts: list[str], now: float) -> None:
        """``add(Delta(content=part), now)`` for each part, in one go when no tag can be in
        the way (the usual case)."""
        text = "".join(parts)
        if not text:
            return
        if self._in_think or self._pending or "<" in text:
            for part in parts:
                self.add(Delta(content=part), now)
            return
        clock = self.clock
        if self.events is not None:
            since = now - clock.sent
            self.events.extend([(since, part, "") for part in parts])
        self.raw_parts.append(text)
        self.answer_parts.append(text)
        if clock.first_token is None:
            clock.first_token = now
        clock.last_token = now
        clock.token_events += len(parts)
        if clock.first_answer is None and not text.isspace():
            clock.first_answer = now

    def _stamp(self, now: float) -> None:
        clock = self.clock
        if clock.first_token is None:
            clock.first_token = now
        clock.last_token = now
        clock.token_events += 1

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
