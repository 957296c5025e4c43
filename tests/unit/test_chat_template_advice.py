"""The chat-template warnings: a fix that works, and the broken form named (each is tried on
the real llama-server in tests/real/test_real_chat_template_advice.py)."""

from __future__ import annotations

import pytest

from pytest_llmbench.serve.backends.llama_cpp import chat_template_warnings


@pytest.mark.parametrize(
    ("args", "no_template", "says"),
    [
        ((), True, "--llm-server-args='--no-jinja --chat-template NAME'"),
        ((), False, None),
        (("--no-jinja", "--chat-template", "gemma"), True, None),
        (("--chat-template-file", "t.jinja"), True, None),
        (("--chat-template", "{% for m in messages %}{{ m.content }}{% endfor %}"), True, None),
        (
            ("--chat-template", "gemma"),
            True,
            "--llm-server-args='--no-jinja --chat-template gemma'",
        ),
        (("--chat-template=llama3",), False, "--chat-template llama3 is read as a Jinja template"),
    ],
)
def test_chat_template_warnings(args: tuple[str, ...], no_template: bool, says: str | None) -> None:
    warnings = chat_template_warnings("m", args, no_template)
    if says is None:
        assert warnings == ()
    else:
        (warning,) = warnings
        assert says in warning
