"""Explicit type checks for JSON read from files (baselines, recordings), so a bad file is
named with its field and value where it enters, never a ``KeyError`` deep inside later."""

from __future__ import annotations

import json
import types
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any


class Invalid(ValueError):
    """A JSON value of the wrong shape; the message names the field and the value."""


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
        names = " or ".join(_NAMES.get(t, t.__name__) for t in types)
        raise Invalid(f"{where}: expected {names}, got {shown(value)}")
    return value


def field(data: dict[str, Any], key: str, where: str, *types: type, required: bool = True) -> Any:
    """``data[key]`` checked against ``types``; a missing optional key gives ``None``."""
    if key not in data:
        if required:
            raise Invalid(f"{where}.{key}: missing")
        return None
    return expect(data[key], f"{where}.{key}", *types)


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


__all__ = ["Invalid", "dataclass_fields", "expect", "field", "read_json", "shown"]
