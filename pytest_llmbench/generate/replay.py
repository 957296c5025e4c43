"""Record every streamed reply with its timing events, and replay them offline.

A recording is keyed by the model id and the exact request body, so a changed prompt or
setting has no recording and is reported as missing — never silently regenerated (unless the
run asked for it with ``--llm-replay-missing=record``). The n-th identical request in a run
replays the n-th recording (repeats stay distinct).

Each recording is checked where it is read: a file that is empty, truncated, from another
format version or of the wrong shape ends its item with a :class:`RecordingInvalid` naming the
file and the field, never as the model's failure. ``recorded.json`` beside the recordings says
when and where they were made, so a replayed run is labelled as such.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import socket
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmbench.errors import LLMBenchError
from pytest_llmbench.fingerprint import changes, hardware, plugin_version
from pytest_llmbench.output_files import OutputError, write_atomic
from pytest_llmbench.serve.generation import Generation, Settings
from pytest_llmbench.serve.server_info import ServerInfo
from pytest_llmbench.typed_json import Invalid, dataclass_fields, expect, read_json
from pytest_llmbench.typed_json import field as json_field

FORMAT_VERSION = 1
MANIFEST = "recorded.json"
"""When, where and with which plugin the recordings in a directory were made."""
RECORDING_GLOB = "*-[0-9]*.json"


class RecordingMissing(LLMBenchError):
    """Replay found no recording for this model, prompt and settings."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name
        """The file name the recording would have (key and occurrence)."""


class RecordingInvalid(LLMBenchError):
    """A recording exists but cannot be replayed (empty, truncated, wrong version or shape)."""


class RecordingError(LLMBenchError):
    """A recording could not be written (disk full, a symbolic link in the way, ...)."""


def request_key(model: str, body: dict[str, Any]) -> str:
    blob = json.dumps({"model": model, "request": body}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class _Occurrences:
    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def next_name(self, key: str) -> str:
        self.seen[key] += 1
        return f"{key}-{self.seen[key]}.json"


class Recorder(_Occurrences):
    """Writes one JSON file per generation into ``root``, each atomically; a symbolic link
    where a recording goes is refused, never followed."""

    def __init__(self, root: Path, *, manifest: bool = True) -> None:
        super().__init__()
        self.root = root
        self.manifest = manifest
        """Write ``recorded.json`` if missing; not when adding to recordings made elsewhere
        (``--llm-replay-missing=record``), whose date and host this run does not know."""
        root.mkdir(parents=True, exist_ok=True)

    def save(
        self,
        model: str,
        body: dict[str, Any],
        generation: dict[str, Any],
        events: list[tuple[float, str, str]] | None,
        name: str | None = None,
    ) -> Path:
        """Write one recording; ``name``: the file name a replay looked for (when filling in
        a missing recording), else the next occurrence of this request's key."""
        path = self.root / (name or self.next_name(request_key(model, body)))
        document = {
            "version": FORMAT_VERSION,
            "model": model,
            "request": body,
            "generation": generation,
            "events": events or [],
        }
        try:
            if self.manifest and not (self.root / MANIFEST).exists():
                write_atomic(self.root / MANIFEST, json.dumps(_manifest(), indent=1))
            write_atomic(path, json.dumps(document, default=str))
        except OutputError as exc:
            raise RecordingError(f"{model}: recording not written: {exc}") from None
        return path


def _manifest() -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "recorded": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "hardware": hardware(),
        "plugin_version": plugin_version(),
    }


def check_recording(data: Any) -> dict[str, Any]:
    """The generation of a recording (with its request), checked field by field."""
    expect(data, "recording", dict)
    version = json_field(data, "version", "recording", int)
    if version != FORMAT_VERSION:
        raise Invalid(
            f"recording.version: expected {FORMAT_VERSION} (this plugin's format), got "
            f"{version}; re-record with --llm-record"
        )
    json_field(data, "model", "recording", str)
    request = json_field(data, "request", "recording", dict)
    gen = json_field(data, "generation", "recording", dict)
    for key in ("model", "text", "answer", "thinking"):
        json_field(gen, key, "generation", str)
    json_field(gen, "finish_reason", "generation", str, type(None), required=False)
    metrics = json_field(gen, "metrics", "generation", dict, required=False) or {}
    for key, value in metrics.items():
        expect(value, f"generation.metrics.{key}", float, type(None))
    settings = json_field(gen, "settings", "generation", dict, required=False) or {}
    dataclass_fields(settings, Settings, "generation.settings")
    server = json_field(gen, "server", "generation", dict, required=False) or {}
    dataclass_fields(server, ServerInfo, "generation.server")
    json_field(data, "events", "recording", list, required=False)
    return {**gen, "request": request}


class Replayer(_Occurrences):
    """Looks recordings up by key and occurrence; no server is contacted."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self._requests: list[tuple[str, str, dict[str, Any]]] | None = None
        """(file name, model, request body) of every readable recording, read when needed."""

    def recorded_requests(self) -> list[tuple[str, str, dict[str, Any]]]:
        if self._requests is None:
            self._requests = []
            for path in sorted(self.root.glob("*.json")):
                try:
                    data = read_json(path)
                except Invalid:
                    continue
                if isinstance(data, dict) and isinstance(data.get("request"), dict):
                    self._requests.append((path.name, str(data.get("model")), data["request"]))
        return self._requests

    def what_changed(self, model: str, body: dict[str, Any]) -> str:
        """What differs from the nearest recording of ``model``: the settings that changed
        (``max_tokens 16 → 32``), or that the prompt did."""
        nearest: tuple[int, str, list[str]] | None = None
        for name, recorded_model, request in self.recorded_requests():
            if recorded_model != model:
                continue
            keys = [k for k in dict.fromkeys([*request, *body]) if request.get(k) != body.get(k)]
            if nearest is None or len(keys) < nearest[0]:
                settings = [k for k in keys if k not in ("messages", "prompt")]
                parts = (
                    [
                        changes(
                            {k: request.get(k) for k in settings},
                            {k: body.get(k) for k in settings},
                        )
                    ]
                    if settings
                    else []
                )
                if len(settings) < len(keys):
                    parts.append("the prompt differs")
                nearest = (len(keys), name, parts)
        if nearest is None:
            return f"nothing was recorded for {model} there"
        if not nearest[2]:  # the same request, recorded fewer times than it is asked now
            return "this request is asked more times than it was recorded"
        return f"against the nearest recording ({nearest[1]}): {'; '.join(nearest[2])}"

    def lookup(self, model: str, body: dict[str, Any]) -> Generation:
        name = self.next_name(request_key(model, body))
        path = self.root / name
        if not path.is_file():
            raise RecordingMissing(
                f"{model}: no recording for this prompt and settings in {self.root} "
                f"({name}); {self.what_changed(model, body)}. Re-record "
                f"with --llm-record {self.root} against the server, or add what is missing "
                f"with --llm-replay-missing=record.",
                name,
            )
        try:
            data = check_recording(read_json(path))
            return Generation.from_dict(data)
        except (Invalid, KeyError, TypeError, ValueError) as exc:
            raise RecordingInvalid(
                f"{model}: recording {path} cannot be replayed: {exc}. Re-record it with "
                f"--llm-record {self.root}."
            ) from None


@dataclass(frozen=True)
class RecordingInfo:
    """Where and when the recordings in ``root`` were made (for labelling a replay)."""

    root: str
    recorded: str | None = None
    host: str | None = None
    hardware: dict[str, Any] | None = None
    servers: tuple[str, ...] = field(default_factory=tuple)
    """Server builds (llama-server ``build``, Ollama ``version``) seen in the recordings."""

    def label(self) -> str:
        """``replayed from DIR (recorded DATE on HOST, server BUILD)``."""
        facts = [
            f"recorded {self.recorded or 'at an unknown date'} on {self.host or 'an unknown host'}",
            f"server {', '.join(self.servers) or 'unknown'}",
        ]
        return f"replayed from {self.root} ({', '.join(facts)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "dir": self.root,
            "recorded": self.recorded,
            "host": self.host,
            "servers": list(self.servers),
        }


def recording_info(root: Path) -> RecordingInfo:
    """Read ``recorded.json`` and the server builds of the recordings; what cannot be read is
    left unknown here (a bad recording is reported by the item that replays it)."""
    manifest: dict[str, Any] = {}
    try:
        found = read_json(root / MANIFEST)
        if isinstance(found, dict):
            manifest = found
    except Invalid:
        pass
    servers: dict[str, None] = {}
    for path in sorted(root.glob(RECORDING_GLOB)):
        try:
            server = read_json(path)["generation"]["server"]
            build = server.get("build") or server.get("version")
        except (Invalid, KeyError, TypeError, AttributeError):
            continue
        if build:
            servers.setdefault(f"{server.get('backend') or 'server'} {build}")
    hardware = manifest.get("hardware")
    return RecordingInfo(
        root=str(root),
        recorded=_text(manifest.get("recorded")),
        host=_text(manifest.get("host")),
        hardware=hardware if isinstance(hardware, dict) else None,
        servers=tuple(servers),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
