"""Every byte from a server is bounded, on every request (issue 19 part 3).

Each attack of ``fakes._common.Attack`` (a reply dripping one byte every few seconds,
a gzip bomb, a 2 GB body, a 100,000-deep JSON value) is aimed at each request the plugin
makes: discovery (/v1/models, /props), health, Ollama's version, tags, show, ps, preload,
pull, unload, the memory figures after a generation, and the generation stream. Each must
end in time, in bounded memory, as an item error (``LLMBenchError``) naming the server's URL
and the limit. Time limits are shortened here (``reply_limits`` is read at request time) so
that a drip ends in seconds; the byte caps are the real ones.
"""

from __future__ import annotations

import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest

from fakes import FakeLlamaServer, FakeOllama, ModelScript
from fakes._common import Attack, FakeHTTPServer
from pytest_llmbench.errors import LLMBenchError, ReplyLimitError
from pytest_llmbench.serve import reply_limits
from pytest_llmbench.serve.backends.base import Backend, Timeouts
from pytest_llmbench.serve.backends.llama_cpp import LlamaServerBackend
from pytest_llmbench.serve.backends.ollama import OllamaBackend
from pytest_llmbench.serve.backends.openai_compat import OpenAIBackend
from pytest_llmbench.serve.generation import Settings
from pytest_llmbench.serve.reply_limits import ReplyLimits
from pytest_llmbench.serve.server_info import ServerOptions
from pytest_llmbench.serve.specs import parse_spec
from tests.fixtures.fakes import StartLlamaServer

SHORT_S = 1.5
"""The total time limit of every request here (the real ones are 5-30 s)."""
HI = [{"role": "user", "content": "Say hi"}]
TOKENS = ["Hel", "lo", "!"]
MB = 2**20
MEMORY_MB = 80
"""Peak Python allocations allowed while one attack is handled (the largest cap is
16 MiB; before, the 2 GB body and the gzip bomb went to gigabytes)."""
DEADLINE_S = 25.0
"""Wall time allowed for one attack (a drip held pytest forever before), on a loaded
2-core machine."""

ATTACKS = {
    "drip": Attack("drip", drip_s=0.4, size=10**6),
    "drip_head": Attack("drip_head", drip_s=0.4, size=10**6),
    "gzip": Attack("gzip_bomb", size=10 * MB),
    "2GB": Attack("huge_body"),
    "deep": Attack("deep_json"),
}

WHAT = {
    "drip": "time limit",
    "drip_head": "time limit",
    "gzip": "Content-Encoding: gzip",
    "2GB": "size limit",
    "deep": "JSON depth limit",
}


@pytest.fixture(autouse=True)
def short_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INFO", "PROBE", "HEALTH", "PULL"):
        limits: ReplyLimits = getattr(reply_limits, name)
        monkeypatch.setattr(reply_limits, name, replace(limits, total_s=SHORT_S))
    monkeypatch.setattr(
        reply_limits, "unload_limits", lambda _s: ReplyLimits("unloading", SHORT_S, 16 * MB)
    )


OPTIONS = ServerOptions(health_timeout_s=SHORT_S, pull=True)
TIMEOUTS = Timeouts(connect_s=5.0, read_s=SHORT_S, total_s=10.0)


def llama(url: str) -> LlamaServerBackend:
    return LlamaServerBackend(parse_spec(f"llama-server@{url}"), OPTIONS)


def openai(url: str) -> OpenAIBackend:
    return OpenAIBackend(parse_spec(f"openai:/models/m.gguf@{url}/v1"), OPTIONS)


def ollama(url: str) -> OllamaBackend:
    return OllamaBackend(parse_spec(f"ollama:m@{url}"), OPTIONS)


@dataclass(frozen=True)
class Case:
    """One request kind: a fake, the path attacked, what runs before the attack starts, and
    the action that makes the attacked request."""

    fake: Callable[[], FakeHTTPServer]
    make: Callable[[str], Backend]
    paths: tuple[str, ...]
    before: Callable[[Backend], object] | None
    action: Callable[[Backend], object]
    attacks: tuple[str, ...] = tuple(ATTACKS)
    stream: bool = False
    """The generation stream (its time and size limits are the generation's own)."""


def prepare(backend: Backend) -> object:
    return backend.prepare(Settings(), lambda _line: None)


def generate(backend: Backend) -> object:
    return backend.generate(HI, Settings(max_tokens=64), TIMEOUTS)


def llama_fake() -> FakeHTTPServer:
    return FakeLlamaServer(ModelScript(TOKENS))


def ollama_fake() -> FakeHTTPServer:
    return FakeOllama({"m": ModelScript(TOKENS)})


def ollama_to_pull() -> FakeHTTPServer:
    return FakeOllama(None, pull_catalog={"m": ModelScript(TOKENS)})


CASES = {
    # A deep /health is never parsed (only its status is read): no JSON to bound.
    "llama /health": Case(
        llama_fake, llama, ("/health",), None, prepare, ("drip", "drip_head", "gzip", "2GB")
    ),
    "llama /props": Case(llama_fake, llama, ("/props",), None, prepare),
    "llama /v1/models": Case(llama_fake, llama, ("/v1/models",), None, prepare),
    "openai /v1/models": Case(llama_fake, openai, ("/v1/models",), None, prepare),
    "llama stream": Case(
        llama_fake, llama, ("/v1/chat/completions",), prepare, generate, stream=True
    ),
    "openai stream": Case(
        llama_fake, openai, ("/v1/chat/completions",), prepare, generate, stream=True
    ),
    "ollama /api/version": Case(ollama_fake, ollama, ("/api/version",), None, prepare),
    "ollama /api/tags": Case(ollama_fake, ollama, ("/api/tags",), None, prepare),
    "ollama pull": Case(ollama_to_pull, ollama, ("/api/pull",), None, prepare),
    # Preload reads only the status of its answer: a deep one is never parsed.
    "ollama preload": Case(
        ollama_fake, ollama, ("/api/chat",), None, prepare, ("drip", "drip_head", "gzip", "2GB")
    ),
    "ollama /api/ps": Case(ollama_fake, ollama, ("/api/ps",), None, prepare),
    "ollama /api/show": Case(ollama_fake, ollama, ("/api/show",), None, prepare),
    "ollama stream": Case(ollama_fake, ollama, ("/api/chat",), prepare, generate, stream=True),
    "ollama memory": Case(ollama_fake, ollama, ("/api/ps",), prepare, generate),
    "ollama unload": Case(
        ollama_fake, ollama, ("/api/chat", "/api/ps"), prepare, lambda b: b.release()
    ),
}


def params() -> Iterator[object]:
    for name, case in CASES.items():
        for attack in case.attacks:
            yield pytest.param(case, attack, id=f"{name}-{attack}")


@dataclass
class Outcome:
    error: BaseException | None
    warned: list[str]
    seconds: float
    peak_mb: float


def run_attack(case: Case, attack: str) -> tuple[Outcome, str]:
    with case.fake() as fake:
        backend = case.make(fake.url)
        if isinstance(backend, LlamaServerBackend | OpenAIBackend):
            backend.base_url = fake.url
        if case.before is not None:
            case.before(backend)
        fake.attack = replace(ATTACKS[attack], paths=frozenset(case.paths))
        tracemalloc.start()
        started = time.monotonic()
        error: BaseException | None = None
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            try:
                case.action(backend)
            except Exception as exc:
                error = exc
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1] / MB
        tracemalloc.stop()
        fake.attack = None
    messages = [str(w.message) for w in warned]
    return Outcome(error, messages, seconds, peak), fake.url


@pytest.mark.parametrize(("case", "attack"), list(params()))
def test_every_request_is_bounded(case: Case, attack: str) -> None:
    outcome, url = run_attack(case, attack)
    assert outcome.seconds < DEADLINE_S, outcome
    assert outcome.peak_mb < MEMORY_MB, outcome
    if case.action is not prepare and case.action is not generate:  # unload: warned, not raised
        assert outcome.error is None, outcome
        assert any(url in m and WHAT[attack] in m for m in outcome.warned), outcome
        return
    error = outcome.error
    assert isinstance(error, LLMBenchError), repr(error)  # an item error, not the model's failure
    message = str(error)
    if case.paths == ("/health",):
        # Health is polled until --llm-health-timeout; the last poll's limit is named.
        assert "not healthy after" in message and WHAT[attack] in message, message
    elif attack.startswith("drip") and case.stream:
        # The stream's own limit: no token arrives, so the stall limit (--llm-read-timeout).
        assert "stall limit" in message, message
    elif attack == "2GB" and case.stream:
        assert "ignored the output cap" in message and url in message, message
    else:
        assert isinstance(error, ReplyLimitError), repr(error)
        assert url in message and WHAT[attack] in message, message


def test_a_failed_discovery_is_one_error_per_model_and_the_others_are_kept(
    pytester: pytest.Pytester,
    fake_llama_server: StartLlamaServer,
) -> None:
    pytester.makepyfile(
        test_f="import pytest\n"
        "@pytest.mark.parametrize('n', [1, 2])\n"
        "def test_answer(llm, n):\n    assert llm.generate('Say hi').answer\n"
    )
    good = fake_llama_server(ModelScript(TOKENS))
    bad = fake_llama_server(ModelScript(TOKENS))
    bad.attack = Attack("gzip_bomb", paths=frozenset({"/v1/models"}), size=10 * MB)
    result = pytester.runpytest(
        f"--llm-models=openai:/models/m.gguf@{good.url}/v1,openai:/models/m.gguf@{bad.url}/v1"
    )
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            f"*ReplyLimitError: *{bad.url}/v1/models: the reply is compressed (Content-Encoding: gzip)*"
        ]
    )
    assert len(bad.calls("GET", "/v1/models")) == 1  # the second item fails fast


def test_only_the_bounded_client_talks_to_servers() -> None:
    """A future request cannot skip the bounds: no module but ``serve/bounded.py`` makes
    an HTTP client or sends a request by itself."""
    import re
    from pathlib import Path

    import pytest_llmbench

    talk = re.compile(
        r"httpx\.(Client|AsyncClient|get|post|put|head|stream|request)\(|urlopen\(|"
        r"^\s*import (requests|http\.client|urllib\.request)|^\s*from (urllib\.request|http\.client)",
        re.M,
    )
    root = Path(pytest_llmbench.__file__).parent
    offenders = [
        f"{path.relative_to(root)}: {match.group(0).strip()}"
        for path in sorted(root.rglob("*.py"))
        if path != root / "serve" / "bounded.py"
        for match in talk.finditer(path.read_text())
    ]
    assert offenders == []
    assert talk.search((root / "serve" / "bounded.py").read_text())  # the pattern finds it


@pytest.mark.parametrize(
    ("path", "attack", "what"),
    [
        ("/v1/models", Attack("huge_body", size=2**30), "size limit"),
        ("/v1/chat/completions", Attack("deep_json"), "JSON depth limit"),
    ],
)
def test_the_judges_requests_are_bounded_and_its_failure_is_an_item_error(
    pytester: pytest.Pytester,
    path: str,
    attack: Attack,
    what: str,
    fake_llama_server: StartLlamaServer,
) -> None:
    pytester.makepyfile(
        test_j="from pytest_llmbench import checks\n"
        "def test_judged(llm, llm_judge):\n"
        "    answer = llm.generate('explain')\n"
        "    checks.judge(llm_judge, 'explain', answer.answer, {'clear': 'is clear'})\n"
    )
    model = fake_llama_server(ModelScript(TOKENS))
    judge = fake_llama_server(ModelScript(TOKENS))
    judge.attack = replace(attack, paths=frozenset({path}))
    result = pytester.runpytest(
        f"--llm-models=llama-server@{model.url}",
        f"--llm-judge=openai:/models/m.gguf@{judge.url}/v1",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*ReplyLimitError: *{judge.url}{path}: *{what}*"])
