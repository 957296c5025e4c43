"""OpenAI-compatible ``/v1/chat/completions`` streaming (SSE), shared by llama-server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any, NamedTuple

from pytest_llmbench.errors import ModelNotFound, ServerError, StreamError
from pytest_llmbench.serve.backends.base import Backend, Messages, Progress
from pytest_llmbench.serve.bounded import BoundedResponse, ServerClient, get_json
from pytest_llmbench.serve.generation import ServerFigures, Settings
from pytest_llmbench.serve.server_info import ServerOptions
from pytest_llmbench.serve.streaming import (
    Accumulator,
    Delta,
    FinalFacts,
    iter_lines,
    iter_sse_data,
    parse_json_line,
)
from pytest_llmbench.serve.wire import Reader


class OpenAIBackend(Backend):
    """Any OpenAI-compatible endpoint (``openai:MODEL@URL``). Sends only standard fields."""

    base_url: str

    def __init__(self, spec: Any, options: ServerOptions | None = None) -> None:
        super().__init__(spec, options)
        self.base_url = (spec.url or "").removesuffix("/v1")

    def headers(self) -> dict[str, str]:
        key = self.options.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def prepare(self, settings: Settings, progress: Progress) -> float | None:
        with ServerClient(self.label, headers=self.headers()) as client:
            # A llama-server that is still loading answers 503 here: wait for it.
            listing = get_json(
                client,
                f"{self.base_url}/v1/models",
                self.label,
                wait_s=self.options.health_timeout_s,
                progress=progress,
            )
        read = Reader(self.label, ServerError, "/v1/models")
        ids = [
            read.text(m, "id", f"data[{n}]")
            for n, m in enumerate(read.array(listing, "data", ""))
            if isinstance(m, dict)
        ]
        if ids and self.spec.model not in ids:
            raise ModelNotFound(
                f"{self.label}: the endpoint does not list model {self.spec.model!r} "
                f"(it has: {', '.join(map(str, ids[:10]))}). Fix the name in --llm-models."
            )
        self.server_info = replace(self.server_info, model_id=self.spec.model)
        return None

    def release(self) -> None:
        return None

    def generate_url(self) -> str:
        return f"{self.base_url}/v1/chat/completions"

    def request_body(self, messages: Messages, settings: Settings) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.spec.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": settings.max_tokens,
            "temperature": settings.temperature,
            "seed": settings.seed,
        }
        if settings.top_p is not None:
            body["top_p"] = settings.top_p
        if settings.stop:
            body["stop"] = list(settings.stop)
        return body

    def iter_deltas(self, response: BoundedResponse) -> Iterator[Delta]:
        label = self.label
        read = Reader(label, StreamError, "/v1/chat/completions")
        for payload in iter_sse_data(iter_lines(self.stream_text(response))):
            if payload == "[DONE]":
                return
            event = parse_json_line(payload, label, "SSE")
            error = event.get("error")
            if error is not None:
                message = error.get("message", error) if isinstance(error, dict) else error
                raise StreamError(f"{label}: the server reported an error mid-stream: {message}")
            final = _final(event, read) if ("usage" in event or "timings" in event) else None
            if self.server_info.build is None:
                fingerprint = read.text(event, "system_fingerprint", "event")
                if fingerprint:
                    self.server_info = replace(self.server_info, build=fingerprint)
            choices = read.objects(event, "choices", "event")
            if not choices:
                if final:
                    yield Delta(final=final)
                continue
            choice = choices[0]
            delta = read.object(choice, "delta", "choices[0]")
            content = read.text(delta, "content", "choices[0].delta")
            # llama-server: reasoning_content; Ollama's and vLLM's OpenAI layer: reasoning
            thinking = read.text(delta, "reasoning_content", "choices[0].delta") or read.text(
                delta, "reasoning", "choices[0].delta"
            )
            finish = read.text(choice, "finish_reason", "choices[0]")
            yield Delta(content or "", thinking or "", finish, final)
        raise StreamError(
            f"{label}: the stream ended without [DONE] (connection closed early); "
            f"the answer is incomplete. Check the server log."
        )

    def metrics(self, acc: Accumulator) -> ServerFigures:
        final = acc.final if isinstance(acc.final, OpenAIFinal) else _NO_FINAL
        usage = final.usage or _NO_USAGE
        timings = final.timings or _NO_TIMINGS
        # llama-server's timings, where it sends them, before the OpenAI usage details
        # (vLLM, OpenAI): the server's own counts of reused prompt tokens and of reasoning
        # tokens, used where it gives them. llama-server writes 0.0 for a rate whose
        # divisor is not known, and predicted_per_second is (n - 1) / t, 0.0 for n <= 1
        # (tools/server/server-common.h, n_gen_tps / n_prompt_tps): not reported, never
        # 0 tok/s.
        prompt = _first(usage.prompt_tokens, timings.prompt_n)
        if usage.prompt_tokens is None and timings.cache_n is not None:
            prompt = (timings.prompt_n or 0) + timings.cache_n
        return ServerFigures(
            prompt_tokens=prompt,
            output_tokens=_first(usage.completion_tokens, timings.predicted_n),
            thinking_tokens=usage.reasoning_tokens,
            cached_prompt_tokens=_first(timings.cache_n, usage.cached_tokens),
            server_decode_tps=timings.predicted_per_second or None,
            prompt_tps=timings.prompt_per_second or None,
            server_prompt_ms=timings.prompt_ms,
            server_decode_ms=timings.predicted_ms,
        )


class Usage(NamedTuple):
    """An event's ``usage`` (and its ``*_details``), typed: only the fields the plugin reads."""

    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None
    reasoning_tokens: int | None

    @classmethod
    def read(cls, usage: dict[str, Any], read: Reader) -> Usage:
        return cls(
            prompt_tokens=read.count(usage, "prompt_tokens", "usage"),
            completion_tokens=read.count(usage, "completion_tokens", "usage"),
            cached_tokens=_detail(usage, "prompt_tokens_details", "cached_tokens", read),
            reasoning_tokens=_detail(usage, "completion_tokens_details", "reasoning_tokens", read),
        )


def _detail(usage: dict[str, Any], details: str, key: str, read: Reader) -> int | None:
    """``usage[details][key]``: a count of the OpenAI usage details."""
    return read.count(read.object(usage, details, "usage"), key, f"usage.{details}")


@dataclass(frozen=True, slots=True)
class Timings:
    """llama-server's ``timings``, typed: only the fields the plugin reads."""

    cache_n: int | None = None
    prompt_n: int | None = None
    predicted_n: int | None = None
    prompt_ms: float | None = None
    predicted_ms: float | None = None
    prompt_per_second: float | None = None
    predicted_per_second: float | None = None

    @classmethod
    def read(cls, timings: dict[str, Any], read: Reader) -> Timings:
        values: dict[str, Any] = {k: read.count(timings, k, "timings") for k in _TIMING_COUNTS}
        values.update((k, read.number(timings, k, "timings")) for k in _TIMING_NUMBERS)
        return cls(**values)


_TIMING_COUNTS = ("cache_n", "prompt_n", "predicted_n")
_TIMING_NUMBERS = ("prompt_ms", "predicted_ms", "prompt_per_second", "predicted_per_second")


@dataclass(frozen=True, slots=True)
class OpenAIFinal(FinalFacts):
    """A stream's ``usage`` and ``timings``: each the latest event's that had one."""

    usage: Usage | None = None
    timings: Timings | None = None

    def merged(self, later: FinalFacts) -> FinalFacts:
        if not isinstance(later, OpenAIFinal):
            return later
        return OpenAIFinal(
            usage=self.usage if later.usage is None else later.usage,
            timings=self.timings if later.timings is None else later.timings,
        )

    def as_reply(self) -> dict[str, Any]:
        reply: dict[str, Any] = {}
        if self.usage is not None:
            reply["usage"] = self.usage._asdict()
        if self.timings is not None:
            reply["timings"] = asdict(self.timings)
        return reply


_NO_FINAL = OpenAIFinal()
_NO_USAGE = Usage(None, None, None, None)
_NO_TIMINGS = Timings()


def _final(event: dict[str, Any], read: Reader) -> OpenAIFinal | None:
    """The ``usage`` and ``timings`` of an event, typed (``None`` when it has neither)."""
    usage = read.object(event, "usage", "event")
    typed_usage = Usage.read(usage, read) if usage else None
    timings = read.object(event, "timings", "event")
    typed_timings = Timings.read(timings, read) if timings else None
    if typed_usage is None and typed_timings is None:
        return None
    return OpenAIFinal(typed_usage, typed_timings)


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)
