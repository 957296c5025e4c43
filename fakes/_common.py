"""Shared pieces of the loopback fakes: the script dataclass, the HTTP plumbing, and the
timing/format helpers both fakes use.

Framing: HTTP/1.1. Plain answers carry ``Content-Length``; streams use chunked transfer
encoding, one chunk per event written straight to the socket (``wfile`` is unbuffered),
which is how both real servers frame them (Go ``net/http`` with ``Flush``; cpp-httplib's
chunked content provider). A "cut" therefore ends the socket without the terminating
``0`` chunk, which httpx reports as an incomplete body rather than a clean end.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import select
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

_S = TypeVar("_S", bound="FakeHTTPServer")

FAULTS = frozenset(
    {
        "cut",
        "stall",
        "error_midstream",
        "garbage",
        "zero_tokens",
        "context_overflow",
        "html_404",
    }
)


ATTACKS = frozenset({"drip", "drip_head", "gzip_bomb", "huge_body", "deep_json"})


@dataclass(frozen=True)
class Attack:
    """A hostile reply in place of the fake's own, on ``paths`` (every path when empty); no
    real server does it on purpose. Set it as a fake's :attr:`FakeHTTPServer.attack`.

    ``drip``: a 200 and its headers, then a body of ``size`` bytes, one byte every
    ``drip_s``; ``drip_head``: the status line and headers themselves one byte every
    ``drip_s`` (their end never comes); ``gzip_bomb``: ``Content-Encoding: gzip`` and
    ``size`` compressed bytes that inflate about 1000 times (to NUL bytes: no line ever
    ends); ``huge_body``: ``size`` bytes of JSON whitespace; ``deep_json``: one JSON array
    nested ``depth`` deep. A route that streams (the chat, a pull) gets its own framing:
    chunks, and the deep value as one SSE event or NDJSON line.
    """

    kind: str
    paths: frozenset[str] = frozenset()
    drip_s: float = 5.0
    size: int = 2**31
    depth: int = 100_000

    def __post_init__(self) -> None:
        if self.kind not in ATTACKS:
            raise ValueError(f"unknown attack {self.kind!r}; choose from {sorted(ATTACKS)}")

    def hits(self, path: str) -> bool:
        return not self.paths or path in self.paths

    def reply(
        self, resp: Responder, stream_type: str | None, frame: Callable[[bytes], bytes]
    ) -> None:
        """Answer with the attack; ``stream_type``: the route's stream content type (None:
        a plain JSON answer); ``frame``: one value as the route's stream line."""
        ctype = stream_type or "application/json"
        if self.kind == "drip_head":
            resp.started = True
            first = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\n".encode()
            more = itertools.cycle(b"X-Drip: 1\r\n")
            for byte in itertools.islice(itertools.chain(first, more), self.size):
                resp.write_raw(bytes([byte]))
                resp.wait(self.drip_s)
            return
        if self.kind == "deep_json":
            value = b"[" * self.depth + b"]" * self.depth
            if stream_type is None:
                resp.send(200, value, ctype)
            else:
                resp.begin_stream(200, ctype)
                resp.write(frame(value))
                resp.end()
            return
        headers = [("Content-Encoding", "gzip")] if self.kind == "gzip_bomb" else []
        pieces = self._pieces(resp)
        if stream_type is None:
            resp.begin_plain(200, ctype, self.size, headers)
            for piece in pieces:
                resp.write_raw(piece)
        else:
            resp.begin_stream(200, ctype, headers)
            resp.write(b"")
            for piece in pieces:
                resp.write(piece)
            resp.end()

    def _pieces(self, resp: Responder) -> Iterable[bytes]:
        """The body, ``size`` bytes in all, as it is written (waiting between drips)."""
        if self.kind == "drip":
            for _ in range(self.size):
                yield b" "
                resp.wait(self.drip_s)
            return
        unit, head = b" " * 2**20, b""
        if self.kind == "gzip_bomb":
            head, unit = _GZIP_ZEROS
            unit *= 64
        left = self.size
        if head:
            yield head[:left]
            left -= min(left, len(head))
        while left > 0:
            yield unit[:left]
            left -= min(left, len(unit))


def _gzip_zeros() -> tuple[bytes, bytes]:
    """A gzip member's start and a unit that may follow it any number of times, each
    inflating to 1 MiB of NUL bytes (a full flush resets the compressor: every unit is the
    same bytes). No trailer: a client is flooded long before it would check one."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * 2**20
    head = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    unit = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    return head, unit


_GZIP_ZEROS = _gzip_zeros()


@dataclass(frozen=True)
class ModelScript:
    """What one fake model answers, how fast, and how it fails.

    Timing model (both fakes, following the real servers' counters — see each fake):
    ``load_delay_s`` is paid when an Ollama model is (re)loaded; ``prompt_delay_s`` is the
    time to evaluate the uncached prompt; the first token is sampled when the prompt is
    done, every further token after ``token_delay_s``; a natural stop costs one more
    ``token_delay_s`` (the end-of-sequence sample, which both servers count).

    Faults (``fault_after`` = tokens sent before the fault, thinking tokens included):
    ``cut`` closes the socket mid-body, ``stall`` hangs ``stall_s`` then goes on (ends
    early if the client hangs up or the fake closes), ``error_midstream`` sends the
    server's error object in place of the rest, ``garbage`` inserts one malformed line
    and goes on, ``zero_tokens`` finishes at once with a count of 0, ``context_overflow``
    makes the prompt twice the context size, ``html_404`` (llama-server fake only) turns
    the whole port into a 404 HTML site.
    """

    tokens: Sequence[str]
    thinking: Sequence[str] = ()
    token_delay_s: float = 0.0
    load_delay_s: float = 0.0
    prompt_eval_count: int = 10
    fault: str | None = None
    fault_after: int = 0
    stall_s: float = 30.0
    prompt_delay_s: float = 0.0
    # Metadata reported by Ollama's /api/tags, /api/ps, /api/show (and llama-server meta).
    family: str = "llama"
    parameter_size: str = "1.2B"
    quantization_level: str = "Q4_K_M"
    size: int = 800_000_000
    size_vram: int | None = None
    context_length: int = 131072
    num_ctx: int = 4096
    template: str = (
        "{{- range .Messages }}<|{{ .Role }}|>{{ .Content }}<|end|>{{ end }}<|assistant|>"
    )
    """Ollama's /api/show ``template``: a library model's chat template by default;
    ``{{ .Prompt }}`` is what ``ollama create`` writes for a GGUF it knows no template for."""

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; choose from {sorted(FAULTS)}")
        if isinstance(self.tokens, str) or isinstance(self.thinking, str):
            raise TypeError("tokens/thinking are sequences of token strings, not one string")


@dataclass(frozen=True)
class Plan:
    """The tokens one request will produce: ``pieces`` are (kind, text) with kind
    "thinking" or "content"; ``count`` is what the server reports (EOS sample included)."""

    pieces: list[tuple[str, str]]
    finish: str
    count: int


def plan_tokens(
    script: ModelScript,
    *,
    thinking: Iterable[str],
    content: Iterable[str],
    limit: int | None,
    room: int | None,
) -> Plan:
    """Cap the pieces at ``limit`` (the request's token budget, None = unlimited) and at
    ``room`` (context left, None = unbounded); both servers stop with "length" once the
    budget is used up even if EOS would have come next (Ollama runner: ``numPredicted >=
    numPredict`` before the next sample; llama-server ``has_budget`` before the EOS check).
    """
    if script.fault == "zero_tokens":
        return Plan([], "stop", 0)
    pieces = [("thinking", t) for t in thinking] + [("content", t) for t in content]
    caps = [c for c in (limit, room) if c is not None]
    cap = max(0, min(caps)) if caps else None
    if cap is not None and cap <= len(pieces):
        return Plan(pieces[:cap], "length", cap)
    return Plan(pieces, "stop", len(pieces) + 1)


class ClientGone(Exception):
    """The client hung up or the fake is shutting down: stop answering."""


@dataclass
class Request:
    method: str
    path: str
    query: str
    raw: bytes
    body: Any
    json_error: str | None


class Responder:
    """Writes one answer: plain (Content-Length) or a chunked stream whose headers go
    out with its first chunk, so an error raised before any chunk can still be a plain
    HTTP error (both real servers behave like that)."""

    def __init__(self, handler: BaseHTTPRequestHandler, closing: threading.Event) -> None:
        self.h = handler
        self.closing = closing
        self.started = False
        self._pending: tuple[int, str, Sequence[tuple[str, str]]] | None = None
        self.close_after = False
        self.last_write = time.perf_counter()
        self.ping: tuple[bytes, float | None] = (b"", None)
        """Keep-alive bytes to write into a started stream after that many seconds of
        silence, during every :meth:`wait` (llama-server's SSE ping)."""

    # -- plain answers -------------------------------------------------------------
    def send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Sequence[tuple[str, str]] = (),
        *,
        head: bool = False,
    ) -> None:
        self._pending = None  # a stream that never started becomes this plain answer
        self.h.send_response(status)
        self.h.send_header("Content-Type", content_type)
        for k, v in headers:
            self.h.send_header(k, v)
        self.h.send_header("Content-Length", str(len(body)))
        self.h.end_headers()
        if not head:
            self._raw_write(body)
        self.started = True

    def begin_plain(
        self, status: int, content_type: str, length: int, headers: Sequence[tuple[str, str]]
    ) -> None:
        """Headers of a plain answer of ``length`` bytes, written then by :meth:`write_raw`."""
        self._pending = None
        self.h.send_response(status)
        self.h.send_header("Content-Type", content_type)
        for k, v in headers:
            self.h.send_header(k, v)
        self.h.send_header("Content-Length", str(length))
        self.h.end_headers()
        self.started = True

    def write_raw(self, data: bytes) -> None:
        """Body bytes as they are (no chunk framing)."""
        self._raw_write(data)

    # -- streams -------------------------------------------------------------------
    def begin_stream(
        self, status: int, content_type: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        self._pending = (status, content_type, headers)

    def write(self, data: bytes) -> None:
        """Send one chunk now (headers first if this is the first one)."""
        if self._pending is not None:
            status, ctype, headers = self._pending
            self._pending = None
            self.h.send_response(status)
            self.h.send_header("Content-Type", ctype)
            for k, v in headers:
                self.h.send_header(k, v)
            self.h.send_header("Transfer-Encoding", "chunked")
            self.h.end_headers()
            self.started = True
        if data:
            self._raw_write(b"%x\r\n%s\r\n" % (len(data), data))
        self.last_write = time.perf_counter()

    def end(self) -> None:
        """Terminate the chunked body cleanly."""
        if self._pending is not None:
            self.write(b"")
        if self.close_after and hasattr(socket, "TCP_CORK"):
            # Hold the last bytes until the FIN can go with them: a pooling client then
            # never sees the end of the body on a connection not yet known to be closing
            # (it would reuse it and get "Server disconnected without a response").
            with contextlib.suppress(OSError):
                self.h.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        self._raw_write(b"0\r\n\r\n")
        if self.close_after:
            self.h.close_connection = True
            with contextlib.suppress(OSError):
                self.h.connection.shutdown(socket.SHUT_WR)

    def abort(self) -> None:
        """Drop the connection here, mid-body: no terminating chunk."""
        self.h.close_connection = True
        with contextlib.suppress(OSError):
            self.h.connection.shutdown(socket.SHUT_RDWR)

    @property
    def stream_started(self) -> bool:
        return self.started

    # -- time ----------------------------------------------------------------------
    def wait(self, seconds: float) -> None:
        """Sleep, but wake (raising ClientGone) if the client hangs up or the fake closes;
        in a started stream, write the :attr:`ping` whenever it is due."""
        data, interval = self.ping
        if interval is None or not self.started:
            self._sleep(seconds)
            return
        end = time.perf_counter() + seconds
        while (left := end - time.perf_counter()) > 0:
            due = self.last_write + interval - time.perf_counter()
            if due <= 0:
                self.write(data)
            else:
                self._sleep(min(left, due))

    def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            if self.closing.is_set():
                raise ClientGone
            return
        end = time.perf_counter() + seconds
        sock = self.h.connection
        while True:
            left = end - time.perf_counter()
            if left <= 0:
                return
            if self.closing.is_set():
                raise ClientGone
            try:
                readable, _, _ = select.select([sock], [], [], min(left, 0.05))
            except (OSError, ValueError) as exc:
                raise ClientGone from exc
            if readable:
                try:
                    peek = sock.recv(1, socket.MSG_PEEK)
                except OSError as exc:
                    raise ClientGone from exc
                if not peek:
                    raise ClientGone
                # A pipelined request is waiting: keep sleeping without busy-looping.
                if self.closing.wait(min(left, 0.05)):
                    raise ClientGone

    def _raw_write(self, data: bytes) -> None:
        try:
            self.h.wfile.write(data)
            self.h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError) as exc:
            raise ClientGone from exc


class FakeHTTPServer:
    """ThreadingHTTPServer on 127.0.0.1 (``port``, default any free one) in a daemon thread;
    a context manager.

    ``url`` is ``http://127.0.0.1:PORT``; ``requests`` lists (method, path, parsed JSON
    body or None) in arrival order (appended under a lock).
    """

    server_header: ClassVar[str] = "fake"
    stream_type: ClassVar[str] = "application/x-ndjson"
    """The content type of this fake's streamed answers."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.attack: Attack | None = None
        """A hostile reply on its paths instead of the fake's own (see :class:`Attack`)."""
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._conns: set[socket.socket] = set()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = owner.server_header
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and each chunk are separate small writes: without NODELAY,
                # Nagle + the client's delayed ACK hold a chunk back ~40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with owner._lock:
                    owner._conns.add(self.connection)

            def finish(self) -> None:
                with owner._lock:
                    owner._conns.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def _any(self) -> None:
                owner._serve(self)

            do_GET = do_POST = do_HEAD = do_DELETE = do_PUT = do_OPTIONS = _any

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.started_at = time.monotonic()

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        self.started_at = time.monotonic()
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)

    def __enter__(self: _S) -> _S:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers for tests -----------------------------------------------------------
    def calls(self, method: str, path: str) -> list[Any]:
        """Bodies of the requests received for ``method path``."""
        with self._lock:
            return [b for m, p, b in self.requests if m == method and p == path]

    # -- dispatch ------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body: Any = None
        err: str | None = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                err = str(exc)
        req = Request(h.command, parts.path, parts.query, raw, body, err)
        with self._lock:
            self.requests.append((req.method, req.path, body))
        resp = Responder(h, self._closing)
        try:
            attack = self.attack
            if attack is not None and attack.hits(req.path):
                streamed = self.stream_type if self.streams(req) else None
                attack.reply(resp, streamed, self.frame)
                return
            self.handle(req, resp)
        except ClientGone:
            h.close_connection = True

    def handle(self, req: Request, resp: Responder) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def streams(self, req: Request) -> bool:
        """Whether this fake answers ``req`` with a stream."""
        return False

    @staticmethod
    def frame(value: bytes) -> bytes:
        """One JSON value as a line of this fake's streams (NDJSON)."""
        return value + b"\n"


# -- formats -------------------------------------------------------------------------


def rfc3339nano(ns: int | None = None) -> str:
    """Go's ``time.Time`` JSON form (RFC3339Nano, trailing zeros trimmed), in UTC."""
    if ns is None:
        ns = time.time_ns()
    sec, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def go_json(obj: Any) -> bytes:
    """Compact JSON with Go ``encoding/json``'s HTML escaping of <, > and &."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.encode()


_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_NUM = re.compile(r"(\d*)(?:\.(\d*))?")
_UNIT = re.compile(r"[^\d.]*")


def parse_go_duration(text: str) -> float:
    """``time.ParseDuration`` in seconds, with Go's error messages."""
    orig, s, neg = text, text, False
    quoted = json.dumps(orig, ensure_ascii=False)
    if s[:1] in "+-":
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    while s:
        m = _NUM.match(s)
        assert m is not None
        whole, frac = m.group(1), m.group(2)
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {quoted}")
        value = float(f"{whole or 0}.{frac or 0}")
        s = s[m.end() :]
        u = _UNIT.match(s)
        unit = u.group(0) if u else ""
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in _GO_UNITS:
            raise ValueError(f"time: unknown unit {json.dumps(unit)} in duration {quoted}")
        total += value * _GO_UNITS[unit]
        s = s[len(unit) :]
    return -total if neg else total


def ns(seconds: float) -> int:
    return max(0, round(seconds * 1e9))
