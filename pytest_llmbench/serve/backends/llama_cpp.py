"""llama.cpp's ``llama-server``: spawned on a GGUF file, or attached by URL."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_llmbench.errors import ServerError
from pytest_llmbench.serve.backends.base import Messages, Progress
from pytest_llmbench.serve.backends.openai_compat import OpenAIBackend
from pytest_llmbench.serve.bounded import ServerClient, get_json
from pytest_llmbench.serve.generation import Settings
from pytest_llmbench.serve.proc_facts import peak_rss_mb
from pytest_llmbench.serve.processes import (
    ATTACH_REFUSED_S,
    ServerProcess,
    Turn,
    Turns,
    free_port,
    log_tail,
    wait_for_health,
)
from pytest_llmbench.serve.server_info import ServerOptions
from pytest_llmbench.serve.shared import Lease, SharedServers, Started
from pytest_llmbench.serve.specs import EMBEDDED_MODEL, ModelSpec
from pytest_llmbench.serve.wire import Reader


class LlamaServerBackend(OpenAIBackend):
    """Spawns ``llama-server -m GGUF -c CTX×N -np N`` on a free port, once per run and model
    (``shared_servers``; N = ``--llm-concurrency``), or attaches by URL."""

    def __init__(self, spec: ModelSpec, options: ServerOptions | None = None) -> None:
        super().__init__(spec, options)
        self.lease: Lease | None = None
        """This process's use of the run's shared server (spawned models)."""
        self._servers: SharedServers | None = None
        self.ctx: int | None = None

    def gguf_path(self) -> Path:
        if self.spec.model == EMBEDDED_MODEL:
            from pytest_llmbench.tools.default_model import embedded_model_path

            return embedded_model_path()
        return Path(self.spec.model).expanduser()

    def turn(self, alone: bool, max_wait_s: float) -> AbstractContextManager[Turn]:
        """A spawned server generates in the machine's turn (``servers.Turns``): never beside
        another spawned server; its own generations share it, up to its slots."""
        if self.lease is None:
            return super().turn(alone, max_wait_s)
        return Turns().turn(
            self.lease.pid,
            max_wait_s,
            server=self.server_key(),
            limit=self.options.concurrency,
            alone=alone,
        )

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
        if self.lease is not None and self.lease.running() and self.ctx == settings.ctx:
            return None
        self.release()
        slots = self.options.concurrency
        gguf = self.gguf_path()
        opts = self.options
        binary, layers = opts.llama_server_bin, opts.gpu_layers
        facts = (f"{binary}", f"{gguf}", f"ctx={settings.ctx}", f"np={slots}", f"ngl={layers}")
        key = "\0".join((*facts, *opts.server_args))
        try:
            lease = self.servers.acquire(
                key,
                self.label,
                lambda: self._spawn(gguf, settings.ctx, slots, progress),
                self.options.health_timeout_s + 60,
                self.order,
            )
        except ServerError:
            if not self.options.run_dir:
                self.close()  # its own folder: nothing for anyone else to read
            raise
        self.lease, self.ctx, self.base_url = lease, settings.ctx, lease.url
        if lease.process is not None:
            self.server_info = replace(
                self.server_info,
                log=str(lease.process.log_path),
                health_seen=tuple(lease.process.health_seen),
            )
        else:
            progress(f"{self.label}: sharing the run's llama-server at {lease.url}")
        self.server_info = replace(
            self.server_info,
            turns=f"one spawned server per model for the whole run, shared by its pytest "
            f"processes, {slots} slot(s) (-np {slots}); spawned servers of this user "
            f"generate one at a time on this machine",
        )
        self._read_props()
        self._check_gguf(gguf, progress)
        return lease.load_s

    @property
    def servers(self) -> SharedServers:
        """The run's shared servers (this process's own when no run folder is given)."""
        if self._servers is None:
            root = self.options.run_dir or tempfile.mkdtemp(prefix="own-", dir=_own_runs())
            self._servers = SharedServers.of(Path(root))
        return self._servers

    def _spawn(self, gguf: Path, ctx: int, slots: int, progress: Progress) -> Started:
        """Start llama-server with ``slots`` slots of ``ctx`` tokens each: its ``-c`` is the
        total (with ``-np N`` and no ``--kv-unified`` each slot gets ``n_ctx / N``,
        llama.cpp src/llama-context.cpp ``n_ctx_seq``; the server reports it as
        ``/props`` ``default_generation_settings.n_ctx``, server-context.cpp
        ``n_ctx_slot``)."""
        binary = self.options.llama_server_bin
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
                str(ctx * slots),
                "-np",
                str(slots),
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
            progress(f"{self.label}: healthy after {load_s:.2f} s")
            return Started(process, f"http://127.0.0.1:{port}", load_s)
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
        from pytest_llmbench.serve.gguf import model_facts

        facts = model_facts(path)
        self.server_info = replace(self.server_info, **facts)
        warnings = chat_template_warnings(
            self.label, self.options.server_args, facts.get("gguf_chat_template") is False
        )
        # Printed once, under the leaderboard next to the figures they affect.
        self.server_info = replace(self.server_info, warnings=warnings)

    def release(self) -> None:
        if self.lease is not None:
            lease, self.lease = self.lease, None
            self.servers.release(lease)
        if self._servers is not None and not self.options.run_dir:
            self.close()  # its own servers only: nothing to wait for

    def close(self) -> None:
        """End of this process's session: the servers it spawned are stopped once the
        run's other processes are done with them."""
        if self.lease is not None:
            self.release()
            return
        if self._servers is not None:
            self._servers.leave()
            if not self.options.run_dir:
                shutil.rmtree(self._servers.root, ignore_errors=True)
                self._servers = None

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
        if self.lease is None:
            return {}
        from pytest_llmbench.serve.vram import process_vram_mb

        return {
            "peak_rss_mb": peak_rss_mb(self.lease.pid),
            "vram_mb": process_vram_mb(self.lease.pid),
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


def _own_runs() -> str:
    """Where a backend without a run folder keeps its servers' records."""
    from pytest_llmbench.tools.cache import cache_dir

    path = cache_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)
