"""The seccomp filter, read back by a small classic-BPF interpreter: each refused call of each
known ABI is refused, the calls a program needs are allowed, another ABI is refused whole."""

import struct

import pytest

from pytest_llmbench.sandbox import seccomp

_ALLOW, _EPERM = 0x7FFF0000, 0x00050001
X86_64, AARCH64, I386 = 0xC000003E, 0xC00000B7, 0x40000003
#: calls every program makes: read, write, openat, mmap, exit_group (per ABI)
NEEDED = {"x86_64": (0, 1, 257, 9, 231), "aarch64": (63, 64, 56, 222, 94)}
BPF = {"x86_64": 321, "aarch64": 280}


def verdict(program: bytes, arch: int, nr: int) -> int:
    """Run the filter on ``struct seccomp_data`` {nr, arch} as the kernel would."""
    insns = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    data = {0: nr, 4: arch}
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:  # BPF_LD | BPF_W | BPF_ABS
            acc, pc = data[k], pc + 1
        elif code == 0x15:  # BPF_JMP | BPF_JEQ | BPF_K
            pc += 1 + (jt if acc == k else jf)
        elif code == 0x35:  # BPF_JMP | BPF_JGE | BPF_K
            pc += 1 + (jt if acc >= k else jf)
        elif code == 0x06:  # BPF_RET | BPF_K
            return k
        else:
            raise AssertionError(f"unknown opcode {code:#x}")


@pytest.mark.parametrize(("machine", "arch"), [("x86_64", X86_64), ("aarch64", AARCH64)])
def test_each_refused_call_is_refused_and_the_needed_ones_allowed(machine: str, arch: int) -> None:
    program = seccomp.filter_program(machine)
    numbers = seccomp._ABIS[machine][1]
    assert set(numbers) == set(seccomp.REFUSED)
    for name in seccomp.REFUSED:
        assert verdict(program, arch, numbers[name]) == _EPERM, name
    assert verdict(program, arch, BPF[machine]) == _EPERM  # the number, checked apart
    for nr in NEEDED[machine]:
        assert verdict(program, arch, nr) == _ALLOW, nr
    assert verdict(program, arch, 0x40000000 | 29) == _EPERM  # x32: bit 30 set
    assert verdict(program, I386, 1) == _EPERM  # another ABI, whatever the call
