"""Ollama's replies, typed where they enter: each field the Ollama backend reads, from each
endpoint it calls, read once here through :class:`~pytest_llmbench.serve.wire.Reader`.

A reply of the wrong shape (``"eval_count": "12"``, ``"done": "yes"``, a ``models`` entry
without ``name``) is a ``ServerError`` (a ``StreamError`` in the chat stream) naming the
field, the value and the endpoint: server trouble, never the model's failure.

The types are Ollama's own, ``api/types.go`` at ollama/ollama fb30760 (v0.33), the same in
v0.12: Go writes each as the type below, ``omitempty`` fields are left out when zero (read
as 0 or empty here) and none of them is ever written as null.

- ``POST /api/chat`` stream lines: ``api.ChatResponse`` (types.go:520-549): ``message``
  an ``api.Message`` (types.go:197-202: ``content`` string, ``thinking`` string,
  omitempty), ``done`` bool, ``done_reason`` string (omitempty), and on the final line
  ``api.Metrics`` (types.go:557-564): ``load_duration``, ``prompt_eval_duration`` and
  ``eval_duration`` ``time.Duration`` (int64 nanoseconds), ``prompt_eval_count`` and
  ``eval_count`` int, all omitempty. The preload and unload replies (``done_reason``
  ``load`` / ``unload``, server/routes.go) are the same type; the plugin reads nothing in
  them (the load is timed on the client), so nothing of them is typed.
- ``GET /api/version``: ``{"version": string}`` (server/routes.go:1880, ``gin.H``).
- ``GET /api/tags``: ``api.ListResponse`` (types.go:797-799) of ``api.ListModelResponse``
  (types.go:822-832: ``name``, ``digest`` string, ``size`` int64, ``details``);
  ``GET /api/ps``: ``api.ProcessResponse`` (types.go:817-819) of
  ``api.ProcessModelResponse`` (types.go:835-844: the same, with ``size_vram`` int64 and
  ``context_length`` int); ``details`` an ``api.ModelDetails`` (types.go:933-942:
  ``parameter_size``, ``quantization_level`` string).
- ``POST /api/show``: ``api.ShowResponse`` (types.go:737-755): ``template``, ``renderer``
  string (omitempty), ``model_info`` ``map[string]any`` whose ``<arch>.context_length``
  is the trained context (a whole number).
- ``POST /api/pull`` stream lines: ``api.ProgressResponse`` (types.go:777-782):
  ``status`` string, ``total`` and ``completed`` int64 (omitempty).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from pytest_llmbench.errors import ServerError
from pytest_llmbench.serve.streaming import FinalFacts
from pytest_llmbench.serve.wire import Reader

VERSION = "/api/version"
TAGS = "/api/tags"
PS = "/api/ps"
"""The loaded models: read after the preload, for the memory figures and while unloading."""


def reader(label: str, endpoint: str) -> Reader:
    """The reader of ``endpoint``'s replies outside the stream (errors are ``ServerError``)."""
    return Reader(label, ServerError, endpoint)


@dataclass(frozen=True, slots=True)
class OllamaMetrics(FinalFacts):
    """``api.Metrics`` of the final chat line; absent (omitempty) is 0. The stream's final
    facts (``Accumulator.final``), as read here."""

    load_duration: int = 0
    prompt_eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_count: int = 0
    eval_duration: int = 0

    @classmethod
    def read(cls, line: dict[str, Any], read: Reader) -> OllamaMetrics:
        return cls(**{k: read.count(line, k, "", null=False) or 0 for k in _OLLAMA_METRICS})

    def as_reply(self) -> dict[str, Any]:
        return asdict(self)


_OLLAMA_METRICS = tuple(OllamaMetrics.__dataclass_fields__)


class ChatLine(NamedTuple):
    """One line of a ``/api/chat`` stream (``error`` lines are handled before); a named
    tuple, the cheapest immutable record to build once per streamed token."""

    content: str
    thinking: str
    done: bool
    done_reason: str | None
    figures: OllamaMetrics | None
    """The final line's figures (``None`` before it)."""

    @classmethod
    def read(cls, line: dict[str, Any], read: Reader) -> ChatLine:
        message = read.object(line, "message", "")
        done = bool(read.flag(line, "done", ""))
        return cls(
            content=read.text(message, "content", "message") or "",
            thinking=read.text(message, "thinking", "message") or "",
            done=done,
            done_reason=(read.text(line, "done_reason", "") or None) if done else None,
            figures=OllamaMetrics.read(line, read) if done else None,
        )


@dataclass(frozen=True)
class Listed:
    """One model of ``/api/tags`` (installed) or ``/api/ps`` (loaded): the fields both
    lists share, and ``/api/ps``'s own (``None`` in ``/api/tags``)."""

    name: str
    digest: str | None
    size: int | None
    parameter_size: str | None
    quantization: str | None
    size_vram: int | None
    context_length: int | None


def read_models(answer: Any, read: Reader) -> tuple[Listed, ...]:
    """The ``models`` of an ``/api/tags`` or ``/api/ps`` answer."""
    models = []
    for i, entry in enumerate(read.objects(read.reply(answer), "models", "")):
        where = f"models[{i}]"
        details = read.object(entry, "details", where)
        models.append(
            Listed(
                name=read.text(entry, "name", where, required=True) or "",
                digest=read.text(entry, "digest", where),
                size=read.count(entry, "size", where),
                parameter_size=read.text(details, "parameter_size", f"{where}.details"),
                quantization=read.text(details, "quantization_level", f"{where}.details"),
                size_vram=read.count(entry, "size_vram", where),
                context_length=read.count(entry, "context_length", where),
            )
        )
    return tuple(models)


@dataclass(frozen=True)
class Shown:
    """What the plugin reads of an ``/api/show`` answer."""

    template: str | None = None
    renderer: str | None = None
    trained_ctx: tuple[int, ...] = ()
    """Each ``model_info`` ``*.context_length`` (one per architecture key)."""

    @classmethod
    def read(cls, answer: Any, read: Reader) -> Shown:
        answer = read.reply(answer)
        info = read.object(answer, "model_info", "")
        trained = (
            read.count(info, key, "model_info", null=False)
            for key in info
            if key.endswith(".context_length")
        )
        return cls(
            template=read.text(answer, "template", ""),
            renderer=read.text(answer, "renderer", ""),
            trained_ctx=tuple(n for n in trained if n is not None),
        )


@dataclass(frozen=True)
class PullLine:
    """One progress line of ``/api/pull`` (``error`` lines are handled before)."""

    status: str
    total: int | None
    completed: int | None

    @classmethod
    def read(cls, line: dict[str, Any], read: Reader) -> PullLine:
        return cls(
            status=read.text(line, "status", "") or "",
            total=read.count(line, "total", ""),
            completed=read.count(line, "completed", ""),
        )


def read_version(answer: dict[str, Any], read: Reader) -> str | None:
    """The ``version`` of an ``/api/version`` answer."""
    return read.text(answer, "version", "")
