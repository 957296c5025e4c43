"""What one item contributes to the leaderboard: built in the test, shipped on its report.

An :class:`ItemRecord` is typed on both sides: the worker's :class:`BenchItem` writes it, the
controller reads its attributes. Only at the edge is it a dict: pytest serializes a report's
``__dict__`` for pytest-xdist, and execnet ships builtins only, so the report attribute
``llmbench`` carries :meth:`ItemRecord.to_dict` (which is also the JSON report's ``record``),
and :func:`record_from_report` rebuilds it, checked, once where it reaches the controller.
Unlike ``user_properties`` it is not dumped into JUnit XML (which gets flat metric
properties).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_llmbench.check_result import CheckResult, Score
from pytest_llmbench.config.thresholds import Threshold, parse_thresholds
from pytest_llmbench.metrics import generation_metrics
from pytest_llmbench.serve.generation import Generation, Metrics, Settings
from pytest_llmbench.serve.server_info import ServerInfo
from pytest_llmbench.typed_json import Invalid, dataclass_fields, expect
from pytest_llmbench.typed_json import field as json_field

PROPERTY = "llmbench"

#: Characters of each prompt message kept in the record (the HTML report shows them).
PROMPT_CHARS = 20_000


@dataclass(frozen=True)
class PromptMessage:
    """One message of the prompt, its content cut to :data:`PROMPT_CHARS`."""

    role: str
    content: str


@dataclass(frozen=True)
class GenerationRecord:
    """One generation as its item keeps it: the reply (a :class:`Generation` whose request
    body is dropped: it can be long), the prompt's messages (bounded) and the request's
    settings in its place, and whether its server was warming up."""

    reply: Generation
    warmup: bool = False
    """Generated while its server warmed up: left out of the speed figures."""
    request_settings: Mapping[str, Any] = field(default_factory=dict)
    """The request body less its messages (sampling settings as the server got them)."""
    messages: tuple[PromptMessage, ...] = ()

    @classmethod
    def of(cls, generation: Generation, *, warmup: bool = False) -> GenerationRecord:
        """The record of ``generation`` (its request body reduced to settings and messages)."""
        request = generation.request
        return cls(
            replace(generation, request={}),
            warmup=warmup,
            request_settings={k: v for k, v in request.items() if k not in ("messages", "prompt")},
            messages=prompt_messages(request),
        )

    def figure(self, name: str) -> float | None:
        """The measured figure ``name`` (a :class:`Metrics` field); ``None``: not reported."""
        value = getattr(self.reply.metrics, name, None)
        return None if value is None else float(value)

    def flag(self, name: str) -> bool:
        """A boolean fact of the reply (``truncated``)."""
        return bool(getattr(self.reply, name, False))

    def excluded(self, metric: str) -> bool:
        """Whether a caveat leaves ``metric`` out of the medians."""
        return any(metric in caveat.excludes for caveat in self.reply.caveats)

    def counts_toward_speed(self, metric: str) -> bool:
        """The one rule for speed figures, read by the medians and the thresholds alike: a
        warm-up generation, or one whose caveats leave ``metric`` out, does not count."""
        return not (self.warmup or self.excluded(metric))

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.reply.to_dict().items() if k != "request"}
        if self.warmup:
            out["warmup"] = True
        out["request_settings"] = dict(self.request_settings)
        out["messages"] = [{"role": m.role, "content": m.content} for m in self.messages]
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "generation") -> GenerationRecord:
        """From :meth:`to_dict`'s form, checked: :class:`Invalid` names the first bad field.
        Absent fields take their defaults; unknown ones are ignored."""
        expect(data, where, dict)
        for key in ("model", "text", "answer", "thinking"):
            json_field(data, key, where, str, required=False)
        json_field(data, "finish_reason", where, str, type(None), required=False)
        json_field(data, "warmup", where, bool, required=False)
        json_field(data, "recording", where, str, type(None), required=False)
        metrics = json_field(data, "metrics", where, dict, required=False) or {}
        dataclass_fields(metrics, Metrics, f"{where}.metrics")
        settings = json_field(data, "settings", where, dict, required=False) or {}
        dataclass_fields(settings, Settings, f"{where}.settings")
        server = json_field(data, "server", where, dict, type(None), required=False) or {}
        dataclass_fields(server, ServerInfo, f"{where}.server")
        caveats = json_field(data, "caveats", where, list, required=False) or []
        for n, caveat in enumerate(caveats):
            expect(caveat, f"{where}.caveats[{n}]", dict)
            json_field(caveat, "kind", f"{where}.caveats[{n}]", str)
            json_field(caveat, "detail", f"{where}.caveats[{n}]", str)
            excludes = json_field(caveat, "excludes", f"{where}.caveats[{n}]", list, required=False)
            for m, metric in enumerate(excludes or ()):
                expect(metric, f"{where}.caveats[{n}].excludes[{m}]", str)
        messages = json_field(data, "messages", where, list, required=False) or []
        for n, message in enumerate(messages):
            expect(message, f"{where}.messages[{n}]", dict)
        reply = Generation.from_dict(
            {"model": "", "text": "", "answer": "", "thinking": "", **data, "request": {}}
        )
        return cls(
            reply,
            warmup=bool(data.get("warmup")),
            request_settings=dict(
                json_field(data, "request_settings", where, dict, required=False) or {}
            ),
            messages=tuple(
                PromptMessage(str(m.get("role") or "user"), str(m.get("content") or ""))
                for m in messages
            ),
        )


@dataclass(frozen=True)
class AnswerFile:
    """The known answer (``answers:DIR``) that served an item, and the verdict it expects."""

    path: str
    expect: str = "pass"
    """``pass`` or ``fail``."""
    note: str | None = None


@dataclass
class ItemRecord:
    """Mutable while the test runs (its :class:`BenchItem` is the only writer); rebuilt,
    checked, on the controller (:func:`record_from_report`)."""

    model: str
    test: str
    settings: Settings = field(default_factory=Settings)
    generations: list[GenerationRecord] = field(default_factory=list)
    judge: list[GenerationRecord] = field(default_factory=list)
    """The judge model's generations, kept apart from the model's own figures."""
    scores: dict[str, float] = field(default_factory=dict)
    score: Score | None = None
    """The combined check score (``llm.score``): its checks and diagnoses."""
    load_s: float | None = None
    error: str | None = None
    failure: str | None = None
    """Why the test failed (its assertion or exception, or the missed gate), as raw text."""
    repeat: int = 0
    """Index of this repetition (0 when not repeated)."""
    repeats: int = 1
    """How many repetitions the item's plan asks for: above 1, its gates are pooled."""
    min_pass_rate: float | None = None
    thresholds: tuple[Threshold, ...] = ()
    thresholds_missed: tuple[str, ...] = ()
    """What the item's own median missed of its thresholds, judged once by the item (only
    when it ran once: a repeat group's are judged on the group's pooled median)."""
    benchmark: str | None = None
    """The benchmark named by the test's marker; ``None``: its function name is used."""
    known_answer: AnswerFile | None = None
    """The answer file that served an ``answers:DIR`` item, and the verdict it expects."""

    @property
    def diagnoses(self) -> tuple[str, ...]:
        return () if self.score is None else self.score.diagnoses

    @property
    def checks(self) -> tuple[CheckResult, ...]:
        return () if self.score is None else self.score.checks

    @property
    def expects_failure(self) -> bool:
        """A known bad answer: failing its test is the verdict it expects."""
        return self.known_answer is not None and self.known_answer.expect == "fail"

    @property
    def shipped(self) -> bool:
        """It carries what the test produced (the call's record, not setup's bare name)."""
        return bool(self.generations or self.scores or self.error)

    def to_dict(self) -> dict[str, Any]:
        known = self.known_answer
        return {
            "model": self.model,
            "test": self.test,
            "settings": self.settings.to_dict(),
            "generations": [g.to_dict() for g in self.generations],
            "judge": [g.to_dict() for g in self.judge],
            "scores": dict(self.scores),
            "score": None if self.score is None else self.score.to_dict(),
            "load_s": self.load_s,
            "error": self.error,
            "failure": self.failure,
            "repeat": self.repeat,
            "repeats": self.repeats,
            "min_pass_rate": self.min_pass_rate,
            "thresholds": [str(t) for t in self.thresholds],
            "thresholds_missed": list(self.thresholds_missed),
            "benchmark": self.benchmark,
            "known_answer": None
            if known is None
            else {"path": known.path, "expect": known.expect, "note": known.note},
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "record") -> ItemRecord:
        """From :meth:`to_dict`'s form (a report's attribute, a results file's ``record``),
        checked: :class:`Invalid` names the first bad field. Absent fields take their
        defaults (a setup report carries the model and test only)."""
        expect(data, where, dict)
        for key in ("model", "test"):
            json_field(data, key, where, str)
        for key, types in _SCALARS.items():
            json_field(data, key, where, *types, required=False)
        scores = json_field(data, "scores", where, dict, required=False) or {}
        for name, value in scores.items():
            expect(value, f"{where}.scores.{name}", float, type(None))
        thresholds = json_field(data, "thresholds", where, list, required=False) or []
        for n, text in enumerate(thresholds):
            expect(text, f"{where}.thresholds[{n}]", str)
        try:
            parsed = tuple(parse_thresholds(thresholds))
        except ValueError as exc:
            raise Invalid(f"{where}.thresholds: {exc}") from None
        missed = json_field(data, "thresholds_missed", where, list, required=False) or []
        for n, text in enumerate(missed):
            expect(text, f"{where}.thresholds_missed[{n}]", str)
        known = json_field(data, "known_answer", where, dict, type(None), required=False)
        if known is not None:
            json_field(known, "expect", f"{where}.known_answer", str, required=False)
        settings = json_field(data, "settings", where, dict, required=False) or {}
        return cls(
            model=data["model"],
            test=data["test"],
            settings=_settings(settings, f"{where}.settings"),
            generations=_generations(data, "generations", where),
            judge=_generations(data, "judge", where),
            scores={k: float(v) for k, v in scores.items() if v is not None},
            score=_score(data.get("score"), f"{where}.score"),
            load_s=data.get("load_s"),
            error=data.get("error"),
            failure=data.get("failure"),
            repeat=int(data.get("repeat") or 0),
            repeats=int(data.get("repeats") or 1),
            min_pass_rate=data.get("min_pass_rate"),
            thresholds=parsed,
            thresholds_missed=tuple(missed),
            benchmark=data.get("benchmark"),
            known_answer=None
            if known is None
            else AnswerFile(
                str(known.get("path") or ""), str(known.get("expect") or "pass"), known.get("note")
            ),
        )


_SCALARS: dict[str, tuple[type, ...]] = {
    "load_s": (float, type(None)),
    "error": (str, type(None)),
    "failure": (str, type(None)),
    "repeat": (int,),
    "repeats": (int,),
    "min_pass_rate": (float, type(None)),
    "benchmark": (str, type(None)),
}


def _generations(data: dict[str, Any], key: str, where: str) -> list[GenerationRecord]:
    items = json_field(data, key, where, list, required=False) or []
    return [GenerationRecord.from_dict(g, f"{where}.{key}[{n}]") for n, g in enumerate(items)]


def _settings(data: dict[str, Any], where: str) -> Settings:
    dataclass_fields(data, Settings, where)
    return Settings.from_dict(data)


def _score(data: Any, where: str) -> Score | None:
    """A combined score; its total, weights and check fields may be absent (tests' records)."""
    if data is None:
        return None
    expect(data, where, dict)
    json_field(data, "total", where, float, required=False)
    checks = json_field(data, "checks", where, list, required=False) or []
    for n, check in enumerate(checks):
        expect(check, f"{where}.checks[{n}]", dict)
        json_field(check, "name", f"{where}.checks[{n}]", str)
        json_field(check, "score", f"{where}.checks[{n}]", float)
        dataclass_fields(check, CheckResult, f"{where}.checks[{n}]")
    weights = json_field(data, "weights", where, dict, required=False) or {}
    for name, weight in weights.items():
        expect(weight, f"{where}.weights.{name}", float)
    diagnoses = json_field(data, "diagnoses", where, list, required=False) or []
    for n, text in enumerate(diagnoses):
        expect(text, f"{where}.diagnoses[{n}]", str)
    return Score.from_dict({"total": 0.0, **data, "checks": checks})


def record_from_report(report: object) -> ItemRecord | None:
    """The typed record a report carries (``None``: not an LLM item); :class:`Invalid`
    naming the field when it does not read (a worker of another version, a plugin that wrote
    over it)."""
    value = getattr(report, PROPERTY, None)
    return ItemRecord.from_dict(value) if isinstance(value, dict) else None


def unreadable(report: object, problem: Invalid) -> ItemRecord:
    """The record of an item whose report's record does not read: an error naming the
    field, so the run's other results are still reported."""
    value = getattr(report, PROPERTY, None)
    data = value if isinstance(value, dict) else {}
    model, test = data.get("model"), data.get("test")
    return ItemRecord(
        model=model if isinstance(model, str) else "?",
        test=test if isinstance(test, str) else str(getattr(report, "nodeid", "?")),
        error=f"the item's record on its report does not read: {problem}",
    )


def junit_properties(record: ItemRecord) -> list[tuple[str, object]]:
    """Flat ``llm.*`` properties for JUnit XML: model, every metric the last generation
    reported, scores."""
    props: list[tuple[str, object]] = [("llm.model", record.model)]
    if record.generations:
        last = record.generations[-1].reply
        props.append(("llm.finish_reason", last.finish_reason))
        for metric in generation_metrics():
            value = getattr(last.metrics, metric.name, None)
            if value is not None:
                props.append((f"llm.{metric.name}", value))
    for name, value in record.scores.items():
        props.append((f"llm.score.{name}", value))
    if record.error:
        props.append(("llm.error", record.error.splitlines()[0]))
    return props


def prompt_messages(request: Mapping[str, Any]) -> tuple[PromptMessage, ...]:
    """The prompt of a request body, each content cut to :data:`PROMPT_CHARS` (the record
    travels on every report; the request itself is dropped)."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        prompt = request.get("prompt")
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else []
    out = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        text = content if isinstance(content, str) else str(content or "")
        if len(text) > PROMPT_CHARS:
            text = f"{text[:PROMPT_CHARS]}… [{len(text) - PROMPT_CHARS} more characters]"
        out.append(PromptMessage(str(message.get("role") or "user"), text))
    return tuple(out)
