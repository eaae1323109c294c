"""What the CPU can do fast: its model name and the instruction-set flags that decide which
kernels the towers get (read from ``/proc/cpuinfo`` on Linux, less AMX where the kernel
does not lend it to this process)."""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import sys
from typing import Any

# AVX2 is on every x86-64 CPU of the last decade; AVX-512 (with its VNNI int8 and BF16 dot
# products) and AMX tiles on recent Xeons. A speed measured on one kind does not hold on
# another.
CPU_FLAGS = (
    "avx2",
    "avx_vnni",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_int8",
)
# Flags that give bf16 matrix products in hardware; elsewhere torch emulates them (slower
# than fp32).
NATIVE_BF16 = ("avx512_bf16", "amx_bf16")
# Flags that give int8 dot products with 32-bit sums. Without them ONNX Runtime's int8
# kernels sum pairs in 16 bits, which can saturate (its quantization docs).
INT8_DOT = ("avx512_vnni", "avx_vnni", "amx_int8")
# Linux lends a process AMX's tile registers only when it asks (arch_prctl); a sandbox can
# refuse, and then the kernels fall back to AVX-512 while /proc/cpuinfo still lists AMX.
AMX_FLAGS = ("amx_bf16", "amx_int8")
_SYS_ARCH_PRCTL = 158  # x86-64
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity: a container's cpuset), else all."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def cpu_info(cpuinfo: str | None = None) -> dict[str, Any]:
    """The CPU's model name and which of :data:`CPU_FLAGS` it has (elsewhere than Linux:
    the model from ``platform`` and no flags)."""
    if cpuinfo is None:
        return dict(_this_cpu())
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if fields:
                break  # the first processor's block is enough
            continue
        fields.setdefault(key.strip(), value.strip())
    present = set(fields.get("flags", "").split())
    model = fields.get("model name") or platform.processor() or platform.machine()
    return _described(model, [flag for flag in CPU_FLAGS if flag in present])


def _described(model: str, flags: list[str], denied: list[str] | None = None) -> dict[str, Any]:
    info = {
        "model": model,
        "flags": flags,
        "native_bf16": any(flag in flags for flag in NATIVE_BF16),
        "int8_dot": any(flag in flags for flag in INT8_DOT),
    }
    if denied:
        info["denied"] = denied
    return info


def without_denied(info: dict[str, Any], amx_granted: bool) -> dict[str, Any]:
    """``info`` as this process may use it: without the AMX flags (listed under
    ``denied``) when the kernel would not lend it the tiles."""
    denied = [flag for flag in info["flags"] if flag in AMX_FLAGS]
    if amx_granted or not denied:
        return info
    kept = [flag for flag in info["flags"] if flag not in denied]
    return _described(info["model"], kept, denied)


def amx_granted() -> bool:
    """Whether the kernel lends this process AMX's tiles (asking for them, as ONNX Runtime
    and oneDNN do before they use AMX). True where that cannot be asked."""
    if not sys.platform.startswith("linux") or platform.machine() != "x86_64":
        return True
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA)) == 0
    except (OSError, AttributeError):
        return True


@functools.cache
def _this_cpu() -> dict[str, Any]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            info = cpu_info(f.read())
    except OSError:
        return cpu_info("")
    return without_denied(info, amx_granted())


def fastest_vision_dtype() -> str:
    """The vision tower's ``auto`` setting here: int8 where the CPU has int8 dot products
    (VNNI or AMX), fp32 elsewhere. int8 keeps the demo model's figures and beats bf16 even
    with AMX's bf16 tiles (ViT-B/32 in benchmarks/RESULTS.md, "Ingest", 2026-12-06: on a
    Xeon with AMX int8 ran 7.06-7.97 clips/s and bf16 6.72-7.68; on an EPYC with AVX-512
    BF16 and VNNI but no AMX, int8 4.43-4.96 and bf16 2.58)."""
    return "int8" if _this_cpu()["int8_dot"] else "fp32"


def training_dtype() -> str:
    """The dtype of the towers' matrix products when training on this CPU: bf16 where
    it has them in hardware (AVX-512 BF16 or AMX), fp32 elsewhere, where bf16 is
    emulated and slower. On a 2-vCPU EPYC with AVX-512 BF16 a demo training step took
    0.50 s in bf16 against 0.85 s in fp32 (README, "Training in bf16")."""
    return "bf16" if _this_cpu()["native_bf16"] else "fp32"
