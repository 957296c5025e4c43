"""The Ollama backend against the real Ollama v0.33.0-rc2 (CPU build, gemma3-270m): every
Ollama behaviour that server can show. One server per session (``real_ollama``), small
``max_tokens``; the fake (``tests/plugin/test_ollama*.py``) keeps the faults and v0.12."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_llmbench.errors import RequestRejected, StreamError
from pytest_llmbench.serve.backends.base import Timeouts
from pytest_llmbench.serve.backends.ollama import OllamaBackend
from pytest_llmbench.serve.backends.ollama_replies import OllamaMetrics
from pytest_llmbench.serve.generation import Generation, ServerFigures, Settings
from pytest_llmbench.serve.server_info import ServerOptions
from pytest_llmbench.serve.specs import parse_spec
from pytest_llmbench.serve.streaming import Accumulator
from tests.fixtures.real_ollama import MODEL, THINKING_MODEL, RealOllama

pytestmark = pytest.mark.real_ollama

CTX = 4096
FAST = Settings(ctx=CTX, max_tokens=4)


class Tapped(OllamaBackend):
    """The backend, keeping each final chunk's figures as its reader read them."""

    finals: list[OllamaMetrics]

    def metrics(self, acc: Accumulator) -> ServerFigures:
        if isinstance(acc.final, OllamaMetrics):  # None: the stream had no final line
            self.finals = [*getattr(self, "finals", []), acc.final]
        return super().metrics(acc)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def backend_for(server: RealOllama, model: str, tmp: Path) -> Tapped:
    return Tapped(parse_spec(f"ollama:{model}@{server.url}"), ServerOptions(log_dir=str(tmp)))


@pytest.fixture(scope="module")
def gemma(real_ollama: RealOllama, tmp_path_factory: pytest.TempPathFactory) -> Any:
    backend = backend_for(real_ollama, MODEL, tmp_path_factory.mktemp("logs"))
    backend.load_s = backend.prepare(FAST, lambda _: None)  # type: ignore[attr-defined]
    yield backend
    backend.release()


def ps_entry(server: RealOllama, name: str) -> dict[str, Any]:
    models = httpx.get(f"{server.url}/api/ps", timeout=30).json()["models"]
    return next(m for m in models if m["name"] == f"{name}:latest")


def test_preload_server_facts_figures_and_memory(gemma: Tapped, real_ollama: RealOllama) -> None:
    info = gemma.server_info
    assert gemma.load_s > 0  # type: ignore[attr-defined]
    assert (info.version or "").startswith("0.33.0-rc2")
    assert (info.quantization, info.parameter_size, info.n_ctx) == ("Q4_K_M", "268.10M", CTX)
    # The GGUF's model was created without TEMPLATE: said, as llama-server's backend says it.
    assert any("has no chat template" in w and "{{ .Prompt }}" in w for w in info.warnings)
    g = gemma.generate(
        user("Say hello in one short sentence."), Settings(ctx=CTX, max_tokens=6), Timeouts()
    )
    final, m = gemma.finals[-1], g.metrics
    assert g.request["keep_alive"] == "60m" and g.request["options"]["num_predict"] == 6
    # Every server figure is the final chunk's.
    assert m.prompt_tokens == final.prompt_eval_count and m.output_tokens == final.eval_count
    # Preloaded: no load here (a load takes 1.3 s and more on this CPU; scheduling a warm
    # model, milliseconds, longer on a loaded machine).
    assert m.server_load_s == final.load_duration / 1e9 < 1.0
    assert m.server_prompt_ms == final.prompt_eval_duration / 1e6
    assert m.server_decode_ms == final.eval_duration / 1e6
    assert m.prompt_tps == pytest.approx(final.prompt_eval_count / final.prompt_eval_duration * 1e9)
    assert m.ttft_s is not None and m.ttft_s >= m.server_prompt_ms / 1e3
    # Memory on a CPU server: the model's size as a memory figure, no VRAM figure at all.
    entry = ps_entry(real_ollama, MODEL)
    assert entry["size_vram"] == 0 and entry["size"] > 100 * 2**20
    assert m.model_mb == entry["size"] / 2**20
    assert m.vram_mb is None


STORY = (
    "Here is a short story. A lighthouse keeper on a small northern island finds a message in "
    "a bottle every morning for a week. Each one is written in a different hand, on a "
    "different paper, in a different ink, and each one warns of a storm that never comes. "
    "The keeper writes down every message in his logbook, compares the handwriting with the "
    "letters of the islanders, asks the ferryman, the teacher and the priest, and learns "
    "nothing. On the seventh evening he climbs the tower, lights the lamp, and waits. The "
    "sea stays calm. On the eighth morning the bottle is empty, and the keeper, for the "
    "first time in years, feels afraid. He rows to the mainland, tells the harbour master, "
    "and is laughed at. That night the storm comes. Retell the story in one sentence, then "
    "name its theme, then say what you think the empty bottle means."
)
STORY = f"{STORY} Before you answer, read it once more, slowly: {STORY}"
"""About 340 tokens: a repeat evaluates 5 of them. Long, so that its uncached evaluation
outlasts the stalls of a loaded machine (a 5-token evaluation took 3 s at load 14 on 2 cores,
a 122-token prompt 4.4 s uncached)."""


def test_prompt_cache_is_marked_only_where_the_server_reused_it(gemma: Tapped) -> None:
    """Six prompts sharing 46 % of their text: gemma3 (sliding-window attention) reuses one
    token of each (the server's log: ``cached n_tokens = 1``), so none is marked; exact repeats
    of a longer prompt are (all but 5 tokens reused)."""
    counts = [
        gemma.generate(user(f"Count from {i} to {i + 3}."), FAST, Timeouts()) for i in range(1, 7)
    ]
    assert [c.kind for g in counts for c in g.caveats] == []
    story = STORY
    first, *repeats = (gemma.generate(user(story), FAST, Timeouts()) for _ in range(4))
    assert not first.caveats
    for again in repeats:
        assert [c.kind for c in again.caveats] == ["prompt_cache"], again.metrics
        assert again.metrics.prompt_tokens == first.metrics.prompt_tokens  # counted, not evaluated


def test_thinking_tokens_are_the_servers_tokens(real_ollama: RealOllama, tmp_path: Path) -> None:
    """A builtin thinking parser merges tokens into chunks (38 chunks for 40 tokens): the
    count comes from eval_count, not from the chunks."""
    backend = backend_for(real_ollama, THINKING_MODEL, tmp_path)
    backend.prepare(FAST, lambda _: None)
    try:
        g = backend.generate(user("What is 2+2?"), Settings(ctx=CTX, max_tokens=40), Timeouts())
    finally:
        backend.release()
    assert g.thinking and not g.answer and g.finish_reason == "length"
    assert g.metrics.output_tokens == 40
    assert g.metrics.thinking_tokens == 40


def test_over_long_prompt_and_capped_context(gemma: Tapped) -> None:
    """A 512-token context: the 400 names the context in words (Ollama string-encodes
    llama-server's JSON error inside its own); a context above the trained 32768 is capped
    with a warning."""
    gemma.prepare(Settings(ctx=512, max_tokens=4), lambda _: None)
    with pytest.raises(RequestRejected) as caught:
        gemma.generate(user("word " * 2000), Settings(ctx=512, max_tokens=4), Timeouts())
    message = str(caught.value)
    assert "exceeds the available context size (512 tokens)" in message, message
    assert "the prompt does not fit the context of 512 tokens" in message
    assert (
        '{"error"' not in message
        and '\\"' not in message
        and "exceed_context_size_error" not in message
    )
    gemma.prepare(Settings(ctx=65536, max_tokens=4), lambda _: None)
    assert gemma.server_info.n_ctx == 32768
    assert any("context of 32768 tokens, not the 65536" in w for w in gemma.server_info.warnings)
    gemma.prepare(FAST, lambda _: None)  # back to the module's context


def test_unload_returns_once_ps_no_longer_lists_the_model(
    real_ollama: RealOllama, tmp_path: Path
) -> None:
    backend = backend_for(real_ollama, MODEL, tmp_path)
    backend.prepare(FAST, lambda _: None)
    assert f"{MODEL}:latest" in real_ollama.loaded()
    backend.release()
    assert f"{MODEL}:latest" not in real_ollama.loaded()


ITEMS = """
import time
import httpx
import pytest

URL = "{url}"

def test_first(llm):
    generation = llm.generate("Count from 1 to 4.")
    assert generation.text and generation.request["keep_alive"] == "60m"

def test_idle_then_evicted(llm):
    time.sleep(3)  # longer than the server's own keep-alive (2 s)
    assert llm.generate("Name a colour.").text
    httpx.post(URL + "/api/generate", json={{"model": "gemma3-270m", "keep_alive": 0}}, timeout=60)
    while httpx.get(URL + "/api/ps", timeout=30).json()["models"]:
        time.sleep(0.05)
    assert llm.generate("Name a fruit.").text  # loaded again by the server
"""


def test_plugin_run_against_the_real_server(
    pytester: pytest.Pytester, real_ollama: RealOllama
) -> None:
    """Spec with a differently cased name, preload with ``load s``, one load for the run,
    ``keep_alive`` outlasting the server's 2 s default, a reload named and kept out of the
    TTFT median, repeats, and the model unloaded at the end."""
    pytester.makepyfile(test_o=ITEMS.format(url=real_ollama.url))
    result = pytester.runpytest(
        f"--llm-models=ollama:Gemma3-270M@{real_ollama.url}",
        "--llm-json=r.json",
        f"--llm-ctx={CTX}",
        "--llm-max-tokens=4",
        "--llm-repeat=2",
    )
    result.assert_outcomes(passed=4)
    data = json.loads((pytester.path / "r.json").read_text())
    gens = [g for item in data["items"] for g in item["record"]["generations"]]
    assert len(gens) == 6
    loads = [g["metrics"]["load_s"] for g in gens]
    assert loads[0] > 0 and loads[1:] == [None] * 5  # one preload for the whole run
    idle = [item["record"]["generations"] for item in data["items"] if "idle" in item["nodeid"]]
    assert len(idle) == 2
    for after_idle, after_eviction in idle:
        # Idle 3 s (the server's default keep-alive is 2 s): still loaded, no load paid.
        assert after_idle["metrics"]["server_load_s"] < 1.0
        assert "reloaded" not in [c["kind"] for c in after_idle["caveats"]]
        # Evicted: loaded again by the server, named, its load in the detail.
        assert [c["kind"] for c in after_eviction["caveats"]] == ["reloaded"]
        assert after_eviction["metrics"]["server_load_s"] >= 0.25
    clean = [g["metrics"]["ttft_s"] for g in gens if not g["caveats"]]
    assert data["models"][0]["ttft_s_median"] == pytest.approx(statistics.median(clean))
    result.stdout.fnmatch_lines(["*the model was loaded again during the run*"])
    assert real_ollama.loaded() == []  # unloaded, and waited for


def test_plugin_starts_ollama_serve_at_ollama_host_and_stops_it(
    pytester: pytest.Pytester,
    real_ollama: RealOllama,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Nothing at ``$OLLAMA_HOST`` (given as the CLI accepts it: no scheme), the real
    ``ollama`` on PATH: started there, used, stopped at the end."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ollama").symlink_to(real_ollama.binary)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")
    monkeypatch.setenv("OLLAMA_MODELS", str(real_ollama.home / "models"))
    pytester.makepyfile(test_o="def test_a(llm):\n    assert llm.generate('Hi').text\n")
    result = pytester.runpytest(
        f"--llm-models=ollama:{MODEL}",
        f"--llm-log-dir={tmp_path}",
        f"--llm-ctx={CTX}",
        "--llm-max-tokens=2",
        "-s",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*starting `ollama serve` at http://127.0.0.1:{port}*"])
    assert (
        "Listening on 127.0.0.1:" in (tmp_path / f"ollama-serve-127.0.0.1-{port}.log").read_text()
    )
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


@pytest.mark.parametrize("pull", [False, True], ids=["not-pulled", "pull-offline"])
def test_a_model_it_does_not_have(
    pytester: pytest.Pytester, real_ollama: RealOllama, pull: bool
) -> None:
    """Not pulled: the message says how to pull it. With --llm-pull on a machine without a
    route to ollama.com the pull fails on DNS: said as the network, not the name."""
    pytester.makepyfile(test_o="def test_a(llm):\n    assert llm.generate('Hi').text\n")
    args = ["--llm-pull"] if pull else []
    result = pytester.runpytest(f"--llm-models=ollama:nosuchmodel@{real_ollama.url}", *args)
    result.assert_outcomes(errors=1)
    if pull and _registry_resolves():  # a machine with a route out: a wrong name
        result.stdout.fnmatch_lines(
            ["*ModelNotFound: *`ollama pull nosuchmodel` failed: *Check the model name*"]
        )
    elif pull:
        result.stdout.fnmatch_lines(
            [
                "*ServerError: *`ollama pull nosuchmodel` failed: the Ollama server could not "
                "reach the registry (*registry.ollama.ai*). Check the server's network*"
            ]
        )
    else:
        result.stdout.fnmatch_lines(
            [
                "*ModelNotFound: *model 'nosuchmodel' is not pulled on * (it has: gemma3-think:latest, "
                "gemma3-270m:latest). Run `ollama pull nosuchmodel` or pass --llm-pull.*"
            ]
        )


def _registry_resolves() -> bool:
    try:
        socket.getaddrinfo("registry.ollama.ai", 443)
    except OSError:
        return False
    return True


def test_runner_death_mid_stream_is_a_stream_error(real_ollama: RealOllama, tmp_path: Path) -> None:
    """The runner (llama-server under ``ollama serve``) killed mid-answer: Ollama ends the
    HTTP 200 stream with an ``{"error"}`` line; the item errors naming it. Run last: the
    server restarts the runner only on the next request."""
    backend = backend_for(real_ollama, MODEL, tmp_path)
    backend.prepare(FAST, lambda _: None)
    outcome: list[Generation | BaseException] = []

    def generate() -> None:
        try:
            outcome.append(
                backend.generate(
                    user("Write a very long story about a dragon."),
                    Settings(ctx=CTX, max_tokens=400),
                    Timeouts(),
                )
            )
        except BaseException as exc:
            outcome.append(exc)

    backend.live = streaming = Streaming()
    worker = threading.Thread(target=generate)
    worker.start()
    runner = _runner_pid(real_ollama)
    assert streaming.tokens.wait(120), "no token streamed"  # killed mid-answer, not before
    os.kill(runner, signal.SIGKILL)
    worker.join(120)
    backend.loaded = False  # nothing left to unload
    (error,) = outcome
    assert isinstance(error, StreamError), error
    assert "Ollama reported an error mid-stream" in str(error)
    assert "unexpected EOF" in str(error) or "error was encountered" in str(error)


class Streaming:
    """A live hook that says when the third token arrived."""

    def __init__(self) -> None:
        self.tokens = threading.Event()

    def tick(self, label: str, tokens: int, sent: float, first: float | None, now: float) -> None:
        if tokens >= 3:
            self.tokens.set()

    def clear(self) -> None:
        return None


def _runner_pid(server: RealOllama) -> int:
    """The llama-server process ``ollama serve`` runs the model in."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for pid in server.leftovers():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"llama-server" in cmdline:
                return pid
        time.sleep(0.1)
    raise AssertionError("no llama-server runner under ollama serve")
