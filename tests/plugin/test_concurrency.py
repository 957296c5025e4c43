"""``--llm-concurrency`` and xdist: one spawned server per model for the whole run, shared by
the workers; overlapping generations marked and kept out of the speed figures; no server
left behind, also when the run is interrupted."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fakes import ModelScript
from tests.fixtures.fakes import StartLlamaServer

ROOT = Path(__file__).resolve().parents[2]

PROMPTS = """
import pytest

@pytest.mark.parametrize("i", range({n}))
def test_p(llm, i):
    assert llm.generate(f"prompt {{i}}").metrics.output_tokens
"""


@pytest.fixture
def fake_bin(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake ``llama-server`` binary (fakes/llama_server_cli.py), two GGUF stand-ins,
    a spawn log, and a plugin cache of this test's own (no turns behind real servers)."""
    binary = pytester.path / "llama-server"
    binary.write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m fakes.llama_server_cli "$@"\n'
    )
    binary.chmod(0o755)
    for name in ("a", "b"):
        (pytester.path / f"{name}.gguf").write_bytes(b"GGUF" + bytes(60))
    monkeypatch.setenv("LLMBENCH_FAKE_SPAWN_LOG", str(pytester.path / "spawns.log"))
    monkeypatch.setenv("LLMBENCH_FAKE_TOKEN_DELAY", "0")
    monkeypatch.setenv("PYTEST_LLMBENCH_CACHE", str(pytester.path / "cache"))
    return binary


def spawns(pytester: pytest.Pytester) -> list[list[str]]:
    log = pytester.path / "spawns.log"
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def fake_servers(under: Path) -> list[int]:
    """Pids of fake llama-servers still running that were started in ``under``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if "llama_server_cli" in cmdline and cwd == str(under) and state != "Z":
            found.append(int(proc.name))
    return found


def generations(path: Path) -> list[dict[str, Any]]:
    doc = json.loads(path.read_text())
    return [g for item in doc["items"] for g in item["record"]["generations"]]


def run_on_a(
    pytester: pytest.Pytester, fake_bin: Path, n: int, delay_s: float, *args: str
) -> pytest.RunResult:
    """``n`` prompts on the spawned fake model ``a`` (``delay_s`` between its tokens), with
    the results JSON in r.json."""
    pytester.makepyfile(test_p=PROMPTS.format(n=n))
    os.environ["LLMBENCH_FAKE_TOKEN_DELAY"] = str(delay_s)  # restored by the fixture's patch
    return pytester.runpytest(
        "--llm-models=llama-server:a.gguf",
        f"--llm-llama-server-bin={fake_bin}",
        "--llm-json=r.json",
        *args,
    )


def run_bounded(pytester: pytest.Pytester, timeout_s: float, *args: str) -> pytest.RunResult:
    """pytest with ``args`` in a process group of its own, killed whole (controller, workers,
    their servers) if it runs past ``timeout_s``: a run that hangs fails the test instead of
    holding the suite."""
    out, err = pytester.path / "bounded.out", pytester.path / "bounded.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = pytester.popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        began = time.monotonic()
        try:
            rc = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"pytest {' '.join(args)} hung: still running after {timeout_s:g} s")
    lines = out.read_text().splitlines()
    return pytest.RunResult(rc, lines, err.read_text().splitlines(), time.monotonic() - began)


def workers_per_model(result: pytest.RunResult) -> dict[str, set[str]]:
    """The xdist workers that ran each model's items (from ``-v`` lines)."""
    workers: dict[str, set[str]] = {}
    for line in result.outlines:
        match = re.search(r"\[(gw\d+)\].*\[(llama-server:\w+)", line)
        if match:
            workers.setdefault(match.group(2), set()).add(match.group(1))
    return workers


def kinds(generation: dict[str, Any]) -> set[str]:
    return {c["kind"] for c in generation.get("caveats") or ()}


@pytest.mark.parametrize(
    "dist",
    [[], ["-n", "2"], ["-n", "3", "--dist", "loadgroup"], ["-n", "3", "--dist", "worksteal"]],
    ids=["no-xdist", "n2-load", "n3-loadgroup", "n3-worksteal"],
)
def test_one_server_per_model_under_any_dist(
    pytester: pytest.Pytester, fake_bin: Path, dist: list[str]
) -> None:
    pytester.makepyfile(test_p=PROMPTS.format(n=6))
    result = run_bounded(
        pytester,
        240,
        "--llm-models=llama-server:a.gguf,llama-server:b.gguf",
        f"--llm-llama-server-bin={fake_bin}",
        "-v",
        *dist,
    )
    result.assert_outcomes(passed=12)
    if "loadgroup" in dist:
        assert all(len(w) == 1 for w in workers_per_model(result).values()), result.outlines
    started = spawns(pytester)
    assert sorted(s[1] for s in started) == ["a.gguf", "b.gguf"], started
    assert all(s[3] == "np=1" for s in started), started
    assert fake_servers(pytester.path) == []  # each stopped by its last user
    assert not any((pytester.path / "cache" / "runs").iterdir())  # the run folder is gone


@pytest.mark.parametrize(
    ("dist", "per_model"), [("loadgroup", 3), ("load", 1)], ids=["loadgroup", "load"]
)
def test_more_workers_than_models_end_without_waiting(
    pytester: pytest.Pytester, fake_bin: Path, dist: str, per_model: int
) -> None:
    """Three workers, two models: one worker gets no item (loadgroup: two groups; load: two
    items), so it never makes a backend. It leaves the run's servers at its session end all
    the same: the workers that spawned them stop them and the run ends (before, the spawners
    waited for it and it, alive until the run ended, for them)."""
    pytester.makepyfile(test_p=PROMPTS.format(n=per_model))
    result = run_bounded(
        pytester,
        240,
        "--llm-models=llama-server:a.gguf,llama-server:b.gguf",
        f"--llm-llama-server-bin={fake_bin}",
        "-n",
        "3",
        "--dist",
        dist,
        "-v",
    )
    result.assert_outcomes(passed=2 * per_model)
    workers = workers_per_model(result)
    assert set(workers) == {"llama-server:a", "llama-server:b"}, result.outlines
    assert len(set.union(*workers.values())) == 2, workers  # the third worker ran nothing
    if dist == "loadgroup":
        assert all(len(w) == 1 for w in workers.values()), workers  # a model on one worker
    assert sorted(s[1] for s in spawns(pytester)) == ["a.gguf", "b.gguf"]
    assert fake_servers(pytester.path) == []
    assert not any((pytester.path / "cache" / "runs").iterdir())


def test_workers_share_a_server_with_n_slots_and_mark_the_overlap(
    pytester: pytest.Pytester, fake_bin: Path
) -> None:
    result = run_on_a(pytester, fake_bin, 8, 0.25, "--llm-ctx=2048", "--llm-concurrency=4", "-n4")
    result.assert_outcomes(passed=8)
    ((_alias, _gguf, _port, slots, ctx),) = spawns(pytester)
    assert (slots, ctx) == ("np=4", "c=8192")  # 4 slots of 2048 tokens each
    gens = generations(pytester.path / "r.json")
    assert {g["server"]["n_ctx"] for g in gens} == {2048}
    shared = [g for g in gens if "concurrent" in kinds(g)]
    assert len(shared) >= 6, [g.get("caveats") for g in gens]
    for g in shared:
        (caveat,) = [c for c in g["caveats"] if c["kind"] == "concurrent"]
        assert "in flight at once" in caveat["detail"] and "decode_tps" in caveat["excludes"]
        peak = int(caveat["detail"].split("up to ")[1].split()[0])
        assert 2 <= peak <= 4  # never more than the slots in flight
    assert "taken under concurrency" in result.stdout.str()
    assert fake_servers(pytester.path) == []


def test_default_concurrency_serializes_the_workers(
    pytester: pytest.Pytester, fake_bin: Path
) -> None:
    """-n 4 without --llm-concurrency: one generation of the server at a time, none marked."""
    result = run_on_a(pytester, fake_bin, 8, 0.1, "-n4")
    result.assert_outcomes(passed=8)
    assert len(spawns(pytester)) == 1
    assert not any(kinds(g) for g in generations(pytester.path / "r.json"))


ALONE = """
import pytest

@pytest.mark.parametrize("i", range(6))
def test_p(llm, i):
    assert llm.generate(f"prompt {i}").metrics.output_tokens

@pytest.mark.llm(alone=True)
def test_speed(llm):
    assert llm.generate("speed").metrics.output_tokens
"""


def test_a_test_marked_alone_runs_alone(
    pytester: pytest.Pytester, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMBENCH_FAKE_TOKEN_DELAY", "0.2")
    pytester.makepyfile(test_p=ALONE)
    result = pytester.runpytest(
        "--llm-models=llama-server:a.gguf",
        f"--llm-llama-server-bin={fake_bin}",
        "--llm-concurrency=3",
        "-n",
        "3",
        "-p",
        "no:randomly",
        "--llm-json=r.json",
    )
    result.assert_outcomes(passed=7)
    doc = json.loads((pytester.path / "r.json").read_text())
    records = [i["record"] for i in doc["items"]]
    (speed,) = [r for r in records if r["test"] == "test_speed"]
    assert not kinds(speed["generations"][0])
    others = [g for r in records if r["test"] != "test_speed" for g in r["generations"]]
    assert any("concurrent" in kinds(g) for g in others)  # the rest did overlap


def test_an_attached_server_with_one_slot_names_the_queueing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_llama_server: StartLlamaServer
) -> None:
    """Two workers, one attached server with one slot: with --llm-concurrency=2 a request
    waits in the server's queue (named, left out of TTFT); by default it waits its turn
    before it is sent, so TTFT holds no waiting and nothing is marked."""
    monkeypatch.setenv("PYTEST_LLMBENCH_CACHE", str(pytester.path / "cache"))
    pytester.makepyfile(test_p=PROMPTS.format(n=6))
    script = ModelScript(["a", "b", "c", "d"], token_delay_s=0.2)
    fake = fake_llama_server(script, total_slots=1)
    spec = f"--llm-models=llama-server@{fake.url}"
    queued = pytester.runpytest(spec, "-n", "2", "--llm-concurrency=2", "--llm-json=q.json")
    serial = pytester.runpytest(spec, "-n", "2", "--llm-json=s.json")
    queued.assert_outcomes(passed=6)
    serial.assert_outcomes(passed=6)
    waited = [g for g in generations(pytester.path / "q.json") if "queued" in kinds(g)]
    assert waited, queued.stdout.str()
    for g in waited:
        (caveat,) = [c for c in g["caveats"] if c["kind"] == "queued"]
        assert caveat["detail"].startswith("waited behind 1 other request")
        assert "ttft_s" in caveat["excludes"]
        assert g["metrics"]["ttft_s"] > 0.4  # it did wait for a whole generation
    clean = generations(pytester.path / "s.json")
    assert not any(kinds(g) for g in clean)
    assert max(g["metrics"]["ttft_s"] for g in clean) < 0.4
    assert "waited in the server's queue" in queued.stdout.str()
    hint = "the server has 1 slot(s), so with --llm-concurrency=2 the other requests wait"
    assert hint in queued.stdout.str() and "slot(s)" not in serial.stdout.str()


def test_an_interrupted_run_leaves_no_server(pytester: pytest.Pytester, fake_bin: Path) -> None:
    pytester.makepyfile(test_p=PROMPTS.format(n=40))
    env = {
        **os.environ,
        "LLMBENCH_FAKE_TOKEN_DELAY": "0.2",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--llm-models=llama-server:a.gguf,llama-server:b.gguf",
            f"--llm-llama-server-bin={fake_bin}",
            "--llm-concurrency=2",
            "-n",
            "2",
        ],
        cwd=pytester.path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not fake_servers(pytester.path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fake_servers(pytester.path), "no server started"
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's process group
    proc.wait(60)
    deadline = time.monotonic() + 15
    while fake_servers(pytester.path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fake_servers(pytester.path) == []


@pytest.mark.parametrize(
    ("args", "marker", "message"),
    [
        (["--llm-concurrency=0"], "", "--llm-concurrency='0' must be at least 1"),
        ([], "@pytest.mark.llm(alone='yes')", "alone='yes' must be True or False"),
    ],
)
def test_usage_errors(
    pytester: pytest.Pytester, fake_bin: Path, args: list[str], marker: str, message: str
) -> None:
    pytester.makepyfile(test_p=f"import pytest\n{marker}\ndef test_p(llm):\n    pass\n")
    result = pytester.runpytest(
        "--llm-models=llama-server:a.gguf", f"--llm-llama-server-bin={fake_bin}", *args
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert spawns(pytester) == []
