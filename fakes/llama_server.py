"""A loopback fake of llama.cpp's ``llama-server`` (one model, OpenAI-compatible chat).

Sources (ggml-org/llama.cpp): tools/server/README.md for /health, /props, /v1/models,
``timings`` and the ``usage`` object; tools/server/server-task.cpp
(``to_json_oaicompat_chat_stream``: role delta with the first token, finish chunk with
``delta: {}``, the ``choices: []`` usage chunk, ``timings`` on the last chunk) and
server-context.cpp (the ``exceed_context_size_error`` shape) for the stream. At the pinned
commit 0c1e570 (the one the plugin builds):

- tools/server/server-common.h:384-449 / server-common.cpp:84-97 (``server_slot_stats``):
  ``predicted_ms`` runs from the end of prompt processing (the first token comes from the
  last prompt batch) to the last sampled token, clamped to 1 us; ``predicted_per_second =
  1e3 / predicted_ms * (n - 1)`` and 0.0 when n <= 1; every rate or per-token figure whose
  divisor is unknown is 0.0.
- tools/server/server-context.cpp:3397-3405 and 4383-4385: a stream's 200 headers go out
  as soon as its prompt starts processing, before any token.
- tools/server/server-context.cpp:4444-4457: while no result comes for
  ``sse_ping_interval`` seconds, the SSE comment ``":\n\n"`` is written ("some clients
  may time out"); the interval is the request's ``sse_ping_interval``
  (server-schema.cpp:40-42, -1 disables) or the server's ``--sse-ping-interval``, default
  30 (common/common.h:626).
- tools/server/server-http.cpp:307-326 (``middleware_server_state``): until the model is
  loaded every route but the web UI's answers 503 "Loading model", ``/v1/models`` included.

The rest is from /work/shared/PROTOCOLS.md's notes on a real server (Connection closed
after every stream).
"""

from __future__ import annotations

import json
import secrets
import string
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from fakes._common import (
    ClientGone,
    FakeHTTPServer,
    ModelScript,
    Plan,
    Request,
    Responder,
    plan_tokens,
)

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
JSON_CT = "application/json; charset=utf-8"
SSE_CT = "text/event-stream"
KEEP_ALIVE = ("Keep-Alive", "timeout=5, max=100")
# A real llama-server server_error (generation ran out of context, no context shift).
MIDSTREAM_ERROR = {
    "code": 500,
    "message": "Context size has been exceeded.",
    "type": "server_error",
}
LOADING = {"code": 503, "message": "Loading model", "type": "unavailable_error"}
HTML_404 = b"<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"


CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
#: The web UI's paths, served while loading (server-http.cpp frontend_paths).
FRONTEND = frozenset({"/", "/index.html"})
#: llama-server's SSE keep-alive comment (server-context.cpp:4456).
PING = b":\n\n"


def _rate(n: float, ms: float) -> float:
    """``n`` per second over ``ms``; 0.0 when the divisor is not known (server-common.h)."""
    return 1e3 / ms * n if ms > 0 else 0.0


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


class FakeLlamaServer(FakeHTTPServer):
    """llama-server on loopback serving ``script``.

    ``model_id`` is the GGUF path (``/props`` model_path; ``/v1/models`` id unless
    ``alias``); ``n_ctx`` the per-slot context; every route answers 503 "Loading model"
    for ``loading_s`` from the first request it receives (``inf`` = forever; counted from
    the first request so that a busy machine cannot eat the wait before the client comes);
    ``total_slots`` requests run at once, others wait (the real server defers them);
    ``sse_ping_interval``: seconds of silence before an SSE ping (``--sse-ping-interval``,
    default 30; a request's ``sse_ping_interval`` field overrides it; <= 0 disables).
    Misbehaviour for tests (no real server does it): ``ignore_max_tokens`` streams every
    token whatever the request's cap; ``tamper`` rewrites each streamed event object.
    """

    def __init__(
        self,
        script: ModelScript,
        *,
        model_id: str = "/models/m.gguf",
        n_ctx: int = 16384,
        loading_s: float = 0.0,
        build_info: str = "b7000-abc",
        chat_template: str | None = None,
        alias: str | None = None,
        total_slots: int = 1,
        sse_ping_interval: float = 30.0,
        ignore_max_tokens: bool = False,
        tamper: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.script = script
        self.model_id = model_id
        self.n_ctx = n_ctx
        self.loading_s = loading_s
        self.build_info = build_info
        self.chat_template = CHATML if chat_template is None else chat_template
        self.alias = alias
        self.total_slots = total_slots
        self.sse_ping_interval = sse_ping_interval
        self.ignore_max_tokens = ignore_max_tokens
        self.tamper = tamper
        self._first_request: float | None = None
        self._slots = threading.BoundedSemaphore(total_slots)
        self._busy = 0
        self._last_prompt: str | None = None
        self.created = int(time.time())

    stream_type = SSE_CT

    def streams(self, req: Request) -> bool:
        body = req.body if isinstance(req.body, dict) else {}
        return req.path in CHAT_PATHS and body.get("stream") is True

    @staticmethod
    def frame(value: bytes) -> bytes:
        return b"data: " + value + b"\n\n"

    # -- state -----------------------------------------------------------------------
    @property
    def loading(self) -> bool:
        first = self._first_request
        return first is None or time.monotonic() - first < self.loading_s

    # -- dispatch --------------------------------------------------------------------
    def handle(self, req: Request, resp: Responder) -> None:
        if self.script.fault == "html_404":  # "wrong port": some other web server
            resp.send(404, HTML_404, "text/html", head=req.method == "HEAD")
            return
        path = req.path
        get = req.method in ("GET", "HEAD")
        with self._lock:
            if self._first_request is None:
                self._first_request = time.monotonic()
        if self.loading and not (get and path in FRONTEND):
            self._json(resp, 503, {"error": LOADING})  # every route (middleware_server_state)
        elif get and path in FRONTEND:
            resp.send(200, b"<html>llama.cpp</html>", "text/html", head=req.method == "HEAD")
        elif get and path in ("/v1/models", "/models"):
            self._json(resp, 200, self._models())
        elif get and path in ("/health", "/v1/health"):
            self._json(resp, 200, {"status": "ok"})
        elif get and path == "/props":
            self._json(resp, 200, self._props())
        elif get and path == "/slots":
            self._json(
                resp,
                200,
                [
                    {"id": i, "n_ctx": self.n_ctx, "is_processing": i < self._busy}
                    for i in range(self.total_slots)
                ],
            )
        elif req.method == "POST" and path in CHAT_PATHS:
            self._chat(req, resp)
        else:
            self._error(resp, 404, "File Not Found", "not_found_error")

    def _json(
        self, resp: Responder, status: int, obj: Any, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        resp.send(status, body, JSON_CT, (KEEP_ALIVE, *headers))

    def _error(self, resp: Responder, code: int, message: str, type_: str, **extra: Any) -> None:
        self._json(
            resp, code, {"error": {"code": code, "message": message, "type": type_, **extra}}
        )

    # -- info endpoints --------------------------------------------------------------
    def _models(self) -> dict[str, Any]:
        meta = {
            "vocab_type": 2,
            "n_vocab": 262144,
            "n_ctx_train": self.script.context_length,
            "n_embd": 640,
            "n_params": 268_098_176,
            "size": self.script.size,
        }
        return {
            "object": "list",
            "data": [
                {
                    "id": self.alias or self.model_id,
                    "object": "model",
                    "created": self.created,
                    "owned_by": "llamacpp",
                    "meta": meta,
                }
            ],
        }

    def _props(self) -> dict[str, Any]:
        return {
            "default_generation_settings": {
                "id": 0,
                "id_task": -1,
                "n_ctx": self.n_ctx,
                "speculative": False,
                "is_processing": False,
                "params": {
                    "n_predict": -1,
                    "seed": 4294967295,
                    "temperature": 0.800000011920929,
                    "top_k": 40,
                    "top_p": 0.949999988079071,
                    "min_p": 0.05000000074505806,
                    "max_tokens": -1,
                    "n_keep": 0,
                    "stream": True,
                },
            },
            "total_slots": self.total_slots,
            "model_path": self.model_id,
            "chat_template": self.chat_template,
            "modalities": {"vision": False},
            "build_info": self.build_info,
            "is_sleeping": False,
        }

    # -- chat ------------------------------------------------------------------------
    def _chat(self, req: Request, resp: Responder) -> None:
        if req.json_error is not None:
            # nlohmann::json::parse throws a json::exception -> the handler wrapper's
            # std::exception branch -> 500 server_error.
            self._error(
                resp,
                500,
                f"[json.exception.parse_error.101] parse error: {req.json_error}",
                "server_error",
            )
            return
        body: Mapping[str, Any] = req.body if isinstance(req.body, dict) else {}
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self._error(resp, 400, "Expected 'messages' to be an array", "invalid_request_error")
            return
        s = self.script
        n_prompt = 2 * self.n_ctx if s.fault == "context_overflow" else s.prompt_eval_count
        if n_prompt >= self.n_ctx:
            self._error(
                resp,
                400,
                f"request ({n_prompt} tokens) exceeds the available context size "
                f"({self.n_ctx} tokens), try increasing it",
                "exceed_context_size_error",
                n_prompt_tokens=n_prompt,
                n_ctx=self.n_ctx,
            )
            return
        plan = self._plan(body, n_prompt)
        while not self._slots.acquire(timeout=0.02):
            resp.wait(0.001)
        with self._lock:
            self._busy += 1
        try:
            self._run(resp, body, plan, n_prompt)
        finally:
            with self._lock:
                self._busy -= 1
            self._slots.release()

    def _plan(self, body: Mapping[str, Any], n_prompt: int) -> Plan:
        """n_predict beats max_tokens (-1 = unlimited); reasoning as reasoning_content
        unless disabled (chat_template_kwargs.enable_thinking false, reasoning_effort
        "none") or left raw in the content (reasoning_format "none")."""
        s = self.script
        raw_limit = body.get("n_predict", body.get("max_tokens"))
        limit = raw_limit if isinstance(raw_limit, int) and raw_limit >= 0 else None
        if self.ignore_max_tokens:
            limit = None
        kwargs = body.get("chat_template_kwargs") or {}
        think = bool(s.thinking) and kwargs.get("enable_thinking", True) is not False
        think = think and body.get("reasoning_effort") != "none"
        thinking: list[str] = list(s.thinking) if think else []
        content = list(s.tokens)
        if thinking and body.get("reasoning_format") == "none":
            content = ["<think>", *thinking, "</think>", *content]
            thinking = []
        return plan_tokens(
            s, thinking=thinking, content=content, limit=limit, room=self.n_ctx - n_prompt
        )

    def _run(self, resp: Responder, body: Mapping[str, Any], plan: Plan, n_prompt: int) -> None:
        s = self.script
        stream = body.get("stream") is True
        opts = body.get("stream_options") or {}
        include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
        key = json.dumps(body.get("messages"), sort_keys=True)
        with self._lock:
            hit = body.get("cache_prompt", True) is not False and key == self._last_prompt
            self._last_prompt = key
        cache_n = n_prompt - 1 if hit else 0
        prompt_n = n_prompt - cache_n
        cid = "chatcmpl-" + "".join(
            secrets.choice(string.ascii_letters + string.digits) for _ in range(32)
        )
        model = (
            body.get("model")
            if isinstance(body.get("model"), str)
            else (self.alias or self.model_id)
        )
        created = int(time.time())
        head = {
            "created": created,
            "id": cid,
            "model": model,
            "system_fingerprint": self.build_info,
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "choices": [{"finish_reason": finish, "index": 0, "delta": delta}],
                **head,
                "object": "chat.completion.chunk",
            }

        ping = body.get("sse_ping_interval", self.sse_ping_interval)
        if stream:
            resp.close_after = True  # the real server closes after every stream
            resp.begin_stream(200, SSE_CT, (KEEP_ALIVE,))
            resp.write(b"")  # the headers, before the prompt is processed
            resp.ping = (PING, ping if isinstance(ping, int | float) and ping > 0 else None)
        t_prompt = time.perf_counter()
        resp.wait(s.prompt_delay_s * prompt_n / max(n_prompt, 1))
        t_first = t_last = time.perf_counter()
        text = {"thinking": "", "content": ""}
        fault_at = min(s.fault_after, len(plan.pieces))
        for i in range(len(plan.pieces) + 1):
            if i == fault_at and not self._fault(resp, stream):
                return
            if i == len(plan.pieces):
                break
            if i > 0:
                resp.wait(s.token_delay_s)
                t_last = time.perf_counter()
            kind, piece = plan.pieces[i]
            text[kind] += piece
            if stream:
                field = "reasoning_content" if kind == "thinking" else "content"
                out = b""
                if i == 0:
                    out += self._sse(chunk({"role": "assistant", "content": None}))
                out += self._sse(chunk({field: piece}))
                resp.write(out)
        if plan.finish == "stop" and plan.pieces:
            resp.wait(s.token_delay_s)  # EOS is sampled (and counted in n_decoded)
            t_last = time.perf_counter()
        if not plan.pieces:
            t_last = t_first
        timings = self._timings(cache_n, prompt_n, t_first - t_prompt, plan.count, t_last - t_first)
        usage = {
            "completion_tokens": plan.count,
            "prompt_tokens": n_prompt,
            "total_tokens": n_prompt + plan.count,
            "prompt_tokens_details": {"cached_tokens": cache_n},
        }
        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": text["content"]}
            if text["thinking"]:
                message["reasoning_content"] = text["thinking"]
            self._json(
                resp,
                200,
                {
                    "choices": [{"finish_reason": plan.finish, "index": 0, "message": message}],
                    **head,
                    "object": "chat.completion",
                    "usage": usage,
                    "timings": timings,
                },
            )
            return
        events = [chunk({}, plan.finish)]
        if include_usage:
            events.append(
                {"choices": [], **head, "object": "chat.completion.chunk", "usage": usage}
            )
        events[-1]["timings"] = timings
        resp.write(b"".join(self._sse(e) for e in events) + b"data: [DONE]\n\n")
        resp.end()

    def _sse(self, event: dict[str, Any]) -> bytes:
        return _sse(event if self.tamper is None else self.tamper(event))

    @staticmethod
    def _timings(
        cache_n: int, prompt_n: int, prompt_s: float, n: int, gen_s: float
    ) -> dict[str, Any]:
        """server_slot_stats::to_json (server-common.cpp:84-97): predicted_ms runs from the
        end of the prompt (first token) to the last sampled token, n - 1 decode steps."""
        prompt_ms = prompt_s * 1e3
        predicted_ms = max(gen_s * 1e3, 1e-3) if n else 0.0  # t_gen_us: clamped to 1 us
        steps = max(n - 1, 0)  # n_gen_steps: the first token is free
        return {
            "cache_n": cache_n,
            "prompt_n": prompt_n,
            "prompt_ms": prompt_ms,
            "prompt_per_token_ms": prompt_ms / prompt_n if prompt_n > 0 else 0.0,
            "prompt_per_second": _rate(prompt_n, prompt_ms),
            "predicted_n": n,
            "predicted_ms": predicted_ms,
            "predicted_per_token_ms": predicted_ms / steps if steps > 0 else 0.0,
            "predicted_per_second": _rate(steps, predicted_ms),
        }

    def _fault(self, resp: Responder, stream: bool) -> bool:
        """Apply the mid-answer fault; False = the answer is over."""
        s = self.script
        if s.fault == "cut":
            resp.abort()
            return False
        if s.fault == "stall":
            resp.wait(s.stall_s)
        elif s.fault == "error_midstream":
            if stream and resp.stream_started:
                # Mid-stream: one error event, body ends, no [DONE]; connection closed.
                resp.write(_sse({"error": MIDSTREAM_ERROR}))
                resp.end()
            else:  # nothing sent yet: a plain HTTP error
                self._json(resp, 500, {"error": MIDSTREAM_ERROR})
            return False
        elif s.fault == "garbage":
            junk = b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":\n\n'
            if stream:
                resp.write(junk)
            else:
                resp.send(200, junk[6:], JSON_CT, (KEEP_ALIVE,))
                return False
        return True


__all__ = ["ClientGone", "FakeLlamaServer", "ModelScript"]
