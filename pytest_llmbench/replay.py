"""Record every streamed reply with its timing events, and replay them offline.

A recording is keyed by the model id and the exact request body, so a changed prompt or
setting has no recording and is reported as missing — never silently regenerated (unless the
run asked for it with ``--llm-replay-missing=record``). The n-th identical request in a run
replays the n-th recording (repeats stay distinct).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from pytest_llmbench.errors import LLMBenchError
from pytest_llmbench.generation import Generation

FORMAT_VERSION = 1


class RecordingMissing(LLMBenchError):
    """Replay found no recording for this model, prompt and settings."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name
        """The file name the recording would have (key and occurrence)."""


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
    """Writes one JSON file per generation into ``root``."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
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
        path.write_text(
            json.dumps(
                {
                    "version": FORMAT_VERSION,
                    "model": model,
                    "request": body,
                    "generation": generation,
                    "events": events or [],
                },
                default=str,
            )
        )
        return path


class Replayer(_Occurrences):
    """Looks recordings up by key and occurrence; no server is contacted."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def lookup(self, model: str, body: dict[str, Any]) -> Generation:
        name = self.next_name(request_key(model, body))
        path = self.root / name
        if not path.is_file():
            raise RecordingMissing(
                f"{model}: no recording for this prompt and settings in {self.root} "
                f"({name}); the prompt or a setting changed since it was recorded. Re-record "
                f"with --llm-record {self.root} against the server, or add what is missing "
                f"with --llm-replay-missing=record.",
                name,
            )
        data = json.loads(path.read_text())
        return Generation.from_dict({**data["generation"], "request": data["request"]})
