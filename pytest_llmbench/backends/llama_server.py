"""llama.cpp's ``llama-server``: spawned on a GGUF file, or attached by URL."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_llmbench.backends.base import Messages, Progress, Timeouts
from pytest_llmbench.backends.bounded import ServerClient, get_json
from pytest_llmbench.backends.openai_compat import OpenAIBackend
from pytest_llmbench.errors import ServerError
from pytest_llmbench.generation import Generation, Settings
from pytest_llmbench.servers import (
    ATTACH_REFUSED_S,
    ServerProcess,
    Turns,
    free_port,
    log_tail,
    wait_for_health,
)
from pytest_llmbench.serving import ServerOptions
from pytest_llmbench.specs import EMBEDDED_MODEL, ModelSpec
from pytest_llmbench.wire import Reader


class LlamaServerBackend(OpenAIBackend):
    """Spawns ``llama-server -m GGUF -c CTX -np 1`` on a free port (or attaches by URL)."""

    def __init__(self, spec: ModelSpec, options: ServerOptions | None = None) -> None:
        super().__init__(spec, options)
        self.process: ServerProcess | None = None
        self.ctx: int | None = None

    def gguf_path(self) -> Path:
        if self.spec.model == EMBEDDED_MODEL:
            from pytest_llmbench.tools.default_model import embedded_model_path

            return embedded_model_path()
        return Path(self.spec.model).expanduser()

    def generate(self, messages: Messages, settings: Settings, timeouts: Timeouts) -> Generation:
        """A spawned server generates in its turn (``servers.Turns``): never side by side."""
        if self.process is None:
            return super().generate(messages, settings, timeouts)
        with self.process.turn(max_wait_s=timeouts.read_s) as turn:
            generation = super().generate(messages, settings, timeouts)
        return turn.mark(generation)

    def prepare(self, settings: Settings, progress: Progress) -> float | None:
        if self.spec.url is not None:
            if self.server_info.model_id is None:  # first use: wait while it loads
                started = time.monotonic()
                seen: list[str] = []
                wait_for_health(
                    f"{self.base_url}/health",
                    self.label,
                    self.options.health_timeout_s,
                    progress,
                    seen=seen,
                    refused_s=ATTACH_REFUSED_S,
                )
                self._read_props()
                local = Path(self.server_info.model_path or "")
                if local.is_file():  # the server runs on this machine
                    self._check_gguf(local, progress)
                # Only a wait we watched (503 "Loading model") is a load time.
                return time.monotonic() - started if len(seen) > 1 else None
            return None
        if self.process is not None and self.process.running() and self.ctx == settings.ctx:
            return None
        self.release()
        binary = self.options.llama_server_bin
        gguf = self.gguf_path()
        log_dir = self.options.log_directory()
        last_error: ServerError | None = None
        for _attempt in range(3):  # a free port can be taken between probe and bind
            port = free_port()
            argv = [
                str(binary),
                "-m",
                str(gguf),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "-c",
                str(settings.ctx),
                "-np",
                "1",
                "-a",
                self.label,
            ]
            if self.options.gpu_layers is not None:
                argv += ["-ngl", str(self.options.gpu_layers)]
            argv += list(self.options.server_args)
            safe = self.label.replace("/", "_").replace(":", "_")
            process = ServerProcess(argv, log_dir / f"{safe}-{port}.log", self.label, turns=Turns())
            progress(
                f"{self.label}: starting llama-server on port {port} (log: {process.log_path})"
            )
            try:
                load_s = process.wait_healthy(
                    f"http://127.0.0.1:{port}/health",
                    self.options.health_timeout_s,
                    progress,
                )
            except ServerError as exc:
                process.stop()
                last_error = exc
                tail = log_tail(process.log_path, 40).lower()
                if "couldn't bind" in tail or "address already in use" in tail:
                    progress(f"{self.label}: port {port} was taken meanwhile; trying another")
                    continue
                raise
            self.process, self.ctx, self.base_url = (
                process,
                settings.ctx,
                f"http://127.0.0.1:{port}",
            )
            self.server_info = replace(
                self.server_info,
                log=str(process.log_path),
                health_seen=tuple(process.health_seen),
                turns="one spawned server of this user generates at a time on this machine",
            )
            self._read_props()
            self._check_gguf(gguf, progress)
            progress(f"{self.label}: healthy after {load_s:.2f} s")
            return load_s
        assert last_error is not None
        raise last_error

    def _read_props(self) -> None:
        with ServerClient(self.label) as client:
            props = get_json(client, f"{self.base_url}/props", self.label)
            models = get_json(client, f"{self.base_url}/v1/models", self.label)
        read = Reader(self.label, ServerError)
        settings = read.object(props, "default_generation_settings", "/props")
        data = read.array(models, "data", "/v1/models") or [{}]
        first = data[0] if isinstance(data[0], dict) else {}
        self.server_info = replace(
            self.server_info,
            build=read.text(props, "build_info", "/props") or self.server_info.build,
            chat_template=read.text(props, "chat_template", "/props"),
            n_ctx=read.count(settings, "n_ctx", "/props default_generation_settings"),
            total_slots=read.count(props, "total_slots", "/props"),
            model_path=read.text(props, "model_path", "/props"),
            model_id=read.text(first, "id", "/v1/models data[0]"),
        )

    def _check_gguf(self, path: Path, progress: Progress) -> None:
        """Record the file's quantization, and warn loudly when it has no chat template:
        llama-server then formats every prompt as ChatML, maybe not the model's format."""
        from pytest_llmbench.gguf import model_facts

        facts = model_facts(path)
        self.server_info = replace(self.server_info, **facts)
        warnings = chat_template_warnings(
            self.label, self.options.server_args, facts.get("gguf_chat_template") is False
        )
        # Printed once, under the leaderboard next to the figures they affect.
        self.server_info = replace(self.server_info, warnings=warnings)

    def release(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def request_body(self, messages: Messages, settings: Settings) -> dict[str, Any]:
        body = super().request_body(messages, settings)
        # llama-server extensions: prompt cache off by default so TTFT and prompt tok/s are
        # not flattered by a repeated prompt; n_predict beats max_tokens there.
        body["cache_prompt"] = settings.cache_prompt
        body["n_predict"] = settings.max_tokens
        if settings.top_k is not None:
            body["top_k"] = settings.top_k
        if settings.think is not None:
            body["chat_template_kwargs"] = {"enable_thinking": settings.think}
        return body

    def memory(self) -> dict[str, float | None]:
        if self.process is None:
            return {}
        from pytest_llmbench.vram import process_vram_mb

        return {
            "peak_rss_mb": self.process.peak_rss_mb(),
            "vram_mb": process_vram_mb(self.process.pid),
        }


#: The fix the no-template warning suggests: ``NAME`` one of llama-server's built-in templates.
#: ``--no-jinja`` matters: with Jinja on (llama-server's default) ``--chat-template gemma`` is
#: read as a template whose text is "gemma", and every prompt becomes the same 3 tokens.
CHAT_TEMPLATE_FIX = "--no-jinja --chat-template NAME"


def chat_template_warnings(
    label: str, server_args: Sequence[str], gguf_has_no_template: bool
) -> tuple[str, ...]:
    """What is wrong with how prompts will be formatted: a GGUF with no template and no
    template given, or a built-in template's name given where llama-server reads Jinja."""
    args = list(server_args)
    named = _option_value(args, "--chat-template")
    given = named is not None or _option_value(args, "--chat-template-file") is not None
    if named is not None and "--no-jinja" not in args and not re.search(r"{[{%]", named):
        return (
            f"{label}: --chat-template {named} is read as a Jinja template whose text is "
            f"{named!r} (llama-server uses Jinja by default), so every prompt becomes the same "
            f"few tokens and every answer the same; pass --llm-server-args='--no-jinja "
            f"--chat-template {named}' to use the built-in template of that name",
        )
    if gguf_has_no_template and not given:
        return (
            f"{label}: the GGUF has no chat template, so llama-server formats prompts with its "
            f"ChatML fallback, which may not be this model's format (a base model, or a "
            f"conversion that lost the template); pass --llm-server-args='{CHAT_TEMPLATE_FIX}' "
            f"with NAME one of llama-server's built-in templates (gemma, llama3, chatml, ...), "
            f"or use a GGUF that has one",
        )
    return ()


def _option_value(args: list[str], option: str) -> str | None:
    """The value of ``option`` in ``args`` (``--opt VALUE`` or ``--opt=VALUE``), or ``None``."""
    for n, arg in enumerate(args):
        if arg == option and n + 1 < len(args):
            return args[n + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None
