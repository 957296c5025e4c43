"""The typed boundary between the run and its servers.

:class:`ServerOptions` is what the run asks of every server (one per run, in ``RunConfig``);
:class:`ServerInfo` is what is learned about the server behind a model and recorded with
every generation. Backends fill it as they learn facts (``dataclasses.replace``: it is frozen,
so a generation keeps the facts of its time); the reports, the baseline comparison and the
warnings under the leaderboard read it back. A dict only in the JSON (``to_dict`` /
``from_dict``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ServerOptions:
    """How servers are started and reached; the same for every model of the run."""

    llama_server_bin: str | None = None
    """The binary spawned servers run (checked before any test when one is spawned)."""
    gpu_layers: int | None = None
    """llama-server ``-ngl``."""
    server_args: tuple[str, ...] = ()
    """Extra llama-server arguments."""
    health_timeout_s: float = 900.0
    """How long a server or model may take to load (big loads take minutes)."""
    pull: bool = False
    """Pull Ollama models that are missing."""
    log_dir: str | None = None
    """Where spawned servers' logs go (default: a fresh temporary directory)."""
    api_key: str | None = None
    """Bearer token for OpenAI-compatible endpoints (``$LLMBENCH_API_KEY``/``$OPENAI_API_KEY``)."""
    concurrency: int = 1
    """Generations of one server in flight at once (``--llm-concurrency``; spawned
    llama-servers get as many slots, ``-np``)."""
    run_dir: str | None = field(default=None, compare=False)
    """The run's shared folder (the same in every xdist worker): the spawned servers the
    run's processes share (``shared_servers``). ``None``: this process's own servers only."""

    def log_directory(self) -> Path:
        return Path(self.log_dir or tempfile.mkdtemp(prefix="llmbench-logs-"))


_FINGERPRINT = {"fingerprint": True}
"""Identifies what was benchmarked (the JSON ``environment.models``)."""
_LIKE_FOR_LIKE = {"fingerprint": True, "like_for_like": True}
"""A difference against a baseline makes the comparison unfair."""


@dataclass(frozen=True)
class ServerInfo:
    backend: str
    """``llama-server``, ``ollama`` or ``openai``."""
    url: str | None = None
    """The attached server's URL (``None`` when the plugin spawned it)."""
    model_id: str | None = field(default=None, metadata=_FINGERPRINT)
    digest: str | None = field(default=None, metadata=_LIKE_FOR_LIKE)
    """Ollama's model digest."""
    model_path: str | None = field(default=None, metadata=_LIKE_FOR_LIKE)
    build: str | None = field(default=None, metadata=_LIKE_FOR_LIKE)
    """llama-server ``build_info``, or an OpenAI-compatible ``system_fingerprint``."""
    version: str | None = field(default=None, metadata=_LIKE_FOR_LIKE)
    """Ollama's version."""
    quantization: str | None = field(default=None, metadata=_LIKE_FOR_LIKE)
    parameter_size: str | None = None
    n_ctx: int | None = field(default=None, metadata=_LIKE_FOR_LIKE)
    """The context size the server runs with."""
    total_slots: int | None = None
    chat_template: str | None = field(default=None, metadata=_FINGERPRINT)
    gguf_chat_template: bool | None = None
    """Whether the GGUF file carries a chat template (read from its header)."""
    log: str | None = None
    """A spawned server's log file."""
    health_seen: tuple[str, ...] = ()
    """What the health endpoint answered while the server loaded."""
    warnings: tuple[str, ...] = ()
    """Configuration pitfalls, printed once under the leaderboard."""
    prompt_cache: str | None = None
    """Whether the server's prompt cache is in play (Ollama's cannot be turned off)."""
    turns: str | None = None
    """How a spawned server shares the machine with other spawned servers."""

    def to_dict(self) -> dict[str, Any]:
        """The facts that are known (no ``None``, no empty lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == ():
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServerInfo:
        """From a recorded generation's ``server``; unknown keys are ignored."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if data.get(f.name) is None:
                continue
            value = data[f.name]
            kwargs[f.name] = tuple(value) if f.name in ("health_seen", "warnings") else value
        kwargs.setdefault("backend", "unknown")
        return cls(**kwargs)

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the benchmarked model and server (known facts only)."""
        facts = {"backend": self.backend}
        for f in fields(self):
            if f.metadata.get("fingerprint") and getattr(self, f.name) is not None:
                facts[f.name] = getattr(self, f.name)
        return facts


def like_for_like_keys() -> tuple[str, ...]:
    """Fingerprint keys that must match for a baseline comparison to be fair."""
    return tuple(f.name for f in fields(ServerInfo) if f.metadata.get("like_for_like"))
