"""Property-based tests: parsers raise only their documented errors, whatever the input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmbench.errors import StreamError
from pytest_llmbench.serve.specs import SpecError, parse_spec, parse_specs
from pytest_llmbench.serve.streaming import Accumulator, Delta, iter_sse_data, parse_json_line

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
@given(
    st.lists(
        st.sampled_from(["<think>", "</think>", "<", "th", "ink>", "a", " b", "\n", "</"]) | text,
        max_size=40,
    )
)
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


# -- the SSE decoder against a per-line reference, on streams cut at random points ----------

token_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=6
)


def _wire(tokens: list[str], crlf: bool, pings: list[bool]) -> bytes:
    """llama-server's SSE for ``tokens`` (raw UTF-8 JSON, pings between events)."""
    nl = "\r\n" if crlf else "\n"
    out = []
    for token, ping in zip(tokens, pings, strict=False):
        if ping:
            out.append(f":{nl}{nl}")
        event = {"choices": [{"finish_reason": None, "index": 0, "delta": {"content": token}}]}
        out.append(f"data: {json.dumps(event, ensure_ascii=False)}{nl}{nl}")
    final = {"choices": [], "usage": {"completion_tokens": len(tokens), "prompt_tokens": 3}}
    out.append(f"data: {json.dumps(final)}{nl}{nl}data: [DONE]{nl}{nl}")
    return "".join(out).encode()


def _reference(data: bytes) -> list[str]:
    """An independent per-line reading: decode all at once, split lines, json.loads."""
    import re

    contents = []
    for line in re.split(r"\r\n|\n", data.decode()):
        if line.startswith("data: ") and line != "data: [DONE]":
            for choice in json.loads(line[6:])["choices"]:
                contents.append(choice["delta"]["content"])
    return contents


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    st.lists(token_text, min_size=1, max_size=30),
    st.booleans(),
    st.lists(st.booleans(), max_size=30),
    st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=60),
)
def test_sse_decoding_matches_a_per_line_reference_whatever_the_reads(
    tokens: list[str], crlf: bool, pings: list[bool], cuts: list[int]
) -> None:
    """Many events per read, events, lines and UTF-8 sequences split anywhere."""
    import httpx

    from pytest_llmbench.serve.backends.llama_cpp import LlamaServerBackend
    from pytest_llmbench.serve.specs import parse_spec

    data = _wire(tokens, crlf, pings + [False] * len(tokens))
    pieces, at = [], 0
    for size in cuts * (len(data) // sum(cuts) + 1):
        if at >= len(data):
            break
        pieces.append(data[at : at + size])
        at += size
    response = httpx.Response(
        200, content=iter(pieces), headers={"content-type": "text/event-stream"}
    )
    backend = LlamaServerBackend(parse_spec("llama-server@http://x"))
    acc = Accumulator()
    for i, delta in enumerate(backend.iter_deltas(response)):
        acc.add(delta, float(i))
    expected = _reference(data)
    assert acc.raw_parts == [t for t in expected if t]
    assert backend.metrics(acc).output_tokens == len(tokens)
