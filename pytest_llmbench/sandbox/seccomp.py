"""The seccomp filter every bubblewrap step runs under: it removes the kinds of memory that
belong to no process, so nothing a step holds escapes the count of its processes and its
size-capped file systems (see :mod:`pytest_llmbench.sandbox.bwrap`).

Refused with ``EPERM``:

- ``shmget`` and ``msgget``: System V segments and message queues outlive the processes that
  made them (the step's own IPC namespace frees them only when the step ends);
- ``memfd_create`` and ``memfd_secret``: files in the kernel's internal tmpfs, which no size
  cap covers (``fallocate`` with ``KEEP_SIZE`` fills them past ``RLIMIT_FSIZE``);
- ``add_key``, ``request_key`` and ``keyctl``: the kernel's keyrings are not namespaced by
  anything the step has (pytest's session keyring is inherited, and the keys in it are the
  program's to read, whatever its uid), as in Flatpak's filter;
- ``bpf``: BPF maps are kernel memory that no process's count holds (refused already where
  ``kernel.unprivileged_bpf_disabled`` is set, not on every machine);
- every system call of another ABI (x32, i386 on x86_64), where the numbers differ.

A classic BPF program for bwrap's ``--seccomp FD`` (bwrap sets ``no_new_privs`` first).
"""

from __future__ import annotations

import os
import platform
import struct

# Classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_ALLOW, _ERRNO, _EPERM = 0x7FFF0000, 0x00050000, 1
_NR, _ARCH = 0, 4  # offsets in struct seccomp_data
_X32_BIT = 0x40000000

#: machine -> (AUDIT_ARCH, {name: syscall number})
_ABIS: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (
        0xC000003E,
        {
            "shmget": 29,
            "msgget": 68,
            "memfd_create": 319,
            "memfd_secret": 447,
            "add_key": 248,
            "request_key": 249,
            "keyctl": 250,
            "bpf": 321,
        },
    ),
    "aarch64": (
        0xC00000B7,
        {
            "shmget": 194,
            "msgget": 186,
            "memfd_create": 279,
            "memfd_secret": 447,
            "add_key": 217,
            "request_key": 218,
            "keyctl": 219,
            "bpf": 280,
        },
    ),
}
REFUSED = (
    "shmget",
    "msgget",
    "memfd_create",
    "memfd_secret",
    "add_key",
    "request_key",
    "keyctl",
    "bpf",
)


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def supported(machine: str | None = None) -> bool:
    return (machine or platform.machine()) in _ABIS


def filter_program(machine: str | None = None) -> bytes:
    """The filter for ``machine`` (this one by default), as bwrap reads it from a file
    descriptor: ``struct sock_filter`` entries back to back."""
    arch, numbers = _ABIS[machine or platform.machine()]
    refused = [numbers[name] for name in REFUSED]
    deny = _ERRNO | _EPERM
    # 0: load arch; 1: other ABI -> deny; 2: load nr; 3: x32 -> deny; then one test per call.
    body = [
        _insn(_LD_W_ABS, 0, 0, _ARCH),
        None,  # patched below: the jump to "deny" depends on the program's length
        _insn(_LD_W_ABS, 0, 0, _NR),
        None,
    ]
    tests = len(refused)
    deny_at = 4 + tests + 1  # index of the final "deny"
    body[1] = _insn(_JEQ_K, 0, deny_at - 2, arch)
    body[3] = _insn(_JGE_K, deny_at - 4, 0, _X32_BIT)
    program = [b for b in body if b is not None]
    for i, number in enumerate(refused):
        here = 4 + i
        program.append(_insn(_JEQ_K, deny_at - here - 1, 0, number))
    program.append(_insn(_RET_K, 0, 0, _ALLOW))
    program.append(_insn(_RET_K, 0, 0, deny))
    return b"".join(program)


def filter_fd() -> int | None:
    """A readable descriptor holding this machine's filter (the caller closes it), or None
    where its ABI is not known here (the guarantee is then missing and named)."""
    if not supported():
        return None
    read, write = os.pipe()
    os.write(write, filter_program())
    os.close(write)
    return read
