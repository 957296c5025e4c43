"""What every backend provides, and the streaming loop they share."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

from pytest_llmbench.errors import (
    LLMBenchError,
    ReplyLimitError,
    RequestRejected,
    ServerError,
    StreamError,
)
from pytest_llmbench.serve.bounded import BoundedResponse, ServerClient
from pytest_llmbench.serve.caveats import prompt_cache_caveat
from pytest_llmbench.serve.generation import Generation, Metrics, ServerFigures, Settings
from pytest_llmbench.serve.generation_limits import GenerationLimits, OutputCap, stall_error
from pytest_llmbench.serve.processes import Turn, Turns
from pytest_llmbench.serve.server_info import ServerInfo, ServerOptions
from pytest_llmbench.serve.specs import ModelSpec
from pytest_llmbench.serve.streaming import (
    Accumulator,
    Delta,
    InterTokenLatency,
    StreamEvent,
    decode_rate,
)
from pytest_llmbench.serve.wire import Reader
from pytest_llmbench.typed_json import Invalid

Messages = list[dict[str, Any]]
_E = TypeVar("_E", bound=LLMBenchError)
Progress = Callable[[str], None]


class LiveHook(Protocol):
    def tick(self, label: str, tokens: int, sent: float, first: float | None, now: float) -> None:
        """One streamed delta: ``tokens`` so far, the request sent at ``sent`` and the first
        token at ``first`` (``time.perf_counter()`` clock), now ``now``."""

    def clear(self) -> None:
        """The stream ended: take the line away."""


@dataclass(frozen=True)
class Timeouts:
    """``read_s``: the stall limit, no new token for this long (from the request to the first
    token, then between tokens), whatever else arrives; ``total_s`` bounds the whole request,
    headers included. Both are kept by
    :class:`~pytest_llmbench.serve.generation_limits.GenerationLimits`."""

    connect_s: float = 10.0
    read_s: float = 300.0
    total_s: float | None = None

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect_s, read=self.read_s, write=30.0, pool=10.0)


def streamed_tokens(counted: int | None, finish_reason: str | None) -> int | None:
    """Tokens that reached the client: on a natural stop both llama-server and Ollama count
    the end-of-sequence (or last stop-string) token they sampled but never stream, so the
    client's (n - 1) / Δt would read high by about 1 / (n - 2)."""
    if counted is None:
        return None
    return counted - 1 if finish_reason == "stop" and counted > 0 else counted


Events = list[StreamEvent] | None
"""Where a stream's deltas go with their timing, when it is recorded (``None``: it is not)."""


@dataclass(frozen=True)
class Asked:
    """One reply asked of a :class:`ReplySource`."""

    messages: Messages
    settings: Settings
    timeouts: Timeouts
    alone: bool = False
    """Nothing else in flight on its server meanwhile (``@pytest.mark.llm(alone=True)``)."""
    load_s: float | None = None
    """The load paid just before it (the item's first reply): put in its metrics, and in the
    partial answer of an error."""


class ReplySource(Protocol):
    """What an item's model generates from (an :class:`~pytest_llmbench.LLM` holds one): a
    :class:`Backend`, a wrapper around one that records its replies or replays them
    (``pytest_llmbench.generate.record_replay``), or known answers. The run's
    :class:`~pytest_llmbench.generate.registry.BenchSession` picks it once per item."""

    @property
    def server_info(self) -> ServerInfo: ...

    def generate_in_flight(self, asked: Asked) -> Generation: ...


class Backend(ABC):
    """A model behind a server. ``prepare`` makes it ready (spawn, attach, pull, preload) and
    returns the load time it measured; ``generate`` streams one reply."""

    def __init__(self, spec: ModelSpec, options: ServerOptions | None = None) -> None:
        self.spec = spec
        self.options = options or ServerOptions()
        self.label = spec.id
        self.server_info = ServerInfo(backend=spec.kind, url=spec.url)
        self.live: LiveHook | None = None
        """The live progress line (``pytest_llmbench.generate.live_line``), told of every delta."""
        self.order = 0
        """Where its model comes in the run's model order (items run in it); a judge last."""

    @abstractmethod
    def prepare(self, settings: Settings, progress: Progress) -> float | None:
        """Make the model ready to answer; returns its load time in seconds, if measured."""

    @abstractmethod
    def release(self) -> None:
        """Unload the model / stop what was started. Idempotent."""

    def close(self) -> None:
        """End of this process's session: :meth:`release`, and whatever was kept for the
        run (a spawned server that other processes of the run still use)."""
        self.release()

    @abstractmethod
    def request_body(self, messages: Messages, settings: Settings) -> dict[str, Any]:
        """The exact JSON body for a streamed generation."""

    @abstractmethod
    def generate_url(self) -> str:
        """Where the body is POSTed."""

    @abstractmethod
    def iter_deltas(self, response: BoundedResponse) -> Iterator[Delta]:
        """Decode the streamed response into deltas."""

    @abstractmethod
    def metrics(self, acc: Accumulator) -> ServerFigures:
        """Server-reported figures (token counts, server rates) from the final event(s)
        (``acc.final``, this backend's typed facts)."""

    def headers(self) -> dict[str, str]:
        """Extra request headers (an API key)."""
        return {}

    def memory(self) -> dict[str, float | None]:
        """``peak_rss_mb`` / ``vram_mb`` where known."""
        return {}

    def stream_text(self, response: BoundedResponse) -> Iterator[str]:
        """The response's text as it arrives (for ``iter_deltas``), read raw and stopped at
        the output cap's byte bound: a server that ignores the cap is never read whole."""
        return response.iter_text()

    def server_key(self) -> str:
        """The server's identity for counting generations in flight: its scheme, host and
        port (every model of one Ollama shares it, as its queue)."""
        url = httpx.URL(self.generate_url())
        return f"{url.scheme}://{url.host}:{url.port or ''}"

    def turn(self, alone: bool, max_wait_s: float) -> AbstractContextManager[Turn]:
        """This generation's place in its server's flight (``pytest_llmbench.serve.flight``): up to
        ``--llm-concurrency`` at once, alone when asked. An attached server takes no turns
        with the spawned ones (a spawned llama-server does, in its backend)."""
        return Turns().turn(
            0,
            max_wait_s,
            server=self.server_key(),
            limit=self.options.concurrency,
            alone=alone,
            machine=False,
        )

    def generate_in_flight(self, asked: Asked, events: Events = None) -> Generation:
        """:meth:`generate` in its turn, marked with what it shared its server with
        (``caveats``: ``concurrent``, ``queued``, ``side_by_side``) and the load paid for it."""
        with self.turn(asked.alone, asked.timeouts.read_s) as turn:
            try:
                generation = self.generate(asked.messages, asked.settings, asked.timeouts, events)
            except LLMBenchError as exc:
                if isinstance(exc.partial, Generation):
                    exc.partial = exc.partial.paying(asked.load_s)
                raise
        return turn.mark(generation.paying(asked.load_s), slots=self.server_info.total_slots)

    def generate(
        self, messages: Messages, settings: Settings, timeouts: Timeouts, events: Events = None
    ) -> Generation:
        """Stream one reply; ``events``: where each delta's timing goes (a recording)."""
        body = self.request_body(messages, settings)
        acc = Accumulator(events)
        url = self.generate_url()
        cap = OutputCap.of(settings.max_tokens, settings.ctx)
        limits = GenerationLimits(
            acc.clock, self.label, stall_s=timeouts.read_s, total_s=timeouts.total_s
        )
        response: BoundedResponse | None = None

        def received() -> int:
            return 0 if response is None else response.received

        try:
            # A new connection per generation: llama-server closes it after each stream
            # while advertising keep-alive, and a reused dead socket loses the request.
            with ServerClient(
                self.label,
                headers={"Connection": "close", **self.headers()},
                timeout=timeouts.httpx(),
            ) as client:
                acc.clock.sent = time.perf_counter()
                with client.open(
                    "POST",
                    url,
                    watch=limits,
                    limits=cap.reply_limits(),
                    too_big=lambda seen: cap.bytes_error(self.label, url, seen),
                    json=body,
                ) as response:
                    self._check_status(response, url)
                    for delta in self.iter_deltas(response):
                        now = time.perf_counter()
                        acc.add(delta, now)
                        if self.live is not None:
                            c = acc.clock
                            self.live.tick(
                                self.spec.label, c.token_events, c.sent, c.first_token, now
                            )
                        if limits.fired:
                            break
                        if acc.clock.token_events > cap.tokens:
                            raise cap.tokens_error(self.label, acc.clock.token_events)
            if limits.fired:
                raise limits.error(received())
            acc.finish(time.perf_counter())
            figures = self.figures(acc)
        except StreamError as exc:
            raise self._partial(exc, acc, settings, body) from None
        except ReplyLimitError as exc:  # compressed, or a JSON line nesting too deep
            raise self._partial(exc.at(self.label, url), acc, settings, body) from None
        except httpx.HTTPError as exc:
            if limits.fired:
                raise self._partial(limits.error(received()), acc, settings, body) from None
            raise self._transport_error(exc, url, acc, settings, body, timeouts) from exc
        finally:
            if self.live is not None:
                self.live.clear()
        return self.build(acc, settings, body, figures)

    def _check_status(self, response: BoundedResponse, url: str) -> None:
        """Raise for an answer that is not a stream: an HTTP error, or a redirect (the
        plugin follows none: the body would be read as a broken stream)."""
        if response.is_redirect:
            where = response.headers.get("location", "?")
            raise ServerError(
                f"{self.label}: {url} redirected (HTTP {response.status_code}) to {where}; "
                f"the plugin does not follow redirects: put the final URL in --llm-models"
            )
        if response.status_code >= 300:
            raise self.rejected(response)

    def _transport_error(
        self,
        exc: httpx.HTTPError,
        url: str,
        acc: Accumulator,
        settings: Settings,
        body: dict[str, Any],
        timeouts: Timeouts,
    ) -> LLMBenchError:
        """An httpx error as the item error that names the server and what happened."""
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, httpx.ReadTimeout):  # nothing at all for read_s: the stall limit
            return self._partial(
                stall_error(self.label, timeouts.read_s, acc.clock.token_events),
                acc,
                settings,
                body,
            )
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return ServerError(
                f"{self.label}: cannot connect to {url} ({what}). Is the server running?"
            )
        if isinstance(exc, httpx.WriteError | httpx.WriteTimeout):
            return ServerError(
                f"{self.label}: could not send the request to {url} ({what}); check the server"
            )
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return self._partial(
                StreamError(
                    f"{self.label}: the server cut the stream after "
                    f"{acc.clock.token_events} token(s) ({what}; {url}); check its log"
                ),
                acc,
                settings,
                body,
            )
        if isinstance(exc, httpx.TransportError):
            return ServerError(f"{self.label}: the request to {url} failed ({what})")
        return self._partial(
            StreamError(f"{self.label}: bad response from {url} ({what})"), acc, settings, body
        )

    def rejected(self, response: BoundedResponse) -> RequestRejected:
        text = response.read_capped(4096)[:500]
        return RequestRejected(
            f"{self.label}: the server rejected the request with HTTP {response.status_code}: "
            f"{text}",
            status=response.status_code,
            body=text,
        )

    def figures(self, acc: Accumulator) -> ServerFigures:
        """:meth:`metrics`, or a :class:`StreamError` naming the figure and its value when
        one is not usable (a count that is not a whole number ≥ 0, a rate that is not a
        finite number: :class:`ServerFigures` checks them)."""
        try:
            return self.metrics(acc)
        except Invalid as exc:
            raise Reader(self.label).fail(exc.where, exc.value, exc.expected) from None
        except (TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            # A backend computing with a wrong-typed server value ("5" / 1e9): still named.
            reply = {} if acc.final is None else acc.final.as_reply()
            raise StreamError(
                f"{self.label}: the server's final figures are not usable "
                f"({type(exc).__name__}: {exc}); its reply is not trusted: {reply!r:.300}"
            ) from None

    def _partial(self, exc: _E, acc: Accumulator, settings: Settings, body: dict[str, Any]) -> _E:
        acc.finish(time.perf_counter())
        try:
            figures = self.figures(acc)
        except StreamError:
            figures = ServerFigures()
        exc.partial = self.build(acc, settings, body, figures)
        return exc

    def build(
        self,
        acc: Accumulator,
        settings: Settings,
        body: dict[str, Any],
        server: ServerFigures | None = None,
    ) -> Generation:
        clock = acc.clock
        if server is None:
            server = self.figures(acc)
        out = server.output_tokens
        thinking = server.thinking_tokens
        if thinking is None and (clock.thinking_events or out):
            thinking = clock.thinking_events

        def since_sent(t: float | None) -> float | None:
            return None if t is None else t - clock.sent

        itl = InterTokenLatency.of(clock.token_times)
        metrics = Metrics(
            ttft_s=since_sent(clock.first_token),
            ttfa_s=since_sent(clock.first_answer),
            total_s=since_sent(clock.done),
            prompt_tokens=server.prompt_tokens,
            output_tokens=out,
            thinking_tokens=thinking,
            cached_prompt_tokens=server.cached_prompt_tokens,
            decode_tps=decode_rate(
                streamed_tokens(out, acc.finish_reason), clock.first_token, clock.last_token
            ),
            server_decode_tps=server.server_decode_tps,
            prompt_tps=server.prompt_tps,
            server_prompt_ms=server.server_prompt_ms,
            server_decode_ms=server.server_decode_ms,
            server_load_s=server.server_load_s,
            itl_p50_s=None if itl is None else itl.p50_s,
            itl_p90_s=None if itl is None else itl.p90_s,
            itl_p99_s=None if itl is None else itl.p99_s,
            itl_max_s=None if itl is None else itl.max_s,
            **self.memory(),
        )
        return Generation(
            model=self.label,
            text=acc.text,
            answer=acc.answer,
            thinking=acc.thinking,
            finish_reason=acc.finish_reason,
            metrics=metrics,
            settings=settings,
            server=self.server_info,
            request=body,
            caveats=tuple(
                c
                for c in [prompt_cache_caveat(metrics.prompt_tokens, metrics.cached_prompt_tokens)]
                if c is not None
            ),
        )
