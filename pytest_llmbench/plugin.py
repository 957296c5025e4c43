"""pytest hooks and fixtures: thin wiring into the modules that do the work."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench.config.options import add_options
from pytest_llmbench.config.plan import MARKER_KEYS, ItemPlan, build_plan, overrides_lines
from pytest_llmbench.config.run_config import RUN_KEY, RunConfig, build_run_config
from pytest_llmbench.controller import Controller
from pytest_llmbench.errors import LLMBenchError
from pytest_llmbench.generate.item import ITEM_KEY, BenchItem
from pytest_llmbench.generate.live_line import live_line, progress_lines
from pytest_llmbench.generate.llm import LLM
from pytest_llmbench.generate.registry import BenchSession
from pytest_llmbench.generate.replay import recording_info
from pytest_llmbench.serve.generation import Settings
from pytest_llmbench.serve.shared import SharedServers
from pytest_llmbench.serve.specs import spec_line
from pytest_llmbench.text_safety import for_cell, for_terminal
from pytest_llmbench.verdict.baselines import Store, StoreError, check_name
from pytest_llmbench.verdict.gates import check_thresholds
from pytest_llmbench.verdict.outcome import NO_MODELS, reported_outcome

SESSION_KEY = pytest.StashKey[BenchSession]()
PLAN_KEY = pytest.StashKey[ItemPlan]()
ENDPOINT_KEY = pytest.StashKey[int]()
"""Which endpoint of a pooled model (``@URL1+URL2``) serves the item."""
SHARED_KEY = pytest.StashKey[SharedServers]()
"""The run's spawned servers, on a worker that joined them."""


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"llm(**settings): generation settings, repeats and gates for this test "
        f"({', '.join(MARKER_KEYS)})",
    )
    run = _checked_against_saved_runs(config, build_run_config(config))
    config.stash[RUN_KEY] = run
    if run.sandbox_weak:
        from pytest_llmbench.sandbox.containment import allow_weak  # loaded only when asked

        allow_weak(True)
    if run.specs:
        _sigterm_as_interrupt()
    if not hasattr(config, "workerinput"):  # the leaderboard lives on the controller only
        config.pluginmanager.register(Controller(config, run), "llmbench-controller")
    else:  # a worker: both of these may apply
        if run.server_options.run_dir and any(s.spawns for s in (*run.specs, run.judge) if s):
            # The servers it may need wait for it to get past their model (or to leave).
            config.stash[SHARED_KEY] = SharedServers.of(Path(run.server_options.run_dir))
            config.stash[SHARED_KEY].join()
        if config.getvalue("loadgroup"):
            config.pluginmanager.register(_LoadgroupNodeIds(), "llmbench-loadgroup-nodeids")


def _checked_against_saved_runs(config: pytest.Config, run: RunConfig) -> RunConfig:
    """``--llm-save``'s name and the saved run ``--llm-compare`` names, checked before any
    test on the controller (the only one that saves and compares); the run to compare with is
    resolved into ``compare_path``."""
    if hasattr(config, "workerinput"):
        return run
    try:
        if run.save:
            check_name(run.save)
    except StoreError as exc:
        raise pytest.UsageError(f"--llm-save: {exc}") from None
    try:
        if run.compare:
            path, _ = Store(Path(config.rootpath, run.storage)).load(run.compare)
            return replace(run, compare_path=str(path))
    except StoreError as exc:
        raise pytest.UsageError(f"--llm-compare: {exc}") from None
    return run


def _sigterm_as_interrupt() -> None:
    """CI cancellations send SIGTERM: treat it like Ctrl-C so pytest unwinds, spawned servers
    are stopped and the results so far are still summarised."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # someone else (pytest-timeout, xdist) owns it

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Every worker that joined leaves, also one given no item of a spawned model (it made no
    # backend): the servers the others spawned stop waiting for it.
    shared = session.config.stash.get(SHARED_KEY, None)
    if shared is not None:
        shared.leave()


def pytest_unconfigure(config: pytest.Config) -> None:
    # Also reached after Ctrl-C, where session fixtures may not have been torn down.
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()
    run = config.stash.get(RUN_KEY, None)
    if run is not None and run.sandbox_weak:
        from pytest_llmbench.sandbox.containment import allow_weak

        allow_weak(False)
    if run is not None and run.server_options.run_dir and not hasattr(config, "workerinput"):
        # The end of the run: whatever an interrupted worker left running, and the folder.
        SharedServers(Path(run.server_options.run_dir)).stop_all()


def pytest_report_header(config: pytest.Config) -> list[str]:
    run = config.stash[RUN_KEY]
    sandbox = []
    if run.sandbox_weak or run.specs:
        from pytest_llmbench.sandbox.containment import header_line  # probes, once per run

        sandbox.append(f"llmbench: {header_line()}")
    if not run.specs:
        return sandbox
    lines = [
        *sandbox,
        f"llmbench: models: {', '.join(spec_line(spec) for spec in run.specs)}",
        f"llmbench: run settings: {run.settings.text(' ')}",
    ]
    if run.replay_dir:
        lines.append(f"llmbench: {for_cell(recording_info(Path(run.replay_dir)).label())}")
    return lines


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """Tests whose ``@pytest.mark.llm`` changes the run's settings, with what they change."""
    return overrides_lines(config.stash[RUN_KEY].settings, _plans(items))


def _plans(items: list[pytest.Item]) -> list[tuple[str, Settings]]:
    return [
        (getattr(item, "originalname", item.name), item.stash[PLAN_KEY].settings)
        for item in items
        if PLAN_KEY in item.stash
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "llm" not in metafunc.fixturenames:
        return
    run = metafunc.config.stash[RUN_KEY]
    if not run.specs:
        metafunc.parametrize(
            "llm",
            [pytest.param(None, marks=pytest.mark.skip(reason=NO_MODELS), id="no-model")],
            indirect=True,
        )
        return
    try:
        repeat = _plan(metafunc.definition, run).repeat
    except pytest.UsageError:
        repeat = run.repeat  # reported once, cleanly, in pytest_collection_modifyitems
    params = []
    for spec in run.specs:
        count = 1 if spec.kind == "answers" else repeat  # a known answer is the same each time
        for rep in range(count):
            token = spec.id if count == 1 else f"{spec.id}-r{rep + 1}"
            # The group mark keeps a model on one xdist worker with --dist loadgroup (a
            # pool gets one group per endpoint, in pytest_collection_modifyitems).
            marks = () if spec.pool else (pytest.mark.xdist_group(spec.xdist_group()),)
            params.append(pytest.param((spec.id, rep), id=token, marks=marks))
    metafunc.parametrize("llm", params, indirect=True)


def _plan(node: pytest.Item | pytest.Function, run: RunConfig) -> ItemPlan:
    """The item's plan from its ``@pytest.mark.llm`` markers (closest applied last)."""
    markers = reversed(list(node.iter_markers("llm")))
    try:
        return build_plan((m.kwargs for m in markers), run)
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(f"{node.nodeid}: @pytest.mark.llm: {exc}") from None


def _param_of(item: pytest.Item) -> tuple[str, int] | None:
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("llm") if callspec is not None else None
    return value if isinstance(value, tuple) else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep each model's items together (stable), so every model is loaded once; spread a
    pooled model's items over its endpoints, one xdist group per endpoint."""
    run = config.stash[RUN_KEY]
    order = {spec.id: i for i, spec in enumerate(run.specs)}
    pools = {spec.id: len(spec.pool) for spec in run.specs if spec.pool}
    dealt: dict[str, int] = {}
    for item in items:
        param = _param_of(item)
        if param is not None and param[0] in pools:
            model = param[0]
            dealt[model] = dealt.get(model, 0) + 1
            endpoint = (dealt[model] - 1) % pools[model]
            item.stash[ENDPOINT_KEY] = endpoint
            group = run.spec_for(model).xdist_group(endpoint)
            item.add_marker(pytest.mark.xdist_group(group), append=False)

    def key(item: pytest.Item) -> tuple[int, int]:
        param = _param_of(item)
        if param is None:
            return -1, 0
        return order.get(param[0], -1), item.stash.get(ENDPOINT_KEY, 0)

    items.sort(key=key)
    for item in items:
        param = _param_of(item)
        if param is not None:
            plan = _plan(item, run)
            if run.spec_for(param[0]).kind == "answers":  # served once: no repeats to pool
                plan = replace(plan, repeat=1, min_pass_rate=None)
            item.stash[PLAN_KEY] = plan


def _progress(config: pytest.Config) -> Callable[[str], None]:
    lines = progress_lines(config)

    def write(message: str) -> None:
        if lines is None:
            return
        capman = config.pluginmanager.get_plugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
            lines.write(f"[llmbench] {for_terminal(message)}")

    return write


@pytest.fixture(scope="session")
def llm_session(pytestconfig: pytest.Config) -> Generator[BenchSession, None, None]:
    """The run's server registry (starts, attaches, preloads, unloads, stops)."""
    session = BenchSession(pytestconfig.stash[RUN_KEY], _progress(pytestconfig))
    session.live = live_line(pytestconfig)
    pytestconfig.stash[SESSION_KEY] = session
    yield session
    session.close()


@pytest.fixture
def llm(request: pytest.FixtureRequest, llm_session: BenchSession) -> LLM:
    """The model under test (one per ``--llm-models`` spec), ready to ``generate``."""
    run: RunConfig = request.config.stash[RUN_KEY]
    spec_id, rep = request.param
    spec, node = run.spec_for(spec_id), request.node
    plan = node.stash.get(PLAN_KEY, None) or _plan(node, run)
    bench = node.stash[ITEM_KEY] = BenchItem.for_model(node, run, plan, spec, rep, check_thresholds)
    return bench.open_model(llm_session, spec, rep, node.stash.get(ENDPOINT_KEY, 0))


@pytest.fixture
def llm_judge(request: pytest.FixtureRequest, llm_session: BenchSession) -> LLM | None:
    """The judge model from ``--llm-judge``, or ``None`` when no judge was configured.

    Its generations are recorded apart from the model under test's.
    """
    run: RunConfig = request.config.stash[RUN_KEY]
    if run.judge is None:
        return None
    if "llm" in request.fixturenames:
        request.getfixturevalue("llm")  # the item is made there
    node: pytest.Item = request.node
    bench = node.stash.get(ITEM_KEY, None)
    if bench is None:
        bench = node.stash[ITEM_KEY] = BenchItem.for_judge_only(node, run, run.judge)
    return bench.open_judge(llm_session, run.judge)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    bench = item.stash.get(ITEM_KEY, None)
    if bench is not None:
        bench.settle(call, report)
    elif call.excinfo is not None and isinstance(call.excinfo.value, LLMBenchError):
        report.llmbench_infra = True  # type: ignore[attr-defined]  # e.g. the sandbox refused
    return report


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    """A model that produced no answer (server down, stream cut, stall) is an *error*, not a
    failure: infrastructure trouble must never read as a bad model."""
    infra = report.failed and getattr(report, "llmbench_infra", False)
    if report.when == "call" and (infra or reported_outcome(report) == "error"):
        return "error", "E", ("ERROR", {"red": True})
    return None


class _LoadgroupNodeIds:
    """Worker-side repair for pytest >= 9.2 with pytest-xdist 3.8 (pytest-xdist#1386).

    xdist's ``--dist loadgroup`` appends ``@group`` by assigning ``item._nodeid``, which
    pytest 9.2 no longer reads (``nodeid`` comes from ``item._id``), so every group is silently
    spread over all workers and each worker loads every model. Give the scheduler the suffixed
    ids it groups by, then put every item's own id back once they are sent, so reports, the
    short summary and JUnit XML name ``test_x[a]``, never ``test_x[a]@group]``.
    """

    def __init__(self) -> None:
        self.own_ids: dict[pytest.Item, Any] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        try:
            from _pytest.nodeid import coerce_node_id
        except ImportError:  # pytest < 9.2 reads _nodeid itself
            return
        for item in items:
            wanted = item.__dict__.get("_nodeid")
            if isinstance(wanted, str) and wanted != item.nodeid:
                self.own_ids[item] = item._id
                item._id = coerce_node_id(wanted)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self) -> None:
        # After xdist's own pytest_collection_finish has sent the ids to the controller.
        for item, own in self.own_ids.items():
            item._id = own
            item.__dict__.pop("_nodeid", None)
        self.own_ids.clear()
