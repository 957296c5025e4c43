"""Loopback fakes of Ollama and llama-server for the test-suite (stdlib only).

``FakeOllama`` speaks Ollama's native ``/api/*`` (docs/api.md, server/routes.go);
``FakeLlamaServer`` speaks llama-server's ``/health``, ``/props``, ``/v1/models`` and
``/v1/chat/completions`` (tools/server/README.md). Both are context managers with ``.url``
and ``.requests``; both answer from a ``ModelScript``.
"""

from tests.fakes._common import FAULTS, ModelScript
from tests.fakes.llama_server import FakeLlamaServer
from tests.fakes.ollama import FakeOllama

__all__ = ["FAULTS", "FakeLlamaServer", "FakeOllama", "ModelScript"]
