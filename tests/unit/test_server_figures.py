"""The server's figures of one generation: read typed where the final event enters, computed
by the backend, and checked once (``ServerFigures``), so a figure no report can hold is a
``StreamError`` naming it and its value."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest

from pytest_llmbench.errors import StreamError
from pytest_llmbench.serve.backends.base import Backend
from pytest_llmbench.serve.backends.llama_cpp import LlamaServerBackend
from pytest_llmbench.serve.backends.ollama import OllamaBackend
from pytest_llmbench.serve.generation import ServerFigures
from pytest_llmbench.serve.specs import parse_spec
from pytest_llmbench.serve.streaming import Accumulator
from pytest_llmbench.typed_json import Invalid


def streamed(backend: Backend, body: str) -> Accumulator:
    acc = Accumulator()
    for i, delta in enumerate(backend.iter_deltas(httpx.Response(200, text=body))):  # type: ignore[arg-type]
        acc.add(delta, float(i))
    return acc


def ollama(final: dict[str, Any]) -> Accumulator:
    lines = [
        {"message": {"content": "hi"}, "done": False},
        {"message": {"content": ""}, "done": True, "done_reason": "stop", **final},
    ]
    return streamed(OLLAMA, "".join(json.dumps(line) + "\n" for line in lines))


OLLAMA = OllamaBackend(parse_spec("ollama:m@http://x"))
LLAMA = LlamaServerBackend(parse_spec("llama-server@http://x"))


def test_ollamas_final_line_becomes_the_generations_figures() -> None:
    acc = ollama(
        {
            "prompt_eval_count": 8,
            "prompt_eval_duration": 4_000_000,
            "eval_count": 5,
            "eval_duration": 250_000_000,
            "load_duration": 1_500_000_000,
        }
    )
    assert OLLAMA.figures(acc) == ServerFigures(
        prompt_tokens=8,
        output_tokens=5,
        server_decode_tps=20.0,
        prompt_tps=2000.0,
        server_prompt_ms=4.0,
        server_decode_ms=250.0,
        server_load_s=1.5,
    )


def test_a_rate_overflowing_to_inf_is_named_as_a_figure() -> None:
    acc = ollama({"eval_count": 10**300, "eval_duration": 1})
    with pytest.raises(StreamError) as caught:
        OLLAMA.figures(acc)
    assert str(caught.value) == (
        "ollama:m@http://x: the server sent (figure).server_decode_tps = inf, expected a finite "
        "number; its reply is not trusted (check the server and its version)"
    )


def test_a_figure_the_backend_cannot_compute_names_the_reply() -> None:
    acc = ollama({"eval_count": 1, "eval_duration": 10**400})
    with pytest.raises(StreamError) as caught:
        OLLAMA.figures(acc)
    message = str(caught.value)
    assert message.startswith(
        "ollama:m@http://x: the server's final figures are not usable (OverflowError: "
    )
    assert (
        "its reply is not trusted: {'load_duration': 0, 'prompt_eval_count': 0, "
        "'prompt_eval_duration': 0, 'eval_count': 1, 'eval_duration': 1000000000000"
    ) in message


def sse(*events: dict[str, Any]) -> str:
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def test_usage_and_timings_of_separate_events_are_both_read() -> None:
    """The later event's usage replaces the earlier's; the timings of another event stay."""
    acc = streamed(
        LLAMA,
        sse(
            {"choices": [{"delta": {"content": "a"}}], "usage": {"completion_tokens": 1}},
            {"choices": [], "timings": {"cache_n": 3, "prompt_n": 4, "predicted_ms": 9.5}},
            {"choices": [], "usage": {"completion_tokens": 2}},
        ),
    )
    figures = LLAMA.figures(acc)
    assert (figures.output_tokens, figures.prompt_tokens) == (2, 7)
    assert (figures.cached_prompt_tokens, figures.server_decode_ms) == (3, 9.5)
    assert figures.server_decode_tps is None


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("output_tokens", -1, "a whole number ≥ 0"),
        ("prompt_tokens", 2.0, "a whole number ≥ 0"),
        ("thinking_tokens", True, "a whole number ≥ 0"),
        ("prompt_tps", math.nan, "a finite number"),
        ("server_load_s", "1", "a finite number"),
    ],
)
def test_server_figures_hold_only_usable_values(name: str, value: Any, expected: str) -> None:
    with pytest.raises(Invalid) as caught:
        ServerFigures(**{name: value})
    error = caught.value
    assert (error.where, error.value, error.expected) == (f"(figure).{name}", value, expected)
