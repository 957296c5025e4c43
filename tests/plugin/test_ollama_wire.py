"""Every field the Ollama backend reads, from every endpoint it calls, sent with the wrong
type (issue 21): each is a server error naming the field, the value and the endpoint, never
a ``TypeError`` inside the plugin counted as the model's failure.

The fake answers as Ollama does; ``tamper`` rewrites one field of its replies to one path.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from fakes import ModelScript
from pytest_llmbench.errors import ServerError, StreamError
from pytest_llmbench.serve.backends.base import Timeouts
from pytest_llmbench.serve.backends.ollama import OllamaBackend
from pytest_llmbench.serve.generation import Settings
from pytest_llmbench.serve.server_info import ServerOptions
from pytest_llmbench.serve.specs import parse_spec
from tests.fixtures.fakes import StartOllama

GONE = object()
"""Tamper value: leave the field out."""
SETTINGS = Settings(ctx=4096, max_tokens=16)
HI = [{"role": "user", "content": "hi"}]
SCRIPT = ModelScript(["Hel", "lo"], thinking=["hm"], size=2 << 30, size_vram=1 << 30)

Line = Callable[[dict[str, Any]], bool]


def any_line(_obj: dict[str, Any]) -> bool:
    return True


def final_line(obj: dict[str, Any]) -> bool:
    """The final line of a generation (not a preload or unload reply)."""
    return obj.get("done") is True and obj.get("done_reason") not in ("load", "unload")


def token_line(obj: dict[str, Any]) -> bool:
    return obj.get("done") is False


def progress_line(obj: dict[str, Any]) -> bool:
    return "total" in obj


def tamper(path: str, dotted: str, value: Any, when: Line = any_line) -> Any:
    """Set ``dotted`` (``models/0/name``) to ``value`` in each reply to ``path`` that
    ``when`` picks and that has the field's parent."""
    *parents, key = dotted.split("/")

    def rewrite(at: str, obj: dict[str, Any]) -> Any:
        if at != path or not when(obj):
            return obj
        node: Any = obj
        for part in parents:
            if isinstance(node, list):
                node = node[int(part)] if int(part) < len(node) else None
            else:
                node = node.get(part)
            if node is None:
                return obj
        if value is GONE:
            node.pop(key, None)
        elif isinstance(node, list):
            node[int(key)] = value
        else:
            node[key] = value
        return obj

    return rewrite


@dataclass(frozen=True)
class Case:
    path: str
    dotted: str
    value: Any
    named: str
    """The field as the error names it."""
    when: Line = any_line
    stage: str = "prepare"
    """What meets the reply: ``prepare``, ``pull`` (prepare of a model not installed) or
    ``generate``."""

    def shown(self) -> str:
        sent = f"no {self.named}" if self.value is GONE else f"{self.named} = {self.value!r}"
        return f"the server's {self.path} reply has {sent}, expected"


CASES = {
    # GET /api/version
    "version": Case("/api/version", "version", 33, "version"),
    # GET /api/tags
    "tags.models": Case("/api/tags", "models", "all", "models"),
    "tags.models[0]": Case("/api/tags", "models/0", "m:latest", "models[0]"),
    "tags.name-missing": Case("/api/tags", "models/0/name", GONE, "models[0].name"),
    "tags.name-null": Case("/api/tags", "models/0/name", None, "models[0].name"),
    "tags.name": Case("/api/tags", "models/0/name", 7, "models[0].name"),
    "tags.digest": Case("/api/tags", "models/0/digest", 1, "models[0].digest"),
    "tags.size": Case("/api/tags", "models/0/size", "2GB", "models[0].size"),
    "tags.details": Case("/api/tags", "models/0/details", "Q4", "models[0].details"),
    "tags.quantization": Case(
        "/api/tags",
        "models/0/details/quantization_level",
        4,
        "models[0].details.quantization_level",
    ),
    "tags.parameter_size": Case(
        "/api/tags", "models/0/details/parameter_size", 270, "models[0].details.parameter_size"
    ),
    # POST /api/pull progress lines
    "pull.status": Case("/api/pull", "status", 3, "status", stage="pull"),
    "pull.total": Case("/api/pull", "total", "big", "total", progress_line, "pull"),
    "pull.completed": Case("/api/pull", "completed", -5, "completed", progress_line, "pull"),
    # GET /api/ps (after the preload, and for the memory figures)
    "ps.models": Case("/api/ps", "models", {"m": 1}, "models"),
    "ps.name-missing": Case("/api/ps", "models/0/name", GONE, "models[0].name"),
    "ps.context_length": Case(
        "/api/ps", "models/0/context_length", "4096", "models[0].context_length"
    ),
    "ps.size": Case("/api/ps", "models/0/size", "2GB", "models[0].size"),
    "ps.size_vram": Case("/api/ps", "models/0/size_vram", -1, "models[0].size_vram"),
    # POST /api/show
    "show.template": Case("/api/show", "template", ["{{ .Prompt }}"], "template"),
    "show.renderer": Case("/api/show", "renderer", 1, "renderer"),
    "show.model_info": Case("/api/show", "model_info", [], "model_info"),
    "show.context_length": Case(
        "/api/show",
        "model_info/gemma3.context_length",
        "32768",
        "model_info.gemma3.context_length",
    ),
    # POST /api/chat: the stream's lines and its final line
    "chat.message": Case("/api/chat", "message", "Hel", "message", token_line, "generate"),
    "chat.content": Case(
        "/api/chat", "message/content", 5, "message.content", token_line, "generate"
    ),
    "chat.thinking": Case(
        "/api/chat", "message/thinking", ["hm"], "message.thinking", token_line, "generate"
    ),
    "chat.done": Case("/api/chat", "done", "yes", "done", token_line, "generate"),
    "chat.done_reason": Case("/api/chat", "done_reason", 1, "done_reason", final_line, "generate"),
    "chat.eval_count": Case("/api/chat", "eval_count", "12", "eval_count", final_line, "generate"),
    "chat.eval_duration": Case(
        "/api/chat", "eval_duration", 1.5e9 + 0.5, "eval_duration", final_line, "generate"
    ),
    "chat.prompt_eval_count": Case(
        "/api/chat", "prompt_eval_count", True, "prompt_eval_count", final_line, "generate"
    ),
    "chat.prompt_eval_duration": Case(
        "/api/chat", "prompt_eval_duration", None, "prompt_eval_duration", final_line, "generate"
    ),
    "chat.load_duration": Case(
        "/api/chat", "load_duration", -1, "load_duration", final_line, "generate"
    ),
}


def backend(url: str, pull: bool = False) -> OllamaBackend:
    options = ServerOptions(pull=pull)
    return OllamaBackend(parse_spec(f"ollama:gemma3@{url}"), options)


def meet(case: Case, fake_ollama: StartOllama) -> BaseException:
    """What the backend raises on meeting ``case``'s reply."""
    models = {} if case.stage == "pull" else {"gemma3": SCRIPT}
    catalog = {"gemma3": SCRIPT} if case.stage == "pull" else None
    rewrite = tamper(case.path, case.dotted, case.value, case.when)
    fake = fake_ollama(models, pull_catalog=catalog, tamper=rewrite)
    ollama = backend(fake.url, pull=case.stage == "pull")
    try:
        ollama.prepare(SETTINGS, lambda _line: None)
        ollama.generate(HI, SETTINGS, Timeouts())
    except Exception as exc:
        return exc
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ollama.release()
    pytest.fail(f"{case.path} {case.dotted} = {case.value!r} was not noticed")


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_mistyped_field_is_a_server_error_naming_field_value_and_endpoint(
    case: Case, fake_ollama: StartOllama
) -> None:
    error = meet(case, fake_ollama)
    wanted = StreamError if case.stage == "generate" else ServerError
    assert isinstance(error, wanted), f"{type(error).__name__}: {error}"
    assert case.shown() in str(error), str(error)


def test_the_class_covers_each_field_the_backend_reads() -> None:
    """Every endpoint the backend calls is in the class (the preload and unload replies are
    read for nothing: only their status)."""
    assert {c.path for c in CASES.values()} == {
        "/api/version",
        "/api/tags",
        "/api/pull",
        "/api/ps",
        "/api/show",
        "/api/chat",
    }


def test_a_mistyped_reply_while_unloading_is_a_warning_not_a_hang(fake_ollama: StartOllama) -> None:
    rewrite = tamper("/api/ps", "models/0/name", 7)
    fake = fake_ollama({"gemma3": SCRIPT}, unload_delay_s=5.0)
    ollama = backend(fake.url)
    ollama.prepare(SETTINGS, lambda _line: None)
    fake.tamper = rewrite
    with pytest.warns(
        UserWarning, match=r"/api/ps reply has models\[0\]\.name = 7, expected a string"
    ):
        ollama.release()


ONE = "def test_answer(llm):\n    assert llm.generate('hi').answer\n"


@pytest.mark.parametrize("case", ["chat.eval_count", "tags.name-missing"])
def test_the_item_is_an_error_not_a_failure(
    pytester: pytest.Pytester, case: str, fake_ollama: StartOllama
) -> None:
    c = CASES[case]
    rewrite = tamper(c.path, c.dotted, c.value, c.when)
    pytester.makepyfile(test_o=ONE)
    fake = fake_ollama({"gemma3": SCRIPT}, tamper=rewrite)
    result = pytester.runpytest(f"--llm-models=ollama:gemma3@{fake.url}", "--llm-json=r.json")
    result.assert_outcomes(errors=1)
    shown = c.shown().replace("[", "<").replace("]", "[]]").replace("<", "[[]")
    result.stdout.fnmatch_lines([f"*{shown}*"])
    assert "TypeError" not in result.stdout.str()
    assert json.loads((pytester.path / "r.json").read_text())["items"]
