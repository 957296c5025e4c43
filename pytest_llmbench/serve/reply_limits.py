"""The bounds on everything a server sends, defined once: time, bytes, encoding, JSON depth.

Requests read the limits as ``reply_limits.NAME`` when they are made (never imported by
name), so that they are defined here alone (and a test may shorten them).

Every request the plugin makes goes through :mod:`pytest_llmbench.serve.bounded`, which
applies them; a server that breaks one is an item error (:class:`ReplyLimitError`, a
``ServerError``) naming the server's URL and the limit, never the model's failure.

- **Time**: each request has a total limit, kept by a :class:`Watchdog` thread that shuts the
  socket down when it passes: a read timeout alone never ends a reply dripping one byte every
  few seconds (or one that drips its headers).
- **Bytes**: the plugin asks for ``Accept-Encoding: identity`` and refuses a reply with any
  other ``Content-Encoding`` before reading its body, so the bytes counted against a cap are
  the bytes held (a 10 MB gzip reply inflates toward 10 GB; a compressed stream's cap would
  count compressed bytes).
- **JSON depth**: a value nesting deeper than :data:`JSON_DEPTH` is refused before it is parsed
  (``json.loads`` recurses: a 100,000-deep line raises ``RecursionError``, and a parsed
  1,000-deep value breaks ``repr`` and ``json.dumps`` later).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, TypeVar

from pytest_llmbench.errors import ReplyLimitError

IDENTITY = {"Accept-Encoding": "identity"}
"""Sent with every request: replies come uncompressed, or are refused."""
JSON_DEPTH = 64
"""The deepest nesting of arrays and objects accepted in any JSON from a server (the replies
the plugin reads nest 4 levels at most)."""
MiB = 2**20
_W = TypeVar("_W", bound="Watchdog")


@dataclass(frozen=True)
class ReplyLimits:
    """How long one request may take in all (headers and body), how many bytes its body may
    hold, and one line of it when it is read by lines; ``what`` names the request in the
    error."""

    what: str
    total_s: float
    max_bytes: int
    max_line: int = 1 * MiB

    def time_error(self) -> ReplyLimitError:
        return ReplyLimitError(
            f"no complete answer within {self.total_s:g} s, the time limit for {self.what}; "
            f"the server is too slow or is sending its reply a byte at a time. Check the server"
        )

    def bytes_error(self, seen: int) -> ReplyLimitError:
        return ReplyLimitError(
            f"the reply to {self.what} passed {self.max_bytes:,} bytes ({seen:,} read), the "
            f"size limit for it; the plugin stopped reading. Check the server"
        )

    def line_error(self) -> ReplyLimitError:
        return ReplyLimitError(
            f"a line of the reply to {self.what} passed {self.max_line:,} bytes without "
            f"ending, the size limit for one line; the plugin stopped reading. Check the server"
        )


INFO = ReplyLimits("a server information request", 30.0, 16 * MiB)
"""Discovery and status: /v1/models, /props, /health, Ollama's version, tags, show, ps."""
PROBE = ReplyLimits("a quick status request", 5.0, 1 * MiB)
"""Whether Ollama answers at all (/api/version before starting one) and its memory figures
(/api/ps after each generation)."""
HEALTH = ReplyLimits("a health check", 5.0, 1 * MiB)
"""One poll of a health URL while a server starts or loads (polled until
``--llm-health-timeout``)."""
PULL = ReplyLimits("a model pull (`ollama pull`)", 6 * 3600.0, 1024 * MiB)
"""Ollama's pull progress stream: hours for a big model on a slow link, many progress lines
(read one at a time: what is held is one line)."""


def preload_limits(health_timeout_s: float) -> ReplyLimits:
    """Loading a model (Ollama's preload): as long as ``--llm-health-timeout`` allows."""
    return ReplyLimits("loading the model (preload)", health_timeout_s, 16 * MiB)


def unload_limits(wait_s: float) -> ReplyLimits:
    """Unloading a model and waiting until it is gone."""
    return ReplyLimits("unloading the model", wait_s, 16 * MiB)


def check_encoding(headers: Any) -> None:
    """Refuse a compressed reply (any ``Content-Encoding`` but identity), before its body."""
    encoding = str(headers.get("content-encoding", "")).strip().lower()
    if encoding not in ("", "identity"):
        raise ReplyLimitError(
            f"the reply is compressed (Content-Encoding: {encoding}) although the plugin asked "
            f"for none (Accept-Encoding: identity); compressed replies are refused, as a small "
            f"one can inflate without bound. Turn compression off on the server or its proxy"
        )


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def check_depth(text: str) -> None:
    """Refuse JSON nesting deeper than :data:`JSON_DEPTH`, before it is parsed.

    Cheap where it matters: text with no more opening brackets than the limit cannot be
    deeper (two C-level counts, the path of every streamed event); otherwise strings are
    cut out and the brackets left are summed in C (``accumulate``)."""
    if text.count("[") + text.count("{") <= JSON_DEPTH:
        return
    steps = map(_STEP.__getitem__, _BRACKET.findall(_STRING.sub("", text)))
    depth = max(accumulate(steps), default=0)
    if depth > JSON_DEPTH:
        raise ReplyLimitError(
            f"a JSON value from the server nests deeper than {JSON_DEPTH} levels, the JSON "
            f"depth limit; it was not parsed. Check that the URL points at the right server"
        )


class Watchdog:
    """Shuts a request's socket down when :meth:`due` passes, from a daemon thread.

    A blocked read then fails and the request ends with its limit's error. The socket is got
    through httpcore's documented ``trace`` extension as soon as it is connected, headers or
    not: pass :meth:`trace` as the request's ``trace`` extension, and use the watchdog as a
    context manager around the request.
    """

    def __init__(self) -> None:
        self.fired: str | None = None
        """Which limit fired (see :meth:`due`), once one did."""
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="llmbench-limits", daemon=True)

    def due(self) -> tuple[float, str]:
        """The next moment (``time.perf_counter``) a limit fires, and which."""
        raise NotImplementedError

    def __enter__(self: _W) -> _W:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done.set()
        self._thread.join()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore trace hook: remember the socket as soon as it is connected."""
        if not event.endswith((".connect_tcp.complete", ".connect_unix_socket.complete")):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sock = sock
                if self.fired is not None:
                    _shut(sock)

    def _watch(self) -> None:
        while True:
            deadline, which = self.due()
            left = deadline - time.perf_counter()
            if left <= 0:
                with self._lock:
                    if self._done.is_set():
                        return
                    self.fired = which
                    if self._sock is not None:
                        _shut(self._sock)
                return
            if self._done.wait(left):
                return


class Deadline(Watchdog):
    """A total time limit, counted from the moment the deadline is made."""

    def __init__(self, total_s: float) -> None:
        super().__init__()
        self.total_s = total_s
        self.start = time.perf_counter()

    def due(self) -> tuple[float, str]:
        return self.start + self.total_s, "total"


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
