"""A reader thread that keeps at most a given number of bytes of a stream (a step's stdout,
stderr, or the run's files coming back), so no step can fill pytest's memory or disk."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import IO


class CappedReader(threading.Thread):
    """Reads ``stream`` to its end, keeping at most ``cap`` bytes (in ``data``, or written to
    ``sink``); past the cap it calls ``on_overflow`` once and discards the rest."""

    def __init__(
        self,
        stream: object,
        cap: int,
        on_overflow: Callable[[], None],
        sink: IO[bytes] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.cap = cap
        self.on_overflow = on_overflow
        self.sink = sink
        self.data = bytearray()
        self.kept = 0
        self.overflow = False

    def run(self) -> None:
        read = self.stream.read  # type: ignore[attr-defined]
        while True:
            chunk = read(65536)
            if not chunk:
                return
            room = self.cap - self.kept
            if room > 0:
                if self.sink is not None:
                    self.sink.write(chunk[:room])
                else:
                    self.data += chunk[:room]
                self.kept += min(room, len(chunk))
            if len(chunk) > room and not self.overflow:
                self.overflow = True
                self.on_overflow()
