"""Explicit type checks for JSON read from files (baselines, recordings), so a bad file is
named with its field and value where it enters, never a ``KeyError`` deep inside later."""

from __future__ import annotations

import json
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


__all__ = ["Invalid", "expect", "field", "read_json", "shown"]
