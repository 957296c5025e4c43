"""A tiny scripted HTTP server for plugin tests: each route answers from a Python callable.

Streaming answers are generators of byte chunks, written and flushed one by one (HTTP/1.0
framing: the body ends when the connection closes, as a cut stream does).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, str, bytes | Iterable[bytes]]
Route = Callable[[dict[str, Any] | None], Answer]


class ScriptedServer:
    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null") if length else None
                owner.requests.append((method, self.path, body))
                route = owner.routes.get(f"{method} {self.path}") or owner.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Type", "text/html")
                    self.end_headers()
                    self.wfile.write(b"<html><body>Not Found</body></html>")
                    return
                status, ctype, payload = route(body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.end_headers()
                if isinstance(payload, bytes):
                    self.wfile.write(payload)
                    return
                try:
                    for chunk in payload:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def posts(self, path: str) -> list[dict[str, Any] | None]:
        return [body for method, p, body in self.requests if method == "POST" and p == path]


def jsonr(data: Any, status: int = 200) -> Answer:
    return status, "application/json", json.dumps(data).encode()


def sse_tokens(
    tokens: Iterable[str],
    *,
    finish: str = "stop",
    delay: float = 0.0,
    reasoning: Iterable[str] = (),
    cut_after: int | None = None,
    stall_after: int | None = None,
    stall_s: float = 30.0,
    error_after: int | None = None,
    garbage_after: int | None = None,
) -> Iterator[bytes]:
    """llama-server's chat stream: role, reasoning/content deltas, finish, usage+timings,
    [DONE] — or a fault after N tokens."""

    def event(data: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return event(
            {
                "choices": [{"finish_reason": finish_reason, "index": 0, "delta": delta}],
                "object": "chat.completion.chunk",
                "system_fingerprint": "b1-fake",
            }
        )

    parts = [("reasoning_content", t) for t in reasoning] + [("content", t) for t in tokens]
    started = time.perf_counter()
    first: float | None = None
    for i, (kind, text) in enumerate(parts):
        if i == cut_after:
            return
        if i == stall_after:
            time.sleep(stall_s)
        if i == error_after:
            yield event(
                {"error": {"code": 500, "message": "model crashed", "type": "server_error"}}
            )
            return
        if i == garbage_after:
            yield b"data: {not json\n\n"
        if delay:
            time.sleep(delay)
        first = first or time.perf_counter()
        if i == 0:
            yield chunk({"role": "assistant", "content": None})
        yield chunk({kind: text})
    yield chunk({}, finish)
    n = len(parts)
    decode_ms = 1000 * (time.perf_counter() - (first or started))
    yield event(
        {
            "choices": [],
            "usage": {"completion_tokens": n, "prompt_tokens": 7, "total_tokens": n + 7},
            "timings": {
                "cache_n": 0,
                "prompt_n": 7,
                "prompt_ms": 3.5,
                "prompt_per_second": 2000.0,
                "predicted_n": n,
                "predicted_ms": decode_ms,
                "predicted_per_second": (n - 1) / (decode_ms / 1000)
                if n > 1 and decode_ms
                else None,
            },
        }
    )
    yield b"data: [DONE]\n\n"


def llama_routes(stream: Callable[[dict[str, Any] | None], Iterable[bytes]]) -> dict[str, Route]:
    """Routes of an attached llama-server whose chat stream comes from ``stream(body)``."""
    return {
        "GET /health": lambda _b: jsonr({"status": "ok"}),
        "GET /props": lambda _b: jsonr(
            {
                "build_info": "b1-fake",
                "chat_template": "chatml",
                "total_slots": 1,
                "default_generation_settings": {"n_ctx": 4096},
            }
        ),
        "GET /v1/models": lambda _b: jsonr({"object": "list", "data": [{"id": "fake"}]}),
        "POST /v1/chat/completions": lambda b: (200, "text/event-stream", stream(b)),
    }


class OllamaScript:
    """State of a scripted Ollama (``docs/api.md``): pulled and loaded models, NDJSON chat."""

    def __init__(
        self,
        models: dict[str, list[str]],
        pullable: dict[str, list[str]] | None = None,
        delay: float = 0.005,
        thinking: list[str] | None = None,
        error_after: int | None = None,
    ) -> None:
        self.models = dict(models)
        self.pullable = pullable or {}
        self.loaded: list[str] = []
        self.delay = delay
        self.thinking = thinking or []
        self.error_after = error_after

    @staticmethod
    def _name(model: str) -> str:
        return model if ":" in model else f"{model}:latest"

    def tags(self, _b: Any) -> Answer:
        return jsonr(
            {
                "models": [
                    {
                        "name": self._name(m),
                        "model": self._name(m),
                        "size": 1000,
                        "digest": f"sha256:{i:064x}",
                        "modified_at": "2026-01-01T00:00:00Z",
                        "details": {
                            "format": "gguf",
                            "family": "gemma3",
                            "parameter_size": "270M",
                            "quantization_level": "Q4_K_M",
                        },
                    }
                    for i, m in enumerate(self.models)
                ]
            }
        )

    def ps(self, _b: Any) -> Answer:
        return jsonr(
            {
                "models": [
                    {
                        "name": self._name(m),
                        "model": self._name(m),
                        "size": 2 << 30,
                        "size_vram": 1 << 30,
                        "context_length": 4096,
                    }
                    for m in self.loaded
                ]
            }
        )

    def pull(self, body: Any) -> Answer:
        name = body["model"]

        def stream() -> Iterator[bytes]:
            yield b'{"status":"pulling manifest"}\n'
            if name not in self.pullable:
                yield b'{"error":"pull model manifest: file does not exist"}\n'
                return
            for done in (0, 500, 1000):
                yield (
                    json.dumps(
                        {
                            "status": "pulling abc123",
                            "digest": "sha256:abc123",
                            "total": 1000,
                            "completed": done,
                        }
                    ).encode()
                    + b"\n"
                )
            for status in ("verifying sha256 digest", "writing manifest", "success"):
                yield json.dumps({"status": status}).encode() + b"\n"
            self.models[name] = self.pullable[name]

        return 200, "application/x-ndjson", stream()

    def chat(self, body: Any) -> Answer:
        model = body.get("model")
        if not model:
            return jsonr({"error": "model is required"}, 400)
        known = next((m for m in self.models if self._name(m) == self._name(model)), None)
        if known is None:
            return jsonr({"error": f"model '{model}' not found"}, 404)
        if not body.get("messages"):
            if body.get("keep_alive") == 0:
                self.loaded = [m for m in self.loaded if m != known]
                reason = "unload"
            else:
                if known not in self.loaded:
                    self.loaded.append(known)
                reason = "load"
            return jsonr(
                {
                    "model": model,
                    "created_at": "2026-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": ""},
                    "done": True,
                    "done_reason": reason,
                }
            )
        cap = (body.get("options") or {}).get("num_predict", -1)
        tokens = self.models[known]

        def stream() -> Iterator[bytes]:
            started = time.perf_counter()
            parts = [("thinking", t) for t in self.thinking] + [("content", t) for t in tokens]
            if cap and cap > 0:
                parts = parts[:cap]
            first = None
            for i, (kind, text) in enumerate(parts):
                if i == self.error_after:
                    yield b'{"error":"an error was encountered while running the model"}\n'
                    return
                time.sleep(self.delay)
                first = first or time.perf_counter()
                message = {"role": "assistant", "content": text if kind == "content" else ""}
                if kind == "thinking":
                    message["thinking"] = text
                yield (
                    json.dumps(
                        {
                            "model": model,
                            "created_at": "2026-01-01T00:00:00Z",
                            "message": message,
                            "done": False,
                        }
                    ).encode()
                    + b"\n"
                )
            end = time.perf_counter()
            yield (
                json.dumps(
                    {
                        "model": model,
                        "created_at": "2026-01-01T00:00:01Z",
                        "message": {"role": "assistant", "content": ""},
                        "done": True,
                        "done_reason": "length"
                        if cap and cap > 0 and len(parts) == cap
                        else "stop",
                        "total_duration": int((end - started) * 1e9),
                        "load_duration": 1_000_000,
                        "prompt_eval_count": 12,
                        "prompt_eval_duration": 40_000_000,
                        "eval_count": len(parts),
                        "eval_duration": int((end - (first or end)) * 1e9),
                    }
                ).encode()
                + b"\n"
            )

        return 200, "application/x-ndjson", stream()

    def routes(self) -> dict[str, Route]:
        return {
            "GET /": lambda _b: (200, "text/plain", b"Ollama is running"),
            "GET /api/version": lambda _b: jsonr({"version": "0.12.0"}),
            "GET /api/tags": self.tags,
            "GET /api/ps": self.ps,
            "POST /api/pull": self.pull,
            "POST /api/chat": self.chat,
        }
