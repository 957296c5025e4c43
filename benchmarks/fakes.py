"""Scripted stand-ins for llama-server and Ollama, for the benchmarks in ``run.py``.

Nothing here is part of the plugin. Three uses:

* :class:`FakeServer` (stdlib ``http.server`` in a thread): answers the endpoints the plugin
  calls when it attaches (``/health``, ``/props``, ``/v1/models``, ``/api/tags``...), streams
  scripted replies at a fixed rate (``time.sleep`` between tokens, so it costs no CPU) or
  instantly, and counts what it was asked (preloads, generations).
* ``python fakes.py blast --tokens N``: a server that answers every streamed request with one
  pre-built body of N tokens, as fast as the socket allows (llama-server SSE on
  ``/v1/chat/completions``, Ollama NDJSON on ``/api/chat``). It prints ``PORT <n>`` and runs
  until killed; run it in its own process so that it does not share the client's GIL.
* ``python fakes.py llama-bin -m GGUF --port P ...``: a fake ``llama-server`` *binary* for
  the spawn path; each start appends a line to ``$LLMBENCH_FAKE_SPAWN_LOG``.

The wire format is llama-server's (llama.cpp 0c1e570) and Ollama's, byte for byte in shape:
see /work/shared/PROTOCOLS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CREATED = 1767225600
FINGERPRINT = "b1-abc"
WORDS = (
    " the",
    " quick",
    " brown",
    " fox",
    " jumps",
    " over",
    " lazy",
    " dog",
    "Hello",
    ",",
    " world",
    ".",
    " def",
    " return",
    " value",
    "(",
    ")",
    ":",
    " 42",
    " is",
)


def dumps(obj: Any) -> str:
    """llama-server (nlohmann::json) and Ollama (Go) both write compact JSON, raw UTF-8."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def script_tokens(n: int) -> list[str]:
    """``n`` deterministic tokens; every 25th is a newline (escaped on the wire) and every
    100th a quote, as in real text and code."""
    tokens = []
    for i in range(n):
        if i % 25 == 24:
            tokens.append("\n")
        elif i % 100 == 49:
            tokens.append(' "')
        else:
            tokens.append(WORDS[(i * 7) % len(WORDS)])
    return tokens


def _chunk(choices: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> bytes:
    event: dict[str, Any] = {
        "choices": choices,
        "created": CREATED,
        "id": "chatcmpl-x",
        "model": "m",
        "system_fingerprint": FINGERPRINT,
        "object": "chat.completion.chunk",
    }
    if extra:
        event.update(extra)
    return f"data: {dumps(event)}\n\n".encode()


def llama_events(tokens: list[str], *, decode_ms: float = 1000.0) -> list[bytes]:
    """One SSE event per token, exactly as llama-server streams ``/v1/chat/completions``
    with ``stream_options.include_usage``: role, tokens, finish, usage + timings, [DONE]."""
    n = len(tokens)
    role = {"role": "assistant", "content": None}
    out = [_chunk([{"finish_reason": None, "index": 0, "delta": role}])]
    out += [
        _chunk([{"finish_reason": None, "index": 0, "delta": {"content": tok}}]) for tok in tokens
    ]
    out.append(_chunk([{"finish_reason": "stop", "index": 0, "delta": {}}]))
    timings = {
        "cache_n": 0,
        "prompt_n": 12,
        "prompt_ms": 4.0,
        "prompt_per_token_ms": 0.33,
        "prompt_per_second": 3000.0,
        "predicted_n": n,
        "predicted_ms": decode_ms,
        "predicted_per_token_ms": decode_ms / max(n, 1),
        "predicted_per_second": (n - 1) / (decode_ms / 1000) if n > 1 else 0.0,
    }
    usage = {"completion_tokens": n, "prompt_tokens": 12, "total_tokens": 12 + n}
    out.append(_chunk([], {"usage": usage, "timings": timings}))
    out.append(b"data: [DONE]\n\n")
    return out


def _stamp(i: int) -> str:
    return f"2026-01-01T00:00:{i // 1000 % 60:02d}.{i % 1000:03d}456789Z"


def ollama_lines(tokens: list[str], model: str = "m", *, decode_ms: float = 1000.0) -> list[bytes]:
    """One NDJSON object per token, then the final ``done: true`` chunk with durations."""
    out = [
        (
            dumps(
                {
                    "model": model,
                    "created_at": _stamp(i),
                    "message": {"role": "assistant", "content": tok},
                    "done": False,
                }
            )
            + "\n"
        ).encode()
        for i, tok in enumerate(tokens)
    ]
    final = {
        "model": model,
        "created_at": _stamp(len(tokens)),
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "total_duration": int((decode_ms + 10) * 1e6),
        "load_duration": 1_000_000,
        "prompt_eval_count": 12,
        "prompt_eval_duration": 4_000_000,
        "eval_count": len(tokens),
        "eval_duration": int(decode_ms * 1e6),
    }
    out.append((dumps(final) + "\n").encode())
    return out


def chunked(pieces: list[bytes], block: int = 65536) -> bytes:
    """HTTP/1.1 chunked framing of ``pieces`` regrouped into ``block``-byte chunks."""
    data = b"".join(pieces)
    framed = [
        b"%x\r\n%s\r\n" % (len(data[i : i + block]), data[i : i + block])
        for i in range(0, len(data), block)
    ]
    return b"".join(framed) + b"0\r\n\r\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and
    # the client's delayed ACK add ~40 ms to every answer on loopback.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _json(self, obj: Any, status: int = 200) -> None:
        body = dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        value = json.loads(raw or b"{}")
        return value if isinstance(value, dict) else {}

    def _start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def do_GET(self) -> None:
        fake = self.server.fake
        fake.count(f"GET {self.path}")
        if self.path in ("/health", "/v1/health"):
            self._json({"status": "ok"})
        elif self.path == "/props":
            self._json(
                {
                    "default_generation_settings": {"n_ctx": 4096},
                    "total_slots": 1,
                    "model_path": "/fake/m.gguf",
                    "chat_template": "{{ messages }}",
                    "build_info": FINGERPRINT,
                }
            )
        elif self.path == "/v1/models":
            self._json({"object": "list", "data": [{"id": m} for m in fake.models]})
        elif self.path == "/api/version":
            self._json({"version": "0.0.0-fake"})
        elif self.path == "/api/tags":
            self._json(
                {
                    "models": [
                        {"name": m, "digest": "0" * 12, "details": {"quantization_level": "Q4"}}
                        for m in fake.models
                    ]
                }
            )
        elif self.path == "/api/ps":
            self._json({"models": [{"name": m, "size_vram": 0} for m in fake.loaded]})
        else:
            self._json({"error": "not found"}, 404)

    def do_POST(self) -> None:
        fake = self.server.fake
        body = self._body()
        fake.count(f"POST {self.path}")
        if self.path == "/v1/chat/completions":
            fake.generated(str(body.get("model") or ""))
            self._start_stream("text/event-stream")
            if fake.blast_llama is not None:
                self.wfile.write(fake.blast_llama)
                return
            self._stream_pieces(llama_events(script_tokens(fake.tokens)))
        elif self.path == "/api/chat":
            model = str(body.get("model") or "")
            if not body.get("messages"):  # preload / unload
                if body.get("keep_alive") == 0:
                    fake.loaded.discard(model)
                    fake.count(f"unload {model}")
                    reason = "unload"
                else:
                    fake.loaded.add(model)
                    fake.count(f"load {model}")
                    reason = "load"
                self._json(
                    {
                        "model": model,
                        "message": {"role": "assistant", "content": ""},
                        "done": True,
                        "done_reason": reason,
                    }
                )
                return
            fake.generated(model)
            self._start_stream("application/x-ndjson")
            if fake.blast_ollama is not None:
                self.wfile.write(fake.blast_ollama)
                return
            self._stream_pieces(ollama_lines(script_tokens(fake.tokens), model))
        else:
            self._json({"error": "not found"}, 404)

    def _stream_pieces(self, pieces: list[bytes]) -> None:
        """Each event in its own HTTP chunk, ``1/rate`` seconds apart (0: back to back)."""
        fake = self.server.fake
        interval = 1.0 / fake.rate if fake.rate else 0.0
        start = time.perf_counter()
        for i, piece in enumerate(pieces):
            if interval and 0 < i < len(pieces) - 2:
                # Sleep until this token's slot: the rate holds even if a write was late.
                delay = start + i * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    fake: FakeServer


class FakeServer:
    """A scripted llama-server / Ollama on 127.0.0.1 in a background thread.

    ``tokens`` per reply, streamed at ``rate`` tokens/s (0: as fast as possible). ``counts``
    tallies requests (``"POST /api/chat"``), preloads (``"load m"``) and generations
    (``"generate m"``).
    """

    def __init__(
        self,
        *,
        models: tuple[str, ...] = ("m",),
        tokens: int = 8,
        rate: float = 0.0,
        blast_tokens: int = 0,
    ) -> None:
        self.models = models
        self.tokens = tokens
        self.rate = rate
        self.loaded: set[str] = set()
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.blast_llama: bytes | None = None
        self.blast_ollama: bytes | None = None
        if blast_tokens:
            script = script_tokens(blast_tokens)
            self.blast_llama = chunked(llama_events(script))
            self.blast_ollama = chunked(ollama_lines(script))
        self.httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.fake = self
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def generated(self, model: str) -> None:
        self.count(f"generate {model}")

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _blast(tokens: int) -> None:
    with FakeServer(blast_tokens=tokens) as fake:
        print(f"PORT {fake.port}", flush=True)
        threading.Event().wait()


def _llama_bin(argv: list[str]) -> None:
    """Behave enough like ``llama-server -m GGUF --port P`` for the plugin's spawn path."""
    parser = argparse.ArgumentParser()
    parser.add_argument("-m", dest="model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("-a", dest="alias", default="m")
    args, _unknown = parser.parse_known_args(argv)
    log = os.environ.get("LLMBENCH_FAKE_SPAWN_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{args.alias} {args.model} {args.port}\n")
    fake = FakeServer(models=(args.alias,), tokens=8)
    fake.httpd.server_close()
    fake.httpd = _HTTPServer((args.host, args.port), _Handler)
    fake.httpd.fake = fake
    print(f"fake llama-server {args.alias} on {args.port}", flush=True)
    fake.httpd.serve_forever()


def main(argv: list[str]) -> None:
    if argv and argv[0] == "llama-bin":
        _llama_bin(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["blast"])
    parser.add_argument("--tokens", type=int, default=200_000)
    args = parser.parse_args(argv)
    _blast(args.tokens)


if __name__ == "__main__":
    main(sys.argv[1:])
