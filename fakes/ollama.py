"""A loopback fake of Ollama's native API (``/api/*``).

Sources (ollama/ollama): docs/api.md for shapes and examples; server/routes.go
(GenerateHandler, ChatHandler, PullHandler, PsHandler, streamResponse, waitForStream,
handleScheduleError) and api/types.go (``omitempty`` tags, ``Duration`` and ``ThinkValue``
parsing) for what the docs leave out; runner/ollamarunner/runner.go at v0.12.x for the
metric counters and the prompt-truncation rule; server/images.go + server/download.go
for pull progress.

Two lines of Ollama differ in what a benchmark sees; ``version`` picks one (``V0_12``, the
default, or ``CURRENT``, v0.30+ where Ollama drives llama-server: llm/llama_server.go):

- the context in use: both cap ``num_ctx`` at the model's trained context without an error
  (v0.12.0 llm/server.go:170-175; fb30760 server/sched.go:161-167 ``effectiveContext``), but
  v0.12's /api/ps reports the *requested* ``num_ctx`` (routes.go:1795 reads the scheduler's
  copy of the options, the cap was applied to another copy) while the current one reports
  the context in use (routes.go:2293 ``r.llama.ContextLength()``);
- an over-long prompt: v0.12 drops tokens from its middle silently (runner/ollamarunner/
  runner.go:133-172), refusing only with ``truncate:false`` from v0.12.6 on (400 "the input
  length exceeds the context length", runner.go:136-137, 857-859); the current line refuses
  with 400 when context shift is off (``shift:false``; llm/llama_server.go:295-300) and passes
  llama-server's own 400 through with ``truncate:false`` (llama_server.go:1648-1654), and
  otherwise truncates to ``contextShiftPromptLimit`` (llama_server.go:322-332);
- the prompt cache, which neither can turn off: ``prompt_eval_count`` counts the cached
  tokens, ``prompt_eval_duration`` only the evaluated ones (v0.12 runner.go:921-922 with
  cache.go:96-123; current llama_server.go:1512, 1562 ``cache_prompt: true``, 1723-1724).

The ``CURRENT`` profile follows the real Ollama v0.33.0-rc2 (CPU build, gemma3-270m) where it
was seen to differ from the sources as first read: divergences D1-D16 of
``shared/ollama/README.md``, each cited below as ``(Dn, transcripts/FILE)``.

Both unload asynchronously: ``keep_alive: 0`` answers at once and the scheduler removes the
runner from /api/ps after it stopped (sched.go:458-460 at fb30760; ``unload_delay_s``).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fakes._common import (
    ClientGone,
    FakeHTTPServer,
    ModelScript,
    Plan,
    Request,
    Responder,
    go_json,
    ns,
    parse_go_duration,
    plan_tokens,
    rfc3339nano,
)

JSON_CT = "application/json; charset=utf-8"  # gin's c.JSON
NDJSON_CT = "application/x-ndjson"  # streamResponse
# llm/server.go: what a client sees when the runner dies mid-request.
RUNNER_DIED = (
    "model runner has unexpectedly stopped, this may be due to resource limitations "
    "or an internal error, check ollama server logs for details"
)
# runner/ollamarunner/runner.go errorInputTooLong (truncate:false, prompt > num_ctx).
INPUT_TOO_LONG = "the input length exceeds the context length"
# (D5, transcripts/kill-stream.ndjson) the runner (llama-server) killed mid-answer, v0.33.
RUNNER_EOF = "an error was encountered while running the model: unexpected EOF"
# (D11, transcripts/pull-stream.txt) a pull with no route to the registry.
PULL_OFFLINE = (
    'pull model manifest: Get "https://registry.ollama.ai/v2/library/{name}/manifests/{tag}": '
    "dial tcp: lookup registry.ollama.ai on 10.255.255.53:53: no such host"
)
CPU_DEFAULT_CTX = 4096
"""(D15) v0.33's "vram-based default context" with no GPU: what a request without num_ctx gets."""
CHECKPOINT_TAIL = 5
"""(D6, transcripts/cache-repeat-direct.txt) an exact repeat restores the checkpoint 5 tokens
before the earlier prompt's end: 47 of 52 reused."""
PULL_NOT_FOUND = "pull model manifest: file does not exist"
_FOREVER_NS = 2**63 - 1  # keep_alive < 0 -> time.Duration(math.MaxInt64)
# llm/llama_server.go:298 (fb30760): context shift off, prompt over the context.
PROMPT_TOO_LONG = (
    "the prompt is longer than the context length currently available to the model; shorten "
    "the prompt, adjust the context length in settings, or use a model with a longer context "
    "length"
)
V0_12 = "0.12.0"
CURRENT = "0.33.0"
VERSIONS = (V0_12, CURRENT)
"""The two lines of Ollama the plugin's tests run against."""


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("-", 1)[0].split(".")[:3])


_INT_OPTIONS = frozenset(
    {
        "num_predict",
        "num_ctx",
        "seed",
        "top_k",
        "num_keep",
        "num_gpu",
        "num_thread",
        "num_batch",
        "repeat_last_n",
    }
)
_FLOAT_OPTIONS = frozenset(
    {
        "temperature",
        "top_p",
        "min_p",
        "typical_p",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
    }
)


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, content_type: str = JSON_CT) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.content_type = content_type


@dataclass
class _Loaded:
    num_ctx: int
    """As requested (what v0.12's /api/ps reports, and what needsReload compares)."""
    ctx: int
    """In use: ``num_ctx`` capped at the model's trained context."""
    expires_ns: int
    refs: int = 0
    last_prompt: str | None = None
    last_tokens: int = 0
    last_boundaries: tuple[int, ...] = ()
    """Where the last prompt's messages end (characters of its key): llama-server's context
    checkpoints on a sliding-window model (D6)."""
    shift: bool = True
    """``shift`` of the request that loaded it: v0.33 restarts the runner when it changes (D3)."""


def canonical(name: str) -> str:
    """``model:tag`` with the default ``latest`` tag and the default registry/namespace
    dropped (docs/api.md "Model names"; PsHandler's ``DisplayShortest``)."""
    n = name.strip()
    for prefix in ("registry.ollama.ai/", "library/"):
        if n.startswith(prefix):
            n = n[len(prefix) :]
    if ":" not in n.rsplit("/", 1)[-1]:
        n += ":latest"
    return n


def _cached(previous: str | None, prompt: str, tokens: int) -> int:
    """Prompt tokens reused from the runner's cache: the share of ``prompt`` it has in
    common with the previous prompt, at least one token always evaluated (cache.go:96-123:
    the longest common prefix, ``numPast--`` on a full match; llama-server the same)."""
    if previous is None or not prompt:
        return 0
    common = next(
        (i for i, (a, b) in enumerate(zip(previous, prompt, strict=False)) if a != b),
        min(len(previous), len(prompt)),
    )
    return min(tokens * common // len(prompt), max(tokens - 1, 0))


def _checkpoint_cached(
    previous: str | None,
    boundaries: tuple[int, ...],
    previous_tokens: int,
    prompt: str,
    tokens: int,
) -> int:
    """(D6, transcripts/cache-repeat-direct.txt, shared-system-prompt.txt) what v0.33's
    llama-server reuses on a sliding-window model (gemma3): only context checkpoints, so the
    earlier prompt up to 5 tokens before its end when the new one starts with all of it, else
    up to the end of the last whole message both share, else the first token (prompts sharing
    half of one message reused 1 token: 27 of 28 evaluated)."""
    if previous is None or not prompt:
        return 0
    common = next(
        (i for i, (a, b) in enumerate(zip(previous, prompt, strict=False)) if a != b),
        min(len(previous), len(prompt)),
    )
    if common == len(previous):
        reused = previous_tokens - CHECKPOINT_TAIL
    else:
        end = max((b for b in boundaries if b <= common), default=0)
        reused = tokens * end // len(prompt)
    return max(1, min(reused, tokens - 1))


def _message_ends(messages: list[Any]) -> tuple[int, ...]:
    """Where each message but the last ends in ``json.dumps(messages, sort_keys=True)``."""
    return tuple(
        len(json.dumps(messages[: i + 1], sort_keys=True)) - 1 for i in range(len(messages) - 1)
    )


def _exceeds_context(tokens: int, ctx: int, stream: bool) -> _HTTPError:
    """(D1, transcripts/long-400.txt, long-400-nostream.txt) llama-server's own 400, passed
    on string-encoded inside Ollama's ``error``; streamed requests get it without a charset."""
    inner = {
        "error": {
            "code": 400,
            "message": f"request ({tokens} tokens) exceeds the available context size "
            f"({ctx} tokens), try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": tokens,
            "n_ctx": ctx,
        }
    }
    content_type = "application/json" if stream else JSON_CT
    return _HTTPError(400, json.dumps(inner, separators=(",", ":")), content_type)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _details(s: ModelScript) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": s.family,
        "families": [s.family],
        "parameter_size": s.parameter_size,
        "quantization_level": s.quantization_level,
    }


def _capabilities(s: ModelScript) -> list[str]:
    return ["completion"] + (["thinking"] if s.thinking else [])


def _go_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    return type(v).__name__


def _json_syntax_error(raw: bytes) -> str:
    """An approximation of Go's encoding/json syntax error text."""
    text = raw.decode(errors="replace").lstrip()
    if not text:
        return "unexpected EOF"
    c = text[0]
    if c in '{["-0123456789tfn':
        return "unexpected EOF"
    return f"invalid character {c!r} looking for beginning of value"


class FakeOllama(FakeHTTPServer):
    """Ollama on loopback. ``models`` are the installed models (None = none installed),
    keyed by name (``m`` means ``m:latest``); ``pull_catalog`` is what ``/api/pull`` can
    download. ``events`` logs ("load"|"unload", name) as the fake scheduler acts;
    ``requests`` every request received. ``tamper(path, obj)`` rewrites each JSON object
    it answers (a plain reply or one line of a stream) to the request for ``path``.
    """

    def __init__(
        self,
        models: Mapping[str, ModelScript] | None = None,
        *,
        version: str = V0_12,
        pull_catalog: Mapping[str, ModelScript] | None = None,
        registry_reachable: bool = True,
        default_keep_alive_s: float = 300.0,
        unload_delay_s: float = 0.0,
        max_loaded: int | None = None,
        tamper: Callable[[str, dict[str, Any]], Any] | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.tamper = tamper
        self.version = version
        self.current = _version_tuple(version) >= (0, 30)
        """The llama-server-driven line (v0.30+)."""
        self.reads_truncate = _version_tuple(version) >= (0, 12, 6)
        """``truncate`` / ``shift`` on chat requests (api/types.go from v0.12.6)."""
        self.default_keep_alive_s = default_keep_alive_s
        self.unload_delay_s = unload_delay_s
        """How long an expired runner stays listed in /api/ps while it stops."""
        self.max_loaded = max_loaded
        """OLLAMA_MAX_LOADED_MODELS: idle runners are evicted to load another
        (sched.go:265 ``loadedCount >= maxRunners`` -> findRunnerToUnload). None, the default,
        evicts nothing: (D16, shared/ollama/README.md) two 270M models stayed loaded together
        on the real v0.33.0-rc2; eviction needed ``OLLAMA_MAX_LOADED_MODELS=1``."""
        now = rfc3339nano()
        for s in [*(models or {}).values(), *(pull_catalog or {}).values()]:
            if s.fault == "html_404":
                raise ValueError("html_404 is a FakeLlamaServer fault")
        self._models: dict[str, ModelScript] = {canonical(k): v for k, v in (models or {}).items()}
        self._modified: dict[str, str] = dict.fromkeys(self._models, now)
        self.pull_catalog = {canonical(k): v for k, v in (pull_catalog or {}).items()}
        self.registry_reachable = registry_reachable
        """False: a pull of anything not on disk fails on DNS, as offline (D11)."""
        self._loaded: dict[str, _Loaded] = {}
        self.events: list[tuple[str, str]] = []
        self.event_times: list[float] = []
        """``time.perf_counter()`` of each entry of ``events``."""
        self._load_lock = threading.Lock()

    # -- test helpers ----------------------------------------------------------------
    def loaded(self) -> list[str]:
        """Names currently loaded (what /api/ps would list)."""
        with self._lock:
            self._expire_locked()
            return list(self._loaded)

    def count(self, event: str, name: str | None = None) -> int:
        """How many "load"/"unload" events (for ``name``, or any model)."""
        with self._lock:
            self._expire_locked()
            return sum(
                1 for e, n in self.events if e == event and (name is None or n == canonical(name))
            )

    def streams(self, req: Request) -> bool:
        """Chat, generate and pull stream unless the body says ``"stream": false``."""
        body = req.body if isinstance(req.body, dict) else {}
        streaming = ("/api/chat", "/api/generate", "/api/pull")
        return req.path in streaming and body.get("stream") is not False

    # -- dispatch --------------------------------------------------------------------
    def handle(self, req: Request, resp: Responder) -> None:
        route = (req.method, req.path)
        try:
            if req.path == "/" and req.method in ("GET", "HEAD"):
                # routes.go: r.HEAD("/") and r.GET("/") -> "Ollama is running"
                body = b"Ollama is running"
                resp.send(200, body, "text/plain; charset=utf-8", head=req.method == "HEAD")
            elif route in (("GET", "/api/version"), ("HEAD", "/api/version")):
                self._json(resp, 200, {"version": self.version}, head=req.method == "HEAD")
            elif route in (("GET", "/api/tags"), ("HEAD", "/api/tags")):
                self._json(resp, 200, self._tags(), head=req.method == "HEAD")
            elif route == ("GET", "/api/ps"):
                self._json(resp, 200, self._ps())
            elif route == ("POST", "/api/show"):
                self._show(req, resp)
            elif route == ("POST", "/api/pull"):
                self._pull(req, resp)
            elif route == ("POST", "/api/chat"):
                self._complete(req, resp, chat=True)
            elif route == ("POST", "/api/generate"):
                self._complete(req, resp, chat=False)
            else:
                # gin's default 404 (no 405 handling is enabled).
                resp.send(404, b"404 page not found", "text/plain")
        except _HTTPError as e:
            resp.send(e.status, go_json({"error": e.message}), e.content_type)

    # -- plumbing --------------------------------------------------------------------
    def _json(self, resp: Responder, status: int, obj: Any, *, head: bool = False) -> None:
        resp.send(status, self._out(resp, obj), JSON_CT, head=head)

    def _out(self, resp: Responder, obj: Any) -> bytes:
        """``obj`` as Go writes it, after ``tamper``."""
        if self.tamper is not None and isinstance(obj, dict):
            obj = self.tamper(urlsplit(resp.h.path).path, json.loads(json.dumps(obj)))
        return go_json(obj)

    def _error(self, resp: Responder, status: int, message: str) -> None:
        self._json(resp, status, {"error": message})

    def _bind(self, req: Request, type_name: str) -> dict[str, Any]:
        """gin ShouldBindJSON: empty body / bad JSON / wrong top-level type -> 400."""
        if not req.raw.strip():
            raise _HTTPError(400, "missing request body")
        if req.json_error is not None:
            raise _HTTPError(400, _json_syntax_error(req.raw))
        if not isinstance(req.body, dict):
            raise _HTTPError(
                400,
                f"json: cannot unmarshal {_go_type(req.body)} into Go value of type {type_name}",
            )
        return req.body

    def _find(self, name: str) -> str | None:
        """Case-insensitive lookup, like server.getExistingName."""
        want = canonical(name).lower()
        with self._lock:
            for k in self._models:
                if k.lower() == want:
                    return k
        return None

    def _keep_alive(self, body: Mapping[str, Any]) -> float | None:
        """api.Duration.UnmarshalJSON: number = seconds, string = Go duration, negative =
        forever (inf); other types are a 400. None when absent/null (server default)."""
        if "keep_alive" not in body or body["keep_alive"] is None:
            return None
        v = body["keep_alive"]
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise _HTTPError(400, f"Unsupported type: '{_go_type(v)}'")
        if isinstance(v, str):
            try:
                secs = parse_go_duration(v)
            except ValueError as exc:
                raise _HTTPError(400, str(exc)) from exc
        else:
            secs = float(v)
        return math.inf if secs < 0 else secs

    def _think(self, body: Mapping[str, Any]) -> bool | None:
        """api.ThinkValue: bool or "high"|"medium"|"low"|"max"; anything else is a 400."""
        v = body.get("think")
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, str):
            if v in ("high", "medium", "low", "max"):
                return True
            raise _HTTPError(
                400,
                f'invalid think value: "{v}" '
                '(must be "high", "medium", "low", "max", true, or false)',
            )
        raise _HTTPError(
            400,
            'think must be a boolean or string ("high", "medium", "low", "max", true, or false)',
        )

    @staticmethod
    def _options(body: Mapping[str, Any]) -> dict[str, Any]:
        """api.Options.FromMap type checks; its error reaches handleScheduleError -> 500."""
        opts = body.get("options") or {}
        if not isinstance(opts, dict):
            raise _HTTPError(400, f"json: cannot unmarshal {_go_type(opts)} into Go struct field")
        for k, v in opts.items():
            is_num = isinstance(v, (int, float)) and not isinstance(v, bool)
            if k in _INT_OPTIONS and not is_num:
                raise _HTTPError(500, f'option "{k}" must be of type integer')
            if k in _FLOAT_OPTIONS and not is_num:
                raise _HTTPError(500, f'option "{k}" must be of type float32')
        return opts

    # -- scheduler bookkeeping -------------------------------------------------------
    def _event(self, event: str, key: str) -> None:
        self.events.append((event, key))
        self.event_times.append(time.perf_counter())

    def _expire_locked(self) -> None:
        """Drop runners that expired ``unload_delay_s`` ago (stopping takes that long)."""
        now = time.time_ns()
        for k, ld in list(self._loaded.items()):
            if ld.refs == 0 and ld.expires_ns + ns(self.unload_delay_s) <= now:
                del self._loaded[k]
                self._event("unload", k)

    @staticmethod
    def _stopping(ld: _Loaded) -> bool:
        """Expired, still listed in /api/ps while its runner stops."""
        return ld.refs == 0 and ld.expires_ns <= time.time_ns()

    def _expires(self, keep_alive: float | None) -> int:
        secs = self.default_keep_alive_s if keep_alive is None else keep_alive
        now = time.time_ns()
        return now + _FOREVER_NS if math.isinf(secs) else now + ns(secs)

    def _acquire(
        self,
        key: str,
        script: ModelScript,
        num_ctx: int,
        keep_alive: float | None,
        resp: Responder,
        *,
        shift: bool = True,
    ) -> _Loaded:
        """Load (or reload for a different num_ctx, as the scheduler's needsReload does; v0.33
        also for a different ``shift``: D3, a 2.09 s load in transcripts/generate-long.txt)."""
        with self._load_lock:
            with self._lock:
                self._expire_locked()
                cur = self._loaded.get(key)
                changed = cur is not None and (
                    cur.num_ctx != num_ctx or (self.current and cur.shift != shift)
                )
                if cur is not None and ((changed and cur.refs == 0) or self._stopping(cur)):
                    del self._loaded[key]
                    self._event("unload", key)
                    cur = None
                if cur is None and self.max_loaded is not None:
                    idle = [k for k, ld in self._loaded.items() if ld.refs == 0]
                    while idle and len(self._loaded) >= self.max_loaded:
                        evicted = idle.pop()  # to make room for the new model
                        del self._loaded[evicted]
                        self._event("unload", evicted)
            if cur is None:
                resp.wait(script.load_delay_s)
                with self._lock:
                    ctx = min(num_ctx, script.context_length)
                    cur = _Loaded(num_ctx, ctx, self._expires(keep_alive), shift=shift)
                    self._loaded[key] = cur
                    self._event("load", key)
            with self._lock:
                cur.refs += 1
                cur.expires_ns = self._expires(keep_alive)
            return cur

    def _release(self, key: str, ld: _Loaded, keep_alive: float | None) -> None:
        with self._lock:
            ld.refs -= 1
            ld.expires_ns = self._expires(keep_alive)
            if keep_alive == 0 and ld.refs == 0 and self._loaded.get(key) is ld:
                self._expire_locked()

    def _runner_key(self, key: str) -> str:
        """(D13) v0.33 keys runners by blob: names made from one GGUF (here: one script
        object) share one runner and one /api/ps entry, under the first name."""
        if not self.current:
            return key
        with self._lock:
            script = self._models[key]
            return next(k for k, s in self._models.items() if s is script)

    def _unload(self, key: str) -> None:
        """expireRunner: the runner goes once idle and stopped (asynchronously)."""
        with self._lock:
            ld = self._loaded.get(key)
            if ld is not None:
                ld.expires_ns = time.time_ns()
                self._expire_locked()

    # -- listing endpoints -----------------------------------------------------------
    def _tags(self) -> dict[str, Any]:
        with self._lock:
            items = sorted(self._models.items(), key=lambda kv: self._modified[kv[0]], reverse=True)
            return {
                "models": [
                    {
                        "name": k,
                        "model": k,
                        "modified_at": self._modified[k],
                        "size": s.size,
                        "digest": _digest(k),
                        "details": self._tag_details(s),
                        **({"capabilities": _capabilities(s)} if self.current else {}),
                    }
                    for k, s in items
                ]
            }

    def _ps(self) -> dict[str, Any]:
        if self.current:
            self._wait_stopping()
        with self._lock:
            self._expire_locked()
            rows = sorted(self._loaded.items(), key=lambda kv: kv[1].expires_ns, reverse=True)
            out = []
            for k, ld in rows:
                s = self._models[k]
                out.append(
                    {
                        "name": k,
                        "model": k,
                        "size": s.size,
                        "digest": _digest(k),
                        "details": _details(s),
                        "expires_at": rfc3339nano(ld.expires_ns),
                        "size_vram": self._size_vram(s),
                        "context_length": ld.ctx if self.current else ld.num_ctx,
                    }
                )
            return {"models": out}

    def _tag_details(self, s: ModelScript) -> dict[str, Any]:
        """(D8, transcripts/tags.txt) v0.33's /api/tags details add the trained context and
        the embedding length."""
        if not self.current:
            return _details(s)
        return {**_details(s), "context_length": s.context_length, "embedding_length": 640}

    def _size_vram(self, s: ModelScript) -> int:
        """(D7, transcripts/ps-loaded.json) the v0.33 build here is CPU-only: 0 unless the
        script says what a GPU holds."""
        if s.size_vram is not None:
            return s.size_vram
        return 0 if self.current else s.size

    def _wait_stopping(self) -> None:
        """(D4, transcripts/unload-timing-1.txt, unload-vs-process.txt) v0.33's /api/ps
        answers once an expired runner has stopped (25-80 ms), never listing it meanwhile."""
        with self._lock:
            now = time.time_ns()
            left = [
                ld.expires_ns + ns(self.unload_delay_s) - now
                for ld in self._loaded.values()
                if self._stopping(ld)
            ]
        if left:
            time.sleep(max(0, max(left)) / 1e9)

    def _show(self, req: Request, resp: Responder) -> None:
        body = self._bind(req, "api.ShowRequest")
        name = body.get("model") or body.get("name") or ""
        if not isinstance(name, str) or not name.strip():
            raise _HTTPError(400, "model is required")
        key = self._find(name)
        if key is None:
            # (D10, transcripts/show-404.txt) v0.33 names the model with its tag made explicit.
            shown = canonical(name) if self.current else name
            raise _HTTPError(404, f"model '{shown}' not found")
        s = self._models[key]
        answer: dict[str, Any] = {
            "modelfile": f'# Modelfile generated by "ollama show"\nFROM {key}\n',
            "parameters": f"num_ctx                        {s.num_ctx}",
            "template": s.template,
            "details": _details(s),
            "model_info": {
                "general.architecture": s.family,
                "general.parameter_count": 1_235_814_432,
                f"{s.family}.context_length": s.context_length,
            },
            "capabilities": _capabilities(s),
            "modified_at": self._modified[key],
        }
        if self.current:
            # (D9, transcripts/show.json) no ``parameters`` when the Modelfile sets none (as
            # for a model created FROM a GGUF); the tensors are listed.
            del answer["parameters"]
            answer["tensors"] = [
                {"name": "output_norm.weight", "type": "F32", "shape": [640]},
                {"name": "token_embd.weight", "type": "Q8_0", "shape": [640, 262144]},
            ]
        self._json(resp, 200, answer)

    # -- pull ------------------------------------------------------------------------
    def _pull(self, req: Request, resp: Responder) -> None:
        body = self._bind(req, "api.PullRequest")
        name = body.get("model") or body.get("name") or ""
        if not isinstance(name, str) or not name.strip():
            raise _HTTPError(400, "invalid model name")
        key = canonical(name)
        existing = self._find(name)
        script = self.pull_catalog.get(key) or (self._models[existing] if existing else None)
        stream = body.get("stream") is not False
        events: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        error: str | None = None
        if not self.registry_reachable and existing is None:
            # (D11, transcripts/pull-stream.txt, pull-nostream.txt) no route to the registry.
            base, _, tag = key.partition(":")
            error = PULL_OFFLINE.format(name=base, tag=tag)
            script = None
        elif script is None:
            error = PULL_NOT_FOUND
        else:
            layers = [(_digest(key + "#model"), script.size), (_digest(key + "#params"), 96)]
            for digest, total in layers:
                head = {
                    "status": f"pulling {digest[:12]}",
                    "digest": f"sha256:{digest}",
                    "total": total,
                }
                if existing is not None:  # blob already on disk: one complete progress line
                    events.append({**head, "completed": total})
                    continue
                events.append(head)  # completed omitted until something arrived (api.md)
                events += [{**head, "completed": total * q // 4} for q in (1, 2, 3, 4)]
            events += [
                {"status": "verifying sha256 digest"},
                {"status": "writing manifest"},
                {"status": "success"},
            ]
        if error is None and script is not None:  # manifest written before "success"
            with self._lock:
                self._models[key] = script
                self._modified[key] = rfc3339nano()
        if stream:
            resp.begin_stream(200, NDJSON_CT)
            for ev in events:
                resp.write(self._out(resp, ev) + b"\n")
            if error is not None:
                resp.write(go_json({"error": error}) + b"\n")
            resp.end()
        elif error is not None:
            self._error(resp, 500, error)  # waitForStream: no status on the error -> 500
        else:
            self._json(resp, 200, events[-1])

    # -- chat / generate -------------------------------------------------------------
    def _complete(self, req: Request, resp: Responder, *, chat: bool) -> None:
        arrival = time.perf_counter()
        body = self._bind(req, "api.ChatRequest" if chat else "api.GenerateRequest")
        raw_name = body.get("model")
        name = raw_name if isinstance(raw_name, str) else ""
        if not name.strip():
            # ChatHandler: 400 "model is required"; GenerateHandler answers the parse error
            # of an empty name with its not-found fallback (404).
            if chat:
                raise _HTTPError(400, "model is required")
            raise _HTTPError(404, f"model '{name}' not found")
        keep_alive = self._keep_alive(body)
        think = self._think(body)
        key = self._find(name)
        if key is None:
            raise _HTTPError(404, f"model '{name}' not found")
        script = self._models[key]
        boundaries: tuple[int, ...] = ()
        if chat:
            messages = body.get("messages") or []
            empty = len(messages) == 0
            prompt_key = json.dumps(messages, sort_keys=True)
            if isinstance(messages, list):
                boundaries = _message_ends(messages)
        else:
            prompt = body.get("prompt") or ""
            empty = prompt == ""
            prompt_key = json.dumps([body.get("system"), prompt])
        key = self._runner_key(key)
        if empty and keep_alive == 0:
            self._unload(key)
            self._json(resp, 200, self._bare(name, chat, "unload"))
            return
        if script.thinking:
            think_on = True if think is None else think
        elif think:
            raise _HTTPError(400, f'"{name}" does not support thinking')
        else:
            think_on = False
        opts = self._options(body)
        # (D15) v0.33 on CPU: 4096 whatever the model, not the Modelfile's default.
        default_ctx = CPU_DEFAULT_CTX if self.current else script.num_ctx
        num_ctx = int(opts.get("num_ctx") or default_ctx)
        if num_ctx <= 0:
            num_ctx = default_ctx
        shift = body.get("shift") is not False
        ld = self._acquire(key, script, num_ctx, keep_alive, resp, shift=shift)
        released = False

        def release() -> None:
            """Bookkeeping is settled before the last byte goes out, so a client that
            reads /api/ps right after an answer sees its effect (keep_alive:0 included)."""
            nonlocal released
            if not released:
                released = True
                self._release(key, ld, keep_alive)

        try:
            t_loaded = time.perf_counter()
            if empty:
                release()
                self._json(resp, 200, self._bare(name, chat, "load"))
                return
            self._generate(
                resp,
                body,
                name,
                chat,
                script,
                ld,
                opts,
                think_on,
                (prompt_key, boundaries),
                arrival,
                t_loaded,
                release,
            )
        finally:
            release()

    @staticmethod
    def _bare(name: str, chat: bool, reason: str) -> dict[str, Any]:
        """Load/unload answers: done, done_reason, no metrics (routes.go)."""
        out: dict[str, Any] = {"model": name, "created_at": rfc3339nano()}
        if chat:
            out["message"] = {"role": "assistant", "content": ""}
        else:
            out["response"] = ""
        out |= {"done": True, "done_reason": reason}
        return out

    def _generate(
        self,
        resp: Responder,
        body: Mapping[str, Any],
        name: str,
        chat: bool,
        script: ModelScript,
        ld: _Loaded,
        opts: Mapping[str, Any],
        think_on: bool,
        prompt: tuple[str, tuple[int, ...]],
        arrival: float,
        t_loaded: float,
        release: Callable[[], None],
    ) -> None:
        stream = body.get("stream") is not False
        ctx = ld.ctx
        full_prompt = 2 * ctx if script.fault == "context_overflow" else script.prompt_eval_count
        prompt_n = self._fit_prompt(body, full_prompt, ctx, opts, chat=chat, stream=stream)
        num_predict = opts.get("num_predict")
        limit = (
            int(num_predict) if isinstance(num_predict, (int, float)) and num_predict > 0 else None
        )
        shift = body.get("shift") is not False or not self.reads_truncate
        room = None if shift else max(0, ctx - prompt_n)
        plan = plan_tokens(
            script,
            thinking=script.thinking if think_on else (),
            content=script.tokens,
            limit=limit,
            room=room,
        )
        prompt_key, boundaries = prompt
        with self._lock:
            if self.current:
                reused = _checkpoint_cached(
                    ld.last_prompt, ld.last_boundaries, ld.last_tokens, prompt_key, prompt_n
                )
            else:
                reused = _cached(ld.last_prompt, prompt_key, prompt_n)
            evaluated = prompt_n - reused
            ld.last_prompt, ld.last_boundaries, ld.last_tokens = prompt_key, boundaries, prompt_n
        if stream:
            resp.begin_stream(200, NDJSON_CT)
        resp.wait(script.prompt_delay_s * evaluated / max(prompt_n, 1))
        t_first = time.perf_counter()
        text = {"thinking": "", "content": ""}
        fault_at = min(script.fault_after, len(plan.pieces))
        held = ""
        for i in range(len(plan.pieces) + 1):
            if i == fault_at and not self._fault(resp, script, stream, name, chat):
                return
            if i == len(plan.pieces):
                break
            if i > 0:
                resp.wait(script.token_delay_s)
            kind, piece = plan.pieces[i]
            text[kind] += piece
            following = plan.pieces[i + 1][0] if i + 1 < len(plan.pieces) else None
            if self.current and kind == following == "thinking" and not piece.strip():
                # (D14, transcripts/think-stream.ndjson) v0.33's thinking parser holds a
                # blank token back and sends it with the next ("\n\nI"): 38 chunks, 40 tokens.
                held += piece
                continue
            if stream:
                resp.write(self._out(resp, self._chunk(name, chat, kind, held + piece)) + b"\n")
            held = ""
        if plan.finish == "stop" and plan.pieces:
            resp.wait(script.token_delay_s)  # the EOS sample, counted in eval_count
        end = time.perf_counter()
        final = self._final(
            name,
            chat,
            plan,
            full_prompt=prompt_n,
            text=text,
            stream=stream,
            context_cap=None if self.current else 4096,
        )
        final |= {
            k: v
            for k, v in {
                "total_duration": max(1, ns(end - arrival)),
                "load_duration": max(1, ns(t_loaded - arrival)),
                "prompt_eval_count": prompt_n,
                "prompt_eval_duration": max(1, ns(t_first - t_loaded)),
                "eval_count": plan.count,
                "eval_duration": ns(end - t_first) if plan.count else 0,
            }.items()
            if v  # api.Metrics fields are omitempty: zero values are left out
        }
        release()
        if stream:
            resp.write(self._out(resp, final) + b"\n")
            resp.end()
        else:
            self._json(resp, 200, final)

    def _fit_prompt(
        self,
        body: Mapping[str, Any],
        tokens: int,
        ctx: int,
        opts: Mapping[str, Any],
        *,
        chat: bool = False,
        stream: bool = True,
    ) -> int:
        """The prompt tokens that reach the model, or the version's 400 (module docstring)."""
        truncate = body.get("truncate") is not False or not self.reads_truncate
        shift = body.get("shift") is not False or not self.reads_truncate
        if not self.current:
            if tokens <= ctx:
                return tokens
            if not truncate:  # runner.go:136-137 -> 400 (runner.go:857-859)
                raise _HTTPError(400, INPUT_TOO_LONG)
            return ctx  # runner.go:133-172: num_keep + the tail, num_ctx tokens in all
        if tokens <= ctx - 1:  # llama_server.go:290-293 fullPromptLimit
            return tokens
        # (D2, transcripts/long-400.txt, generate-long.txt) /api/chat sends an over-long
        # prompt as is whatever truncate/shift say; /api/generate follows them.
        if not truncate or chat:
            raise _exceeds_context(tokens, ctx, stream)
        if not shift:
            raise _HTTPError(400, PROMPT_TOO_LONG)
        keep = int(opts.get("num_keep", 4))  # api.DefaultOptions NumKeep: 4
        keep = max(0, min(keep, ctx - 1))
        return ctx - max((ctx - keep) // 2, 1)  # contextShiftPromptLimit

    @staticmethod
    def _chunk(name: str, chat: bool, kind: str, piece: str) -> dict[str, Any]:
        out: dict[str, Any] = {"model": name, "created_at": rfc3339nano()}
        if chat:
            msg: dict[str, Any] = {
                "role": "assistant",
                "content": piece if kind == "content" else "",
            }
            if kind == "thinking":
                msg["thinking"] = piece
            out["message"] = msg
        else:
            out["response"] = piece if kind == "content" else ""
            if kind == "thinking":
                out["thinking"] = piece
        out["done"] = False
        return out

    @staticmethod
    def _final(
        name: str,
        chat: bool,
        plan: Plan,
        *,
        full_prompt: int,
        text: Mapping[str, str],
        stream: bool,
        context_cap: int | None = 4096,
    ) -> dict[str, Any]:
        """The final chunk; ``context_cap``: v0.12 caps /api/generate's ``context``, v0.33
        sends the full token list (D12, transcripts/generate-long.txt: 13906 ints)."""
        content = "" if stream else text["content"]
        thinking = "" if stream else text["thinking"]
        out: dict[str, Any] = {"model": name, "created_at": rfc3339nano()}
        if chat:
            msg: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                msg["thinking"] = thinking
            out["message"] = msg
        else:
            out["response"] = content
            if thinking:
                out["thinking"] = thinking
        out |= {"done": True, "done_reason": plan.finish}
        if not chat:
            out["context"] = list(range(1, full_prompt + plan.count + 1))[:context_cap]
        return out

    def _fault(self, resp: Responder, s: ModelScript, stream: bool, name: str, chat: bool) -> bool:
        """Apply the script's mid-answer fault; False = the answer is over."""
        if s.fault == "cut":
            resp.abort()
            return False
        if s.fault == "stall":
            resp.wait(s.stall_s)
        elif s.fault == "error_midstream":
            # streamResponse: an error before any chunk becomes the HTTP status (500 when
            # the error carries none); after a chunk, an {"error"} line ends the stream.
            # (D5, transcripts/kill-stream.ndjson) v0.33 passes the runner's EOF on.
            died = RUNNER_EOF if self.current else RUNNER_DIED
            if stream and resp.stream_started:
                resp.write(go_json({"error": died}) + b"\n")
                resp.end()
            else:
                resp.send(500, go_json({"error": died}), "application/json")
            return False
        elif s.fault == "garbage":
            junk = b'{"model":"' + name.encode() + b'","created_at":\n'
            if stream:
                resp.write(junk)
            else:
                resp.send(200, junk, JSON_CT)
                return False
        return True


__all__ = ["ClientGone", "FakeOllama", "ModelScript", "canonical"]
