"""Issue 19's kept-back attacks, each as a hostile program: memory the processes do not show
(System V segments, ``MAP_SHARED`` pages, memfds, a tmpfs mounted in a nested user
namespace) and disk a walk does not see (``fallocate`` under a path longer than
``PATH_MAX``, under a mode-0300 directory, in bursts). Each is stopped and named, and the
host's available memory never falls by much more than the step's limit.

Sizes are 2-3x a small step limit, never gigabytes: the machine is shared. CI runs this
directory as root and as an ordinary user (``.ci/hostile-as-user``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pytest_llmbench import checks
from pytest_llmbench.sandbox import Step, isolation_report
from tests.hostile._sandbox import run

LIMIT_MB = 256
MB = 2**20


def available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no MemAvailable in /proc/meminfo")


@contextmanager
def host_memory_drop() -> Iterator[list[int]]:
    """Yields a one-element list that holds, afterwards, the largest fall of the host's
    available memory seen while the body ran (sampled every 10 ms)."""
    before, lowest, done = available_bytes(), [available_bytes()], threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            lowest[0] = min(lowest[0], available_bytes())

    drop = [0]
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield drop
    finally:
        done.set()
        sampler.join()
        drop[0] = before - lowest[0]


def bounded(drop: list[int]) -> None:
    """Other work on the machine moves MemAvailable too: allow the limit, the tmpfs caps and
    as much again, far below the 2-3x the attacks try."""
    assert drop[0] < 2 * LIMIT_MB * MB + 256 * MB, f"host fell by {drop[0] / MB:.0f} MB"


@pytest.fixture(autouse=True)
def _full_containment() -> None:
    if isolation_report()["missing"]:
        pytest.skip("these bounds need full containment (bubblewrap): README Safety")


def test_system_v_segments_are_refused() -> None:
    """Attach, fill, detach, 6 x 128 MB: each fits the address-space limit, and once
    detached the segments belong to no process."""
    code = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.shmat.restype = ctypes.c_void_p\n"
        "for _ in range(6):\n"
        "    seg = libc.shmget(0, 128 * 2**20, 0o1600)\n"
        "    if seg == -1:\n"
        "        raise PermissionError(ctypes.get_errno(), 'shmget refused')\n"
        "    at = libc.shmat(seg, None, 0)\n"
        "    ctypes.memset(at, 1, 128 * 2**20)\n"
        "    libc.shmdt(ctypes.c_void_p(at))\n"
        "print('held')\n"
    )
    with host_memory_drop() as drop:
        result = run(code, memory_mb=LIMIT_MB, steps=[Step([], stdout="held")])
    bounded(drop)
    assert result.diagnosis is not None and "PermissionError" in result.diagnosis, result.details
    assert "shmget refused" in result.diagnosis


def test_message_queues_and_memfds_are_refused() -> None:
    code = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('msgget', libc.msgget(0, 0o1600), ctypes.get_errno())\n"
        "try:\n"
        "    os.memfd_create('x')\n"
        "    print('memfd made')\n"
        "except OSError as exc:\n"
        "    print('memfd', type(exc).__name__)\n"
    )
    result = run(code, steps=[Step([], stdout=r"msgget -1 1\nmemfd PermissionError")])
    assert result.passed, result.details


def test_map_shared_pages_count_toward_the_step() -> None:
    """``mmap.mmap(-1, n)`` is MAP_SHARED: 3 processes x 170 MB of shared pages under a
    256 MB step limit (each under its own address-space limit)."""
    code = (
        "import mmap, os, time\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        m = mmap.mmap(-1, 170 * 2**20)\n"
        "        for i in range(0, len(m), 4096):\n"
        "            m[i] = 1\n"
        "        time.sleep(10)\n"
        "        os._exit(0)\n"
        "for _ in range(3):\n"
        "    os.wait()\n"
    )
    with host_memory_drop() as drop:
        result = run(code, memory_mb=LIMIT_MB, timeout_s=20)
    bounded(drop)
    assert result.diagnosis == checks.diagnoses.MEMORY_LIMIT, result.details


def test_files_in_the_steps_tmpfs_count_as_memory() -> None:
    """/dev/shm and /tmp are tmpfs: their pages are memory. 60 MB in /dev/shm beside a
    process holding 220 MB goes over a 256 MB limit."""
    code = (
        "import time\n"
        "open('/dev/shm/x', 'wb').write(b'x' * 60 * 2**20)\n"
        "block = b'y' * (220 * 2**20)\n"
        "time.sleep(10)\n"
    )
    result = run(code, memory_mb=LIMIT_MB, timeout_s=20)
    assert result.diagnosis == checks.diagnoses.MEMORY_LIMIT, result.details


def test_no_nested_user_namespace_and_so_no_tmpfs_of_its_own() -> None:
    """A nested user namespace would make the program root of a mount namespace of its own,
    where it could mount an uncapped tmpfs and fill it."""
    code = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "uid, gid = os.getuid(), os.getgid()\n"
        "if libc.unshare(0x10000000 | 0x00020000) != 0:\n"
        "    raise PermissionError(ctypes.get_errno(), 'unshare(CLONE_NEWUSER) refused')\n"
        "open('/proc/self/setgroups', 'w').write('deny')\n"
        "open('/proc/self/uid_map', 'w').write(f'0 {uid} 1')\n"
        "open('/proc/self/gid_map', 'w').write(f'0 {gid} 1')\n"
        "os.makedirs('/tmp/mine', exist_ok=True)\n"
        "if libc.mount(b'tmpfs', b'/tmp/mine', b'tmpfs', 0, b'size=1g') != 0:\n"
        "    raise OSError(ctypes.get_errno(), 'mount refused')\n"
        "for i in range(24):\n"
        "    open(f'/tmp/mine/{i}', 'wb').write(b'x' * 32 * 2**20)\n"
        "print('filled')\n"
    )
    with host_memory_drop() as drop:
        result = run(code, memory_mb=LIMIT_MB, steps=[Step([], stdout="filled")])
    bounded(drop)
    assert result.diagnosis is not None, result.details
    assert "unshare(CLONE_NEWUSER) refused" in result.diagnosis, result.diagnosis


FILL = (
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]\n"
    "def fill(dir_fd, files=40, each=60 * 2**20):\n"
    "    # Files under the per-file size limit, every other one with KEEP_SIZE (which no\n"
    "    # file-size limit sees), as fast as it can: 2.4 GB in all.\n"
    "    for i in range(files):\n"
    "        fd = os.open(f'f{i}', os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=dir_fd)\n"
    "        if libc.fallocate(fd, i % 2, 0, each) != 0:\n"
    "            errno = ctypes.get_errno()\n"
    "            raise OSError(errno, os.strerror(errno))\n"
    "    print('reserved')\n"
)


def deep_dir_fd(depth_chars: int) -> str:
    """Code that leaves ``fd`` open on a directory whose path is over ``depth_chars`` long
    (made one level at a time through descriptors, as no path that long can be opened)."""
    return (
        "fd = os.open('.', os.O_RDONLY)\n"
        f"for _ in range({depth_chars} // 200 + 1):\n"
        "    os.mkdir('d' * 199, dir_fd=fd)\n"
        "    fd = os.open('d' * 199, os.O_RDONLY, dir_fd=fd)\n"
    )


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("fd = os.open('.', os.O_RDONLY)\n", id="bursts"),
        pytest.param(deep_dir_fd(4096), id="path-longer-than-PATH_MAX"),
        pytest.param(
            "os.mkdir('hidden', 0o300)\nfd = os.open('hidden', os.O_PATH)\n", id="mode-0300-dir"
        ),
        pytest.param("fd = os.open('/dev/shm', os.O_RDONLY)\n", id="dev-shm"),
    ],
)
def test_fallocate_is_refused_at_the_cap(where: str) -> None:
    """2.4 GB of ``fallocate`` against a 256 MB cap: refused by the kernel (ENOSPC) wherever
    it lands, named as the disk limit; the host never pays for more than the cap."""
    code = FILL + where + "fill(fd)\n"
    with host_memory_drop() as drop:
        result = run(code, steps=[Step([], stdout="reserved")])
    bounded(drop)
    assert result.diagnosis == checks.diagnoses.DISK_LIMIT, result.details


def test_the_runs_files_survive_between_steps_modes_and_links_included() -> None:
    code = (
        "import os, sys\n"
        "if sys.argv[1] == 'write':\n"
        "    os.makedirs('a/b')\n"
        "    open('a/b/f', 'w').write('kept')\n"
        "    os.symlink('/etc', 'a/etc')\n"
        "    os.chmod('a/b', 0o300)\n"
        "    open(os.path.expanduser('~/.db'), 'w').write('home')\n"
        "else:\n"
        "    print(open('a/b/f').read(), open(os.path.expanduser('~/.db')).read(),\n"
        "          os.readlink('a/etc'), oct(os.stat('a/b').st_mode & 0o777))\n"
    )
    steps = [Step(["write"]), Step(["read"], stdout=r"^kept home /etc 0o7\d\d$")]
    result = run(code, steps=steps)
    assert result.passed, result.details


def test_files_that_cannot_be_archived_fail_the_step_by_name() -> None:
    code = "import os\n" + deep_dir_fd(4096)
    code += "os.close(os.open('f', os.O_CREAT | os.O_WRONLY, dir_fd=fd))\n"
    result = run(code, steps=[Step([]), Step([])])
    assert not result.passed
    assert "could not be kept for the next step" in result.details, result.details


def test_scratch_places_are_emptied_after_every_step() -> None:
    code = (
        "import os, sys\n"
        "if sys.argv[1] == 'write':\n"
        "    open('/dev/shm/seg', 'w').write('x')\n"
        "    open('/var/tmp/v', 'w').write('x')\n"
        "else:\n"
        "    print(os.listdir('/dev/shm'), os.listdir('/var/tmp'))\n"
    )
    result = run(code, steps=[Step(["write"]), Step(["read"], stdout=r"^\[\] \[\]$")])
    assert result.passed, result.details


def test_the_launcher_is_out_of_the_programs_reach() -> None:
    """PID 1 of the step ignores the program's signals; its descriptors (the run's files,
    the pipes back) cannot be opened through /proc."""
    code = (
        "import os, signal\n"
        "for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):\n"
        "    os.kill(1, sig)\n"
        "for fd in range(3, 8):\n"
        "    try:\n"
        "        os.open(f'/proc/1/fd/{fd}', os.O_WRONLY)\n"
        "        print('opened', fd)\n"
        "    except OSError:\n"
        "        pass\n"
        "print('still here', os.getppid())\n"
    )
    result = run(code, steps=[Step([], stdout=r"^still here 1$"), Step([])])
    assert result.passed, result.details
