"""Reading a GGUF file's metadata header (no tensors), to catch configuration pitfalls early.

Format (ggml ``docs/gguf.md``): ``"GGUF"``, uint32 version, uint64 tensor count (uint32 in
v1), uint64 key/value count (uint32 in v1), then each key (a GGUF string: uint64 length +
UTF-8 bytes) with a uint32 value type and the value. Everything little-endian.

The file may come from anywhere, so reading it is bounded: arrays nest at most
:data:`MAX_DEPTH` deep, at most :data:`MAX_ITEMS` keys and array items are walked, a string
kept is at most :data:`MAX_STRING` bytes (one skipped is never copied), and counts and
lengths that run past the end of the file stop the read; each is a :class:`GGUFError`.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
FILE_TYPE_KEY = "general.file_type"

#: llama.cpp's ``llama_ftype`` (``general.file_type``): the quantization mix of the file.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
}  # fmt: skip

MAX_DEPTH = 8
"""Arrays inside arrays, at most (real files nest none)."""
MAX_ITEMS = 16_000_000
"""Keys and array items walked, at most (a 256k-token vocabulary with its merges: ~1 M)."""
MAX_STRING = 16 * 2**20
"""The longest string kept (a chat template is some kilobytes)."""

# value type -> struct format of a scalar (8: string, 9: array are handled apart)
_SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}


class GGUFError(ValueError):
    """Not a GGUF file, or a header that cannot be read."""


class _Reader:
    def __init__(self, buf: mmap.mmap | bytes, wide: bool) -> None:
        self.buf = buf
        self.pos = 0
        self.count_fmt = "<Q" if wide else "<I"  # v1 used 32-bit lengths and counts
        self.items = 0

    def walked(self, count: int = 1) -> None:
        """Count keys or array items about to be walked; past :data:`MAX_ITEMS` the header
        is refused (a count of 2**64 would otherwise loop until the end of the file)."""
        self.items += count
        if self.items > MAX_ITEMS:
            raise GGUFError(f"the metadata holds more than {MAX_ITEMS:,} keys and array items")

    def unpack(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self, keep: bool = True) -> str:
        length = self.unpack(self.count_fmt)
        start, self.pos = self.pos, self.pos + length
        if self.pos > len(self.buf):
            raise GGUFError("string runs past the end of the file")
        if keep and length > MAX_STRING:
            raise GGUFError(f"a string of {length:,} bytes (more than {MAX_STRING:,})")
        return bytes(self.buf[start : self.pos]).decode("utf-8", "replace") if keep else ""

    def value(self, kind: int, keep: bool, depth: int = 0) -> Any:
        if kind in _SCALARS:
            return self.unpack("<" + _SCALARS[kind])
        if kind == 8:
            return self.string(keep)
        if kind == 9:
            if depth >= MAX_DEPTH:
                raise GGUFError(f"arrays nest deeper than {MAX_DEPTH} levels")
            item_kind = self.unpack("<I")
            count = self.unpack(self.count_fmt)
            if item_kind in _SCALARS:  # skip fixed-size items in one jump
                self.pos += count * struct.calcsize(_SCALARS[item_kind])
                if self.pos > len(self.buf):
                    raise GGUFError("an array runs past the end of the file")
                return None
            self.walked(count)
            for _ in range(count):
                self.value(item_kind, keep=False, depth=depth + 1)
            return None
        raise GGUFError(f"unknown metadata value type {kind}")


@contextmanager
def open_gguf(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """``path`` opened for reading, after checking its GGUF magic (:class:`GGUFError` if it
    is missing; ``OSError`` if the file cannot be read)."""
    with Path(path).open("rb") as handle:
        magic = handle.read(4)
        if magic != b"GGUF":
            raise GGUFError(f"{str(path)!r} is not a GGUF file (bad magic {magic!r})")
        yield handle


def read_metadata(path: str | os.PathLike[str], keys: set[str] | None = None) -> dict[str, Any]:
    """The metadata values of ``path`` (only ``keys`` when given; arrays are skipped)."""
    found: dict[str, Any] = {}
    with (
        open_gguf(path) as handle,
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf,
    ):
        try:
            version = struct.unpack_from("<I", buf, 4)[0]
            reader = _Reader(buf, wide=version >= 2)
            reader.pos = 8
            reader.unpack(reader.count_fmt)  # tensor count
            count = reader.unpack(reader.count_fmt)
            reader.walked(count)
            for _ in range(count):
                key = reader.string()
                kind = reader.unpack("<I")
                wanted = keys is None or key in keys
                value = reader.value(kind, keep=wanted)
                if wanted:
                    found[key] = value
                if keys is not None and keys <= found.keys():
                    break
        except struct.error as exc:
            raise GGUFError(f"{str(path)!r}: truncated metadata ({exc})") from None
    return found


def model_facts(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``quantization`` and ``gguf_chat_template`` (whether the file carries a chat
    template) of a GGUF; ``{}`` when the file cannot be read."""
    try:
        meta = read_metadata(path, {FILE_TYPE_KEY, CHAT_TEMPLATE_KEY})
    except (OSError, ValueError):
        return {}
    file_type = meta.get(FILE_TYPE_KEY)
    return {
        "quantization": FILE_TYPES.get(file_type, f"file_type {file_type}")
        if file_type is not None
        else None,
        "gguf_chat_template": bool(meta.get(CHAT_TEMPLATE_KEY)),
    }
