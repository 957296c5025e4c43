"""Explicit type checks of JSON fields: the one field reader of the plugin.

It guards the edges where JSON enters: files (baselines, recordings) and the item records
xdist workers ship on their reports (``records``): a bad one is named with its field and value
where it is read, never a ``KeyError`` deep inside later; its reader turns :class:`Invalid`
into its own error. ``serve/wire.py`` reads server replies
through the same :func:`field`, and words the :class:`Invalid` as a server error instead.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

MISSING: Any = object()
"""The value of a required field that is not there."""


class Invalid(ValueError):
    """A JSON value of the wrong shape; the message names the field and the value, kept as
    ``where``, ``value`` (:data:`MISSING` for a missing field) and ``expected``."""

    where = ""
    value: Any = None
    expected = ""

    @classmethod
    def at(cls, where: str, value: Any, expected: str) -> Invalid:
        got = "missing" if value is MISSING else f"expected {expected}, got {shown(value)}"
        error = cls(f"{where}: {got}")
        error.where, error.value, error.expected = where, value, expected
        return error


_NAMES: dict[type, str] = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}


def shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def expect(value: Any, where: str, *types: type) -> Any:
    """``value`` when it is one of ``types`` (``float`` admits ints, never ``bool``)."""
    wanted = set(types)
    if float in wanted:
        wanted.add(int)
    if isinstance(value, bool) and bool not in wanted:
        ok = False
    else:
        ok = isinstance(value, tuple(wanted))
    if not ok:
        raise Invalid.at(where, value, _names(types))
    return value


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(_NAMES.get(t, t.__name__) for t in types)


def whole(value: Any, where: str) -> int:
    """``value`` when it is a whole number ≥ 0 (a count, a size, nanoseconds)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid.at(where, value, "a whole number ≥ 0")
    return value


def finite(value: Any, where: str) -> float:
    """``value`` as a float when it is a finite number (not ``NaN``, not infinite)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid.at(where, value, "a finite number")
    return float(value)


def key_at(where: str, key: str) -> str:
    """How the field ``key`` of the object at ``where`` is named (``""``: the document)."""
    return f"{where}.{key}" if where else key


def field(
    data: Mapping[str, Any], key: str, where: str, *types: type, required: bool = True
) -> Any:
    """``data[key]`` checked against ``types``; a missing optional key gives ``None``."""
    if key not in data:
        if required:
            raise Invalid.at(key_at(where, key), MISSING, _names(types))
        return None
    return expect(data[key], key_at(where, key), *types)


def _check_typed(value: Any, hint: Any, where: str) -> None:
    """``value`` as JSON holds a field annotated ``hint`` (scalars, ``X | None``,
    ``tuple[X, ...]`` as a list)."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        expect(value, where, list)
        for i, item in enumerate(value):
            _check_typed(item, typing.get_args(hint)[0], f"{where}[{i}]")
        return
    options = typing.get_args(hint) if origin in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return
    scalars = [t for t in options if t in _NAMES and t is not type(None)]
    if scalars and len(scalars) == len([t for t in options if t is not type(None)]):
        expect(value, where, *scalars, *((type(None),) if type(None) in options else ()))


def dataclass_fields(data: dict[str, Any], cls: type, where: str) -> dict[str, Any]:
    """``data`` when each key that names a field of the dataclass ``cls`` holds a value of
    that field's type (unknown keys are left to the reader, which ignores them)."""
    assert is_dataclass(cls)
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in data:
            _check_typed(data[f.name], hints[f.name], f"{where}.{f.name}")
    return data


def read_json(path: Path) -> Any:
    """Parse ``path``; an unreadable, empty or truncated file raises :class:`Invalid` naming
    the file and where the JSON broke off."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"cannot read it: {exc}") from None
    if not text.strip():
        raise Invalid("the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise Invalid(f"not valid JSON ({exc.msg} at {where})") from None


__all__ = [
    "MISSING",
    "Invalid",
    "dataclass_fields",
    "expect",
    "field",
    "finite",
    "key_at",
    "read_json",
    "shown",
    "whole",
]
