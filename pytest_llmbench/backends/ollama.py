"""Ollama's native API (``/api/chat``, NDJSON), with pull, preload and unload."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Generator, Iterator
from dataclasses import replace
from typing import Any

import httpx

from pytest_llmbench.backends.base import Backend, Messages, Progress, get_json, http_client
from pytest_llmbench.backends.ollama_host import model_matches, ollama_base_url
from pytest_llmbench.errors import ModelNotFound, ServerError, StreamError
from pytest_llmbench.generation import Settings
from pytest_llmbench.servers import ServerProcess
from pytest_llmbench.serving import ServerOptions
from pytest_llmbench.specs import ModelSpec
from pytest_llmbench.streaming import (
    Accumulator,
    Delta,
    NDJSONTokenRuns,
    Regions,
    parse_json_line,
)

NS = 1e9


class OllamaBackend(Backend):
    """``ollama:NAME[:TAG][@URL]``: attach (or start ``ollama serve``), pull, preload, unload."""

    def __init__(self, spec: ModelSpec, options: ServerOptions | None = None) -> None:
        super().__init__(spec, options)
        self.base_url = spec.url or ollama_base_url(os.environ.get("OLLAMA_HOST"))
        self.process: ServerProcess | None = None
        self.loaded = False
        self.loaded_ctx: int | None = None

    def _client(self, timeout: float = 30.0) -> httpx.Client:
        return http_client(httpx.Timeout(timeout, connect=5.0))

    def _ensure_server(self, progress: Progress) -> None:
        with self._client(5.0) as client:
            try:
                client.get(f"{self.base_url}/api/version")
                return
            except httpx.HTTPError:
                pass
        binary = shutil.which("ollama")
        if binary is None or self.spec.url is not None:
            raise ServerError(
                f"{self.label}: no Ollama server answers at {self.base_url}. Start it with "
                f"`ollama serve` (or set OLLAMA_HOST / use ollama:NAME@URL)."
            )
        progress(f"{self.label}: starting `ollama serve` at {self.base_url}")
        env_host = self.base_url.split("://", 1)[1]
        log = self.options.log_directory() / f"ollama-serve-{env_host.replace(':', '-')}.log"
        self.process = ServerProcess(
            [binary, "serve"], log, self.label, env={"OLLAMA_HOST": env_host}
        )
        self.process.wait_healthy(f"{self.base_url}/api/version", 60.0, progress)

    def prepare(self, settings: Settings, progress: Progress) -> float | None:
        if self.loaded and self.loaded_ctx == settings.ctx:
            return None  # warm: loaded by an earlier item of this model
        self._ensure_server(progress)
        with self._client() as client:
            version = get_json(client, f"{self.base_url}/api/version", self.label)
            self.server_info = replace(self.server_info, version=version.get("version"))
            tags = get_json(client, f"{self.base_url}/api/tags", self.label)
        entry = self._tag_entry(tags)
        if entry is None:
            if not self.options.pull:
                names = [str(m.get("name", "")) for m in tags.get("models", [])]
                raise ModelNotFound(
                    f"{self.label}: model {self.spec.model!r} is not pulled on {self.base_url} "
                    f"(it has: {', '.join(names[:10]) or 'none'}). Run `ollama pull "
                    f"{self.spec.model}` or pass --llm-pull."
                )
            self.pull(progress)
            with self._client() as client:
                tags = get_json(client, f"{self.base_url}/api/tags", self.label)
            entry = self._tag_entry(tags) or {}
        details = entry.get("details") or {}
        self.server_info = replace(
            self.server_info,
            digest=entry.get("digest"),
            quantization=details.get("quantization_level"),
            parameter_size=details.get("parameter_size"),
        )
        return self.preload(settings)

    def _tag_entry(self, tags: dict[str, Any]) -> dict[str, Any] | None:
        """This model's entry in an ``/api/tags`` answer."""
        for model in tags.get("models", []):
            if isinstance(model, dict) and model_matches(self.spec.model, model.get("name", "")):
                return model
        return None

    def pull(self, progress: Progress) -> None:
        """``POST /api/pull`` with a progress line every few seconds."""
        last = 0.0
        with (
            self._client(3600.0) as client,
            client.stream(
                "POST", f"{self.base_url}/api/pull", json={"model": self.spec.model, "stream": True}
            ) as response,
        ):
            if response.status_code >= 400:
                response.read()
                raise ModelNotFound(
                    f"{self.label}: pull failed: HTTP {response.status_code} {response.text[:200]}"
                )
            for line in response.iter_lines():
                if not line.strip():
                    continue
                event = parse_json_line(line, self.label, "NDJSON")
                if "error" in event:
                    raise ModelNotFound(
                        f"{self.label}: `ollama pull {self.spec.model}` failed: {event['error']}. "
                        f"Check the model name on ollama.com/library."
                    )
                now = time.monotonic()
                status = event.get("status", "")
                if now - last > 2 or status == "success":
                    total, done = event.get("total"), event.get("completed")
                    pct = f" {100 * done / total:.0f}%" if total and done else ""
                    progress(f"{self.label}: pull: {status}{pct}")
                    last = now

    def preload(self, settings: Settings) -> float:
        """Load the model with an empty chat (done_reason "load"), timed on the client."""
        started = time.perf_counter()
        with self._client(self.options.health_timeout_s) as client:
            response = client.post(
                f"{self.base_url}/api/chat",
                json={
                    "model": self.spec.model,
                    "messages": [],
                    "stream": False,
                    "options": {"num_ctx": settings.ctx},
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
        return time.perf_counter() - started

    def release(self) -> None:
        if self.loaded:
            try:
                with self._client(60.0) as client:
                    client.post(
                        f"{self.base_url}/api/chat",
                        json={"model": self.spec.model, "messages": [], "keep_alive": 0},
                    )
            except httpx.HTTPError:
                pass  # the server is gone: nothing left to unload
            self.loaded = False
        if self.process is not None:
            self.process.stop()
            self.process = None

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
        }
        if settings.think is not None:
            body["think"] = settings.think
        return body

    def iter_deltas(self, response: httpx.Response) -> Iterator[Delta]:
        # Read in the pieces the socket delivers; a run of token lines read together is
        # decoded in bulk (see pytest_llmbench.streaming), everything else line by line.
        regions = Regions("\n")
        runs = NDJSONTokenRuns()
        for text in response.iter_text():
            region = regions.feed(text)
            if region and (yield from self._ndjson_region(region, runs)):
                return
        rest = regions.flush()
        if rest and (yield from self._ndjson_lines([rest], runs)):
            return
        raise StreamError(
            f"{self.label}: the stream ended without a final done:true chunk (connection closed "
            f"early); the answer is incomplete. Check `ollama serve`'s log."
        )

    def _ndjson_region(self, region: str, runs: NDJSONTokenRuns) -> Generator[Delta, None, bool]:
        """The deltas of a region of complete lines; True once the done chunk was read."""
        texts = runs.split(region)
        if texts is None:
            # Often all token lines but the last one (the final chunk): try those in bulk.
            cut = region.rfind("\n", 0, len(region) - 1) + 1
            texts = runs.split(region[:cut]) if cut else None
            if texts is not None:
                region = region[cut:]
        else:
            region = ""
        if texts:
            if "" in texts:
                texts = [t for t in texts if t]
            if texts:
                yield Delta(batch=texts)
        return bool(region) and (yield from self._ndjson_lines(region.split("\n"), runs))

    def _ndjson_lines(
        self, lines: list[str], runs: NDJSONTokenRuns
    ) -> Generator[Delta, None, bool]:
        """Line by line (``json.loads``); shows ``runs`` the model name."""
        label = self.label
        for line in lines:
            if not line:
                continue
            chunk = parse_json_line(line, label, "NDJSON")
            if "error" in chunk:
                raise StreamError(f"{label}: Ollama reported an error mid-stream: {chunk['error']}")
            message = chunk.get("message") or {}
            if chunk.get("done"):
                yield Delta(
                    content=message.get("content") or "",
                    thinking=message.get("thinking") or "",
                    finish_reason=chunk.get("done_reason"),
                    final={k: v for k, v in chunk.items() if k not in ("message", "model")},
                )
                return True
            runs.learn(line)
            yield Delta(
                content=message.get("content") or "", thinking=message.get("thinking") or ""
            )
        return False

    def metrics(self, acc: Accumulator) -> dict[str, Any]:
        final = acc.final
        if not final:
            return {}
        # Missing durations mean 0 in Ollama's JSON (omitempty).
        eval_count = final.get("eval_count", 0)
        eval_ns = final.get("eval_duration", 0)
        prompt_count = final.get("prompt_eval_count", 0)
        prompt_ns = final.get("prompt_eval_duration", 0)
        return {
            "prompt_tokens": prompt_count,
            "output_tokens": eval_count,
            "server_decode_tps": eval_count / (eval_ns / NS) if eval_ns else None,
            "prompt_tps": prompt_count / (prompt_ns / NS) if prompt_ns else None,
            "server_prompt_ms": prompt_ns / 1e6 if prompt_ns else None,
            "server_decode_ms": eval_ns / 1e6 if eval_ns else None,
            "server_load_s": final.get("load_duration", 0) / NS,
        }

    def memory(self) -> dict[str, float | None]:
        try:
            with self._client(5.0) as client:
                ps = get_json(client, f"{self.base_url}/api/ps", self.label)
        except ServerError:
            return {}
        for model in ps.get("models", []):
            if model_matches(self.spec.model, model.get("name", "")):
                return {"vram_mb": model.get("size_vram", 0) / 2**20}
        return {}
