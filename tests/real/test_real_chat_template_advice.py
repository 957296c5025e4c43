"""Every fix the plugin suggests, tried on the real llama-server and gemma3-270m: the advice
is read from the warning's own text, applied, and must make the run what it should be."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pytest_llmbench.serve.backends.base import Timeouts
from pytest_llmbench.serve.backends.llama_cpp import LlamaServerBackend
from pytest_llmbench.serve.generation import Generation, Settings
from pytest_llmbench.serve.server_info import ServerOptions
from pytest_llmbench.serve.specs import parse_spec

pytestmark = pytest.mark.real_server

PROMPTS = ("What is the capital of France?", "Write a haiku about the sea, please, in English.")
SETTINGS = Settings(ctx=1024, max_tokens=8)


@contextmanager
def served(binary: Path, logs: Path, args: tuple[str, ...]) -> Iterator[LlamaServerBackend]:
    options = ServerOptions(
        llama_server_bin=str(binary), health_timeout_s=120, log_dir=str(logs), server_args=args
    )
    backend = LlamaServerBackend(parse_spec("llama-server:gemma3-270m"), options)
    backend.prepare(SETTINGS, lambda _: None)
    try:
        yield backend
    finally:
        backend.release()


def answers(backend: LlamaServerBackend) -> list[Generation]:
    return [
        backend.generate([{"role": "user", "content": p}], SETTINGS, Timeouts(total_s=120))
        for p in PROMPTS
    ]


def suggested_args(warning: str, name: str) -> tuple[str, ...]:
    """The ``--llm-server-args='…'`` a warning suggests, with its NAME filled in."""
    match = re.search(r"--llm-server-args='([^']*)'", warning)
    assert match, f"the warning suggests no server args: {warning}"
    return tuple(shlex.split(match[1].replace("NAME", name)))


def test_the_no_template_advice_formats_prompts_and_silences_the_warning(
    llama_server_bin: Path, tmp_path: Path
) -> None:
    with served(llama_server_bin, tmp_path, ()) as plain:
        (warning,) = plain.server_info.warnings
        assert "has no chat template" in warning
    fix = suggested_args(warning, "gemma")
    assert fix == ("--no-jinja", "--chat-template", "gemma")
    with served(llama_server_bin, tmp_path, fix) as fixed:
        assert fixed.server_info.warnings == ()
        generations = answers(fixed)
    tokens = [g.metrics.prompt_tokens for g in generations]
    # Each prompt is formatted (turn markers around its own words), not collapsed.
    assert tokens[0] is not None and tokens[1] is not None
    assert tokens[0] != tokens[1] and min(tokens) > 10, tokens


def test_a_template_name_without_no_jinja_is_named_and_its_fix_works(
    llama_server_bin: Path, tmp_path: Path
) -> None:
    with served(llama_server_bin, tmp_path, ("--chat-template", "gemma")) as broken:
        (warning,) = broken.server_info.warnings
        collapsed = answers(broken)
    # What the warning says happens does happen: every prompt the same few tokens.
    assert [g.metrics.prompt_tokens for g in collapsed] == [3, 3]
    assert collapsed[0].text == collapsed[1].text
    assert "read as a Jinja template" in warning
    with served(llama_server_bin, tmp_path, suggested_args(warning, "gemma")) as fixed:
        assert fixed.server_info.warnings == ()
        tokens = [g.metrics.prompt_tokens for g in answers(fixed)]
    assert tokens[0] != tokens[1] and min(t or 0 for t in tokens) > 10, tokens
