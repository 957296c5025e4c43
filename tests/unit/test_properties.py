"""Property-based tests: parsers raise only their documented errors, whatever the input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmbench.errors import StreamError
from pytest_llmbench.specs import SpecError, parse_spec, parse_specs
from pytest_llmbench.streaming import Accumulator, Delta, iter_sse_data, parse_json_line

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)


@given(text)
def test_spec_parser_raises_only_spec_error(raw: str) -> None:
    try:
        spec = parse_spec(raw)
    except SpecError as exc:
        assert "ollama:NAME" in str(exc)
    else:
        assert spec.kind in ("ollama", "llama-server", "openai")
        assert spec.id


@given(st.lists(text, max_size=5))
def test_spec_list_parser(values: list[str]) -> None:
    try:
        specs = parse_specs(values)
    except SpecError as exc:
        assert "model spec" in str(exc) or "same test id" in str(exc)
    else:
        assert len({s.id for s in specs}) == len(specs)


@given(st.lists(text, max_size=30))
def test_sse_decoder_never_raises(lines: list[str]) -> None:
    for payload in iter_sse_data(lines):
        assert isinstance(payload, str)


@given(text)
def test_json_line_parser_raises_only_stream_error(line: str) -> None:
    try:
        assert isinstance(parse_json_line(line, "m", "NDJSON"), dict)
    except StreamError as exc:
        assert "m:" in str(exc)


@settings(max_examples=300)
@given(st.lists(st.sampled_from(["<think>", "</think>", "<", "th", "ink>", "a", " b", "\n", "</"]) | text, max_size=40))
def test_think_splitting_conserves_text(chunks: list[str]) -> None:
    acc = Accumulator()
    for i, chunk in enumerate(chunks):
        acc.add(Delta(content=chunk), float(i))
    acc.finish(99.0)
    raw = "".join(chunks)
    assert acc.text == raw
    # Everything is either answer or thinking; only tags and outer whitespace disappear.
    assert len(acc.answer) + len(acc.thinking) <= len(raw)
    assert "<think>" not in acc.answer
    if "<think>" not in raw:
        assert acc.answer == raw.strip() and acc.thinking == ""


@pytest.mark.parametrize("payload", ['{"a": 1}', json.dumps({"error": "x"})])
def test_json_line_parser_accepts_objects(payload: str) -> None:
    assert isinstance(parse_json_line(payload, "m", "SSE"), dict)
