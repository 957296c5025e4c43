"""A recording's ``settings`` and ``server`` are checked field by field where they are read:
a wrong type errors the item naming the field, never lands in the results JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench.generate.replay import Recorder, RecordingInvalid, Replayer

GENERATION: dict[str, Any] = {
    "model": "m",
    "text": "hi",
    "answer": "hi",
    "thinking": "",
    "finish_reason": "stop",
    "metrics": {"ttft_s": 0.1},
    "settings": {"max_tokens": 64, "temperature": 0, "stop": ["\\n"], "think": None},
    "server": {"backend": "llama-server", "n_ctx": 4096, "health_seen": ["HTTP 503"]},
}
BODY = {"messages": [{"role": "user", "content": "hi"}]}


def _replay(tmp_path: Path, generation: dict[str, Any]) -> Any:
    path = Recorder(tmp_path).save("m", BODY, GENERATION, None)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "generation": generation}))
    return Replayer(tmp_path).lookup("m", BODY)


def test_a_well_typed_recording_replays(tmp_path: Path) -> None:
    generation = _replay(tmp_path, GENERATION)
    assert generation.settings.max_tokens == 64
    assert generation.settings.stop == ("\\n",)
    assert generation.server.n_ctx == 4096


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        (
            "settings",
            {"max_tokens": "x"},
            'generation.settings.max_tokens: expected an integer, got "x"',
        ),
        (
            "settings",
            {"temperature": "hot"},
            'generation.settings.temperature: expected a number, got "hot"',
        ),
        (
            "settings",
            {"cache_prompt": 1},
            "generation.settings.cache_prompt: expected true or false, got 1",
        ),
        ("settings", {"stop": "\\n"}, 'generation.settings.stop: expected a list, got "\\\\n"'),
        ("settings", {"stop": [1]}, "generation.settings.stop[0]: expected a string, got 1"),
        (
            "settings",
            {"top_k": 1.5},
            "generation.settings.top_k: expected an integer or null, got 1.5",
        ),
        ("server", {"backend": 5}, "generation.server.backend: expected a string, got 5"),
        (
            "server",
            {"backend": "x", "n_ctx": "big"},
            'generation.server.n_ctx: expected an integer or null, got "big"',
        ),
        (
            "server",
            {"backend": "x", "warnings": [None]},
            "generation.server.warnings[0]: expected a string, got null",
        ),
    ],
)
def test_a_wrong_type_in_settings_or_server_errors_the_item(
    tmp_path: Path, section: str, value: dict[str, Any], message: str
) -> None:
    with pytest.raises(RecordingInvalid) as raised:
        _replay(tmp_path, {**GENERATION, section: value})
    assert message in str(raised.value)
