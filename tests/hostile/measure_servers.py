"""Measure issue 19's server attacks: pytest's peak RSS, wall time and outcome for each, as
Markdown rows. The hostile server is this checkout's fake (``fakes/``, its ``Attack``);
the pytest run that meets it imports whichever ``pytest_llmbench`` is first on
``PYTHONPATH``, so an older checkout can be measured with the same script::

    python -m tests.hostile.measure_servers                       # this checkout
    python -m tests.hostile.measure_servers /path/to/old/checkout # another one

A run is stopped at :data:`STOP_RSS_MB` of resident memory or :data:`STOP_S` seconds (then
reported as "stopped"), so that a run that would take the machine's memory or hang forever
cannot. Not a test: it reports what happens instead of asserting it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fakes import FakeLlamaServer, ModelScript
from fakes._common import Attack

STOP_RSS_MB = 3000
STOP_S = 150.0
MB = 2**20
TEST = "def test_answer(llm):\n    assert llm.generate('Say hi').answer\n"
CHAT = frozenset({"/v1/chat/completions"})
MODELS = frozenset({"/v1/models"})
ATTACKS = [
    ("`/v1/models` dripping one byte every 5 s", Attack("drip", MODELS, drip_s=5.0, size=10**6)),
    ("`/v1/models` gzip, 10 MB inflating to 10 GB", Attack("gzip_bomb", MODELS, size=10 * MB)),
    ("`/v1/models` of 2 GB", Attack("huge_body", MODELS, size=2 * 2**30)),
    ("gzip stream, 10 MB inflating to 10 GB", Attack("gzip_bomb", CHAT, size=10 * MB)),
    ("stream line of JSON nested 100,000 deep", Attack("deep_json", CHAT, depth=100_000)),
]


def _rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else 0.0


def measure(attack: Attack, checkout: Path | None) -> tuple[str, float, float]:
    """(outcome, peak RSS in MB, seconds) of one pytest run against the attack."""
    env = dict(os.environ)
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    with FakeLlamaServer(ModelScript(["Hi", "!"])) as fake, tempfile.TemporaryDirectory() as d:
        fake.attack = attack
        Path(d, "test_attack.py").write_text(TEST)
        argv = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            f"--llm-models=openai:/models/m.gguf@{fake.url}/v1",
            "--llm-timeout=10",
            "--llm-read-timeout=5",
            "test_attack.py",
        ]
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        peak, stopped = 0.0, ""
        while proc.poll() is None:
            peak = max(peak, _rss_mb(proc.pid))
            if peak > STOP_RSS_MB:
                stopped = f"stopped at {STOP_RSS_MB / 1000:g} GB"
            elif time.monotonic() - started > STOP_S:
                stopped = f"stopped after {STOP_S:g} s"
            if stopped:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        out, _ = proc.communicate()
        seconds = time.monotonic() - started
    return (stopped or _outcome(out)), peak, seconds


def _outcome(out: str) -> str:
    summary = re.findall(r"=+ (.*(?:passed|failed|error).*) in [\d.]+s", out)
    errors = re.findall(r"^E?\s*(\w+(?:Error|Exception|Limit\w*)): (.{0,110})", out, re.M)
    what = f"{errors[0][0]}: {errors[0][1]}" if errors else ""
    return f"{summary[-1] if summary else 'no summary'}; {what}".strip("; ")


def main() -> None:
    checkout = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else None
    print("| attack | outcome | pytest peak RSS | time |")
    print("|---|---|---|---|")
    for name, attack in ATTACKS:
        outcome, peak, seconds = measure(attack, checkout)
        print(f"| {name} | {outcome} | {peak:,.0f} MB | {seconds:.1f} s |", flush=True)


if __name__ == "__main__":
    main()
