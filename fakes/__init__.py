"""Loopback fakes of Ollama and llama-server for the test-suite and the benchmarks (stdlib only).

Development tooling at the repository root, imported by ``tests/`` and ``benchmarks/``; not
part of the wheel (pyproject packages only ``pytest_llmbench*``).

``FakeOllama`` speaks Ollama's native ``/api/*`` (docs/api.md, server/routes.go);
``FakeLlamaServer`` speaks llama-server's ``/health``, ``/props``, ``/v1/models`` and
``/v1/chat/completions`` (tools/server/README.md). Both are context managers with ``.url``
and ``.requests``; both answer from a ``ModelScript``.
"""

from fakes._common import FAULTS, ModelScript
from fakes.llama_server import FakeLlamaServer
from fakes.ollama import FakeOllama

__all__ = ["FAULTS", "FakeLlamaServer", "FakeOllama", "ModelScript"]
