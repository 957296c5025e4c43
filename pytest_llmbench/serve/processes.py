"""Server processes the plugin spawns: free port, log file, health polling, stop, and their
turns at generating on this machine.

Two spawned llama-servers generating at once on one machine each spin a thread per core and
slow each other down by up to 160× (measured on 2 cores: 0.6 instead of 98.7 tok/s each,
``benchmarks/``), so a spawned server generates only in its :class:`Turn`: its generations are
counted in flight (``pytest_llmbench.serve.flight``, shared by every pytest process of this user:
xdist workers, parallel runs) and one of another spawned server waits until none are, before
its request is sent (the wait is not in TTFT). Generations of one server share its turn, up
to ``--llm-concurrency``. A turn also watches the CPU time every other spawned server uses
meanwhile, so a figure taken while another one was busy (loading, or started by a run that
does not take turns) is marked.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pytest_llmbench.errors import ReplyLimitError, ServerError
from pytest_llmbench.serve import reply_limits
from pytest_llmbench.serve.bounded import ServerClient
from pytest_llmbench.serve.caveats import SIDE_BY_SIDE, SPEED, Caveat
from pytest_llmbench.serve.flight import Ask, Flight, Overlap
from pytest_llmbench.serve.generation import Generation
from pytest_llmbench.serve.proc_facts import cpu_seconds, start_time

Progress = Callable[[str], None]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the caller retries if it is taken meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, indented, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "    (no log)"
    tail = text.splitlines()[-lines:]
    return "\n".join("    " + line for line in tail) or "    (empty log)"


def _die_with_parent() -> None:
    """Linux: SIGTERM the server if pytest dies without cleaning up (pytest-timeout's thread
    method calls ``os._exit``), so no model server is left holding memory."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


ATTACH_REFUSED_S = 20.0
"""How long an attached server may refuse connections before its items error: llama-server
listens before it loads the model (llama.cpp #4881 started the HTTP server first) and answers
503 on every route meanwhile (``tools/server/server-http.cpp`` ``middleware_server_state``), so
a refusal lasting this long means nothing is there (a wrong port), not a big model loading."""


def wait_for_health(
    health_url: str,
    label: str,
    timeout_s: float,
    progress: Progress | None = None,
    interval_s: float = 0.1,
    *,
    started: float | None = None,
    seen: list[str] | None = None,
    check: Callable[[], None] | None = None,
    log_path: Path | None = None,
    refused_s: float | None = None,
) -> None:
    """Poll ``health_url`` until it answers 200, for spawned and attached servers alike.

    A 503 ("Loading model") or a refused connection is normal and may last many minutes
    for big models; a progress line is printed every 10 s. ``check`` may raise to stop early
    (a spawned server that exited). ``refused_s``: how long nothing but refused connections
    is waited out (attached servers: llama-server listens before it loads the model, so
    refusals mean nothing runs there; see :data:`ATTACH_REFUSED_S`).
    """
    started = time.monotonic() if started is None else started
    seen = [] if seen is None else seen
    last_note = started
    last_status = "no answer yet"
    # Plain http on loopback for spawned servers; attached ones may be https.
    with ServerClient(label, reply_limits.HEALTH) as client:
        while True:
            if check is not None:
                check()
            try:
                response = client.get(health_url)
                last_status = f"HTTP {response.status_code}"
            except ReplyLimitError as exc:
                last_status = exc.limit
                response = None
            except ServerError as exc:  # unreachable: the name of httpx's error
                last_status = type(exc.__cause__ or exc).__name__
                response = None
            if not seen or seen[-1] != last_status:
                seen.append(last_status)
            if response is not None and response.status_code == 200:
                return
            now = time.monotonic()
            if (
                refused_s is not None
                and now - started > refused_s
                and set(seen) == {"ConnectError"}
            ):
                raise ServerError(
                    f"{label}: nothing answers at {health_url} (connection refused for "
                    f"{refused_s:g} s). Is the server running, and is this the right port?"
                )
            if now - started > timeout_s:
                where = f" or check the log {log_path}:\n{log_tail(log_path)}" if log_path else ""
                raise ServerError(
                    f"{label}: not healthy after {timeout_s:g} s (last: {last_status} from "
                    f"{health_url}). Raise --llm-health-timeout if the model is big{where}"
                )
            if progress and now - last_note >= 10:
                progress(f"{label}: loading… {now - started:.0f} s ({last_status})")
                last_note = now
            time.sleep(interval_s)


BUSY_CORES = 0.25
"""Other spawned servers using this much CPU (in cores) during a generation distort it."""


def turns_dir() -> Path:
    """Where the in-flight register and the registry of spawned servers live (the plugin's
    cache: shared by every pytest process of this user)."""
    from pytest_llmbench.tools.cache import cache_dir

    return cache_dir() / "turns"


@dataclass
class Turn:
    """One generation's turn; ``busy_cores`` is what the other spawned servers used meanwhile
    (CPU seconds per second), ``overlap`` what it shared its own server with."""

    overlap: Overlap = field(default_factory=Overlap)
    busy_cores: float = 0.0
    others: dict[int, float] = field(default_factory=dict)

    @property
    def waited_s(self) -> float:
        return self.overlap.waited_s

    @property
    def locked(self) -> bool:
        """False when the wait for the turn ran out and the generation went ahead anyway."""
        return self.overlap.admitted

    def mark(
        self, generation: Generation, threshold: float = BUSY_CORES, slots: int | None = None
    ) -> Generation:
        """``generation`` with its caveats: another server was busy (side by side), other
        generations of its own server overlapped it or it waited in its queue."""
        generation = self.overlap.mark(generation, slots)
        if self.busy_cores < threshold:
            return generation
        caveat = Caveat(SIDE_BY_SIDE, f"it used {self.busy_cores:.1f} cores", SPEED[:5])
        return replace(generation, caveats=(*generation.caveats, caveat))


class Turns:
    """The machine's turns (:class:`~pytest_llmbench.serve.flight.Flight`) and the registry of
    spawned servers under ``root``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or turns_dir()
        self.flight = Flight(self.root)

    def register(self, pid: int) -> None:
        (self.root / "servers").mkdir(parents=True, exist_ok=True)
        (self.root / "servers" / str(pid)).write_text(start_time(pid))

    def unregister(self, pid: int) -> None:
        with contextlib.suppress(OSError):
            (self.root / "servers" / str(pid)).unlink()

    def _others(self, own: int) -> dict[int, float]:
        """CPU seconds of every other registered server still running."""
        found: dict[int, float] = {}
        with contextlib.suppress(OSError):
            for entry in (self.root / "servers").iterdir():
                pid = int(entry.name) if entry.name.isdigit() else -1
                if pid <= 0 or pid == own:
                    continue
                try:
                    if entry.read_text() != start_time(pid):
                        entry.unlink()  # gone (killed before it could unregister) or reused
                        continue
                except OSError:
                    continue
                cpu = cpu_seconds(pid)
                if cpu is not None:
                    found[pid] = cpu
        return found

    @contextlib.contextmanager
    def turn(
        self,
        own_pid: int,
        max_wait_s: float = 300.0,
        *,
        server: str | None = None,
        limit: int | None = 1,
        alone: bool = False,
        machine: bool = True,
    ) -> Iterator[Turn]:
        """In flight on the server ``own_pid`` (or ``server``) while the block runs, in the
        machine's turn: generations of one server share it (up to ``limit`` at once), other
        spawned servers wait; the others' CPU use is measured meanwhile.

        The wait is bounded (``max_wait_s``: a server stuck mid-generation elsewhere must not
        hold this one forever); past it the block runs anyway, ``locked`` False, and the
        other servers' CPU use still decides whether its figures are marked. ``machine``
        False (an attached server): counted in flight only, no machine turn, no CPU watch."""
        ask = Ask(server or f"pid:{own_pid}", limit=limit, alone=alone, machine=machine)
        turn = Turn()
        with self.flight.enter(ask, max_wait_s) as overlap:
            turn.overlap = overlap
            if not machine:
                yield turn
                return
            started = time.monotonic()
            turn.others = self._others(own_pid)
            yield turn
            after = self._others(own_pid)
            used = sum(after[p] - cpu for p, cpu in turn.others.items() if p in after)
            turn.busy_cores = used / max(time.monotonic() - started, 1e-6)


_loads = itertools.count()


class ServerProcess:
    """A child server process with its own session and log file."""

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        label: str,
        env: dict[str, str] | None = None,
        turns: Turns | None = None,
    ) -> None:
        self.argv = list(argv)
        self.turns = turns
        """Take turns at generating with the other spawned servers (None: not one of them);
        loading (spawn -> healthy, which ends with a warm-up decode) is such a turn too."""
        self.log_path = log_path
        self.label = label
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._loading = contextlib.ExitStack()
        if turns is not None:
            loading = f"loading:{os.getpid()}:{next(_loads)}"
            self._loading.enter_context(turns.turn(own_pid=0, server=loading))
        self._log = log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=None if env is None else {**os.environ, **env},
                start_new_session=True,  # Ctrl-C in the terminal must not reach it first
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            self._log.close()
            self._loading.close()
            raise ServerError(f"{label}: could not start {self.argv[0]}: {exc}") from exc
        self.started = time.monotonic()
        if self.turns is not None:
            self.turns.register(self.proc.pid)
        self.health_seen: list[str] = []
        """Distinct health answers in order (e.g. ConnectError, HTTP 503, HTTP 200)."""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_healthy(
        self,
        health_url: str,
        timeout_s: float,
        progress: Progress | None = None,
        interval_s: float = 0.1,
    ) -> float:
        """Poll ``health_url`` until it answers 200; returns seconds since spawn."""

        def check_alive() -> None:
            if not self.running():
                raise ServerError(
                    f"{self.label}: server exited with code {self.proc.returncode} "
                    f"while loading. Last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                )

        try:
            wait_for_health(
                health_url,
                self.label,
                timeout_s,
                progress,
                interval_s,
                started=self.started,
                seen=self.health_seen,
                check=check_alive,
                log_path=self.log_path,
            )
        except ServerError:
            self.stop()
            raise
        finally:
            self._loading.close()  # loaded (or gone): the loading turn ends
        return time.monotonic() - self.started

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL after ``grace_s``; idempotent."""
        self._loading.close()
        if self.turns is not None:
            self.turns.unregister(self.proc.pid)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
