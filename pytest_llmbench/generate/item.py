"""One model × test item while it runs: owns its record and plan, decides its outcome once.

The fixtures make one :class:`BenchItem` per item (kept in ``item.stash[ITEM_KEY]``); the
``llm`` objects write to the record only through it, and ``pytest_runtest_makereport`` hands
each phase's report to :meth:`BenchItem.settle`, which applies the gates that belong to one
item (thresholds, the ``--llm-strict`` audit), names server trouble in one line and ships the
record on the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from pytest_llmbench.check_result import Score
from pytest_llmbench.config.plan import ItemPlan
from pytest_llmbench.config.run_config import RunConfig
from pytest_llmbench.config.thresholds import Threshold
from pytest_llmbench.errors import LLMBenchError
from pytest_llmbench.generate.audit import LLMBenchUnscoredWarning, unjudged_message
from pytest_llmbench.generate.known_answers import ItemAnswers, KnownAnswer, hold_to_expectation
from pytest_llmbench.generate.llm import LLM
from pytest_llmbench.generate.records import (
    PROPERTY,
    GenerationRecord,
    ItemRecord,
    junit_properties,
)
from pytest_llmbench.generate.registry import BenchSession
from pytest_llmbench.serve.generation import Settings
from pytest_llmbench.serve.specs import ModelSpec
from pytest_llmbench.text_safety import for_terminal

#: Failure messages for the thresholds a record misses (``verdict.gates.check_thresholds``,
#: handed in by the plugin: the item judges its thresholds, the verdict stage says how).
ThresholdJudge = Callable[[ItemRecord, Iterable[Threshold]], list[str]]


class BenchItem:
    """The record and plan of one item, and the only writer of its record."""

    def __init__(
        self,
        node: pytest.Item,
        run: RunConfig,
        record: ItemRecord,
        plan: ItemPlan | None,
        judge: ThresholdJudge | None = None,
    ) -> None:
        self.node = node
        self.run = run
        self.record = record
        self.plan = plan
        self._judge = judge
        self._error: BaseException | None = None
        self.known: KnownAnswer | None = None
        """The answer file that serves an ``answers:DIR`` item (its expected verdict)."""

    @classmethod
    def for_model(
        cls,
        node: pytest.Item,
        run: RunConfig,
        plan: ItemPlan,
        spec: ModelSpec,
        rep: int,
        judge: ThresholdJudge,
    ) -> BenchItem:
        """The item of the model under test (repetition ``rep`` of ``plan``), its thresholds
        judged by ``judge``."""
        token = spec.id if plan.repeat == 1 else f"{spec.id}-r{rep + 1}"
        repeated = plan.repeat > 1
        record = ItemRecord(
            model=spec.id,
            test=name_without_model(node, token),
            settings=plan.settings_for(rep),
            repeat=rep,
            repeats=plan.repeat,
            min_pass_rate=plan.min_pass_rate if repeated else None,
            thresholds=tuple(plan.thresholds),
            benchmark=plan.benchmark,
        )
        return cls(node, run, record, plan, judge)

    @classmethod
    def for_judge_only(cls, node: pytest.Item, run: RunConfig, judge: ModelSpec) -> BenchItem:
        """The item of a test that asks for ``llm_judge`` without ``llm``."""
        return cls(node, run, ItemRecord(model=judge.id, test=node.name), None)

    # -- opening models --------------------------------------------------------------------

    def open_model(self, session: BenchSession, spec: ModelSpec, rep: int, endpoint: int) -> LLM:
        """The model under test, ready to generate (its load time recorded)."""
        assert self.plan is not None
        settings = self.plan.settings_for(rep)
        if spec.kind == "answers":
            return self._open_answers(spec, settings)
        served_by = spec.member(endpoint)
        try:
            backend, load_s = session.acquire(served_by, settings)
        except LLMBenchError as exc:
            self.errored(exc)
            raise
        self.loaded(load_s)
        source = session.source(backend, spec.id, served_by, settings, loaded=self.loaded)
        return LLM(
            spec,
            source,
            settings,
            self.run.timeouts,
            self,
            load_s,
            warmup=session.is_warmup,
            alone=self.plan.alone,
        )

    def _open_answers(self, spec: ModelSpec, settings: Settings) -> LLM:
        """Known answers (``answers:DIR``): no server; skips a test with none in DIR."""
        try:
            answers = ItemAnswers.of(spec, self.node, self.record.test)
        except LLMBenchError as exc:
            self.errored(exc)
            raise
        self.known = answers.first
        self.record.known_answer = answers.first.reference()
        return LLM(spec, answers, settings, self.run.timeouts, self, None)

    def open_judge(self, session: BenchSession, judge: ModelSpec) -> LLM:
        """The judge model (``--llm-judge``); its generations are kept apart."""
        settings = self.run.settings
        try:
            backend = session.acquire_judge(judge.member(0), settings)
        except LLMBenchError as exc:
            self.errored(exc, judge=True)
            raise
        source = session.source(backend, judge.id, judge.member(0), settings, judge=True)
        return LLM(judge, source, settings, self.run.timeouts, self, None, judge=True)

    # -- the only changes to the record ----------------------------------------------------

    def loaded(self, load_s: float | None) -> None:
        """The model was made ready for this item, paying ``load_s`` (``None``: warm)."""
        if load_s is not None:
            self.record.load_s = load_s

    def kept(self, generation: GenerationRecord, *, judge: bool = False) -> None:
        """One generation of the model, or of the judge."""
        if not judge and not self.record.generations:
            self.record.settings = generation.reply.settings  # what it used, per-call overrides too
        (self.record.judge if judge else self.record.generations).append(generation)

    def scored(self, name: str, value: float) -> None:
        self.record.scores[name] = float(value)

    def combined(self, score: Score) -> None:
        """The combined check score (``llm.score``): its breakdown and its total."""
        self.record.score = score
        self.record.scores["score"] = float(score.total)

    def errored(self, exc: LLMBenchError, *, judge: bool = False) -> None:
        """Server trouble: the item is an error, whatever the test says afterwards."""
        if exc is self._error:
            return
        self._error = exc
        self.record.error = f"judge: {exc}" if judge else str(exc)

    # -- the outcome -------------------------------------------------------------------------

    def settle(self, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
        """Decide this phase's outcome once and ship the record on ``report``."""
        exc = call.excinfo.value if call.excinfo is not None else None
        bench_error = exc if isinstance(exc, LLMBenchError) else None
        if bench_error is not None:
            self.errored(bench_error)
        threshold = None
        if call.when == "call":
            self._judge_thresholds()
        if call.when == "call" and report.passed:
            threshold = self._threshold_missed()
            missed = threshold or self._audit()
            if missed is not None:
                report.outcome = "failed"
                report.longrepr = missed
        if report.failed and bench_error is None:
            self._failed(call, report)
        if bench_error is None and call.when == "call" and self.known is not None:
            hold_to_expectation(report, self.known, call.excinfo, gated=threshold is not None)
            if report.failed and self.record.failure is None:  # a bad answer that passed
                self.record.failure = str(report.longrepr)[:FAILURE_CHARS]
        shipped = call.when == "call" or (call.when == "setup" and report.failed)
        record = self.record
        data = record.to_dict() if shipped else {"model": record.model, "test": record.test}
        setattr(report, PROPERTY, data)
        if shipped:
            # JUnit XML reads properties from the teardown report, made from the item's list.
            self.node.user_properties.extend(junit_properties(record))
        if bench_error is not None:
            # Infrastructure trouble: one clear line, not a traceback through httpx.
            report.longrepr = for_terminal(f"{type(bench_error).__name__}: {bench_error}")

    def _failed(self, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
        """Keep why the test failed for the reports, and show pytest's own report of it with
        any escape sequence (a model's answer quoted in an assertion) escaped, not obeyed."""
        if isinstance(report.longrepr, str):
            why = report.longrepr
        elif call.excinfo is not None:
            why = call.excinfo.exconly()
        else:
            why = str(report.longrepr)
        if self.record.failure is None:
            self.record.failure = why[:FAILURE_CHARS]
        shown = str(report.longrepr)
        if for_terminal(shown) != shown:
            report.longrepr = for_terminal(shown)

    def _judge_thresholds(self) -> None:
        """Judge the item's thresholds, once, into its record (the verdict reads them there),
        whether or not the test passed otherwise."""
        plan = self.plan
        if plan is not None and self._judge is not None and plan.thresholds and plan.repeat == 1:
            # Repeated items are gated together, on the group's median (controller side).
            self.record.thresholds_missed = tuple(self._judge(self.record, plan.thresholds))

    def _threshold_missed(self) -> str | None:
        """Why a passing call fails after all: a threshold it missed (unpooled)."""
        missed = self.record.thresholds_missed
        return "threshold missed: " + "; ".join(missed) if missed else None

    def _audit(self) -> str | None:
        """Why a passing call fails after all: it never scored (``--llm-strict``)."""
        function = getattr(self.node, "function", None)
        message = unjudged_message(function, len(self.record.generations), len(self.record.scores))
        if message is None:
            return None
        if self.run.strict:
            return f"--llm-strict: {message}"
        self.node.warn(LLMBenchUnscoredWarning(message))
        return None


def name_without_model(node: pytest.Item, model_id: str) -> str:
    """The item's name without the model: ``test_x[prompt]`` for ``test_x[model-prompt]``."""
    name = node.name
    for part, replacement in (
        (f"[{model_id}]", ""),
        (f"[{model_id}-", "["),
        (f"-{model_id}]", "]"),
        (f"-{model_id}-", "-"),
    ):
        if part in name:
            return name.replace(part, replacement, 1)
    return name


ITEM_KEY = pytest.StashKey[BenchItem]()

#: Characters of a failure message kept in the record (it travels on every report).
FAILURE_CHARS = 4_000
