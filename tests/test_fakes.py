"""Tests of the loopback fakes (fakes/): shapes, timing, bookkeeping, faults."""

from __future__ import annotations

import itertools
import json
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from fakes import FakeLlamaServer, FakeOllama, ModelScript
from fakes._common import Attack
from fakes.ollama import CURRENT
from tests.fixtures.fakes import StartLlamaServer, StartOllama

RFC3339NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
METRICS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)
D = 0.1  # token delay used by the timing tests
# A sleep never ends early but a loaded machine (two CPU burners on 2 cores) may end it late:
# a measured interval is at least what was slept, and at most SLACK more.
SLACK = 0.3


def slept(measured_s: float, expected_s: float) -> bool:
    """True when an interval measured around sleeps of expected_s in all fits a loaded machine."""
    return expected_s - 0.005 <= measured_s < expected_s + SLACK


def lines(
    client: httpx.Client, path: str, body: dict[str, Any]
) -> tuple[httpx.Response, list[tuple[float, str]]]:
    """POST and read the streamed body line by line, with client-side arrival times."""
    t0 = time.perf_counter()
    out: list[tuple[float, str]] = []
    with client.stream("POST", path, json=body) as r:
        for line in r.iter_lines():
            out.append((time.perf_counter() - t0, line))
    return r, out


def until_timeout(client: httpx.Client, path: str, body: dict[str, Any]) -> list[tuple[float, str]]:
    """Stream lines until the client's read timeout fires (which it must)."""
    got: list[tuple[float, str]] = []
    with pytest.raises(httpx.ReadTimeout):  # noqa: SIM117
        with client.stream("POST", path, json=body) as r:
            for line in r.iter_lines():
                got.append((0.0, line))
    return got


def events(rows: list[tuple[float, str]]) -> list[Any]:
    """SSE data payloads (JSON, or the literal "[DONE]")."""
    out: list[Any] = []
    for _, line in rows:
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


@contextmanager
def ollama(**models: ModelScript) -> Iterator[tuple[FakeOllama, httpx.Client]]:
    with FakeOllama(models) as fake, httpx.Client(base_url=fake.url, timeout=5) as client:
        yield fake, client


@contextmanager
def llama(script: ModelScript, **kw: Any) -> Iterator[tuple[FakeLlamaServer, httpx.Client]]:
    with FakeLlamaServer(script, **kw) as fake, httpx.Client(base_url=fake.url, timeout=5) as c:
        yield fake, c


CHAT = [{"role": "user", "content": "hi"}]


# -- Ollama: info endpoints -------------------------------------------------------------


def test_ollama_root_version_tags_show() -> None:
    with ollama(**{"tiny": ModelScript(["a"], thinking=["t"])}) as (fake, c):
        assert c.get("/").text == "Ollama is running"
        head = c.head("/")
        assert head.status_code == 200 and head.content == b""
        assert c.get("/api/version").json() == {"version": "0.12.0"}
        (row,) = c.get("/api/tags").json()["models"]
        assert row["name"] == row["model"] == "tiny:latest"
        assert RFC3339NANO.match(row["modified_at"]) and len(row["digest"]) == 64
        assert set(row["details"]) >= {
            "format",
            "family",
            "families",
            "parameter_size",
            "quantization_level",
        }
        show = c.post("/api/show", json={"model": "tiny"}).json()
        assert show["capabilities"] == ["completion", "thinking"]
        assert show["model_info"]["llama.context_length"] == 131072
        assert c.post("/api/show", json={"model": "nope"}).json() == {
            "error": "model 'nope' not found"
        }
        assert c.post("/api/show", json={}).status_code == 400
        assert c.get("/api/nothing").status_code == 404
        assert ("GET", "/api/version", None) in fake.requests


# -- Ollama: chat / generate ------------------------------------------------------------


def test_ollama_chat_stream_shapes_and_timing() -> None:
    script = ModelScript(
        ["Hel", "lo", "!"], thinking=["Hmm", "."], token_delay_s=D, load_delay_s=0.1
    )
    with ollama(m=script) as (_, c):
        r, rows = lines(c, "/api/chat", {"model": "m", "messages": CHAT})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    chunks = [json.loads(line) for _, line in rows]
    *parts, final = chunks
    # Thinking first (content ""), then content; each chunk done:false.
    assert [p["message"].get("thinking") for p in parts[:2]] == ["Hmm", "."]
    assert all(p["message"]["content"] == "" for p in parts[:2])
    assert [p["message"]["content"] for p in parts[2:]] == ["Hel", "lo", "!"]
    assert all(p["done"] is False and p["model"] == "m" for p in parts)
    assert all(RFC3339NANO.match(ch["created_at"]) for ch in chunks)
    # Final chunk: integer ns metrics; eval_count = 5 tokens + the EOS sample.
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["message"] == {"role": "assistant", "content": ""}
    assert all(isinstance(final[k], int) for k in METRICS)
    assert final["eval_count"] == 6 and final["prompt_eval_count"] == 10
    assert slept(final["load_duration"] / 1e9, 0.1)
    assert slept(final["eval_duration"] / 1e9, 5 * D)  # 4 gaps + EOS step
    assert final["total_duration"] >= final["load_duration"] + final["eval_duration"]
    # Chunks really arrive one by one, token_delay_s apart: a late read shortens the gap
    # after it, so each gap is bounded above and the span of the first five below.
    times = [t for t, _ in rows]
    gaps = [b - a for a, b in itertools.pairwise(times[:5])]
    assert all(g < D + SLACK for g in gaps), gaps
    assert times[4] - times[0] > 2 * D, gaps
    assert slept(times[0], 0.1)  # first chunk right after the load


def test_ollama_generate_nonstream_num_predict_and_think_false() -> None:
    script = ModelScript(["a", "b", "c", "d"], thinking=["t"])
    with ollama(m=script) as (_, c):
        r = c.post(
            "/api/generate",
            json={"model": "m", "prompt": "x", "stream": False, "think": False},
        )
        body = r.json()
        assert r.headers["content-type"] == "application/json; charset=utf-8"
        assert body["response"] == "abcd" and "thinking" not in body
        assert body["done_reason"] == "stop" and body["eval_count"] == 5
        assert isinstance(body["context"], list)
        capped = c.post(
            "/api/generate",
            json={"model": "m", "prompt": "x", "stream": False, "options": {"num_predict": 2}},
        ).json()
        assert capped["thinking"] == "t" and capped["response"] == "a"
        assert capped["done_reason"] == "length" and capped["eval_count"] == 2
        _, rows = lines(c, "/api/generate", {"model": "m", "prompt": "x"})
        parsed = [json.loads(line) for _, line in rows]
        assert parsed[0]["thinking"] == "t" and parsed[0]["response"] == ""
        assert parsed[-1]["response"] == "" and parsed[-1]["done"] is True


def test_ollama_errors() -> None:
    with ollama(m=ModelScript(["a"]), think=ModelScript(["a"], thinking=["t"])) as (_, c):

        def post(path: str, **body: Any) -> tuple[int, Any]:
            r = c.post(path, json=body)
            return r.status_code, r.json()

        assert post("/api/chat", model="x", messages=CHAT) == (
            404,
            {"error": "model 'x' not found"},
        )
        assert post("/api/chat", messages=CHAT) == (400, {"error": "model is required"})
        # GenerateHandler answers an empty name with its not-found fallback.
        assert post("/api/generate", prompt="p") == (404, {"error": "model '' not found"})
        assert post("/api/chat", model="m", messages=CHAT, think=True) == (
            400,
            {"error": '"m" does not support thinking'},
        )
        assert post("/api/chat", model="m", keep_alive="5")[0] == 400
        assert post("/api/chat", model="m", keep_alive="5")[1]["error"].startswith(
            "time: missing unit"
        )
        assert post("/api/chat", model="m", messages=CHAT, options={"num_predict": "x"}) == (
            500,
            {"error": 'option "num_predict" must be of type integer'},
        )
        r = c.post("/api/chat", content=b"")
        assert (r.status_code, r.json()) == (400, {"error": "missing request body"})
        # think:false on a thinking model: no thinking chunk.
        _, rows = lines(c, "/api/chat", {"model": "think", "messages": CHAT, "think": False})
        assert all("thinking" not in json.loads(line)["message"] for _, line in rows)


def test_ollama_preload_unload_and_ps_bookkeeping() -> None:
    with ollama(m=ModelScript(["a"], load_delay_s=0.05), n=ModelScript(["b"])) as (fake, c):
        assert c.get("/api/ps").json() == {"models": []}
        pre = c.post("/api/chat", json={"model": "m", "messages": []}).json()
        assert pre == {
            "model": "m",
            "created_at": pre["created_at"],
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "load",
        }
        (ps,) = c.get("/api/ps").json()["models"]
        assert ps["name"] == "m:latest" and ps["context_length"] == 4096
        assert ps["size_vram"] == ps["size"] and RFC3339NANO.match(ps["expires_at"])
        # Already loaded: no load_duration to speak of.
        done = c.post("/api/chat", json={"model": "m", "messages": CHAT, "stream": False}).json()
        assert done["load_duration"] < 0.03e9
        # A different num_ctx reloads.
        c.post(
            "/api/generate",
            json={"model": "m", "prompt": "", "options": {"num_ctx": 8192}},
        )
        assert [r["context_length"] for r in c.get("/api/ps").json()["models"]] == [8192]
        assert fake.count("load", "m") == 2 and fake.count("unload", "m") == 1
        # Unload by empty prompt + keep_alive 0.
        unl = c.post("/api/generate", json={"model": "m", "keep_alive": 0}).json()
        assert unl["done_reason"] == "unload" and unl["response"] == ""
        assert "total_duration" not in unl
        assert c.get("/api/ps").json() == {"models": []}
        # keep_alive:0 on a real request: unloaded once it is answered.
        c.post("/api/chat", json={"model": "n", "messages": CHAT, "keep_alive": 0})
        assert fake.loaded() == []
        # A short keep_alive expires by itself; negative means forever.
        c.post("/api/chat", json={"model": "n", "messages": [], "keep_alive": "150ms"})
        c.post("/api/chat", json={"model": "m", "messages": [], "keep_alive": -1})
        assert fake.loaded() == ["n:latest", "m:latest"]
        time.sleep(0.2)
        (forever,) = c.get("/api/ps").json()["models"]
        assert forever["name"] == "m:latest" and forever["expires_at"] > "2200"
        assert fake.count("unload") == 4  # reload, two keep_alive 0, one expiry
        assert len(fake.calls("POST", "/api/chat")) == 5


def test_ollama_pull(fake_ollama: StartOllama) -> None:
    catalog = {"new": ModelScript(["x"], size=4000)}
    fake = fake_ollama(None, pull_catalog=catalog)
    with httpx.Client(base_url=fake.url) as c:
        assert c.get("/api/tags").json() == {"models": []}
        _, rows = lines(c, "/api/pull", {"model": "new"})
        statuses = [json.loads(line) for _, line in rows]
        assert statuses[0] == {"status": "pulling manifest"}
        layer = [s for s in statuses if s["status"].startswith("pulling ") and "digest" in s]
        assert layer[0]["status"] == f"pulling {layer[0]['digest'][7:19]}"
        assert "completed" not in layer[0] and layer[0]["total"] == 4000
        assert [s.get("completed") for s in layer[:5]] == [None, 1000, 2000, 3000, 4000]
        assert [s["status"] for s in statuses[-3:]] == [
            "verifying sha256 digest",
            "writing manifest",
            "success",
        ]
        assert [m["name"] for m in c.get("/api/tags").json()["models"]] == ["new:latest"]
        r, rows = lines(c, "/api/pull", {"model": "missing"})
        assert r.status_code == 200
        assert [json.loads(line) for _, line in rows] == [
            {"status": "pulling manifest"},
            {"error": "pull model manifest: file does not exist"},
        ]
        r = c.post("/api/pull", json={"model": "missing", "stream": False})
        assert r.status_code == 500
        assert c.post("/api/pull", json={"model": "new", "stream": False}).json() == {
            "status": "success"
        }


# -- Ollama: faults ---------------------------------------------------------------------


def test_ollama_fault_cut() -> None:
    with ollama(m=ModelScript(["a", "b", "c"], fault="cut", fault_after=2)) as (_, c):
        got: list[str] = []
        with pytest.raises(httpx.RemoteProtocolError):  # noqa: SIM117
            with c.stream("POST", "/api/chat", json={"model": "m", "messages": CHAT}) as r:
                got.extend(r.iter_lines())
        assert [json.loads(line)["message"]["content"] for line in got] == ["a", "b"]


def test_ollama_fault_stall_then_client_timeout(fake_ollama: StartOllama) -> None:
    script = ModelScript(["a", "b"], fault="stall", fault_after=1, stall_s=10)
    fake = fake_ollama({"m": script})
    t0 = time.perf_counter()
    with httpx.Client(base_url=fake.url, timeout=httpx.Timeout(5, read=0.3)) as c:
        got = until_timeout(c, "/api/chat", {"model": "m", "messages": CHAT})
    assert len(got) == 1 and time.perf_counter() - t0 < 2
    # A short stall just delays the answer.
    with ollama(m=ModelScript(["a", "b"], fault="stall", fault_after=1, stall_s=0.2)) as (_, c):
        _, rows = lines(c, "/api/chat", {"model": "m", "messages": CHAT})
        assert rows[1][0] - rows[0][0] >= 0.19 and json.loads(rows[-1][1])["done"] is True


def test_ollama_fault_error_midstream_garbage_zero() -> None:
    with ollama(
        err=ModelScript(["a", "b"], fault="error_midstream", fault_after=1),
        err0=ModelScript(["a"], fault="error_midstream", fault_after=0),
        junk=ModelScript(["a", "b"], fault="garbage", fault_after=1),
        zero=ModelScript(["a"], fault="zero_tokens"),
    ) as (_, c):
        r, rows = lines(c, "/api/chat", {"model": "err", "messages": CHAT})
        parsed = [json.loads(line) for _, line in rows]
        assert r.status_code == 200 and len(parsed) == 2
        assert (
            set(parsed[-1]) == {"error"}
            and "runner has unexpectedly stopped" in parsed[-1]["error"]
        )
        r = c.post("/api/chat", json={"model": "err0", "messages": CHAT})
        assert r.status_code == 500 and "error" in r.json()
        _, rows = lines(c, "/api/chat", {"model": "junk", "messages": CHAT})
        with pytest.raises(json.JSONDecodeError):
            json.loads(rows[1][1])
        assert json.loads(rows[-1][1])["done"] is True
        _, rows = lines(c, "/api/chat", {"model": "zero", "messages": CHAT})
        (final,) = [json.loads(line) for _, line in rows]
        assert final["done"] is True and final["done_reason"] == "stop"
        assert "eval_count" not in final  # Go omitempty: a 0 count is simply missing


def test_ollama_context_overflow_truncates_silently_unless_truncate_false(
    fake_ollama: StartOllama,
) -> None:
    script = ModelScript(["a"], fault="context_overflow")
    fake = fake_ollama({"m": script}, version="0.12.6")  # truncate:false is read from v0.12.6 on
    with httpx.Client(base_url=fake.url, timeout=5) as c:
        body = {"model": "m", "messages": CHAT, "stream": False, "options": {"num_ctx": 2048}}
        done = c.post("/api/chat", json=body).json()
        assert done["done"] is True and done["prompt_eval_count"] == 2048
        r = c.post("/api/chat", json=body | {"truncate": False})
        assert (r.status_code, r.json()) == (
            400,
            {"error": "the input length exceeds the context length"},
        )


# -- llama-server -----------------------------------------------------------------------


def test_llama_health_transition_and_loading_answers() -> None:
    with llama(ModelScript(["a"]), loading_s=0.3) as (_, c):
        r = c.get("/health")
        assert r.status_code == 503
        assert r.json() == {
            "error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}
        }
        assert c.get("/props").status_code == 503
        assert c.get("/v1/models").status_code == 503  # every route: middleware_server_state
        assert c.get("/").status_code == 200  # but the web UI
        deadline = time.monotonic() + 3
        while c.get("/health").status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get("/health").json() == {"status": "ok"}
        assert c.get("/v1/models").json()["data"][0]["meta"]["n_ctx_train"] == 131072
    with llama(ModelScript(["a"]), loading_s=float("inf")) as (_, c):
        time.sleep(0.1)
        assert c.get("/health").status_code == 503


def test_llama_props_models_404() -> None:
    with llama(ModelScript(["a"]), n_ctx=2048, alias="tiny") as (_, c):
        props = c.get("/props").json()
        assert props["default_generation_settings"]["n_ctx"] == 2048
        assert props["total_slots"] == 1 and props["build_info"] == "b7000-abc"
        assert props["model_path"] == "/models/m.gguf" and "im_start" in props["chat_template"]
        (model,) = c.get("/v1/models").json()["data"]
        assert model["id"] == "tiny" and model["owned_by"] == "llamacpp"
        r = c.get("/nowhere")
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_llama_stream_shapes_timings_and_close(fake_llama_server: StartLlamaServer) -> None:
    script = ModelScript(
        ["Hel", "lo", "!"], thinking=["Hmm"], token_delay_s=D, prompt_eval_count=12
    )
    body = {"messages": CHAT, "stream": True, "stream_options": {"include_usage": True}}
    with llama(script) as (fake, c):
        r, rows = lines(c, "/v1/chat/completions", body)
        assert r.headers["content-type"] == "text/event-stream"
        evs = events(rows)
        role, first, *rest = evs
        assert role["choices"][0]["delta"] == {"role": "assistant", "content": None}
        assert role["object"] == "chat.completion.chunk"
        assert role["system_fingerprint"] == "b7000-abc"
        assert first["choices"][0]["delta"] == {"reasoning_content": "Hmm"}
        # The role event comes with the first token, not before it (one write).
        t_role = next(t for t, line in rows if '"role"' in line)
        t_first = next(t for t, line in rows if "Hmm" in line)
        assert t_first - t_role < D
        deltas = [e["choices"][0]["delta"].get("content") for e in rest[:3]]
        assert deltas == ["Hel", "lo", "!"]
        finish, usage_ev, done = rest[3:]
        assert finish["choices"] == [{"finish_reason": "stop", "index": 0, "delta": {}}]
        assert "timings" not in finish and done == "[DONE]"
        assert usage_ev["choices"] == []
        usage, t = usage_ev["usage"], usage_ev["timings"]
        assert usage["completion_tokens"] == t["predicted_n"] == 5  # 4 tokens + EOS
        assert usage["prompt_tokens"] == 12 and usage["total_tokens"] == 17
        assert (t["cache_n"], t["prompt_n"]) == (0, 12)
        # predicted_ms spans first sample -> EOS (4 steps); per_second = (n - 1) / ms.
        assert slept(t["predicted_ms"] / 1e3, 4 * D)
        assert t["predicted_per_second"] == pytest.approx(1e3 * 4 / t["predicted_ms"])
        assert t["predicted_per_token_ms"] == pytest.approx(t["predicted_ms"] / 4)
        # Repeat: the prompt is served from cache but one token.
        again = events(lines(c, "/v1/chat/completions", body)[1])[-2]["timings"]
        assert (again["cache_n"], again["prompt_n"]) == (11, 1)
        # Without include_usage the finish chunk carries the timings.
        plain = events(lines(c, "/v1/chat/completions", body | {"stream_options": {}})[1])
        assert "timings" in plain[-2] and plain[-2]["choices"][0]["finish_reason"] == "stop"
        assert fake.requests[0] == ("POST", "/v1/chat/completions", body)
    # The connection is closed after a streamed answer (advertising keep-alive).
    fake = fake_llama_server(ModelScript(["a"]))
    payload = json.dumps({"messages": CHAT, "stream": True}).encode()
    host, port = fake.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=2) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
            b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        data = b""
        while chunk := s.recv(65536):  # ends at EOF; a kept-alive socket would time out
            data += chunk
    assert b"keep-alive: timeout=5" in data.lower() and data.endswith(b"0\r\n\r\n")


def test_llama_limits_thinking_options_nonstream() -> None:
    script = ModelScript(["a", "b", "c"], thinking=["t"], token_delay_s=0.01)
    with llama(script) as (_, c):
        out = c.post(
            "/v1/chat/completions", json={"messages": CHAT, "max_tokens": 1, "n_predict": 3}
        ).json()
        assert out["object"] == "chat.completion"
        (choice,) = out["choices"]
        assert choice["finish_reason"] == "length"
        assert choice["message"] == {"role": "assistant", "content": "ab", "reasoning_content": "t"}
        assert out["usage"]["completion_tokens"] == out["timings"]["predicted_n"] == 3
        assert slept(out["timings"]["predicted_ms"] / 1e3, 0.02)  # 2 steps
        off = c.post(
            "/v1/chat/completions",
            json={"messages": CHAT, "chat_template_kwargs": {"enable_thinking": False}},
        ).json()
        assert off["choices"][0]["message"] == {"role": "assistant", "content": "abc"}
        raw = c.post(
            "/v1/chat/completions", json={"messages": CHAT, "reasoning_format": "none"}
        ).json()
        assert raw["choices"][0]["message"]["content"] == "<think>t</think>abc"
        r = c.post("/v1/chat/completions", json={"stream": True})
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_llama_context_overflow_and_pings() -> None:
    with llama(ModelScript(["a"], prompt_eval_count=5000), n_ctx=4096) as (_, c):
        r = c.post("/v1/chat/completions", json={"messages": CHAT, "stream": True})
        assert r.status_code == 400
        assert r.json() == {
            "error": {
                "code": 400,
                "message": "request (5000 tokens) exceeds the available context size "
                "(4096 tokens), try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 5000,
                "n_ctx": 4096,
            }
        }
    with llama(ModelScript(["a"], fault="context_overflow"), n_ctx=1000) as (_, c):
        err = c.post("/v1/chat/completions", json={"messages": CHAT}).json()["error"]
        assert (err["n_prompt_tokens"], err["n_ctx"]) == (2000, 1000)
    # Pings (":" comments) whenever nothing was sent for sse_ping_interval seconds: while
    # the prompt is processed and during a stall; the request's field beats the server's.
    script = ModelScript(["a", "b"], prompt_delay_s=0.5, fault="stall", fault_after=1, stall_s=0.5)
    with llama(script, sse_ping_interval=0.1) as (_, c):
        _, rows = lines(c, "/v1/chat/completions", {"messages": CHAT, "stream": True})
        kinds = ["ping" if line == ":" else "data" for _, line in rows if line]
        assert kinds[0] == "ping" and kinds.index("data") <= 6, kinds
        after = kinds[kinds.index("data") + 2 :]  # role + "a", then the stall
        assert after[0] == "ping" and events(rows)[-1] == "[DONE]", kinds
        _, rows = lines(
            c, "/v1/chat/completions", {"messages": CHAT, "stream": True, "sse_ping_interval": -1}
        )
        assert ":" not in [line for _, line in rows]


# -- llama-server: faults ---------------------------------------------------------------


def test_llama_faults(fake_llama_server: StartLlamaServer) -> None:
    body = {"messages": CHAT, "stream": True}
    with llama(ModelScript(["a", "b", "c"], fault="cut", fault_after=1)) as (_, c):
        got: list[str] = []
        with pytest.raises(httpx.RemoteProtocolError):  # noqa: SIM117
            with c.stream("POST", "/v1/chat/completions", json=body) as r:
                got.extend(r.iter_lines())
        assert "data: [DONE]" not in got and len(events([(0.0, g) for g in got])) == 2
    with llama(ModelScript(["a", "b"], fault="error_midstream", fault_after=1)) as (_, c):
        r, rows = lines(c, "/v1/chat/completions", body)
        evs = events(rows)
        assert r.status_code == 200 and evs[-1] == {
            "error": {
                "code": 500,
                "message": "Context size has been exceeded.",
                "type": "server_error",
            }
        }
        assert "[DONE]" not in evs
        assert c.post("/v1/chat/completions", json={"messages": CHAT}).status_code == 500
    with llama(ModelScript(["a", "b"], fault="garbage", fault_after=1)) as (_, c):
        _, rows = lines(c, "/v1/chat/completions", body)
        with pytest.raises(json.JSONDecodeError):
            events(rows)
        assert rows[-2][1] == "data: [DONE]"
    with llama(ModelScript(["a"], fault="zero_tokens")) as (_, c):
        evs = events(lines(c, "/v1/chat/completions", body)[1])
        finish, done = evs
        assert finish["choices"][0]["finish_reason"] == "stop" and done == "[DONE]"
        t = finish["timings"]
        assert t["predicted_n"] == 0 and t["predicted_per_second"] == 0.0
    stall = ModelScript(["a", "b"], fault="stall", fault_after=1, stall_s=10)
    fake = fake_llama_server(stall)
    with httpx.Client(base_url=fake.url, timeout=httpx.Timeout(5, read=0.3)) as c:
        t0 = time.perf_counter()
        first = until_timeout(c, "/v1/chat/completions", body)
        # One slot: the second request only starts if the stalled one noticed the
        # client hanging up and let go of it.
        second = until_timeout(c, "/v1/chat/completions", body)
        assert len(events(first)) == len(events(second)) == 2  # role + "a", then hang
        assert time.perf_counter() - t0 < 3
    with llama(ModelScript(["a"], fault="html_404")) as (_, c):
        for r in (c.get("/health"), c.post("/v1/chat/completions", json=body)):
            assert r.status_code == 404 and r.headers["content-type"] == "text/html"


# -- Ollama: the 0.33.0 profile follows the real v0.33.0-rc2 (D1-D16) ------------------
# Each check names its divergence in shared/ollama/README.md and the transcript it follows.


@contextmanager
def current(models: dict[str, ModelScript], **kw: Any) -> Iterator[tuple[FakeOllama, httpx.Client]]:
    with (
        FakeOllama(models, version=CURRENT, **kw) as fake,
        httpx.Client(base_url=fake.url, timeout=5) as client,
    ):
        yield fake, client


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


def test_ollama_current_over_long_prompt_d1_d2() -> None:
    """D1: llama-server's 400 string-encoded inside Ollama's ``error`` (long-400.txt, no
    charset when streamed; long-400-nostream.txt). D2: /api/chat answers it whatever
    truncate/shift say, /api/generate truncates by default (generate-long.txt)."""
    with current({"m": ModelScript(["a"], prompt_eval_count=13922)}) as (_, c):
        for extra in ({}, {"truncate": True, "shift": True}, {"truncate": False}):
            r = c.post("/api/chat", json=chat("long", options={"num_ctx": 512}, **extra))
            assert r.status_code == 400 and r.headers["content-type"] == "application/json"
            assert json.loads(r.json()["error"]) == {
                "error": {
                    "code": 400,
                    "message": "request (13922 tokens) exceeds the available context size "
                    "(512 tokens), try increasing it",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": 13922,
                    "n_ctx": 512,
                }
            }
            assert r.text.startswith('{"error":"{\\"error\\":{\\"code\\":400,')
        r = c.post("/api/chat", json=chat("long", stream=False, options={"num_ctx": 512}))
        assert r.headers["content-type"] == "application/json; charset=utf-8"
        gen = {"model": "m", "prompt": "long", "stream": False, "options": {"num_ctx": 512}}
        done = c.post("/api/generate", json=gen).json()
        assert done["prompt_eval_count"] < 512  # cut to contextShiftPromptLimit
        assert c.post("/api/generate", json={**gen, "truncate": False}).status_code == 400


def test_ollama_current_shift_change_restarts_the_runner_d3_and_size_vram_d7() -> None:
    with current({"m": ModelScript(["a"])}) as (fake, c):
        c.post("/api/chat", json=chat("x", shift=False))
        c.post("/api/chat", json=chat("x", shift=False))
        assert fake.count("load", "m") == 1
        c.post("/api/chat", json=chat("x", shift=True))  # D3: a 2.09 s load in the transcript
        assert fake.count("load", "m") == 2
        (ps,) = c.get("/api/ps").json()["models"]
        assert ps["size_vram"] == 0 and ps["size"] == 800_000_000  # D7: ps-loaded.json (CPU)


def test_ollama_current_ps_waits_for_an_unloading_runner_d4(fake_ollama: StartOllama) -> None:
    """D4: after ``keep_alive: 0`` the next /api/ps blocks until the runner stopped and
    omits it (unload-timing-1.txt); v0.12 lists it while it stops."""
    for version, listed in ((CURRENT, False), ("0.12.0", True)):
        fake = fake_ollama({"m": ModelScript(["a"])}, version=version, unload_delay_s=0.2)
        with httpx.Client(base_url=fake.url, timeout=5) as c:
            c.post("/api/chat", json={"model": "m", "messages": []})
            c.post("/api/chat", json={"model": "m", "messages": [], "keep_alive": 0})
            started = time.perf_counter()
            names = [m["name"] for m in c.get("/api/ps").json()["models"]]
            waited = time.perf_counter() - started
        assert (names == ["m:latest"]) is listed, version
        assert (waited >= 0.15) is not listed, (version, waited)


def test_ollama_current_runner_death_d5_and_thinking_chunks_d14() -> None:
    died = ModelScript(["a", "b", "c"], fault="error_midstream", fault_after=2)
    thinker = ModelScript(["ok"], thinking=["2", "+", "2", "\n\n", "I", " think"])
    with current({"m": died, "t": thinker}) as (_, c):
        r, rows = lines(c, "/api/chat", chat("x"))
        assert r.status_code == 200  # D5: kill-stream.ndjson, an error line after content
        assert json.loads(rows[-1][1]) == {
            "error": "an error was encountered while running the model: unexpected EOF"
        }
        _, rows = lines(c, "/api/chat", {**chat("x"), "model": "t"})
    chunks = [json.loads(line) for _, line in rows]
    thinking = [ch["message"]["thinking"] for ch in chunks if ch["message"].get("thinking")]
    assert thinking == ["2", "+", "2", "\n\nI", " think"]  # D14: think-stream.ndjson
    assert chunks[-1]["eval_count"] == 8  # 6 thinking + 1 answer + EOS: tokens, not chunks


def test_ollama_current_reuses_only_checkpoints_d6() -> None:
    """D6 (cache-repeat-direct.txt, shared-system-prompt.txt): a prompt sharing part of one
    message reuses 1 token; an exact repeat all but 5; a shared system message up to its end.
    Seen here as prompt_eval_duration (the uncached prompt takes 0.2 s)."""
    script = ModelScript(["a"], prompt_eval_count=50, prompt_delay_s=0.2)
    system = {"role": "system", "content": "You are terse. " * 20}
    with current({"m": script}) as (_, c):

        def prompt_s(messages: list[dict[str, str]]) -> float:
            body = {"model": "m", "messages": messages, "stream": False}
            return float(c.post("/api/chat", json=body).json()["prompt_eval_duration"]) / 1e9

        first = prompt_s([{"role": "user", "content": "Count from 1 to 4."}])
        shared_text = prompt_s([{"role": "user", "content": "Count from 2 to 5."}])
        repeat = prompt_s([{"role": "user", "content": "Count from 2 to 5."}])
        with_system = prompt_s([system, {"role": "user", "content": "Name a colour."}])
        same_system = prompt_s([system, {"role": "user", "content": "Name an animal."}])
    assert first > 0.18 and shared_text > 0.18  # 49 of 50 evaluated
    assert repeat < 0.05  # 5 of 50
    assert with_system > 0.15 and same_system < 0.6 * with_system


def test_ollama_current_listing_endpoints_d8_d9_d10() -> None:
    with current({"m": ModelScript(["a"], family="gemma3", context_length=32768)}) as (_, c):
        (row,) = c.get("/api/tags").json()["models"]  # D8: tags.txt
        assert row["details"]["context_length"] == 32768
        assert row["details"]["embedding_length"] == 640
        assert row["capabilities"] == ["completion"]
        show = c.post("/api/show", json={"model": "m"}).json()  # D9: show.json
        assert "parameters" not in show and show["tensors"][0]["name"] == "output_norm.weight"
        # D10: show-404.txt names the tag, chat-404.txt keeps the name as given.
        assert c.post("/api/show", json={"model": "nosuchmodel"}).json() == {
            "error": "model 'nosuchmodel:latest' not found"
        }
        assert c.post("/api/chat", json={**chat("x"), "model": "nosuchmodel"}).json() == {
            "error": "model 'nosuchmodel' not found"
        }


def test_ollama_pull_offline_d11() -> None:
    """D11 (pull-stream.txt, pull-nostream.txt): no route to the registry fails on DNS."""
    with current({}, registry_reachable=False) as (_, c):
        _, rows = lines(c, "/api/pull", {"model": "nosuchmodel"})
        r = c.post("/api/pull", json={"model": "nosuchmodel", "stream": False})
    assert json.loads(rows[0][1]) == {"status": "pulling manifest"}
    error = json.loads(rows[-1][1])["error"]
    assert error.startswith('pull model manifest: Get "https://registry.ollama.ai/v2/library/')
    assert error.endswith("no such host") and "nosuchmodel/manifests/latest" in error
    assert r.status_code == 500 and r.json() == {"error": error}


def test_ollama_current_generate_context_d12_default_ctx_d15_one_runner_per_blob_d13() -> None:
    gguf = ModelScript(["a"], prompt_eval_count=5000, num_ctx=8192)
    with current({"gemma3-270m": gguf, "gemma3-think": gguf, "other": ModelScript(["b"])}) as (
        fake,
        c,
    ):
        body = {"model": "gemma3-270m", "prompt": "p", "stream": False}
        done = c.post("/api/generate", json={**body, "options": {"num_ctx": 8192}}).json()
        assert len(done["context"]) == 5000 + 2  # D12: the full list, not 4096 of it
        preload = {"messages": [], "options": {"num_ctx": 8192}}
        c.post("/api/chat", json={"model": "gemma3-think", **preload})
        c.post("/api/chat", json={"model": "other", **preload})
        names = [m["name"] for m in c.get("/api/ps").json()["models"]]
        # D13: one runner for both names of one GGUF; D16: no eviction by default.
        assert sorted(names) == ["gemma3-270m:latest", "other:latest"]
        assert fake.count("load", "gemma3-270m") == 1 and fake.count("load") == 2
        c.post("/api/generate", json={"model": "other", "keep_alive": 0})
        c.post("/api/chat", json={"model": "gemma3-270m", "messages": []})  # no num_ctx
        ctxs = [m["context_length"] for m in c.get("/api/ps").json()["models"]]
        assert ctxs == [4096]  # D15: the CPU default, not the Modelfile's 8192


# -- attacks (tests/hostile/test_server_bounds.py aims them at the plugin) ------------------


def _raw(url: str, request: bytes, until: bytes, limit: int = 2**24) -> bytes:
    """Read a raw answer until ``until`` appears (or ``limit`` bytes, or the end)."""
    host, port = url.removeprefix("http://").split(":")
    data = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        while until not in data and len(data) < limit:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


GET_MODELS = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"


def test_attack_gzip_bomb_inflates_a_thousand_times(fake_llama_server: StartLlamaServer) -> None:
    import zlib

    fake = fake_llama_server(ModelScript(["a"]))
    fake.attack = Attack("gzip_bomb", size=2**20)
    data = _raw(fake.url, GET_MODELS, b"never", limit=2**20)  # < the whole body
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Content-Encoding: gzip" in head and b"Content-Length: 1048576" in head
    inflater = zlib.decompressobj(31)
    inflated = inflater.decompress(body, 64 * 2**20)  # 64 MiB out, the rest left unread
    used = len(body) - len(inflater.unconsumed_tail)
    assert len(inflated) == 64 * 2**20 and len(inflated) / used > 900
    assert inflated.count(b"\0") == len(inflated)


def test_attack_huge_body_and_deep_json_on_plain_and_streamed_routes(
    fake_llama_server: StartLlamaServer, fake_ollama: StartOllama
) -> None:
    fake = fake_llama_server(ModelScript(["a"]))
    fake.attack = Attack("huge_body", size=2 * 2**30)
    head = _raw(fake.url, GET_MODELS, b"\r\n\r\n")
    assert b"Content-Length: 2147483648" in head
    fake.attack = Attack("deep_json", depth=1000)
    assert b"[" * 1000 + b"]" * 1000 in _raw(fake.url, GET_MODELS, b"]" * 1000)
    chat = json.dumps({"messages": [{"role": "user", "content": "x"}], "stream": True})
    post = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(chat)}"
        f"\r\n\r\n{chat}"
    ).encode()
    streamed = _raw(fake.url, post, b"\n\n")
    assert b"Transfer-Encoding: chunked" in streamed
    assert b"data: " + b"[" * 1000 in streamed  # one SSE event
    fake = fake_ollama({"m": ModelScript(["a"])})
    fake.attack = Attack("deep_json", depth=1000, paths=frozenset({"/api/chat"}))
    body = json.dumps({"model": "m", "messages": []})
    post = f"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    streamed = _raw(fake.url, post.encode() + body.encode(), b"]\n")
    assert b"application/x-ndjson" in streamed and b"]" * 1000 + b"\n" in streamed
    assert fake.calls("POST", "/api/chat")  # the request is still logged


@pytest.mark.parametrize("kind", ["drip", "drip_head"])
def test_attack_drips_one_byte_at_a_time(kind: str, fake_llama_server: StartLlamaServer) -> None:
    fake = fake_llama_server(ModelScript(["a"]))
    fake.attack = Attack(kind, drip_s=0.3, paths=frozenset({"/v1/models"}))
    host, port = fake.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(GET_MODELS)
        data, started = b"", time.monotonic()
        while time.monotonic() - started < 1.5:
            data += sock.recv(65536)
    # Headers at once then a byte per 0.3 s, or the head itself a byte per 0.3 s.
    after_head = data.partition(b"\r\n\r\n")[2]
    if kind == "drip":
        assert data.startswith(b"HTTP/1.1 200") and 2 <= len(after_head) <= 7
    else:
        assert b"\r\n\r\n" not in data and 2 <= len(data) <= 7
    assert len(_raw(fake.url, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", b"ok")) < 1000
