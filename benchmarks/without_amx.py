"""Run a command as on a CPU without AMX: the kernel refuses it AMX's tile registers.

    python3 benchmarks/without_amx.py COMMAND [ARGS...]

A seccomp filter (Linux, x86-64) answers the request for the tiles (``arch_prctl``
``ARCH_REQ_XCOMP_PERM``) with EPERM for COMMAND and everything it starts, so ONNX
Runtime's and oneDNN's kernels fall back to AVX-512 (VNNI, BF16) as on a CPU without
AMX, and ``clipsearch.cpu`` reports the AMX flags as denied. It measures the AVX-512 path
of the same cores; it is not another CPU (an AMD EPYC, say, has other clocks and caches).
Only the standard library: it must not load what it wraps.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SYS_ARCH_PRCTL = 158
ARCH_REQ_XCOMP_PERM = 0x1023
AUDIT_ARCH_X86_64 = 0xC000003E
# classic BPF: load a word of seccomp_data, compare, return
LD_ABS, JEQ, RET = 0x20, 0x15, 0x06
ALLOW, EPERM = 0x7FFF0000, 0x00050000 | 1
NR, ARCH, ARG0 = 0, 4, 16  # offsets in seccomp_data (ARG0: its low word)


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


PROGRAM = b"".join(
    [
        _op(LD_ABS, ARCH),
        _op(JEQ, AUDIT_ARCH_X86_64, 0, 5),  # another ABI: allow
        _op(LD_ABS, NR),
        _op(JEQ, SYS_ARCH_PRCTL, 0, 3),
        _op(LD_ABS, ARG0),
        _op(JEQ, ARCH_REQ_XCOMP_PERM, 0, 1),
        _op(RET, EPERM),
        _op(RET, ALLOW),
    ]
)


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def refuse_amx() -> None:
    """From now on this process and its children are refused AMX's tiles."""
    if not sys.platform.startswith("linux") or platform.machine() != "x86_64":
        raise SystemExit("without_amx: needs Linux on x86-64")
    libc = ctypes.CDLL(None, use_errno=True)
    program = _Program(len(PROGRAM) // 8, PROGRAM)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or (
        libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0
    ):
        raise SystemExit(f"without_amx: seccomp refused: {os.strerror(ctypes.get_errno())}")


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python3 benchmarks/without_amx.py COMMAND [ARGS...]")
    refuse_amx()
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        raise SystemExit(f"without_amx: cannot run {argv[0]}: {exc.strerror}") from None


if __name__ == "__main__":
    main(sys.argv[1:])
