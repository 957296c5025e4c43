"""pytest-llmbench: benchmark local language models on your own prompts, as pytest tests.

The names below are the public API; every other module is internal and may change.

- ``LLM``: the type of the ``llm`` fixture; ``Generation`` (with its ``Metrics`` and the
  ``ServerInfo`` of the server that answered) is what ``llm.generate`` returns; ``Settings``
  are the generation settings.
- ``checks``: the validators (``checks.features``, ``checks.run_program`` ...), returning a
  ``CheckResult``; ``Step`` is one step of a functional check.
- ``prompt_params`` / ``load_prompt``: prompt files as test parameters (``PromptFile``: a
  ``str`` with the file's ``name``, ``path`` and front matter ``meta``).
- the error tree (``LLMBenchError`` and below): infrastructure failures, never a model's score.

The plugin module is imported on every pytest start, so the checks and the sandbox (YAML,
subprocess limits) load on first use of ``checks``, ``CheckResult``, ``Step`` or
``JudgeError``, not on ``import pytest_llmbench``.
"""

import importlib as _importlib
import typing as _typing

from pytest_llmbench.errors import (
    CheckError,
    GenerationError,
    LLMBenchError,
    ModelNotFound,
    ReplyLimitError,
    RequestRejected,
    ServerError,
    StreamError,
)
from pytest_llmbench.generate.llm import LLM
from pytest_llmbench.generate.replay import RecordingMissing
from pytest_llmbench.prompts import PromptFile, PromptFileError, load_prompt, prompt_params
from pytest_llmbench.serve.generation import Generation, Metrics, Settings
from pytest_llmbench.serve.server_info import ServerInfo

if _typing.TYPE_CHECKING:
    from pytest_llmbench import checks
    from pytest_llmbench.check_result import CheckResult
    from pytest_llmbench.checks.judge import JudgeError
    from pytest_llmbench.sandbox import Step

_LAZY = {
    "checks": ("pytest_llmbench.checks", None),
    "CheckResult": ("pytest_llmbench.check_result", "CheckResult"),
    "JudgeError": ("pytest_llmbench.checks.judge", "JudgeError"),
    "Step": ("pytest_llmbench.sandbox", "Step"),
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'pytest_llmbench' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = _importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "LLM",
    "CheckError",
    "CheckResult",
    "Generation",
    "GenerationError",
    "JudgeError",
    "LLMBenchError",
    "Metrics",
    "ModelNotFound",
    "PromptFile",
    "PromptFileError",
    "RecordingMissing",
    "ReplyLimitError",
    "RequestRejected",
    "ServerError",
    "ServerInfo",
    "Settings",
    "Step",
    "StreamError",
    "checks",
    "load_prompt",
    "prompt_params",
]
