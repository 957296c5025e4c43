"""Typed reading of server JSON where it enters the plugin.

A server that sends one value of the wrong type (``"predicted_per_second": "fast"``, a
token count as a string, ``NaN``, an Ollama ``"done": "yes"``) makes that item an error
naming the field, the value and the endpoint, instead of a crash later (a ``TypeError`` in
a figure, at the session's end, in the leaderboard or the JSON report).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pytest_llmbench.errors import LLMBenchError, StreamError

_MISSING = object()
"""A required field the server left out."""


def bad_value(
    label: str,
    where: str,
    value: Any,
    expected: str,
    error: type[LLMBenchError] = StreamError,
    endpoint: str | None = None,
) -> LLMBenchError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    sent = f"no {where}" if value is _MISSING else f"{where} = {shown}"
    reply = f" in its {endpoint} reply" if endpoint else ""
    return error(
        f"{label}: the server sent {sent}{reply}, expected {expected}; "
        f"its reply is not trusted (check the server and its version)"
    )


def _at(where: str, key: str) -> str:
    """``key`` of the object at ``where`` (``""``: the reply itself)."""
    return f"{where}.{key}" if where else key


class Reader:
    """Reads typed fields of JSON objects from one server; errors name ``label`` and
    ``endpoint`` (the request whose reply is read) and are ``error`` (a
    :class:`StreamError` while streaming, a ``ServerError`` while preparing).

    Each method gives ``None`` for a field that is absent or null; ``required=True`` makes
    that an error too, and ``null=False`` makes only an explicit null one (a field its
    server leaves out when empty, and never sends as null).
    """

    def __init__(
        self, label: str, error: type[LLMBenchError] = StreamError, endpoint: str | None = None
    ) -> None:
        self.label = label
        self.error = error
        self.endpoint = endpoint

    def fail(self, where: str, value: Any, expected: str) -> LLMBenchError:
        """The error for ``where`` holding ``value`` instead of ``expected``."""
        return bad_value(self.label, where, value, expected, self.error, self.endpoint)

    def reply(self, value: Any) -> dict[str, Any]:
        """A whole reply, which must be a JSON object."""
        if not isinstance(value, dict):
            raise self.fail("the reply", value, "a JSON object")
        return value

    def _get(
        self,
        obj: Mapping[str, Any],
        key: str,
        where: str,
        expected: str,
        required: bool,
        null: bool,
    ) -> Any:
        value = obj.get(key, _MISSING)
        if value is _MISSING and not required:
            return None
        if value is None and null and not required:
            return None
        if value is None or value is _MISSING:
            raise self.fail(_at(where, key), value, expected)
        return value

    def count(
        self, obj: Mapping[str, Any], key: str, where: str, *, null: bool = True
    ) -> int | None:
        """A non-negative integer, or ``None`` when absent (or null)."""
        expected = "a whole number ≥ 0"
        value = self._get(obj, key, where, expected, False, null)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(_at(where, key), value, expected)
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
            raise self.fail(_at(where, key), value, "a finite number")
        return float(value)

    def text(
        self, obj: Mapping[str, Any], key: str, where: str, *, required: bool = False
    ) -> str | None:
        """A string, or ``None`` when absent or null (an error when ``required``)."""
        value = self._get(obj, key, where, "a string", required, True)
        if value is None or isinstance(value, str):
            return value
        raise self.fail(_at(where, key), value, "a string")

    def flag(self, obj: Mapping[str, Any], key: str, where: str) -> bool | None:
        """``true`` or ``false``, or ``None`` when absent or null."""
        value = obj.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self.fail(_at(where, key), value, "true or false")

    def object(self, obj: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
        """A JSON object (``{}`` when absent or null)."""
        value = obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(_at(where, key), value, "an object")
        return value

    def array(self, obj: Mapping[str, Any], key: str, where: str) -> list[Any]:
        """A JSON array (``[]`` when absent or null)."""
        value = obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(_at(where, key), value, "an array")
        return value

    def objects(self, obj: Mapping[str, Any], key: str, where: str) -> list[dict[str, Any]]:
        """A JSON array of objects (``[]`` when absent or null)."""
        items = self.array(obj, key, where)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.fail(f"{_at(where, key)}[{i}]", item, "an object")
        return items
