"""The limits of one generation: time (total and stall) and output size (tokens and bytes).

Time limits are kept by a watchdog thread (``reply_limits.Watchdog``), because a server can
hold a connection open without ever sending a token: llama-server sends its 200 headers
before it reads the prompt and then an SSE comment every ``sse_ping_interval`` seconds of
silence (30 by default), so a read timeout never fires and a check made when a token
arrives never runs. When a limit
fires, the watchdog shuts the socket down (got through httpcore's documented ``trace``
extension as soon as the connection is made, headers or not); the blocked read then fails
and the generation ends with :meth:`GenerationLimits.error`, naming the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pytest_llmbench.errors import StreamError
from pytest_llmbench.serve.reply_limits import ReplyLimits, Watchdog
from pytest_llmbench.serve.streaming import StreamClock


@dataclass(frozen=True)
class OutputCap:
    """How much a reply may hold before the server is taken to ignore the output cap.

    ``tokens``: the run's ``max_tokens`` (or the context size when that is unlimited) with a
    margin of a quarter (at least 16): streamed events, one token each on both servers,
    never exceed the tokens the server counts. ``bytes``: 4 KiB per allowed token plus 1 MiB
    (a one-token SSE event is ~250 bytes); bounds what is read and buffered, even for a
    stream that never ends a line.
    """

    max_tokens: int
    tokens: int
    bytes: int

    @classmethod
    def of(cls, max_tokens: int, ctx: int) -> OutputCap:
        limit = max_tokens if max_tokens > 0 else ctx
        tokens = limit + max(16, limit // 4)
        return cls(max_tokens, tokens, tokens * 4096 + 2**20)

    def reply_limits(self) -> ReplyLimits:
        """The stream's byte cap as the limits of its request (its time is
        :class:`GenerationLimits`'s)."""
        return ReplyLimits("the generation", math.inf, self.bytes)

    def tokens_error(self, label: str, seen: int) -> StreamError:
        return StreamError(
            f"{label}: the server ignored the output cap: {seen} tokens streamed for "
            f"max_tokens={self.max_tokens} (the client stops at {self.tokens}); partial "
            f"answer kept. Check that the server honours max_tokens / n_predict / num_predict."
        )

    def bytes_error(self, label: str, url: str, seen: int) -> StreamError:
        return StreamError(
            f"{label}: the server ignored the output cap: more than {self.bytes:,} bytes "
            f"streamed ({seen:,} read from {url}) for max_tokens={self.max_tokens}; the "
            f"client stopped reading, partial answer kept."
        )


class GenerationLimits(Watchdog):
    """Total and stall limits of one streamed request, watched by a
    :class:`~pytest_llmbench.serve.reply_limits.Watchdog`.

    ``stall_s``: no new token (answer or thinking) for this long, counted from the request
    until the first token and between tokens after it, whatever else arrives (headers, SSE
    pings, stray bytes). ``total_s``: the whole request, headers included. Use as a context
    manager around the request, and pass :meth:`trace` as its ``trace`` extension.
    """

    def __init__(
        self, clock: StreamClock, label: str, *, stall_s: float, total_s: float | None
    ) -> None:
        super().__init__()
        self.clock = clock
        self.label = label
        self.stall_s = stall_s
        self.total_s = total_s

    def due(self) -> tuple[float, str]:
        """The next moment a limit fires and which (``"total"`` or ``"stall"``), as things
        stand."""
        clock = self.clock
        stall = (clock.last_token or clock.sent) + self.stall_s
        if self.total_s is not None and clock.sent + self.total_s <= stall:
            return clock.sent + self.total_s, "total"
        return stall, "stall"

    def error(self, received_bytes: int) -> StreamError:
        """The error for the limit that fired, naming it and what arrived meanwhile."""
        clock = self.clock
        tokens = clock.token_events
        if self.fired == "total":
            return StreamError(
                f"{self.label}: total time limit of {self.total_s:g} s reached (--llm-timeout) "
                f"after {tokens} token(s); partial answer kept"
            )
        return stall_error(self.label, self.stall_s, tokens, received_bytes)


def stall_error(label: str, stall_s: float, tokens: int, received_bytes: int = 0) -> StreamError:
    """The stall limit's error: no new token for ``stall_s`` after ``tokens`` tokens."""
    where = f"after token {tokens}" if tokens else "before the first token"
    kept = (
        f"; the connection stayed open ({received_bytes} bytes arrived, e.g. SSE pings)"
        if received_bytes
        else ""
    )
    return StreamError(
        f"{label}: stall limit: no new token for {stall_s:g} s ({where}){kept}. Raise "
        f"--llm-read-timeout for slow models, or check the server; partial answer kept"
    )
