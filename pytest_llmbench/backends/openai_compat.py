"""OpenAI-compatible ``/v1/chat/completions`` streaming (SSE), shared by llama-server."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import replace
from typing import Any

import httpx

from pytest_llmbench.backends.base import Backend, Messages, Progress, get_json, http_client
from pytest_llmbench.errors import ModelNotFound, StreamError
from pytest_llmbench.generation import Settings
from pytest_llmbench.serving import ServerOptions
from pytest_llmbench.streaming import (
    SSE_TOKEN_PREFIX,
    Accumulator,
    Delta,
    Regions,
    SSETokenRuns,
    iter_sse_data,
    parse_json_line,
)


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
        with http_client(10.0, self.headers()) as client:
            listing = get_json(client, f"{self.base_url}/v1/models", self.label)
        ids = [m.get("id") for m in listing.get("data", []) if isinstance(m, dict)]
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

    def iter_deltas(self, response: httpx.Response) -> Iterator[Delta]:
        # Read in the pieces the socket delivers; a run of token events read together is
        # decoded in bulk (see pytest_llmbench.streaming), everything else event by event.
        regions = Regions("\n\n")
        runs = SSETokenRuns()
        for text in response.iter_text():
            region = regions.feed(text)
            if region and (yield from self._sse_region(region, runs)):
                return
        rest = regions.flush()
        if rest and (yield from self._sse_events(rest, runs)):
            return
        raise StreamError(
            f"{self.label}: the stream ended without [DONE] (connection closed early); "
            f"the answer is incomplete. Check the server log."
        )

    def _sse_region(self, region: str, runs: SSETokenRuns) -> Generator[Delta, None, bool]:
        """The deltas of a region of complete SSE events; True once ``[DONE]`` was read."""
        split = runs.split(region)
        if split is not None:
            before, texts, region = split
            if before and (yield from self._sse_events(before, runs)):
                return True
            if "" in texts:
                texts = [t for t in texts if t]
            if texts:
                yield Delta(batch=texts)
        return bool(region) and (yield from self._sse_events(region, runs))

    def _sse_events(self, text: str, runs: SSETokenRuns) -> Generator[Delta, None, bool]:
        """Event by event (``json.loads``); learns the token events' suffix for ``runs``."""
        label = self.label
        token_payload = SSE_TOKEN_PREFIX[len("data: ") :]
        for raw in text.split("\n\n"):
            for payload in iter_sse_data(raw.split("\n")):
                if payload == "[DONE]":
                    return True
                learned = None
                if payload.startswith(token_payload) and not (
                    runs.suffix is not None and payload.endswith(runs.suffix)
                ):
                    learned = runs.learn(payload)
                event = parse_json_line(payload, label, "SSE")
                error = event.get("error")
                if error is not None:
                    message = error.get("message", error) if isinstance(error, dict) else error
                    raise StreamError(
                        f"{label}: the server reported an error mid-stream: {message}"
                    )
                final: dict[str, Any] | None = None
                if event.get("usage") or event.get("timings"):
                    final = {k: event[k] for k in ("usage", "timings") if event.get(k)}
                fingerprint = event.get("system_fingerprint")
                if fingerprint and self.server_info.build is None:
                    self.server_info = replace(self.server_info, build=fingerprint)
                if learned is not None:
                    suffix, rest = learned
                    # Bulk-decoded events must leave everything as this path would: no error,
                    # no usage/timings, and the build already recorded.
                    if (
                        rest.get("error") is None
                        and not (rest.get("usage") or rest.get("timings"))
                        and (
                            not rest.get("system_fingerprint") or self.server_info.build is not None
                        )
                    ):
                        runs.accept(suffix)
                choices = event.get("choices") or ()
                if not choices:
                    if final:
                        yield Delta(final=final)
                    continue
                choice = choices[0]
                delta = choice.get("delta") or {}
                yield Delta(
                    content=delta.get("content") or "",
                    # llama-server: reasoning_content; Ollama's and vLLM's OpenAI layer: reasoning
                    thinking=delta.get("reasoning_content") or delta.get("reasoning") or "",
                    finish_reason=choice.get("finish_reason"),
                    final=final,
                )
        return False

    def metrics(self, acc: Accumulator) -> dict[str, Any]:
        usage = acc.final.get("usage") or {}
        timings = acc.final.get("timings") or {}
        out: dict[str, Any] = {
            "prompt_tokens": usage.get("prompt_tokens", timings.get("prompt_n")),
            "output_tokens": usage.get("completion_tokens", timings.get("predicted_n")),
        }
        if timings:
            out.update(
                cached_prompt_tokens=timings.get("cache_n"),
                server_decode_tps=timings.get("predicted_per_second"),
                prompt_tps=timings.get("prompt_per_second"),
                server_prompt_ms=timings.get("prompt_ms"),
                server_decode_ms=timings.get("predicted_ms"),
            )
            if usage.get("prompt_tokens") is None and "cache_n" in timings:
                out["prompt_tokens"] = timings.get("prompt_n", 0) + timings["cache_n"]
        return out
