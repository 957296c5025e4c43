"""The one way the plugin talks to a server: every request bounded (``reply_limits``).

:class:`ServerClient` is the only place an ``httpx.Client`` is made (a test holds every
other module to it). Each request asks for an uncompressed reply and refuses a compressed
one, is watched by a total time limit that shuts its socket down, reads at most its byte
cap, and parses JSON only within the depth limit. :meth:`ServerClient.request` and
:meth:`ServerClient.stream` turn every failure into a ``ServerError`` naming the model and
the URL (a :class:`~pytest_llmbench.errors.ReplyLimitError` for a broken bound);
:meth:`ServerClient.open` is the raw form for the generation stream, whose own errors keep
the partial answer.
"""

from __future__ import annotations

import codecs
import functools
import json
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from pytest_llmbench.errors import LLMBenchError, ReplyLimitError, ServerError
from pytest_llmbench.serve import reply_limits
from pytest_llmbench.serve.reply_limits import (
    IDENTITY,
    Deadline,
    ReplyLimits,
    Watchdog,
    check_depth,
    check_encoding,
)
from pytest_llmbench.serve.streaming import iter_lines

Progress = Callable[[str], None]


@functools.lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext | bool:
    """The SSL context for every client, made once per process.

    Every ``httpx.Client`` otherwise builds its own and loads certifi's CA bundle (~17 ms on
    a 2-core machine), once per generation since each gets a fresh client. Same settings as
    httpx's default (``verify=True``, ``trust_env``: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``).
    """
    make = getattr(httpx, "create_ssl_context", None)  # httpx >= 0.28
    return make() if make is not None else True


def loads(text: str) -> Any:
    """``json.loads`` within the depth limit (``ValueError`` for text that is not JSON)."""
    check_depth(text)
    return json.loads(text)


class BoundedResponse:
    """A streamed reply whose body is read raw (never decompressed), at most
    ``limits.max_bytes`` of it (one byte more raises ``too_big(bytes read)``, by default the
    limit's own error), and by lines of at most ``limits.max_line`` bytes."""

    def __init__(
        self,
        response: httpx.Response,
        limits: ReplyLimits,
        too_big: Callable[[int], LLMBenchError] | None = None,
    ) -> None:
        self.response = response
        self.limits = limits
        self.max_bytes = limits.max_bytes
        self.too_big = too_big or limits.bytes_error
        self.status_code = response.status_code
        self.headers = response.headers
        self.is_redirect = response.is_redirect
        self.received = 0

    def iter_bytes(self) -> Iterator[bytes]:
        for chunk in self.response.iter_raw():
            self.received += len(chunk)
            if self.received > self.max_bytes:
                raise self.too_big(self.received)
            yield chunk

    def iter_text(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(self.charset)(errors="replace")
        for chunk in self.iter_bytes():
            text = decoder.decode(chunk)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def iter_lines(self) -> Iterator[str]:
        """The body's lines; a line longer than ``limits.max_line`` is refused as it grows."""
        return iter_lines(self._short_lines(self.iter_text()))

    def _short_lines(self, texts: Iterator[str]) -> Iterator[str]:
        since = 0  # characters since the last line end (at most 4 bytes each)
        for text in texts:
            end = max(text.rfind("\n"), text.rfind("\r"))
            since = since + len(text) if end < 0 else len(text) - end - 1
            if since > self.limits.max_line // 4:
                raise self.limits.line_error()
            yield text

    def read(self) -> bytes:
        return b"".join(self.iter_bytes())

    def read_capped(self, limit: int) -> str:
        """At most ``limit`` bytes of the body, as text (an error page is quoted, never read
        whole)."""
        data = b""
        for chunk in self.iter_bytes():
            data += chunk
            if len(data) >= limit:
                break
        return data[:limit].decode(self.charset, errors="replace")

    @property
    def charset(self) -> str:
        name = self.response.charset_encoding or "utf-8"
        try:
            codecs.lookup(name)
        except LookupError:
            return "utf-8"
        return name


@dataclass(frozen=True)
class Reply:
    """A whole reply, read within its limits; ``label`` names the model in errors."""

    label: str
    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes
    charset: str

    @property
    def text(self) -> str:
        return self.content.decode(self.charset, errors="replace")

    @property
    def is_redirect(self) -> bool:
        return self.status_code in (301, 302, 303, 307, 308) and "location" in self.headers

    def json(self) -> Any:
        """The body as JSON within the depth limit (``ValueError`` if it is not JSON; a
        :class:`ReplyLimitError` naming the URL if it nests too deep)."""
        try:
            return loads(self.text)
        except ReplyLimitError as exc:
            raise exc.at(self.label, self.url) from None


class ServerClient:
    """An HTTP client for one model's server (``label`` names it in every error): no
    redirects followed, ``Accept-Encoding: identity``, and ``limits`` (default
    :data:`~pytest_llmbench.serve.reply_limits.INFO`) on every request that names none."""

    def __init__(
        self,
        label: str,
        limits: ReplyLimits | None = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> None:
        self.label = label
        self.limits = limits = limits or reply_limits.INFO
        self._client = httpx.Client(
            timeout=timeout or httpx.Timeout(limits.total_s, connect=5.0),
            headers={**(headers or {}), **IDENTITY},
            verify=shared_ssl_context(),
            follow_redirects=False,
            # A connection per request: the watchdog gets the socket from its connect event,
            # which a reused connection never has (its limit could never shut it).
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @contextmanager
    def open(
        self,
        method: str,
        url: str,
        *,
        watch: Watchdog,
        limits: ReplyLimits,
        too_big: Callable[[int], LLMBenchError] | None = None,
        json: Any = None,
    ) -> Iterator[BoundedResponse]:
        """The raw bounded stream: ``watch`` keeps its time (entered here), a compressed reply
        is refused (:class:`ReplyLimitError` without the URL), the body is capped by
        ``limits`` (``too_big`` may make the error); httpx's errors pass through."""
        with (
            watch,
            self._client.stream(
                method, url, json=json, extensions={"trace": watch.trace}
            ) as response,
        ):
            check_encoding(response.headers)
            yield BoundedResponse(response, limits, too_big)

    @contextmanager
    def stream(
        self, method: str, url: str, *, json: Any = None, limits: ReplyLimits | None = None
    ) -> Iterator[BoundedResponse]:
        """A streamed request within ``limits``; every failure, in the request or while the
        caller reads, is a ``ServerError`` naming the model and ``url``."""
        limits = limits or self.limits
        deadline = Deadline(limits.total_s)
        try:
            with self.open(method, url, watch=deadline, limits=limits, json=json) as response:
                yield response
        except ReplyLimitError as exc:
            raise exc.at(self.label, url) from None
        except httpx.HTTPError as exc:
            if deadline.fired:
                raise limits.time_error().at(self.label, url) from exc
            raise ServerError(
                f"{self.label}: cannot reach {url} ({type(exc).__name__}: {exc})"
            ) from exc

    def request(
        self, method: str, url: str, *, json: Any = None, limits: ReplyLimits | None = None
    ) -> Reply:
        """The whole reply to one request, read within ``limits``."""
        with self.stream(method, url, json=json, limits=limits) as response:
            content = response.read()
            return Reply(
                self.label, url, response.status_code, response.headers, content, response.charset
            )

    def get(self, url: str, *, limits: ReplyLimits | None = None) -> Reply:
        return self.request("GET", url, limits=limits)

    def post(self, url: str, *, json: Any = None, limits: ReplyLimits | None = None) -> Reply:
        return self.request("POST", url, json=json, limits=limits)


def get_json(
    client: ServerClient,
    url: str,
    label: str,
    *,
    wait_s: float = 0.0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """GET a JSON object, with a :class:`ServerError` that says what answered instead.

    ``wait_s``: how long an answer of 503 (llama-server answers it on every route while the
    model loads, ``server-http.cpp`` ``middleware_server_state``) is waited out, polling.
    """
    started = time.monotonic()
    last_note = started
    while True:
        response = client.get(url)
        waited = time.monotonic() - started
        if response.status_code != 503 or waited >= wait_s:
            break
        if progress is not None and time.monotonic() - last_note >= 10:
            progress(f"{label}: loading… {waited:.0f} s (HTTP 503 from {url})")
            last_note = time.monotonic()
        time.sleep(min(0.1, max(0.0, wait_s - waited)))
    if response.status_code == 503 and wait_s > 0:
        raise ServerError(
            f"{label}: {url} still answered HTTP 503 after {wait_s:g} s "
            f"({response.text[:200]!r}): the model is loading. Raise --llm-health-timeout if "
            f"the model is big"
        )
    if response.is_redirect:
        raise ServerError(
            f"{label}: {url} redirected (HTTP {response.status_code}) to "
            f"{response.headers.get('location', '?')}; the plugin does not follow redirects: "
            f"put the final URL in --llm-models"
        )
    if response.status_code != 200:
        raise ServerError(
            f"{label}: {url} answered HTTP {response.status_code} "
            f"({response.headers.get('content-type', '?')}): {response.text[:200]!r}. "
            f"Is this the right server and port?"
        )
    try:
        value = response.json()
    except ValueError:
        raise ServerError(
            f"{label}: {url} did not answer JSON ({response.text[:200]!r}). "
            f"Is this the right server and port?"
        ) from None
    if not isinstance(value, dict):
        raise ServerError(
            f"{label}: {url} answered {response.text[:200]!r}, not a JSON object. "
            f"Is this the right server and port?"
        )
    return value
