"""What every backend provides, and the streaming loop they share."""

from __future__ import annotations

import functools
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from pytest_llmbench.errors import RequestRejected, ServerError, StreamError
from pytest_llmbench.generation import Generation, Metrics, Settings
from pytest_llmbench.live import LiveHook
from pytest_llmbench.serving import ServerInfo, ServerOptions
from pytest_llmbench.specs import ModelSpec
from pytest_llmbench.streaming import Accumulator, Delta

Messages = list[dict[str, Any]]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Timeouts:
    """``read_s`` bounds each gap between chunks (a stall); ``total_s`` the whole generation."""

    connect_s: float = 10.0
    read_s: float = 300.0
    total_s: float | None = None

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect_s, read=self.read_s, write=30.0, pool=10.0)


@functools.lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext | bool:
    """The SSL context for the generation clients, made once per process.

    Every ``httpx.Client`` otherwise builds its own and loads certifi's CA bundle (~17 ms on
    a 2-core machine), once per generation since each gets a fresh client. Same settings as
    httpx's default (``verify=True``, ``trust_env``: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``).
    """
    make = getattr(httpx, "create_ssl_context", None)  # httpx >= 0.28
    return make() if make is not None else True


def streamed_tokens(counted: int | None, finish_reason: str | None) -> int | None:
    """Tokens that reached the client: on a natural stop both llama-server and Ollama count
    the end-of-sequence (or last stop-string) token they sampled but never stream, so the
    client's (n - 1) / Δt would read high by about 1 / (n - 2)."""
    if counted is None:
        return None
    return counted - 1 if finish_reason == "stop" and counted > 0 else counted


def http_client(
    timeout: httpx.Timeout | float, headers: dict[str, str] | None = None
) -> httpx.Client:
    """Every client the plugin makes: the shared SSL context (built once per process)."""
    return httpx.Client(timeout=timeout, headers=headers, verify=shared_ssl_context())


class Backend(ABC):
    """A model behind a server. ``prepare`` makes it ready (spawn, attach, pull, preload) and
    returns the load time it measured; ``generate`` streams one reply."""

    def __init__(self, spec: ModelSpec, options: ServerOptions | None = None) -> None:
        self.spec = spec
        self.options = options or ServerOptions()
        self.label = spec.id
        self.server_info = ServerInfo(backend=spec.kind, url=spec.url)
        self.record_events = False
        self.last_events: list[tuple[float, str, str]] | None = None
        self.live: LiveHook | None = None
        """The live progress line (``pytest_llmbench.live``), told of every delta."""

    @abstractmethod
    def prepare(self, settings: Settings, progress: Progress) -> float | None:
        """Make the model ready to answer; returns its load time in seconds, if measured."""

    @abstractmethod
    def release(self) -> None:
        """Unload the model / stop what was started. Idempotent."""

    @abstractmethod
    def request_body(self, messages: Messages, settings: Settings) -> dict[str, Any]:
        """The exact JSON body for a streamed generation."""

    @abstractmethod
    def generate_url(self) -> str:
        """Where the body is POSTed."""

    @abstractmethod
    def iter_deltas(self, response: httpx.Response) -> Iterator[Delta]:
        """Decode the streamed response into deltas."""

    @abstractmethod
    def metrics(self, acc: Accumulator) -> dict[str, Any]:
        """Server-reported figures (token counts, server rates) from the final event(s)."""

    def headers(self) -> dict[str, str]:
        """Extra request headers (an API key)."""
        return {}

    def memory(self) -> dict[str, float | None]:
        """``peak_rss_mb`` / ``vram_mb`` where known."""
        return {}

    def generate(self, messages: Messages, settings: Settings, timeouts: Timeouts) -> Generation:
        body = self.request_body(messages, settings)
        acc = Accumulator(record_events=self.record_events)
        deadline = None if timeouts.total_s is None else time.perf_counter() + timeouts.total_s
        try:
            # A new connection per generation: llama-server closes it after each stream
            # while advertising keep-alive, and a reused dead socket loses the request.
            with http_client(timeouts.httpx(), {"Connection": "close", **self.headers()}) as client:
                acc.clock.sent = time.perf_counter()
                with client.stream("POST", self.generate_url(), json=body) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise self.rejected(response)
                    for delta in self.iter_deltas(response):
                        now = time.perf_counter()
                        acc.add(delta, now)
                        if self.live is not None:
                            c = acc.clock
                            self.live.tick(
                                self.spec.label, c.token_events, c.sent, c.first_token, now
                            )
                        if deadline is not None and now > deadline:
                            raise StreamError(
                                f"{self.label}: generation exceeded the total timeout of "
                                f"{timeouts.total_s} s (--llm-timeout); partial answer kept"
                            )
        except httpx.ReadTimeout as exc:
            raise self._partial(
                StreamError(
                    f"{self.label}: no data for {timeouts.read_s} s (stalled stream"
                    f"{' after the first token' if acc.clock.first_token else ''}). "
                    f"Raise --llm-read-timeout for slow models, or check the server."
                ),
                acc,
                settings,
                body,
            ) from exc
        except httpx.ConnectError as exc:
            raise ServerError(
                f"{self.label}: cannot connect to {self.generate_url()} ({exc}). "
                f"Is the server running?"
            ) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise self._partial(
                StreamError(
                    f"{self.label}: the server cut the stream after "
                    f"{acc.clock.token_events} token(s) ({exc}); check its log"
                ),
                acc,
                settings,
                body,
            ) from exc
        except StreamError as exc:
            raise self._partial(exc, acc, settings, body) from None
        acc.finish(time.perf_counter())
        if self.live is not None:
            self.live.clear()
        self.last_events = acc.events
        return self.build(acc, settings, body)

    def rejected(self, response: httpx.Response) -> RequestRejected:
        text = response.text[:500]
        return RequestRejected(
            f"{self.label}: the server rejected the request with HTTP {response.status_code}: "
            f"{text}",
            status=response.status_code,
            body=text,
        )

    def _partial(
        self, exc: StreamError, acc: Accumulator, settings: Settings, body: dict[str, Any]
    ) -> StreamError:
        acc.finish(time.perf_counter())
        exc.partial = self.build(acc, settings, body)
        return exc

    def build(self, acc: Accumulator, settings: Settings, body: dict[str, Any]) -> Generation:
        from pytest_llmbench.streaming import decode_rate

        clock = acc.clock
        server = self.metrics(acc)
        out = server.get("output_tokens")

        def since_sent(t: float | None) -> float | None:
            return None if t is None else t - clock.sent

        metrics = Metrics(
            ttft_s=since_sent(clock.first_token),
            ttfa_s=since_sent(clock.first_answer),
            total_s=since_sent(clock.done),
            prompt_tokens=server.get("prompt_tokens"),
            output_tokens=out,
            thinking_tokens=clock.thinking_events if (clock.thinking_events or out) else None,
            cached_prompt_tokens=server.get("cached_prompt_tokens"),
            decode_tps=decode_rate(
                streamed_tokens(out, acc.finish_reason), clock.first_token, clock.last_token
            ),
            server_decode_tps=server.get("server_decode_tps"),
            prompt_tps=server.get("prompt_tps"),
            server_prompt_ms=server.get("server_prompt_ms"),
            server_decode_ms=server.get("server_decode_ms"),
            server_load_s=server.get("server_load_s"),
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
        )


def get_json(client: httpx.Client, url: str, label: str) -> Any:
    """GET a JSON document, with a :class:`ServerError` that says what answered instead."""
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise ServerError(f"{label}: cannot reach {url} ({type(exc).__name__}: {exc})") from exc
    if response.status_code != 200:
        raise ServerError(
            f"{label}: {url} answered HTTP {response.status_code} "
            f"({response.headers.get('content-type', '?')}): {response.text[:200]!r}. "
            f"Is this the right server and port?"
        )
    try:
        return response.json()
    except ValueError:
        raise ServerError(
            f"{label}: {url} did not answer JSON ({response.text[:200]!r}). "
            f"Is this the right server and port?"
        ) from None
