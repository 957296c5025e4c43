"""Issue 19's hostile programs, written once: the tests (``test_kernel_bounds.py``) assert
what happens to them and ``measure.py`` prints what the host paid. Each is Python source
for ``run_program``; sizes are parameters so both can stay at 2-3x a small limit."""

from __future__ import annotations

_LIBC = "import ctypes, os, time\nlibc = ctypes.CDLL(None, use_errno=True)\n"


def sysv_shm(segments: int, each_mb: int) -> str:
    """Attach, fill, detach, one segment at a time: once detached a segment belongs to no
    process. Prints ``held`` when all were made."""
    return _LIBC + (
        "libc.shmat.restype = ctypes.c_void_p\n"
        f"for _ in range({segments}):\n"
        f"    seg = libc.shmget(0, {each_mb} * 2**20, 0o1600)\n"
        "    if seg == -1:\n"
        "        raise PermissionError(ctypes.get_errno(), 'shmget refused')\n"
        "    at = libc.shmat(seg, None, 0)\n"
        "    if at in (None, 2**64 - 1):\n"
        "        raise OSError(ctypes.get_errno(), 'shmat refused')\n"
        f"    ctypes.memset(at, 1, {each_mb} * 2**20)\n"
        "    libc.shmdt(ctypes.c_void_p(at))\n"
        "print('held')\n"
        "time.sleep(1)\n"
    )


def map_shared(processes: int, each_mb: int, hold_s: float) -> str:
    """``mmap.mmap(-1, n)`` is MAP_SHARED: each child touches every page and holds it."""
    return (
        "import mmap, os, time\n"
        f"for _ in range({processes}):\n"
        "    if os.fork() == 0:\n"
        f"        m = mmap.mmap(-1, {each_mb} * 2**20)\n"
        "        for i in range(0, len(m), 4096):\n"
        "            m[i] = 1\n"
        f"        time.sleep({hold_s})\n"
        "        os._exit(0)\n"
        f"for _ in range({processes}):\n"
        "    os.wait()\n"
    )


def nested_userns_tmpfs(files: int, each_mb: int) -> str:
    """Becomes root of a user namespace of its own, mounts a tmpfs of 2 GB there and fills
    it with files under the per-file limit. Prints ``filled``."""
    return _LIBC + (
        "uid, gid = os.getuid(), os.getgid()\n"
        "if libc.unshare(0x10000000 | 0x00020000) != 0:\n"
        "    raise PermissionError(ctypes.get_errno(), 'unshare(CLONE_NEWUSER) refused')\n"
        "open('/proc/self/setgroups', 'w').write('deny')\n"
        "open('/proc/self/uid_map', 'w').write(f'0 {uid} 1')\n"
        "open('/proc/self/gid_map', 'w').write(f'0 {gid} 1')\n"
        "os.makedirs('/tmp/mine', exist_ok=True)\n"
        "if libc.mount(b'tmpfs', b'/tmp/mine', b'tmpfs', 0, b'size=2g') != 0:\n"
        "    raise OSError(ctypes.get_errno(), 'mount refused')\n"
        f"for i in range({files}):\n"
        f"    open(f'/tmp/mine/{{i}}', 'wb').write(b'x' * {each_mb} * 2**20)\n"
        "print('filled')\n"
        "time.sleep(1)\n"
    )


#: Where :func:`fallocate` reserves: code that leaves ``fd`` open on the directory.
HERE = "fd = os.open('.', os.O_RDONLY)\n"
MODE_0300 = "os.mkdir('hidden', 0o300)\nfd = os.open('hidden', os.O_PATH)\n"
DEV_SHM = "fd = os.open('/dev/shm', os.O_RDONLY)\n"


def deeper_than(chars: int) -> str:
    """A directory whose path is over ``chars`` long (made one level at a time through
    descriptors, as no path that long can be opened)."""
    return (
        "fd = os.open('.', os.O_RDONLY)\n"
        f"for _ in range({chars} // 200 + 1):\n"
        "    os.mkdir('d' * 199, dir_fd=fd)\n"
        "    fd = os.open('d' * 199, os.O_RDONLY, dir_fd=fd)\n"
    )


def fallocate(where: str, files: int, keep_going: bool = False) -> str:
    """60 MB files (under the 64 MB per-file limit) reserved as fast as it can in ``where``,
    every other one with KEEP_SIZE (which no file-size limit sees); stops at the first
    refusal unless ``keep_going``. Prints ``reserved`` at the end."""
    return (
        _LIBC
        + "libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]\n"
        + where
        + f"for i in range({files}):\n"
        + "    f = os.open(f'f{i}', os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)\n"
        + "    if libc.fallocate(f, i % 2, 0, 60 * 2**20) != 0:\n"
        + "        e = ctypes.get_errno()\n"
        + ("        continue\n" if keep_going else "        raise OSError(e, os.strerror(e))\n")
        + "print('reserved')\n"
        + "time.sleep(1)\n"
    )


def shared_filled_by_children(holders: int, each_mb: int) -> str:
    """Each holder maps ``each_mb`` of ``MAP_SHARED`` memory and never touches it; children
    that live for a moment fill it 16 MB at a time and exit, so the pages stay in the shared
    object but in no process's resident set. Prints ``held`` while all are filled."""
    return (
        "import mmap, os, time\n"
        f"for _ in range({holders}):\n"
        "    if os.fork() == 0:\n"
        f"        m = mmap.mmap(-1, {each_mb} * 2**20)\n"
        "        for start in range(0, len(m), 16 * 2**20):\n"
        "            if os.fork() == 0:\n"
        "                m[start:start + 16 * 2**20] = b'\\1' * (16 * 2**20)\n"
        "                os._exit(0)\n"
        "            os.wait()\n"
        "        time.sleep(3)\n"
        "        os._exit(0)\n"
        f"for _ in range({holders}):\n"
        "    os.wait()\n"
        "print('held')\n"
    )


def keyring_reader() -> str:
    """Lists the session keyring it inherited from pytest and prints every key in it (keys
    in a keyring one possesses are readable whatever one's uid). Prints ``ring -1 ERRNO``
    when refused."""
    return _LIBC + (
        "libc.syscall.restype = ctypes.c_long\n"
        "ids = ctypes.create_string_buffer(4096)\n"
        "n = libc.syscall(250 if os.uname().machine == 'x86_64' else 219, 11, -3, ids, 4096)\n"
        "print('ring', n, ctypes.get_errno())\n"
        "for key in ctypes.cast(ids, ctypes.POINTER(ctypes.c_int32))[: max(n, 0) // 4]:\n"
        "    out = ctypes.create_string_buffer(4096)\n"
        "    m = libc.syscall(250 if os.uname().machine == 'x86_64' else 219, 11, key, out, 4096)\n"
        "    print('key', out.raw[: max(m, 0)])\n"
    )


def other_abi_shmget() -> str:
    """System V ``shmget`` through the x32 ABI (its number with bit 30 set) and through the
    i386 ``ipc()`` multiplexer (``int 0x80`` from machine code in an executable mapping).
    x86_64 only. Prints ``x32 RESULT ERRNO`` and ``i386 RESULT`` (a negative errno)."""
    return _LIBC + (
        "import mmap\n"
        "libc.syscall.restype = ctypes.c_long\n"
        "print('x32', libc.syscall(0x40000000 | 29, 0, 2**20, 0o1600), ctypes.get_errno())\n"
        "code = bytes.fromhex('5356' 'b875000000' 'bb17000000' '31c9' 'ba00001000'\n"
        "                     'be80030000' 'cd80' '5e5b' 'c3')\n"
        "page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "page.write(code)\n"
        "address = ctypes.addressof(ctypes.c_char.from_buffer(page))\n"
        "print('i386', ctypes.CFUNCTYPE(ctypes.c_int)(address)())\n"
    )


def socket_buffers(total_mb: int) -> str:
    """Unix socket pairs with ``SO_SNDBUF`` raised, each filled and never read, until
    ``total_mb`` is queued or the open-files limit stops it: kernel memory that is in no
    process's resident set. Prints ``queued N MB``. (Not bounded yet: README "Safety".)"""
    return (
        "import socket, time\n"
        "held, total = [], 0\n"
        f"while total < {total_mb} * 2**20:\n"
        "    try:\n"
        "        a, b = socket.socketpair()\n"
        "    except OSError:\n"
        "        break\n"
        "    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 2**20)\n"
        "    a.setblocking(False)\n"
        "    try:\n"
        "        while True:\n"
        "            total += a.send(b'x' * 65536)\n"
        "    except BlockingIOError:\n"
        "        pass\n"
        "    held += [a, b]\n"
        "print(f'queued {total // 2**20} MB', flush=True)\n"
        "time.sleep(1)\n"
    )
