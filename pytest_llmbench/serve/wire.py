"""Typed reading of server JSON where it enters the plugin.

It guards the edge where *server replies* enter (llama-server, OpenAI-compatible servers,
Ollama): a server that sends one value of the wrong type (``"predicted_per_second": "fast"``,
a token count as a string, ``NaN``, an Ollama ``"done": "yes"``) makes that item an error
naming the field, the value and the endpoint, instead of a crash later (a ``TypeError`` in a
figure, at the session's end, in the leaderboard or the JSON report). Each field is read by
:mod:`pytest_llmbench.typed_json`'s :func:`~pytest_llmbench.typed_json.field`, as JSON files
are; only the error differs: a server error, worded for a server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from pytest_llmbench.errors import LLMBenchError, StreamError
from pytest_llmbench.typed_json import (
    MISSING,
    Invalid,
    expect,
    field,
    finite,
    key_at,
    whole,
)

_T = TypeVar("_T")


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
    sent = f"no {where}" if value is MISSING else f"{where} = {shown}"
    said = f"the server's {endpoint} reply has" if endpoint else "the server sent"
    return error(
        f"{label}: {said} {sent}, expected {expected}; "
        f"its reply is not trusted (check the server and its version)"
    )


_CHECKED: dict[Any, str] = {whole: "a whole number ≥ 0", finite: "a finite number"}
"""What a value read by these checks is expected to be, also when its type is wrong."""


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

    def _read(
        self,
        obj: Mapping[str, Any],
        key: str,
        where: str,
        kind: type,
        check: Callable[[Any, str], _T] | None = None,
        *,
        required: bool = False,
        null: bool = True,
    ) -> _T | None:
        """``obj[key]`` of type ``kind``, then ``check``-ed; ``None`` when absent or null
        (as ``required`` and ``null`` allow). An error says what ``check`` expects."""
        if obj.get(key) is None and not required and (null or key not in obj):
            return None
        try:
            value = field(obj, key, where, kind)
            if check is None:
                return cast("_T", value)
            return check(value, key_at(where, key))
        except Invalid as exc:
            expected = _CHECKED.get(check, exc.expected)
            raise self.fail(exc.where, exc.value, expected) from None

    def reply(self, value: Any) -> dict[str, Any]:
        """A whole reply, which must be a JSON object."""
        try:
            return dict(expect(value, "the reply", dict))
        except Invalid as exc:
            raise self.fail(exc.where, exc.value, exc.expected) from None

    def count(
        self, obj: Mapping[str, Any], key: str, where: str, *, null: bool = True
    ) -> int | None:
        """A whole number ≥ 0, or ``None`` when absent (or null)."""
        value = obj.get(key)
        if type(value) is int and value >= 0:  # the common cases, without the checks' cost
            return value
        if value is None and (null or key not in obj):
            return None
        return self._read(obj, key, where, int, whole, null=null)

    def number(self, obj: Mapping[str, Any], key: str, where: str) -> float | None:
        """A finite number, or ``None`` when absent or null."""
        return self._read(obj, key, where, float, finite)

    def text(
        self, obj: Mapping[str, Any], key: str, where: str, *, required: bool = False
    ) -> str | None:
        """A string, or ``None`` when absent or null (an error when ``required``)."""
        value = obj.get(key)
        if type(value) is str or (value is None and not required):
            return value
        return self._read(obj, key, where, str, required=required)

    def flag(self, obj: Mapping[str, Any], key: str, where: str) -> bool | None:
        """``true`` or ``false``, or ``None`` when absent or null."""
        value = obj.get(key)
        if value is None or type(value) is bool:
            return value
        return self._read(obj, key, where, bool)

    def object(self, obj: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
        """A JSON object (``{}`` when absent or null)."""
        value = obj.get(key)
        if value is None or type(value) is dict:
            return value or {}
        return self._read(obj, key, where, dict) or {}

    def array(self, obj: Mapping[str, Any], key: str, where: str) -> list[Any]:
        """A JSON array (``[]`` when absent or null)."""
        value = obj.get(key)
        if value is None or type(value) is list:
            return value or []
        return self._read(obj, key, where, list) or []

    def objects(self, obj: Mapping[str, Any], key: str, where: str) -> list[dict[str, Any]]:
        """A JSON array of objects (``[]`` when absent or null)."""
        items = self.array(obj, key, where)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.fail(f"{key_at(where, key)}[{i}]", item, "an object")
        return items
