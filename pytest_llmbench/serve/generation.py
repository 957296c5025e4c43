"""The immutable records of one generation: its settings, its metrics and its text."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from pytest_llmbench.answer_text import extract_code
from pytest_llmbench.serve.caveats import Caveat
from pytest_llmbench.serve.server_info import ServerInfo
from pytest_llmbench.typed_json import finite, whole


@dataclass(frozen=True)
class Settings:
    """Generation settings, identical for every model unless a test overrides them.

    ``ctx`` is the context size a spawned server is started with (Ollama: ``num_ctx``);
    ``cache_prompt`` is off by default so repeated prompts do not make TTFT and prompt tok/s
    meaningless.
    """

    max_tokens: int = 16384
    ctx: int = 16384
    temperature: float = 0.0
    seed: int = 42
    cache_prompt: bool = False
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    think: bool | None = None

    def replace(self, **overrides: Any) -> Settings:
        """A copy with ``overrides`` applied; unknown names raise ``TypeError``."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(
                f"unknown generation setting(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        data = asdict(self)
        data.update(overrides)
        if isinstance(data["stop"], str):
            data["stop"] = (data["stop"],)
        data["stop"] = tuple(data["stop"])
        return Settings(**data)

    def text(self, sep: str = ", ") -> str:
        """Every setting that is set, each drawn by :func:`setting_text` (``max_tokens=512,
        temperature=0.0, stop="END" "###"``): the one way the run's settings are shown."""
        values = ((f.name, getattr(self, f.name)) for f in fields(self))
        return sep.join(text for name, value in values if (text := setting_text(name, value)))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["stop"] = tuple(kwargs.get("stop", ()))
        return cls(**kwargs)


def setting_text(name: str, value: object) -> str:
    """One setting as ``name=value`` (``""`` when unset or empty), the one way it is shown."""
    if value is None or value == [] or value == ():
        return ""
    if isinstance(value, list | tuple):
        return f"{name}={' '.join(json.dumps(item) for item in value)}"
    return f"{name}={value}"


@dataclass(frozen=True, slots=True)
class ServerFigures:
    """What the server reported of one generation (token counts, its own times and rates),
    as its backend computed them from the final event(s); ``None`` where it said nothing.
    ``thinking_tokens`` ``None``: the streamed thinking chunks are counted instead.

    A count that is not a whole number ≥ 0 or a time or rate that is not finite (a rate
    overflowing to ``inf``) raises :class:`~pytest_llmbench.typed_json.Invalid` naming
    ``(figure).NAME``; the backend makes it a ``StreamError`` naming the model."""

    prompt_tokens: int | None = None
    output_tokens: int | None = None
    thinking_tokens: int | None = None
    cached_prompt_tokens: int | None = None
    server_decode_tps: float | None = None
    prompt_tps: float | None = None
    server_prompt_ms: float | None = None
    server_decode_ms: float | None = None
    server_load_s: float | None = None

    def __post_init__(self) -> None:
        for name in _COUNT_FIGURES:
            value = getattr(self, name)
            if value is not None:
                whole(value, f"(figure).{name}")
        for name in _TIME_FIGURES:
            value = getattr(self, name)
            if value is not None:
                finite(value, f"(figure).{name}")


_COUNT_FIGURES = ("prompt_tokens", "output_tokens", "thinking_tokens", "cached_prompt_tokens")
_TIME_FIGURES = tuple(f.name for f in fields(ServerFigures) if f.name not in _COUNT_FIGURES)


@dataclass(frozen=True)
class Metrics:
    """What was measured for one generation. Times in seconds, rates in tokens per second.

    Client figures use the client's monotonic clock; ``server_*`` figures are what the server
    reported (llama-server ``timings``, Ollama's final-chunk durations). Token counts always
    come from the server. ``None`` means "not reported", never zero.
    """

    ttft_s: float | None = None
    """Request sent -> first streamed token of any kind (thinking or answer)."""
    ttfa_s: float | None = None
    """Request sent -> first answer token (after any thinking)."""
    total_s: float | None = None
    """Request sent -> end of stream."""
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    thinking_tokens: int | None = None
    """Thinking tokens: from the server's count where it gives one (Ollama: its output count
    less the streamed answer), else the streamed thinking chunks."""
    cached_prompt_tokens: int | None = None
    decode_tps: float | None = None
    """Client: (output_tokens - 1) / (last token time - first token time), as llama-server does."""
    server_decode_tps: float | None = None
    prompt_tps: float | None = None
    """Server-reported prompt processing rate."""
    load_s: float | None = None
    """Model load time paid before this generation (spawn->healthy or preload); cold items only."""
    server_prompt_ms: float | None = None
    server_decode_ms: float | None = None
    server_load_s: float | None = None
    """Server-reported time this request waited for the model (Ollama ``load_duration``):
    milliseconds when it was loaded, the whole load when it had to be loaded again."""
    peak_rss_mb: float | None = None
    """Peak resident memory of a server process the plugin spawned."""
    vram_mb: float | None = None
    """GPU memory the model occupies (None where no GPU holds any of it, or not known)."""
    model_mb: float | None = None
    """Memory the server says the loaded model holds, CPU and GPU (Ollama /api/ps ``size``)."""
    itl_p50_s: float | None = None
    """Inter-token latency: median gap between consecutive streamed tokens (client clock)."""
    itl_p90_s: float | None = None
    itl_p99_s: float | None = None
    itl_max_s: float | None = None
    """The longest gap between two streamed tokens (a model paging weights shows it)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metrics:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Generation:
    """One streamed reply. ``answer`` is ``text`` with thinking removed; ``truncated`` is true
    when the output cap was reached (finish reason ``length``)."""

    model: str
    text: str
    answer: str
    thinking: str
    finish_reason: str | None
    metrics: Metrics
    settings: Settings
    server: ServerInfo = field(default_factory=lambda: ServerInfo(backend="unknown"))
    """Server facts: backend, version/build, model id, chat template, context size."""
    request: dict[str, Any] = field(default_factory=dict)
    """The exact JSON body sent."""
    caveats: tuple[Caveat, ...] = ()
    """Why some of its figures are not comparable (see ``pytest_llmbench.serve.caveats``)."""
    recording: str | None = None
    """The file this reply was recorded to (``--llm-record``), in the recordings' folder."""

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    def paying(self, load_s: float | None) -> Generation:
        """This generation with the model's load, paid just before it, in its metrics
        (``None``: nothing was paid; it is returned as it is)."""
        if load_s is None:
            return self
        return replace(self, metrics=replace(self.metrics, load_s=load_s))

    def code(self, language: str | None = "python") -> str | None:
        """The code block for ``language`` in the answer (see ``answer_text``)."""
        return extract_code(self.answer, language)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "text": self.text,
            "answer": self.answer,
            "thinking": self.thinking,
            "finish_reason": self.finish_reason,
            "truncated": self.truncated,
            "metrics": self.metrics.to_dict(),
            "settings": self.settings.to_dict(),
            "server": self.server.to_dict(),
            "request": dict(self.request),
            "caveats": [c.to_dict() for c in self.caveats],
            **({} if self.recording is None else {"recording": self.recording}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Generation:
        return cls(
            model=data["model"],
            text=data["text"],
            answer=data["answer"],
            thinking=data["thinking"],
            finish_reason=data.get("finish_reason"),
            metrics=Metrics.from_dict(data.get("metrics", {})),
            settings=Settings.from_dict(data.get("settings", {})),
            server=ServerInfo.from_dict(data.get("server") or {}),
            request=dict(data.get("request", {})),
            caveats=tuple(Caveat.from_dict(c) for c in data.get("caveats") or ()),
            recording=data.get("recording"),
        )
