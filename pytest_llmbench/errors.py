"""The exception tree. Every message names the model and says what to do.

::

    LLMBenchError
    ├── ServerError          a server could not be started, reached or kept healthy
    │   ├── ModelNotFound    the server answers but does not have the model
    │   └── ReplyLimitError  a reply broke a bound: total time, bytes, encoding, JSON depth
    ├── GenerationError      a request was accepted but no complete answer came back
    │   ├── RequestRejected  HTTP error status before streaming (e.g. context overflow)
    │   └── StreamError      the stream was cut, stalled, malformed or carried an error
    └── CheckError           a check itself broke (a predicate raised), not the answer

    Defined beside their users: replay.RecordingMissing, checks.judge.JudgeError,
    prompts.PromptFileError, sandbox.SandboxUnavailable (a CheckError).

They are infrastructure failures: the leaderboard counts them as errors, never as a bad
score for the model.
"""

from __future__ import annotations

from typing import Any


class LLMBenchError(Exception):
    """Base of every error raised by pytest-llmbench at run time."""

    def __init__(self, message: str, *, partial: Any = None) -> None:
        super().__init__(message)
        self.partial = partial
        """Whatever was measured before the failure (a ``Generation``), when anything was."""


class ServerError(LLMBenchError):
    """A server could not be started, reached, or became unhealthy."""


class ModelNotFound(ServerError):
    """The server is up but does not serve the requested model."""


class ReplyLimitError(ServerError):
    """A server's reply broke one of the bounds of ``reply_limits`` (too slow in all, too big,
    compressed, too deeply nested JSON). Raised low with the limit alone; the request's edge
    (``serve.bounded``) raises it again with :meth:`at`, naming the model and the URL."""

    def __init__(self, message: str, *, limit: str | None = None, partial: Any = None) -> None:
        super().__init__(message, partial=partial)
        self.limit = message if limit is None else limit
        """What the server broke, without the model and the URL."""
        self.located = limit is not None

    def at(self, label: str, url: str) -> ReplyLimitError:
        """This error, naming the model and the server's URL (once)."""
        if self.located:
            return self
        return ReplyLimitError(f"{label}: {url}: {self.limit}", limit=self.limit)


class GenerationError(LLMBenchError):
    """A generation did not complete."""


class RequestRejected(GenerationError):
    """The server answered the request with an HTTP error."""

    def __init__(self, message: str, *, status: int, body: str = "", partial: Any = None) -> None:
        super().__init__(message, partial=partial)
        self.status = status
        self.body = body


class StreamError(GenerationError):
    """The stream ended without a final event, stalled, or held an error or garbage."""


class CheckError(LLMBenchError):
    """A check could not judge the answer because the check itself raised (a bug in a
    predicate or a stdout callable): the item errors, the answer is not scored."""


def check_failed(check: str, what: str, exc: BaseException) -> CheckError:
    """The :class:`CheckError` for ``what`` (a predicate or callable) of ``check`` raising."""
    return CheckError(
        f"{check}: {what} raised {type(exc).__name__}: {exc}. The check is broken, not the "
        f"answer: fix it (the answer was not scored)."
    )
