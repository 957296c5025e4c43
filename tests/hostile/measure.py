"""Measure issues 14 and 19's tables: each hostile program against whichever
``pytest_llmbench`` is importable, printed as one Markdown row each. Uses only ``run_program`` and ``Step`` (the
same before and after the change), so an older checkout can be measured too::

    PYTHONPATH=/path/to/checkout python -m tests.hostile.measure       # as root
    su someone -c 'PYTHONPATH=... python3 -m tests.hostile.measure'     # as an ordinary user

Not a test: it reports what happens instead of asserting it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pytest_llmbench.sandbox import Step, run_program
from tests.hostile import attacks

GOOD = "import sys\nprint('ok', *sys.argv[1:])\n"


def _marked(mark: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                base = Path(f"/proc/{entry}")
                raw = (base / "cmdline").read_bytes()
                if mark.encode() not in raw:
                    raw = (base / "environ").read_bytes()
                if mark.encode() in raw and "State:\tZ" not in (base / "status").read_text():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _run(code: str, steps: list[Step] | None = None, **kwargs: object) -> str:
    result = run_program(code, steps or [Step([], name="run")], **kwargs)  # type: ignore[arg-type]
    return result.details


def daemon() -> str:
    mark = f"m-{uuid.uuid4().hex}"
    body = (
        "import glob, time\nend = time.time() + 30\nwhile time.time() < end:\n"
        "    for p in glob.glob('/tmp/**/program.py', recursive=True):\n"
        "        try:\n            open(p, 'w').write('print(1)')\n"
        "        except OSError:\n            pass\n    time.sleep(0.01)\n"
    )
    code = (
        "import os, sys, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        os.execve(sys.executable, [sys.executable, '-c', {body!r}, {mark!r}], {{}})\n"
        "    os._exit(0)\nos.wait()\ntime.sleep(0.5)\n"
    )
    _run(code)
    time.sleep(0.5)
    alive = _marked(mark)
    later = _run(GOOD, [Step([str(i)], stdout=f"ok {i}") for i in range(3)])
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
    rewritten = not later.startswith("3/3")
    if alive or rewritten:
        return "escaped: " + ", ".join(
            (["alive after its step"] if alive else [])
            + (["rewrote the next run's program.py"] if rewritten else [])
        )
    return "contained (killed with its step; next run passes)"


def environ_reader() -> str:
    """Reads the environment of its parent, of this process and of a victim started with a
    secret in its environment (``/proc/PID/environ`` shows what a process was started with)."""
    secret = f"sk-{uuid.uuid4().hex}"
    victim = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, "LLMBENCH_API_KEY": secret},
    )
    code = (
        "import os\n"
        f"for pid in ({victim.pid}, {os.getpid()}, os.getppid()):\n"
        "    try:\n        print(open(f'/proc/{pid}/environ', 'rb').read())\n"
        "    except OSError as e:\n        print(type(e).__name__)\n"
    )
    seen: list[str] = []
    try:
        _run(code, [Step([], stdout=lambda out: bool(seen.append(out)) or True)])
    finally:
        victim.kill()
        victim.wait()
    return "escaped: read LLMBENCH_API_KEY" if secret in "".join(seen) else "contained"


def killer() -> str:
    """The runner is a child process whose command line says pytest; the program kills its
    parent and every process whose command line holds 'pytest'."""
    code = (
        "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError:\n"
        "    pass\nfor p in os.listdir('/proc'):\n    try:\n"
        "        if p.isdigit() and b'pytest-victim' in open(f'/proc/{p}/cmdline','rb').read():\n"
        "            os.kill(int(p), signal.SIGKILL)\n    except OSError:\n        pass\n"
    )
    runner = (
        "import sys\nfrom pytest_llmbench.sandbox import Step, run_program\n"
        "run_program(sys.stdin.read(), [Step([])])\nprint('runner survived')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", runner, "pytest-victim"],
        input=code.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    if b"runner survived" in proc.stdout:
        return "contained"
    return f"escaped: killed the pytest-like runner (exit {proc.returncode})"


def loopback() -> str:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        details = _run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 2)\n")
    return "contained (refused)" if details.startswith("0/1") else "escaped: connected"


def tmp_write() -> str:
    marker = Path("/tmp") / f"llmbench-measure-{uuid.uuid4().hex}"
    _run(f"open({str(marker)!r}, 'w').write('x')\n")
    leaked = marker.exists()
    marker.unlink(missing_ok=True)
    return "escaped: wrote the shared /tmp" if leaked else "contained (private /tmp)"


def _while_sampling(sample: Callable[[], None], during: Callable[[], str]) -> str:
    """Run ``during`` while another thread calls ``sample`` every 10 ms."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(0.01):
            sample()

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        return during()
    finally:
        done.set()
        thread.join()


def _peak_rss(mark: str, during: Callable[[], str]) -> tuple[int, str]:
    peak = [0]

    def sample() -> None:
        total = 0
        for pid in _marked(mark):
            try:
                f = Path(f"/proc/{pid}/statm").read_text().split()
                total += (int(f[1]) - int(f[2])) * 4096
            except (OSError, IndexError, ValueError):
                continue
        peak[0] = max(peak[0], total)

    out = _while_sampling(sample, during)
    return peak[0], out


def memory_swarm() -> str:
    mark = f"m-{uuid.uuid4().hex}"
    code = (
        "import os, time\nfor _ in range(5):\n    if os.fork() == 0:\n"
        "        b = b'x' * (700 * 2**20)\n        time.sleep(8)\n        os._exit(0)\n"
        "for _ in range(5):\n    os.wait()\n"
    )
    peak, details = _peak_rss(
        mark, lambda: _run(code, env={"MEASURE_MARK": mark}, memory_mb=1024, timeout_s=15)
    )
    verdict = "contained" if peak < 2 * 2**30 else "escaped"
    reason = details.splitlines()[-1].split(")", 1)[-1].strip()
    return f"{verdict}: peak {peak / 2**30:.1f} GB of resident memory, limit 1 GB ({reason})"


def disk_filler() -> str:
    """Files of 1 MB each, far under the per-file size limit, as many as it can."""
    code = (
        "import os\nos.makedirs('fill', exist_ok=True)\nfor i in range(10**7):\n"
        "    with open(f'fill/{i}', 'wb') as f:\n        f.write(b'x' * 2**20)\n"
    )
    peak, done = [0], threading.Event()
    before = set(glob.glob("/tmp/llmbench-sandbox-*"))

    def sample() -> None:
        while not done.wait(0.2):
            for d in set(glob.glob("/tmp/llmbench-sandbox-*")) - before:
                try:
                    peak[0] = max(peak[0], len(os.listdir(f"{d}/work/fill")))
                except OSError:
                    continue

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        details = _run(code, timeout_s=30)
    finally:
        done.set()
        thread.join()
    reason = details.splitlines()[-1].split(")", 1)[-1].strip()
    if "its files went over" in reason:
        return f"contained: stopped at the disk limit (256 MB; {peak[0]:,} MB seen)"
    return f"unbounded: {peak[0]:,} MB written in 30 s, stopped only by the timeout"


def starver() -> str:
    hog = (
        "import os, time\nend = time.time() + 8\nwhile time.time() < end:\n    try:\n"
        "        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n"
        "    except OSError:\n        time.sleep(0.01)\n"
    )
    spawner = (
        "import subprocess, sys, time\nfor _ in range(5):\n"
        "    subprocess.run([sys.executable, '-c', 'pass'], check=True)\n    time.sleep(0.2)\n"
    )
    with ThreadPoolExecutor(1) as pool:
        hogging = pool.submit(_run, hog, timeout_s=6)
        time.sleep(1.5)
        beside = _run(spawner, [Step([])] * 3, timeout_s=20)
        hogging.result()
    if beside.startswith("3/3"):
        return "contained (the step beside it passes)"
    return "escaped: the step beside it failed (" + beside.splitlines()[1].strip()[:80] + ")"


# --- issue 19: memory and disk that a sampler does not see ---------------------------------

LIMIT_MB = 256  # the step's memory limit for the memory rows (3x it is tried)


def _host_cost(during: Callable[[], str]) -> tuple[tuple[int, int, int], str]:
    """Run ``during``; the largest fall of the host's available memory, rise of its shared
    memory (System V, ``MAP_SHARED``, every tmpfs: the least noisy figure on a shared
    machine) and fall of the free space where the runs' directories live, in MB, sampled
    every 10 ms."""
    import tempfile

    def now() -> list[int]:
        with open("/proc/meminfo") as meminfo:
            info = {ln.split(":")[0]: int(ln.split()[1]) * 1024 for ln in meminfo}
        st = os.statvfs(tempfile.gettempdir())
        return [-info["MemAvailable"], info["Shmem"], -st.f_bavail * st.f_frsize]

    start, peak = now(), now()

    def sample() -> None:
        peak[:] = [max(a, b) for a, b in zip(peak, now(), strict=True)]

    out = _while_sampling(sample, during)
    mem, shm, disk = ((p - s0) // 2**20 for p, s0 in zip(peak, start, strict=True))
    return (mem, shm, disk), out


def _attack(code: str, **kwargs: object) -> str:
    """The step's verdict (its diagnosis, or that it passed) and what the host paid."""
    results: list[object] = []

    def attack() -> str:
        result = run_program(code, [Step([], name="run")], timeout_s=20, **kwargs)  # type: ignore[arg-type]
        results.append(result)
        return result.diagnosis or ("step passed" if result.passed else "step failed")

    (mem, shm, disk), verdict = _host_cost(attack)
    return f"{verdict}; host: memory -{mem:,} MB, shared memory +{shm:,} MB, disk -{disk:,} MB"


def sysv_shm() -> str:
    """6 segments of 128 MB (each fits the address-space limit), one at a time."""
    return _attack(attacks.sysv_shm(6, 128), memory_mb=LIMIT_MB)


def map_shared() -> str:
    return _attack(attacks.map_shared(4, 190, 3), memory_mb=LIMIT_MB)


def nested_userns_tmpfs() -> str:
    return _attack(attacks.nested_userns_tmpfs(3 * LIMIT_MB // 32, 32), memory_mb=LIMIT_MB)


def deep_path_fallocate() -> str:
    """1 GB (4x the 256 MB disk limit) in 60 MB files under a path longer than PATH_MAX."""
    return _attack(attacks.fallocate(attacks.deeper_than(4096), 17))


def mode_0300_fallocate() -> str:
    """1 GB in 60 MB files under a directory its owner can write but not list."""
    return _attack(attacks.fallocate(attacks.MODE_0300, 17))


def fallocate_bursts() -> str:
    """40 files of 60 MB (2.4 GB), as fast as it can, going on past every refusal."""
    return _attack(attacks.fallocate(attacks.HERE, 40, keep_going=True))


def socket_buffers() -> str:
    """Unix socket pairs filled and never read, up to 768 MB (3x the limit): kernel memory
    that no process shows (not bounded yet)."""
    return _attack(attacks.socket_buffers(3 * LIMIT_MB), memory_mb=LIMIT_MB)


def without_bubblewrap() -> str:
    """bwrap hidden from this process (what ``pip install`` alone gives): a program that
    writes into the user's real home."""
    marker = Path.home() / f".llmbench-measure-{uuid.uuid4().hex}"
    runner = (
        "import sys\nfrom pytest_llmbench.sandbox import bwrap, containment as c, Step, "
        "run_program\nbwrap.bwrap_path = c.bwrap_path = lambda: None\n"
        "try:\n    print(run_program(sys.stdin.read(), [Step([])]).details.splitlines()[0])\n"
        "except Exception as exc:\n    print(type(exc).__name__, str(exc)[:60])\n"
    )
    code = f"open({str(marker)!r}, 'w').write('x')\n"
    proc = subprocess.run(
        [sys.executable, "-c", runner], input=code.encode(), capture_output=True, timeout=60
    )
    wrote = marker.exists()
    marker.unlink(missing_ok=True)
    said = proc.stdout.decode().strip() or proc.stderr.decode().strip()[-80:]
    return ("escaped: wrote the real home" if wrote else "contained") + f" ({said[:90]})"


ROWS: list[tuple[str, Callable[[], str]]] = [
    ("double fork + setsid + clean-env execve daemon", daemon),
    ("reads /proc/<parent>/environ", environ_reader),
    ("kills its parent and every pytest process", killer),
    ("connects to a loopback port", loopback),
    ("writes to /tmp by absolute path", tmp_write),
    ("5 children x 700 MB", memory_swarm),
    ("many-files disk filler (1 MB files, 30 s)", disk_filler),
    ("fork swarm beside another run's step", starver),
    ("6 x 128 MB System V segments, attached, filled, detached (limit 256 MB)", sysv_shm),
    ("4 processes x 190 MB MAP_SHARED (limit 256 MB)", map_shared),
    (
        "768 MB (32 MB files) into a tmpfs in a nested user namespace (limit 256 MB)",
        nested_userns_tmpfs,
    ),
    (
        "1 GB of fallocate (60 MB files) under a path longer than PATH_MAX (disk 256 MB)",
        deep_path_fallocate,
    ),
    (
        "1 GB of fallocate (60 MB files) under a mode-0300 directory (disk 256 MB)",
        mode_0300_fallocate,
    ),
    ("fallocate bursts: 40 x 60 MB, past every refusal (disk 256 MB)", fallocate_bursts),
    ("Unix socket buffers filled, never read, up to 768 MB (limit 256 MB)", socket_buffers),
    ("no bubblewrap: writes into the user's home", without_bubblewrap),
]


def main() -> None:
    who = "root" if os.geteuid() == 0 else "ordinary user"
    only = sys.argv[1:]  # function names, e.g. disk_filler; all rows by default
    for name, measure in ROWS:
        if only and measure.__name__ not in only:
            continue
        try:
            outcome = measure()
        except Exception as exc:  # a measurement that breaks is itself an outcome
            outcome = f"error: {type(exc).__name__}: {exc}"
        print(f"| {name} | {who} | {outcome} |", flush=True)


if __name__ == "__main__":
    main()
