"""Catch tests that generate but can never fail on the model's answer."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from functools import lru_cache
from typing import Any


class LLMBenchUnscoredWarning(UserWarning):
    """A test generated answers but neither asserted nor scored anything."""


@lru_cache(maxsize=4096)
def _judges_something(function: Callable[..., Any]) -> bool:
    """True when the test body has an ``assert``, calls ``pytest.fail``/``.score(``/
    ``.record_score(``, or its source cannot be read (then we do not guess)."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert | ast.Raise):
            return True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("score", "record_score", "fail")
        ):
            return True
    return False


def unjudged_message(
    function: Callable[..., Any] | None, generations: int, scores: int
) -> str | None:
    """A warning text when ``function`` generated but cannot fail on the answer, else None."""
    if function is None or generations == 0 or scores > 0:
        return None
    if _judges_something(function):
        return None
    return (
        f"{function.__name__} generated {generations} answer(s) but never asserted or scored "
        f"anything, so it passes whatever the model says. Add an assert or llm.score(...)."
    )
