"""The fast stream decoding must read every stream exactly as ``json.loads`` line by line.

    .venv/bin/python benchmarks/check_streaming.py [CASES] [SEED]

Random llama-server SSE and Ollama NDJSON streams (escapes, quotes, unicode including
U+2028 / U+0085, ``<think>`` tags, reasoning events, CRLF, comments, errors, malformed lines,
cut streams), cut into random reads (also inside UTF-8 sequences), go through the backends'
real ``iter_deltas`` and through the reference below (the plugin's per-line decoding, with
lines split at CR / LF / CRLF only, as SSE and NDJSON define them). Both delta streams feed an
``Accumulator`` whose clock is the index of the read being decoded; text, answer, thinking,
finish reason, server figures, every timestamp, event counts, recorded events, the build
seen and any error must be identical.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_llmbench.backends.base import Backend
from pytest_llmbench.backends.ollama import OllamaBackend
from pytest_llmbench.backends.openai_compat import OpenAIBackend
from pytest_llmbench.errors import StreamError
from pytest_llmbench.specs import parse_spec
from pytest_llmbench.streaming import Accumulator, Delta, iter_sse_data

POOL = [
    " the",
    " quick",
    "Hello",
    ",",
    "\n",
    "\n\n",
    '"',
    ' "quoted"',
    "\\",
    "\t",
    " é",
    "日本",
    "🙂",
    "\u2028",
    "\u0085",
    "\u00a0",
    "\x01",
    "<",
    "<think>",
    "</think>",
    "<th",
    "ink>",
    "</",
    "think>",
    " ",
    "",
    '"}}],"created":1',
    "data: x",
    "\r",
]


def tokens(rng: random.Random) -> list[str]:
    n = rng.choice([0, 1, 2, 3, 10, 50, 300])
    plain = rng.random() < 0.5
    return [rng.choice(POOL[:4] if plain and rng.random() < 0.9 else POOL) for _ in range(n)]


def dumps(obj: Any, rng: random.Random) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=rng.random() < 0.1)


def sse_stream(rng: random.Random) -> str:
    created = 1767225600
    model = rng.choice(["m", "/models/x.gguf", "C:\\models\\x.gguf", 'q"m'])

    def event(choices: list[Any], **extra: Any) -> str:
        obj: dict[str, Any] = {
            "choices": choices,
            "created": created,
            "id": "chatcmpl-x",
            "model": model,
            "system_fingerprint": rng.choice(["b1-abc", "b1-abc", ""]),
            "object": "chat.completion.chunk",
        }
        obj.update(extra)
        return f"data: {dumps(obj, rng)}"

    def choice(delta: dict[str, Any], finish: str | None = None) -> list[Any]:
        return [{"finish_reason": finish, "index": 0, "delta": delta}]

    out = [event(choice({"role": "assistant", "content": None}))]
    for tok in tokens(rng):
        r = rng.random()
        if r < 0.03:
            created += 1
        if r < 0.05:
            out.append(event(choice({"reasoning_content": tok})))
        elif r < 0.06:
            out.append(": ping")
        elif r < 0.065:
            out.append(event(choice({"content": tok}), usage={"completion_tokens": 1}))
        else:
            out.append(event(choice({"content": tok})))
    r = rng.random()
    if r < 0.03:
        out.append('data: {"error":{"message":"boom"}}')
    elif r < 0.05:
        out.append('data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"x"}')
    elif r < 0.06:
        out.append('error: {"code":500}')
    elif r < 0.07:
        out.append("data: [1, 2]")
    elif r < 0.08:
        out.append("data: a\ndata: b")
    elif r < 0.09 and len(out) > 3:  # garbage that keeps the bulk path's needles in place
        bad = out[-2].replace('"}}],"created"', '"content":"x"}}],"created"', 1)
        out.insert(len(out) - 1, bad.replace('"content":"', '"content":"ab', 1))
    out.append(event(choice({}, "length" if rng.random() < 0.5 else "stop")))
    timings = {"prompt_n": 3, "predicted_n": 7, "predicted_per_second": 50.0, "cache_n": 0}
    usage = {"completion_tokens": 7, "prompt_tokens": 3}
    out.append(event([], usage=usage, timings=timings))
    if rng.random() < 0.9:
        out.append("data: [DONE]")
    sep = "\r\n" if rng.random() < 0.1 else "\n"
    text = sep.join(e + sep for e in out)
    return text if rng.random() < 0.95 else text.rstrip("\n")


def ndjson_stream(rng: random.Random) -> str:
    model = rng.choice(["m", "gemma3:270m", 'q"m'])
    out = []
    for i, tok in enumerate(tokens(rng)):
        message: dict[str, Any] = {"role": "assistant", "content": tok}
        if rng.random() < 0.05:
            message = {"role": "assistant", "content": "", "thinking": tok}
        stamp = f"2026-01-01T00:00:00.{i:06d}Z"
        line = dumps({"model": model, "created_at": stamp, "message": message, "done": False}, rng)
        r = rng.random()
        if r < 0.01:
            line = ""
        elif r < 0.015:
            line = line.replace('"done":false', '"done":false,"x":1')
        out.append(line)
    r = rng.random()
    if r < 0.02 and len(out) > 3:  # garbage that keeps the bulk path's needles in place
        out.insert(len(out) - 1, out[-2].replace('"},"done"', 'cd t":"ef"},"done"', 1))
    r = rng.random()
    if r < 0.03:
        out.append('{"error":"boom"}')
    elif r < 0.05:
        out.append('{"model":"m","created_at":"x","message":{"role":"assistant","content":"x"}')
    final = {
        "model": model,
        "created_at": "2026-01-01T00:00:01Z",
        "message": {"role": "assistant", "content": rng.choice(["", "!"])},
        "done": True,
        "done_reason": "stop",
        "eval_count": 7,
        "eval_duration": 1000,
    }
    if rng.random() < 0.9:
        out.append(dumps(final, rng))
    sep = "\r\n" if rng.random() < 0.1 else "\n"
    text = "".join(line + sep for line in out)
    return text if rng.random() < 0.95 else text.rstrip("\n")


def reads(data: bytes, rng: random.Random) -> list[bytes]:
    if not data:
        return []
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.choice([0, 1, 5, 50]))))
    if rng.random() < 0.2:  # a read per byte somewhere
        start = rng.randrange(len(data))
        cuts = sorted(set(cuts) | set(range(start, min(len(data), start + 40))) - {0})
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in pairwise(edges) if b > a]


class Clock:
    """Which read the decoder is working on: the timestamp for both sides."""

    now = 0


def response(pieces: list[bytes], content_type: str) -> httpx.Response:
    def stream() -> Iterator[bytes]:
        for i, piece in enumerate(pieces):
            Clock.now = i
            yield piece

    return httpx.Response(200, headers={"Content-Type": content_type}, content=stream())


def split_lines(pieces: list[bytes]) -> Iterator[str]:
    """Reference line splitting: CR, LF or CRLF (a CR ends its line at once; an LF right
    after it, even in the next read, belongs to it), one character at a time."""
    decoder = httpx._decoders.TextDecoder("utf-8")
    line: list[str] = []
    after_cr = False
    for i, piece in enumerate([*pieces, None]):
        Clock.now = i if piece is not None else Clock.now
        text = decoder.decode(piece) if piece is not None else decoder.flush()
        for char in text:
            if after_cr and char == "\n":
                after_cr = False
                continue
            after_cr = char == "\r"
            if char in "\r\n":
                yield "".join(line)
                line = []
            else:
                line.append(char)
    if line:
        yield "".join(line)


def reference_sse(backend: OpenAIBackend, pieces: list[bytes]) -> Iterator[Delta]:
    """The plugin's per-line SSE decoding (json.loads per event)."""
    saw_done = False
    for payload in iter_sse_data(split_lines(pieces)):
        if payload == "[DONE]":
            saw_done = True
            break
        try:
            event = json.loads(payload)
        except ValueError:
            raise StreamError(f"malformed SSE {payload[:200]!r}") from None
        if not isinstance(event, dict):
            raise StreamError(f"not an object {payload[:200]!r}")
        error = event.get("error")
        if error is not None:
            raise StreamError(f"error {error!r}")
        final = None
        if event.get("usage") or event.get("timings"):
            final = {k: event[k] for k in ("usage", "timings") if event.get(k)}
        fingerprint = event.get("system_fingerprint")
        if fingerprint and backend.server_info.build is None:
            backend.server_info = dataclasses.replace(backend.server_info, build=fingerprint)
        choices = event.get("choices") or ()
        if not choices:
            if final:
                yield Delta(final=final)
            continue
        choice = choices[0]
        delta = choice.get("delta") or {}
        yield Delta(
            content=delta.get("content") or "",
            thinking=delta.get("reasoning_content") or delta.get("reasoning") or "",
            finish_reason=choice.get("finish_reason"),
            final=final,
        )
    if not saw_done:
        raise StreamError("no [DONE]")


def reference_ndjson(pieces: list[bytes]) -> Iterator[Delta]:
    """The plugin's per-line NDJSON decoding (json.loads per line)."""
    for line in split_lines(pieces):
        if not line:
            continue
        try:
            chunk = json.loads(line)
        except ValueError:
            raise StreamError(f"malformed NDJSON {line[:200]!r}") from None
        if not isinstance(chunk, dict):
            raise StreamError(f"not an object {line[:200]!r}")
        if "error" in chunk:
            raise StreamError(f"error {chunk['error']!r}")
        message = chunk.get("message") or {}
        if chunk.get("done"):
            yield Delta(
                content=message.get("content") or "",
                thinking=message.get("thinking") or "",
                finish_reason=chunk.get("done_reason"),
                final={k: v for k, v in chunk.items() if k not in ("message", "model")},
            )
            return
        yield Delta(content=message.get("content") or "", thinking=message.get("thinking") or "")
    raise StreamError("no done chunk")


def outcome(deltas: Iterator[Delta], backend: Backend | None) -> dict[str, Any]:
    """What decoding ``deltas`` left behind (the build read from ``backend`` afterwards)."""
    acc = Accumulator(record_events=True)
    acc.clock.sent = 0.0
    error = None
    try:
        for delta in deltas:
            acc.add(delta, float(Clock.now))
    except StreamError as exc:
        error = "StreamError"  # messages differ by design (the plugin names the model)
        del exc
    acc.finish(-1.0)
    c = acc.clock
    return {
        "text": acc.text,
        "answer": acc.answer,
        "thinking": acc.thinking,
        "finish": acc.finish_reason,
        "final": acc.final,
        "clock": (c.first_token, c.first_answer, c.last_token, c.token_events, c.thinking_events),
        "events": acc.events,
        "build": None if backend is None else backend.server_info.build,
        "error": error,
    }


def check(cases: int = 2000, seed: int = 1) -> tuple[int, list[str]]:
    """Run ``cases`` random streams of each kind; returns (streams checked, mismatches)."""
    rng = random.Random(seed)
    problems: list[str] = []
    for case in range(cases):
        for kind in ("sse", "ndjson"):
            text = sse_stream(rng) if kind == "sse" else ndjson_stream(rng)
            pieces = reads(text.encode(), rng)
            if kind == "sse":
                ref_backend = OpenAIBackend(parse_spec("openai:m@http://x"))
                new_backend = OpenAIBackend(parse_spec("openai:m@http://x"))
                ref = outcome(reference_sse(ref_backend, pieces), ref_backend)
                resp = response(pieces, "text/event-stream")
                new = outcome(new_backend.iter_deltas(resp), new_backend)
            else:
                ref = outcome(reference_ndjson(pieces), None)
                olla = OllamaBackend(parse_spec("ollama:m@http://x"))
                new = outcome(olla.iter_deltas(response(pieces, "application/x-ndjson")), None)
            if ref != new:
                diff = {k: (ref[k], new[k]) for k in ref if ref[k] != new[k]}
                problems.append(f"case {case} {kind}: {str(diff)[:600]} stream {text[:300]!r}")
    return 2 * cases, problems


def main() -> int:
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    checked, problems = check(cases, seed)
    for problem in problems[:10]:
        print(problem)
    print(f"{checked} streams, {len(problems)} mismatches")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
