"""Ollama's native API (``/api/chat``, NDJSON), with pull, preload and unload.

Read against ollama/ollama v0.12.x and fb30760 (v0.33, llama-server inside):

- every request carries ``keep_alive`` (:data:`KEEP_ALIVE`), so the model stays loaded for the
  run; each final chunk's ``load_duration`` is recorded, and a reload is named
  (``backends/ollama_runner.py``);
- ``truncate: false`` and ``shift: false``: an over-long prompt is refused (400) instead of
  cut silently (v0.12.6+; server/routes.go, llm/llama_server.go:295-300); v0.12.0-v0.12.5
  ignore both and cut the prompt to the context (runner.go:133-172), seen here as
  ``prompt_eval_count`` reaching the context size; both are one item error naming it;
- the context in use is read after the load: /api/ps ``context_length`` (the context in use
  since v0.30, the requested one before: routes.go:1795) capped at /api/show's trained
  context, as both lines cap ``num_ctx`` silently (sched.go:161-167);
- unloading (``keep_alive: 0``) returns before the runner stops, so :meth:`release` waits
  until /api/ps no longer lists the model (sched.go:458-460).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from pytest_llmbench.errors import (
    GenerationError,
    ModelNotFound,
    ReplyLimitError,
    RequestRejected,
    ServerError,
    StreamError,
)
from pytest_llmbench.serve import reply_limits
from pytest_llmbench.serve.backends.base import Backend, Events, Messages, Progress, Timeouts
from pytest_llmbench.serve.backends.ollama_host import model_matches, ollama_base_url
from pytest_llmbench.serve.backends.ollama_replies import (
    PS,
    TAGS,
    VERSION,
    ChatLine,
    Listed,
    OllamaMetrics,
    PullLine,
    Shown,
    read_models,
    read_version,
    reader,
)
from pytest_llmbench.serve.backends.ollama_runner import RunnerWatch
from pytest_llmbench.serve.bounded import BoundedResponse, ServerClient, get_json
from pytest_llmbench.serve.generation import Generation, ServerFigures, Settings
from pytest_llmbench.serve.processes import ServerProcess
from pytest_llmbench.serve.reply_limits import ReplyLimits
from pytest_llmbench.serve.server_info import ServerOptions
from pytest_llmbench.serve.specs import ModelSpec
from pytest_llmbench.serve.streaming import Accumulator, Delta, iter_lines, parse_json_line
from pytest_llmbench.serve.wire import Reader

NS = 1e9
KEEP_ALIVE = "60m"
"""Sent with every request: the model stays loaded while the run goes on (Ollama's default is
5 minutes), yet a run killed before its unload frees the memory within the hour."""
UNLOAD_WAIT_S = 60.0
"""How long :meth:`OllamaBackend.release` waits for /api/ps to stop listing the model."""
FIT = {"truncate": False, "shift": False}
"""Refuse an over-long prompt and stop at the context's end instead of dropping tokens."""
_CONTEXT_WORDS = ("context length", "context size", "exceeds the available context")


_NETWORK_WORDS = (
    "dial tcp",
    "no such host",
    "connection refused",
    "network is unreachable",
    "i/o timeout",
    "tls handshake",
    "connection reset",
    "deadline exceeded",
)
"""Go's net/http errors: the server could not reach the registry (not a wrong name)."""


def _error_message(body: str) -> str:
    """The message of Ollama's ``{"error": "..."}`` body (or the body as it came). Since
    v0.30 Ollama passes llama-server's own error JSON on string-encoded inside its ``error``
    (``{"error": "{\"error\":{\"code\":400,\"message\":...}}"}``): unwrapped to its message."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return body.strip()
    if isinstance(error, dict):
        error = error.get("message")
    if isinstance(error, str) and error.lstrip().startswith("{"):
        return _error_message(error)
    return str(error).strip() if error else body.strip()


def _no_chat_template(show: Shown) -> bool:
    """Whether an /api/show answer describes a model without a chat template: its template
    passes the prompt through (``{{ .Prompt }}``, what ``ollama create`` writes for a GGUF
    whose template it does not know) and no renderer formats the messages instead."""
    if show.renderer or show.template is None:
        return False
    return "".join(show.template.split()) in ("", "{{.Prompt}}")


def _thinking_tokens(acc: Accumulator, eval_count: int) -> int | None:
    """Thinking tokens from the server's output count: ``eval_count`` less the streamed
    answer pieces and the unstreamed end-of-sequence token. Ollama counts no thinking on its
    own, and its thinking parser merges tokens into one chunk (38 chunks for 40 tokens,
    v0.33.0-rc2 ``PARSER qwen3-thinking``), so the chunks undercount. None without
    thinking or without a count."""
    clock = acc.clock
    if not clock.thinking_events or not eval_count:
        return None
    answer = clock.token_events - clock.thinking_events
    eos = 1 if acc.finish_reason == "stop" else 0
    return max(clock.thinking_events, eval_count - answer - eos)


def _pull_failure(label: str, model: str, error: str) -> ServerError:
    """A failed pull: the registry out of reach (network) or a name it does not have."""
    if any(word in error.lower() for word in _NETWORK_WORDS):
        return ServerError(
            f"{label}: `ollama pull {model}` failed: the Ollama server could not reach the "
            f"registry ({error}). Check the server's network (DNS, proxy: HTTPS_PROXY in the "
            f"environment of `ollama serve`), or pull the model where it can be reached."
        )
    return ModelNotFound(
        f"{label}: `ollama pull {model}` failed: {error}. Check the model name on "
        f"ollama.com/library."
    )


class OllamaBackend(Backend):
    """``ollama:NAME[:TAG][@URL]``: attach (or start ``ollama serve``), pull, preload, unload."""

    def __init__(self, spec: ModelSpec, options: ServerOptions | None = None) -> None:
        super().__init__(spec, options)
        self.base_url = spec.url or ollama_base_url(os.environ.get("OLLAMA_HOST"))
        self.process: ServerProcess | None = None
        self.loaded = False
        self.loaded_ctx: int | None = None
        self.ctx_in_use: int | None = None
        """The context Ollama runs the model with (``num_ctx`` capped at the trained one)."""
        self.watch = RunnerWatch()
        self.server_info = replace(self.server_info, prompt_cache="on: Ollama cannot turn it off")

    def _client(self, limits: ReplyLimits | None = None) -> ServerClient:
        return ServerClient(self.label, limits)

    def _ensure_server(self, progress: Progress) -> None:
        with self._client(reply_limits.PROBE) as client:
            try:
                client.get(f"{self.base_url}/api/version")
                return
            except ReplyLimitError:
                raise
            except ServerError:
                pass
        binary = shutil.which("ollama")
        if binary is None or self.spec.url is not None:
            raise ServerError(
                f"{self.label}: no Ollama server answers at {self.base_url}. Start it with "
                f"`ollama serve` (or set OLLAMA_HOST / use ollama:NAME@URL)."
            )
        progress(f"{self.label}: starting `ollama serve` at {self.base_url}")
        env_host = self.base_url.split("://", 1)[1]
        safe = env_host.replace(":", "-").replace("/", "_")
        log = self.options.log_directory() / f"ollama-serve-{safe}.log"
        self.process = ServerProcess(
            [binary, "serve"], log, self.label, env={"OLLAMA_HOST": env_host}
        )
        self.process.wait_healthy(f"{self.base_url}/api/version", 60.0, progress)

    def prepare(self, settings: Settings, progress: Progress) -> float | None:
        if self.loaded and self.loaded_ctx == settings.ctx:
            return None  # warm: loaded by an earlier item of this model
        self._ensure_server(progress)
        with self._client() as client:
            version = self._get(client, VERSION)
            self.server_info = replace(
                self.server_info, version=read_version(version, reader(self.label, VERSION))
            )
            tags = self._models(client, TAGS)
        entry = self._entry(tags)
        if entry is None:
            if not self.options.pull:
                names = [m.name for m in tags]
                raise ModelNotFound(
                    f"{self.label}: model {self.spec.model!r} is not pulled on {self.base_url} "
                    f"(it has: {', '.join(names[:10]) or 'none'}). Run `ollama pull "
                    f"{self.spec.model}` or pass --llm-pull."
                )
            self.pull(progress)
            with self._client() as client:
                entry = self._entry(self._models(client, TAGS))
        if entry is not None:
            self.server_info = replace(
                self.server_info,
                digest=entry.digest,
                quantization=entry.quantization,
                parameter_size=entry.parameter_size,
            )
        return self.preload(settings)

    def _get(self, client: ServerClient, endpoint: str) -> dict[str, Any]:
        return get_json(client, f"{self.base_url}{endpoint}", self.label)

    def _models(self, client: ServerClient, endpoint: str) -> tuple[Listed, ...]:
        """The models an ``/api/tags`` or ``/api/ps`` answer lists, typed."""
        return read_models(self._get(client, endpoint), reader(self.label, endpoint))

    def _entry(self, models: tuple[Listed, ...]) -> Listed | None:
        """This model's entry in an ``/api/tags`` or ``/api/ps`` list."""
        return next((m for m in models if model_matches(self.spec.model, m.name)), None)

    def pull(self, progress: Progress) -> None:
        """``POST /api/pull`` with a progress line every few seconds."""
        last = 0.0
        with (
            self._client(reply_limits.PULL) as client,
            client.stream(
                "POST", f"{self.base_url}/api/pull", json={"model": self.spec.model, "stream": True}
            ) as response,
        ):
            if response.status_code >= 400:
                message = _error_message(response.read_capped(4096)[:500])
                raise _pull_failure(
                    self.label, self.spec.model, f"HTTP {response.status_code}: {message}"
                )
            read = reader(self.label, "/api/pull")
            for line in response.iter_lines():
                if not line.strip():
                    continue
                event = parse_json_line(line, self.label, "NDJSON")
                if "error" in event:
                    raise _pull_failure(self.label, self.spec.model, str(event["error"]))
                now = time.monotonic()
                step = PullLine.read(event, read)
                if now - last > 2 or step.status == "success":
                    total, done = step.total, step.completed
                    pct = f" {100 * done / total:.0f}%" if total and done else ""
                    progress(f"{self.label}: pull: {step.status}{pct}")
                    last = now

    def preload(self, settings: Settings) -> float:
        """Load the model with an empty chat (done_reason "load"), timed on the client."""
        started = time.perf_counter()
        with self._client(reply_limits.preload_limits(self.options.health_timeout_s)) as client:
            response = client.post(
                f"{self.base_url}/api/chat",
                json={
                    "model": self.spec.model,
                    "messages": [],
                    "stream": False,
                    "options": {"num_ctx": settings.ctx},
                    "keep_alive": KEEP_ALIVE,
                    **FIT,
                },
            )
        if response.status_code == 404:
            raise ModelNotFound(
                f"{self.label}: {response.text[:200]}; run `ollama pull {self.spec.model}`"
            )
        if response.status_code >= 400:
            raise ServerError(
                f"{self.label}: preload failed: HTTP {response.status_code} {response.text[:200]}"
            )
        self.loaded, self.loaded_ctx = True, settings.ctx
        load_s = time.perf_counter() - started
        self.watch.loaded()
        self._read_context(settings.ctx)
        return load_s

    def _read_context(self, asked: int) -> None:
        """Record the context in use; warn when Ollama capped the one asked for, and when
        the model has no chat template."""
        ps: dict[str, Any] = {}
        show: Any = {}
        with self._client() as client:
            try:
                ps = self._get(client, PS)
                answer = client.post(f"{self.base_url}/api/show", json={"model": self.spec.model})
                show = answer.json() if answer.status_code == 200 else {}
            except ReplyLimitError:
                raise
            except (ServerError, ValueError):
                pass  # not an Ollama that answers them: the context asked for is the one used
        running = self._entry(read_models(ps, reader(self.label, PS)))
        shown = Shown.read(show, reader(self.label, "/api/show"))
        in_use = [*shown.trained_ctx, *([running.context_length or 0] if running else [])]
        # num_ctx as sent, capped at what /api/ps and the trained context say.
        self.ctx_in_use = min([asked, *(n for n in in_use if n > 0)])
        warnings: list[str] = []
        if self.ctx_in_use is not None and self.ctx_in_use < asked:
            warnings.append(
                f"{self.label}: Ollama runs this model with a context of {self.ctx_in_use} "
                f"tokens, not the {asked} asked for (--llm-ctx / num_ctx): it caps num_ctx at "
                f"the model's trained context without an error"
            )
        if _no_chat_template(shown):
            warnings.append(
                f"{self.label}: the Ollama model has no chat template (/api/show template "
                f"{shown.template!r}), so each prompt reaches the model as bare text, "
                f"not in its chat format (a model created from a GGUF without TEMPLATE); add "
                f"a TEMPLATE (or RENDERER) to its Modelfile and `ollama create` it again"
            )
        self.server_info = replace(
            self.server_info, n_ctx=self.ctx_in_use, warnings=tuple(warnings)
        )

    def release(self) -> None:
        if self.loaded:
            try:
                with self._client(reply_limits.unload_limits(UNLOAD_WAIT_S)) as client:
                    client.post(
                        f"{self.base_url}/api/chat",
                        json={"model": self.spec.model, "messages": [], "keep_alive": 0},
                    )
                    self._wait_unloaded(client)
            except ReplyLimitError as exc:
                warnings.warn(str(exc), stacklevel=1)
            except ServerError:
                pass  # the server is gone: nothing left to unload
            self.loaded = False
        if self.process is not None:
            self.process.stop()
            self.process = None

    def _wait_unloaded(self, client: ServerClient, interval_s: float = 0.05) -> None:
        """Until /api/ps stops listing the model (unloading is asynchronous), so the next
        model's load does not include this one's teardown; bounded by UNLOAD_WAIT_S."""
        deadline = time.monotonic() + UNLOAD_WAIT_S
        while time.monotonic() < deadline:
            response = client.get(f"{self.base_url}{PS}")
            if response.status_code != 200:
                return  # not an Ollama that lists its runners: nothing to wait for
            try:
                answer = response.json()
                running = self._entry(read_models(answer, reader(self.label, PS)))
            except (ValueError, ServerError) as exc:
                warnings.warn(
                    f"{self.label}: cannot tell whether the model is unloaded: "
                    f"{exc if isinstance(exc, ServerError) else f'/api/ps answered {exc}'}",
                    stacklevel=1,
                )
                return
            if running is None:
                return
            time.sleep(interval_s)
        warnings.warn(
            f"{self.label}: still listed in /api/ps {UNLOAD_WAIT_S:g} s after unloading; "
            f"the next model's load time may include its teardown",
            stacklevel=1,
        )

    def generate(
        self, messages: Messages, settings: Settings, timeouts: Timeouts, events: Events = None
    ) -> Generation:
        """A generation with its load wait recorded and its caveats (reload, prompt cache);
        a prompt that filled the whole context (v0.12.0-0.12.5 cut it) is an error."""
        generation = super().generate(messages, settings, timeouts, events)
        load_s = generation.metrics.server_load_s
        generation = replace(
            generation,
            caveats=generation.caveats
            + self.watch.caveats(messages, load_s, generation.metrics.prompt_tps),
        )
        prompt = generation.metrics.prompt_tokens
        if self.ctx_in_use and prompt is not None and prompt >= self.ctx_in_use:
            raise GenerationError(
                f"{self.label}: the prompt filled the whole context of {self.ctx_in_use} tokens "
                f"(prompt_eval_count {prompt}): Ollama {self.server_info.version} cut "
                f"it to fit without an error, so the model answered a truncated prompt. "
                f"Shorten the prompt or raise --llm-ctx.",
                partial=generation,
            )
        return generation

    def rejected(self, response: BoundedResponse) -> RequestRejected:
        """A 400 about the context (current Ollama, or llama-server's error passed on) names
        the context size."""
        error = super().rejected(response)
        if response.status_code == 400 and any(w in error.body.lower() for w in _CONTEXT_WORDS):
            ctx = self.ctx_in_use or self.loaded_ctx
            return RequestRejected(
                f"{self.label}: the prompt does not fit the context of {ctx} tokens "
                f"(num_ctx): Ollama answered HTTP 400: {_error_message(error.body)}. Shorten "
                f"the prompt or raise --llm-ctx.",
                status=400,
                body=error.body,
            )
        return error

    def generate_url(self) -> str:
        return f"{self.base_url}/api/chat"

    def request_body(self, messages: Messages, settings: Settings) -> dict[str, Any]:
        options: dict[str, Any] = {
            "num_ctx": settings.ctx,
            "num_predict": settings.max_tokens,
            "temperature": settings.temperature,
            "seed": settings.seed,
        }
        if settings.top_p is not None:
            options["top_p"] = settings.top_p
        if settings.top_k is not None:
            options["top_k"] = settings.top_k
        if settings.stop:
            options["stop"] = list(settings.stop)
        body: dict[str, Any] = {
            "model": self.spec.model,
            "messages": messages,
            "stream": True,
            "options": options,
            "keep_alive": KEEP_ALIVE,
            **FIT,
        }
        if settings.think is not None:
            body["think"] = settings.think
        return body

    def iter_deltas(self, response: BoundedResponse) -> Iterator[Delta]:
        label = self.label
        read = Reader(label, StreamError, "/api/chat")
        for line in iter_lines(self.stream_text(response)):
            if not line:
                continue
            chunk = parse_json_line(line, label, "NDJSON")
            if "error" in chunk:
                raise StreamError(f"{label}: Ollama reported an error mid-stream: {chunk['error']}")
            typed = ChatLine.read(chunk, read)
            if typed.figures is not None:
                yield Delta(
                    content=typed.content,
                    thinking=typed.thinking,
                    finish_reason=typed.done_reason,
                    final=typed.figures,
                )
                return
            yield Delta(content=typed.content, thinking=typed.thinking)
        raise StreamError(
            f"{label}: the stream ended without a final done:true chunk (connection closed "
            f"early); the answer is incomplete. Check `ollama serve`'s log."
        )

    def metrics(self, acc: Accumulator) -> ServerFigures:
        final = acc.final
        if not isinstance(final, OllamaMetrics):  # no final line
            return ServerFigures()
        eval_count, eval_ns = final.eval_count, final.eval_duration
        prompt_count, prompt_ns = final.prompt_eval_count, final.prompt_eval_duration
        return ServerFigures(
            prompt_tokens=prompt_count,
            output_tokens=eval_count,
            thinking_tokens=_thinking_tokens(acc, eval_count),
            server_decode_tps=eval_count / (eval_ns / NS) if eval_ns else None,
            prompt_tps=prompt_count / (prompt_ns / NS) if prompt_ns else None,
            server_prompt_ms=prompt_ns / 1e6 if prompt_ns else None,
            server_decode_ms=eval_ns / 1e6 if eval_ns else None,
            server_load_s=final.load_duration / NS,
        )

    def memory(self) -> dict[str, float | None]:
        """The loaded model's memory from /api/ps: ``size`` (CPU and GPU together) as
        ``model_mb``; ``size_vram`` as ``vram_mb`` only where a GPU holds part of it (it is
        0 on a CPU server: not a measurement of 0 MB)."""
        try:
            with self._client(reply_limits.PROBE) as client:
                ps = self._get(client, PS)
        except ReplyLimitError:
            raise
        except ServerError:
            return {}
        running = self._entry(read_models(ps, reader(self.label, PS)))
        if running is None:
            return {}
        return {"model_mb": _mib(running.size), "vram_mb": _mib(running.size_vram)}


def _mib(value: int | None) -> float | None:
    """Bytes as MiB; None for a missing or zero figure."""
    return value / 2**20 if value else None
