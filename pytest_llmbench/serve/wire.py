"""Typed reading of server JSON where it enters the plugin.

A server that sends one value of the wrong type (``"predicted_per_second": "fast"``, a
token count as a string, ``NaN``) makes that item an error naming the field and the value,
instead of a crash later (at the session's end, in the leaderboard or the JSON report).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pytest_llmbench.errors import LLMBenchError, StreamError


def bad_value(
    label: str, where: str, value: Any, expected: str, error: type[LLMBenchError] = StreamError
) -> LLMBenchError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return error(
        f"{label}: the server sent {where} = {shown}, expected {expected}; "
        f"its reply is not trusted (check the server and its version)"
    )


class Reader:
    """Reads typed fields of JSON objects from one server; errors name ``label`` and are
    ``error`` (a :class:`StreamError` while streaming, a ``ServerError`` while preparing)."""

    def __init__(self, label: str, error: type[LLMBenchError] = StreamError) -> None:
        self.label = label
        self.error = error

    def count(self, obj: Mapping[str, Any], key: str, where: str) -> int | None:
        """A non-negative integer, or ``None`` when absent or null."""
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad_value(self.label, f"{where}.{key}", value, "a whole number ≥ 0", self.error)
        return value

    def number(self, obj: Mapping[str, Any], key: str, where: str) -> float | None:
        """A finite number, or ``None`` when absent or null."""
        value = obj.get(key)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise bad_value(self.label, f"{where}.{key}", value, "a finite number", self.error)
        return float(value)

    def text(self, obj: Mapping[str, Any], key: str, where: str) -> str | None:
        """A string, or ``None`` when absent or null."""
        value = obj.get(key)
        if value is None or isinstance(value, str):
            return value
        raise bad_value(self.label, f"{where}.{key}", value, "a string", self.error)

    def object(self, obj: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
        """A JSON object (``{}`` when absent or null)."""
        value = obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise bad_value(self.label, f"{where}.{key}", value, "an object", self.error)
        return value

    def array(self, obj: Mapping[str, Any], key: str, where: str) -> list[Any]:
        """A JSON array (``[]`` when absent or null)."""
        value = obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise bad_value(self.label, f"{where}.{key}", value, "an array", self.error)
        return value
