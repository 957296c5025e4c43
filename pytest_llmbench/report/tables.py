"""Tables that fit the terminal: columns with a priority, dropped or shortened to a width.

A table is a list of :class:`Column` (header, one cell per row, a priority). :func:`fit`
renders it as a GitHub-style (Markdown-compatible) table no wider than ``width``: it leaves
out the least important columns first, shortens the widest ``shrink`` columns (a model label,
a diagnosis) with a middle ellipsis, and says which columns it left out.

The table is drawn here rather than with tabulate: tabulate pads every header by two
characters, which costs a 15-column table 30 of the terminal's 80.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

#: Columns at or below this priority are kept until shrinking labels no longer helps.
CORE = 2
#: A shrinkable column is first cut no narrower than this, then (if still too wide) to MIN.
READABLE = 18
MIN_SHRINK = 8


@dataclass(frozen=True)
class Column:
    header: str
    cells: tuple[str, ...]
    priority: int = 0
    """0: always shown; higher numbers are left out first when the table is too wide."""
    shrink: bool = False
    """Cells may be shortened with an ellipsis when the table is too wide."""

    @property
    def width(self) -> int:
        return (
            max(len(self.header), *(len(c) for c in self.cells)) if self.cells else len(self.header)
        )

    def cut(self, width: int) -> Column:
        return replace(
            self,
            header=shorten(self.header, width),
            cells=tuple(shorten(c, width) for c in self.cells),
        )


@dataclass(frozen=True)
class Fitted:
    text: str
    dropped: tuple[str, ...]
    """Headers of the columns left out to fit."""
    shortened: bool = False
    """Some cells were cut with an ellipsis."""


def table(columns: Sequence[Column]) -> str:
    """``| a | b |`` rows under a ``|---|---|`` rule, cells left-aligned, one space of padding."""
    if not columns:
        return ""
    widths = [c.width for c in columns]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    rows = zip(*(c.cells for c in columns), strict=True)
    return "\n".join([line([c.header for c in columns]), rule, *(line(r) for r in rows)])


def table_width(columns: Sequence[Column]) -> int:
    return sum(c.width for c in columns) + 3 * len(columns) + 1 if columns else 0


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with a middle ellipsis (both ends stay readable)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = width // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def _shrink(columns: list[Column], width: int, floor: int) -> list[Column]:
    """Cut the widest shrinkable columns, one character at a time, down to ``floor``."""
    excess = table_width(columns) - width
    widths = [c.width for c in columns]
    while excess > 0:
        candidates = [i for i, c in enumerate(columns) if c.shrink and widths[i] > floor]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return [c.cut(w) if w < c.width else c for c, w in zip(columns, widths, strict=True)]


def fit(columns: Sequence[Column], width: int | None) -> Fitted:
    """Render ``columns`` within ``width`` (``None``: no limit). Order of sacrifice: optional
    columns above :data:`CORE`, then labels cut to :data:`READABLE`, then the core optional
    columns, then labels cut to :data:`MIN_SHRINK`."""
    shown = list(columns)
    if width is None or table_width(shown) <= width:
        return Fitted(table(shown), ())
    dropped: list[str] = []

    def drop(above: int) -> bool:
        for column in sorted((c for c in shown if c.priority > above), key=lambda c: -c.priority):
            shown.remove(column)
            dropped.append(column.header)
            if table_width(shown) <= width:
                return True
        return False

    if not drop(CORE):
        shrunk = _shrink(shown, width, READABLE)
        if table_width(shrunk) <= width:
            return Fitted(table(shrunk), tuple(dropped), shortened=True)
        if not drop(0):
            return Fitted(table(_shrink(shown, width, MIN_SHRINK)), tuple(dropped), True)
    return Fitted(table(shown), tuple(dropped))
