"""One module per kind of server; :func:`make_backend` picks one for a model spec."""

from __future__ import annotations

from pytest_llmbench.serve.backends.base import Backend, Timeouts
from pytest_llmbench.serve.server_info import ServerOptions
from pytest_llmbench.serve.specs import ModelSpec


def make_backend(spec: ModelSpec, options: ServerOptions) -> Backend:
    """The backend for ``spec``; ``options`` are the run's server options (see RunConfig)."""
    if spec.kind == "ollama":
        from pytest_llmbench.serve.backends.ollama import OllamaBackend

        return OllamaBackend(spec, options)
    if spec.kind == "llama-server":
        from pytest_llmbench.serve.backends.llama_cpp import LlamaServerBackend

        return LlamaServerBackend(spec, options)
    from pytest_llmbench.serve.backends.openai_compat import OpenAIBackend

    return OpenAIBackend(spec, options)


__all__ = ["Backend", "Timeouts", "make_backend"]
