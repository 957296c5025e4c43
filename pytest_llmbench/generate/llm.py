"""The object behind the ``llm`` fixture: one model, bound to one test item."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from pytest_llmbench.check_result import CheckResult, Score
from pytest_llmbench.errors import LLMBenchError
from pytest_llmbench.generate.records import GenerationRecord
from pytest_llmbench.scoring import combine
from pytest_llmbench.serve.backends import Timeouts
from pytest_llmbench.serve.backends.base import Asked, ReplySource
from pytest_llmbench.serve.generation import Generation, Settings
from pytest_llmbench.serve.server_info import ServerInfo
from pytest_llmbench.serve.specs import ModelSpec

Prompt = str | os.PathLike[str] | Sequence[Mapping[str, Any]]


class ItemLog(Protocol):
    """Where an :class:`LLM` hands what happens to the item it generates for (the item's
    :class:`~pytest_llmbench.generate.item.BenchItem`, the only writer of its record)."""

    def kept(self, generation: GenerationRecord, *, judge: bool = False) -> None: ...

    def scored(self, name: str, value: float) -> None: ...

    def combined(self, score: Score) -> None: ...

    def errored(self, exc: LLMBenchError, *, judge: bool = False) -> None: ...


class LLM:
    """Generate with the model under test and record scores for the leaderboard.

    ``settings`` are the run's settings with this test's ``@pytest.mark.llm(...)`` applied;
    :meth:`generate` may override them once more per call.
    """

    def __init__(
        self,
        spec: ModelSpec,
        backend: ReplySource,
        settings: Settings,
        timeouts: Timeouts,
        item: ItemLog,
        load_s: float | None,
        *,
        judge: bool = False,
        warmup: Callable[[str], bool] | None = None,
        alone: bool = False,
    ) -> None:
        self.spec = spec
        self.backend = backend
        """What it generates from: the server's backend, or a wrapper that records or replays
        its replies, or known answers (chosen for the item by the run's session)."""
        self.settings = settings
        self.timeouts = timeouts
        self._item = item
        """The test item this model generates for: it keeps what is recorded."""
        self._pending_load_s = load_s
        self.generations: list[Generation] = []
        self.is_judge = judge
        self.warmup = warmup
        self.alone = alone
        """Generate with nothing else in flight on the server (``@pytest.mark.llm(alone=True)``)."""

    @property
    def model(self) -> str:
        """The model's id as in test ids, e.g. ``llama-server:gemma3-270m``."""
        return self.spec.id

    @property
    def server(self) -> ServerInfo:
        """Facts about the server (backend, build/version, model id, chat template...)."""
        return self.backend.server_info

    def generate(
        self, prompt: Prompt, *, system: str | None = None, **overrides: Any
    ) -> Generation:
        """Stream one reply to ``prompt`` (a string, a path to a UTF-8 prompt file, or chat
        messages) and record its metrics.

        Raises a :class:`~pytest_llmbench.errors.LLMBenchError` when no complete answer came
        back; what was measured before the failure is still recorded.
        """
        settings = self.settings.replace(**overrides) if overrides else self.settings
        messages: list[dict[str, Any]] = []
        if system is not None:
            messages.append({"role": "system", "content": str(system)})
        if isinstance(prompt, os.PathLike):
            from pytest_llmbench.prompts import load_prompt

            prompt = load_prompt(prompt)
        if isinstance(prompt, str):  # a PromptFile as a plain str: the record crosses xdist
            messages.append({"role": "user", "content": str(prompt)})
        else:
            messages.extend(dict(m) for m in prompt)
        try:
            asked = Asked(messages, settings, self.timeouts, self.alone, self._pending_load_s)
            generation = self.backend.generate_in_flight(asked)
        except LLMBenchError as exc:
            self._item.errored(exc, judge=self.is_judge)
            if isinstance(exc.partial, Generation):
                self._keep(exc.partial)
            raise
        return self._keep(generation)

    def _keep(self, generation: Generation) -> Generation:
        self._pending_load_s = None  # the load paid before this item belongs to its first
        self.generations.append(generation)
        warmup = self.warmup is not None and not self.is_judge and self.warmup(self.model)
        self._item.kept(GenerationRecord.of(generation, warmup=warmup), judge=self.is_judge)
        return generation

    def record_score(self, name: str, value: float) -> None:
        """Record a named score (any scale; the leaderboard shows the mean per model)."""
        self._item.scored(name, value)

    def score(
        self,
        checks: Mapping[str, CheckResult] | Sequence[CheckResult] | None = None,
        /,
        *,
        weights: Mapping[str, float] | None = None,
        **named: CheckResult,
    ) -> Score:
        """Combine check results into a total out of 100 and record it with the item.

        ``llm.score(syntax=..., features=..., functional=...)`` uses the default code-task
        weights (20 / 40 / 40); pass ``weights=`` for anything else.
        """
        if checks is None:
            combined = combine(named, weights)
        elif isinstance(checks, Mapping):
            combined = combine({**checks, **named}, weights)
        else:
            combined = combine([*checks, *named.values()], weights)
        self._item.combined(combined)
        return combined
