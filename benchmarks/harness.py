"""What every figure shares: the :class:`Figure` record, the :class:`Bench` that collects
them, the machine note, and running pytest, a test template or a server in its own process."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmbench.serve.backends import Backend, make_backend
from pytest_llmbench.serve.server_info import ServerOptions
from pytest_llmbench.serve.specs import parse_spec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
MESSAGES = [{"role": "user", "content": "Go."}]


@dataclass
class Figure:
    """One measured figure, its target and whether it was met (``None``: a report, or not
    measured when ``value`` is ``None`` too)."""

    figure: str
    value: float | None
    unit: str
    target: str
    met: bool | None
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    group: str = ""


@dataclass
class Bench:
    """Handed to each figure's ``run``: ``quick`` asks for fewer repeats; ``report`` keeps
    and prints a figure."""

    quick: bool = False
    group: str = ""
    figures: list[Figure] = field(default_factory=list)

    def report(self, fig: Figure) -> Figure:
        fig.group = self.group
        self.figures.append(fig)
        mark = {True: "MET ", False: "MISS", None: "SKIP" if fig.value is None else "INFO"}
        print(f"  [{mark[fig.met]}] {fig.figure}: {shown(fig.value, fig.unit)} ({fig.target})")
        for line in textwrap.wrap(fig.notes, 96):
            print(f"         {line}")
        return fig

    def skipped(self, figure: str, reason: str) -> None:
        self.report(Figure(figure, None, "", "-", None, f"skipped: {reason}"))


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def shown(value: float | None, unit: str) -> str:
    """``value`` with its unit, as the printout and the README table show it."""
    if value is None:
        return "-"
    if unit == "×":
        return f"×{value:.2f}"
    return fmt(value) if unit == "ratio" else f"{fmt(value)} {unit}".strip()


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def backend(spec: str, **options: Any) -> Backend:
    """The plugin's backend for ``spec``, as a run with these server options would make it."""
    return make_backend(parse_spec(spec), ServerOptions(**options))


def demo_model(bench: Bench, figure: str) -> Path | None:
    """The demo GGUF when it and a real llama-server are at hand; else ``figure`` is reported
    skipped, naming what is missing, and ``None``."""
    try:
        from pytest_llmbench.tools.default_model import embedded_model_path
        from pytest_llmbench.tools.llama_server import find_llama_server

        gguf = embedded_model_path()
        if find_llama_server() is None:
            raise RuntimeError("no llama-server binary")
    except Exception as exc:
        bench.skipped(figure, str(exc))
        return None
    return gguf


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """Where the figures come from, and how busy it was (other jobs share these cores)."""
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in ("httpx", "pytest", "pytest-xdist", "tabulate"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "load_average_at_start": load(),
        "versions": versions,
    }


def pytest_env(extra: Mapping[str, str] = {}) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("CI", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # This tree's plugin and fakes, ahead of the installed ones.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env | dict(extra)


def run_pytest(
    args: list[str], cwd: Path, env: Mapping[str, str] = {}, timeout: float = 300
) -> tuple[float, str, int]:
    """``python -m pytest ARGS`` in ``cwd``: (wall seconds, output, exit code)."""
    started = time.perf_counter()
    proc = subprocess.run(
        [PY, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=pytest_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return time.perf_counter() - started, proc.stdout + proc.stderr, proc.returncode


def template(name: str, into: Path) -> Path:
    """Copy ``templates/NAME.py`` into ``into`` as ``test_NAME.py`` (its parameters are read
    from ``BENCH_*`` environment variables: pass them to :func:`run_pytest`)."""
    into.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(HERE / "templates" / f"{name}.py", into / f"test_{name}.py"))


def junit_cases(path: Path) -> list[dict[str, Any]]:
    """Per testcase: name, time (setup + call + teardown) and its ``llm.*`` properties."""
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        cases.append(
            {"name": case.get("name"), "time": float(case.get("time") or 0), "props": props}
        )
    return cases


@contextlib.contextmanager
def own_process(module: str, *args: str) -> Iterator[str]:
    """``python -m MODULE ARGS`` (a server that must not share our GIL) until the block ends;
    yields the URL it prints on its first line (``URL http://...``)."""
    proc = subprocess.Popen(
        [PY, "-m", module, *args], cwd=ROOT, env=pytest_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("URL "):
            raise RuntimeError(f"{module} did not start: {line!r}")
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(10)
