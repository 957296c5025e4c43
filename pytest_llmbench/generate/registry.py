"""The per-run server registry: one model ready at a time, loads timed, failures remembered."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pytest_llmbench.config.run_config import RunConfig
from pytest_llmbench.errors import LLMBenchError
from pytest_llmbench.generate.record_replay import FillIn, Recording, Replaying
from pytest_llmbench.generate.replay import Recorder, Replayer
from pytest_llmbench.serve.backends import Backend, make_backend
from pytest_llmbench.serve.backends.base import LiveHook, ReplySource
from pytest_llmbench.serve.flight import slot_warning
from pytest_llmbench.serve.generation import Settings
from pytest_llmbench.serve.shared import LAST
from pytest_llmbench.serve.specs import ModelSpec

Progress = Callable[[str], None]


class BenchSession:
    """Prepares the model under test and releases the previous one, so one model's load never
    lands in another's TTFT. Items are ordered by model, so each is loaded once per run (per
    xdist worker group)."""

    def __init__(self, run: RunConfig, progress: Progress) -> None:
        self.temp_logs: Path | None = None
        """The run's own log folder when ``--llm-log-dir`` names none: removed at the end
        unless a server failed (its error names a log in it)."""
        if run.server_options.log_dir is None:
            self.temp_logs = Path(tempfile.mkdtemp(prefix="llmbench-logs-"))
            run = replace(
                run, server_options=replace(run.server_options, log_dir=str(self.temp_logs))
            )
        self.run = run
        self.progress = progress
        self.backends: dict[str, Backend] = {}
        self.judges: dict[str, Backend] = {}
        self._judges_ready: set[str] = set()
        self.active: Backend | None = None
        self.failures: dict[str, LLMBenchError] = {}
        self.generated: dict[str, int] = {}
        """Generations so far per model id (for --llm-warmup)."""
        self.live: LiveHook | None = None
        """The live progress line given to every model backend (``generate.live_line``)."""
        self.replayer = Replayer(Path(run.replay_dir)) if run.replay_dir else None
        self.recorder: Recorder | None = None
        if run.record_dir:
            self.recorder = Recorder(Path(run.record_dir))
        elif run.replay_dir and run.replay_missing == "record":
            self.recorder = Recorder(Path(run.replay_dir), manifest=False)  # fills in gaps

    def acquire(
        self, spec: ModelSpec, settings: Settings, *, live: bool = False
    ) -> tuple[Backend, float | None]:
        """The ready backend for ``spec`` and the load time paid now (``None`` if warm).

        When replaying, the backend is not prepared (no server is contacted) unless ``live``:
        a recording was missing and the run asked to generate it.
        """
        backend = self._model_backend(spec)
        if self.replayer is not None and not live:
            return backend, None  # offline: the recordings hold every figure, load time included
        if self.active is not None and self.active is not backend:
            self.active.release()
            self._judges_ready.discard(self.active.spec.raw)  # a judge sharing it is stopped
            self.active = None
        try:
            load_s = backend.prepare(settings, self.progress)
            self._warn_slots(backend)
        except LLMBenchError as exc:
            self.failures[spec.raw] = exc
            backend.release()
            raise
        self.active = backend
        return backend, load_s

    def _warn_slots(self, backend: Backend) -> None:
        """An attached server with fewer slots than ``--llm-concurrency``: said once, under
        the leaderboard (a spawned llama-server gets as many slots)."""
        info = backend.server_info
        warning = slot_warning(
            backend.label, info.backend, info.total_slots, self.run.server_options.concurrency
        )
        if warning is not None and warning not in info.warnings and not backend.spec.spawns:
            backend.server_info = replace(info, warnings=(*info.warnings, warning))

    def _model_backend(self, spec: ModelSpec) -> Backend:
        """The backend of a model under test (made on first use), unless it failed before."""
        failure = self.failures.get(spec.raw)
        if failure is not None:
            # Fail fast: do not wait another health timeout for a server that already failed.
            raise type(failure)(f"{failure} (failed earlier in this run)")
        backend = self.backends.get(spec.raw)
        if backend is None:
            backend = self.backends[spec.raw] = make_backend(spec, self.run.server_options)
            backend.live = self.live
        return backend

    def acquire_judge(self, spec: ModelSpec, settings: Settings, *, live: bool = False) -> Backend:
        """The judge's backend: kept apart from the model under test and never released
        between items, so judging never unloads the model being benchmarked. When replaying
        it is not prepared (no server) unless ``live``, as for :meth:`acquire`.

        A judge served like a model under test (the same model on the same server) shares
        that model's backend: no second server, no second copy of the model loaded."""
        shared = self._under_test(spec)
        if shared is not None:
            return self._shared_judge(shared, settings, live)
        failure = self.failures.get(f"judge:{spec.raw}")
        if failure is not None:
            raise type(failure)(f"{failure} (failed earlier in this run)")
        backend = self.judges.get(spec.raw)
        if backend is not None and (spec.raw in self._judges_ready or not live):
            return backend
        if backend is None:
            backend = self.judges[spec.raw] = make_backend(spec, self.run.server_options)
            backend.order = LAST  # needed until the end of the run
        if self.replayer is not None and not live:
            return backend
        try:
            backend.prepare(settings, self.progress)
        except LLMBenchError as exc:
            self.failures[f"judge:{spec.raw}"] = exc
            backend.release()
            raise
        self._judges_ready.add(spec.raw)
        return backend

    def _under_test(self, spec: ModelSpec) -> ModelSpec | None:
        """The model under test (a pool's endpoint) served as ``spec`` is, if any."""
        for model in self.run.specs:
            for index in range(len(model.pool) or 1):
                member = model.member(index)
                if member.served == spec.served:
                    return member
        return None

    def _shared_judge(self, member: ModelSpec, settings: Settings, live: bool) -> Backend:
        """The backend of the model under test ``member``, made ready for judging: as it
        is when it is the active one (its item's settings kept: a ``ctx`` set by the item's
        marker does not restart it), else prepared and kept ready until it is released."""
        backend = self._model_backend(member)
        offline = self.replayer is not None and not live
        if offline or backend is self.active or member.raw in self._judges_ready:
            return backend
        try:
            backend.prepare(settings, self.progress)
        except LLMBenchError as exc:
            self.failures[member.raw] = exc
            backend.release()
            raise
        self._judges_ready.add(member.raw)
        return backend

    def source(
        self,
        backend: Backend,
        model: str,
        spec: ModelSpec,
        settings: Settings,
        *,
        judge: bool = False,
        loaded: Callable[[float | None], None] | None = None,
    ) -> ReplySource:
        """What an item's model (``model``: its id; ``spec``: what serves it) generates from,
        decided here once: ``backend`` itself, or recording every reply (``--llm-record``),
        or the recordings (``--llm-replay``), a missing one generated live and recorded when
        the run asks (``--llm-replay-missing=record``; ``loaded`` hears the load it paid)."""
        if self.replayer is None:
            return backend if self.recorder is None else Recording(backend, model, self.recorder)
        recorder = self.recorder
        fill_in: FillIn | None = None
        if recorder is not None:  # --llm-replay-missing=record: it writes into the replay dir

            def fill_in(name: str) -> tuple[ReplySource, float | None]:
                load_s = self.fill_in(spec, settings, judge=judge)
                if loaded is not None:
                    loaded(load_s)
                return Recording(backend, model, recorder, name), load_s

        return Replaying(backend, model, self.replayer, fill_in)

    def fill_in(self, spec: ModelSpec, settings: Settings, *, judge: bool = False) -> float | None:
        """Make ``spec`` ready to generate a recording that replay lacks; the load time paid."""
        self.progress(
            f"{spec.id}: no recording for this prompt and settings; generating it live and "
            f"adding it to {self.run.replay_dir} (--llm-replay-missing=record)"
        )
        if judge:
            self.acquire_judge(spec, settings, live=True)
            return None
        return self.acquire(spec, settings, live=True)[1]

    def is_warmup(self, model: str) -> bool:
        """Count one generation of ``model``; True while within its first --llm-warmup."""
        count = self.generated.get(model, 0)
        self.generated[model] = count + 1
        return count < self.run.warmup

    def close(self) -> None:
        """Release everything (unload models, stop spawned servers): every model let go
        first, then the servers this process spawned, once the run's other processes are
        done with them (waiting before letting go of the rest could wait for each other)."""
        backends = [*self.backends.values(), *self.judges.values()]
        for phase in ("release", "close"):
            for backend in backends:
                try:
                    getattr(backend, phase)()
                except Exception as exc:
                    self.progress(f"{backend.label}: error while stopping: {exc}")
        self.active = None
        if self.temp_logs is not None:
            if self.failures:
                self.progress(f"server logs kept in {self.temp_logs} (a server failed)")
            else:
                shutil.rmtree(self.temp_logs, ignore_errors=True)
