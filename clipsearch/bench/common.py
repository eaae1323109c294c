"""Pieces both offline benchmarks (``bench-index``, ``bench-moments``) measure with."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clipsearch.cpu import CPU_FLAGS, cpu_info
from clipsearch.errors import InvalidInput

_SUFFIXES = {"k": 1_000, "m": 1_000_000}


def latency_summary(
    seconds: Sequence[float], wall_s: float, *, digits: int = 4
) -> dict[str, float]:
    """p50/p95/mean latency in ms and queries per second of a sequential run."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), digits),
        "p95_ms": round(float(np.percentile(ms, 95)), digits),
        "mean_ms": round(float(ms.mean()), digits),
        "qps": round(len(ms) / wall_s, 1) if wall_s > 0 else math.inf,
    }


def disk_bytes(path: Path) -> int:
    """Allocated size of the files below ``path`` in bytes (a file removed meanwhile, e.g.
    by the optimizer, counts as nothing)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_blocks * 512
    return total


def disk_mb(path: Path, *, digits: int = 1) -> float:
    """Allocated size of the files below ``path`` in MiB."""
    return round(disk_bytes(path) / 2**20, digits)


def size_label(n: int) -> str:
    """100000 -> '100k', 1000000 -> '1M'."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def cpu_line(info: Mapping[str, Any] | None = None) -> str:
    """``CPU: <model>, 2 cores (avx2, avx512f, ...)``: what every benchmark prints first
    (and the flags the kernel refuses this process, if any)."""
    info = info if info is not None else cpu_info()
    flags = ", ".join(info["flags"]) or "none of " + ", ".join(CPU_FLAGS)
    line = f"CPU: {info['model']}, {os.cpu_count()} cores ({flags})"
    if info.get("denied"):
        line += f"; denied to this process: {', '.join(info['denied'])}"
    return line


def environment(packages: Mapping[str, str]) -> dict[str, Any]:
    """The machine and the versions of ``packages`` (result key -> distribution name)."""
    from importlib import metadata

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "cpu": cpu_info(),
        "numpy": np.__version__,
        **{key: version(dist) for key, dist in packages.items()},
    }
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            env["mem_total_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    if hasattr(os, "getloadavg"):
        env["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return env


def parse_int_list(text: str, what: str, *, example: str = "100k,1M") -> tuple[int, ...]:
    """'100k,1M,5000' -> (100000, 1000000, 5000); InvalidInput on anything else."""
    values = []
    for item in str(text).split(","):
        token = item.strip().lower().replace("_", "")
        scale = _SUFFIXES.get(token[-1:], 1) if token else 1
        digits = token[:-1] if scale > 1 else token
        if not digits.isdigit() or int(digits) * scale < 1:
            raise InvalidInput(
                f"{what}: expected comma-separated positive integers (e.g. {example}), got {text!r}"
            )
        values.append(int(digits) * scale)
    return tuple(values)


def scalar_metrics(metrics: Mapping[str, Any], nested: Sequence[str] = ()) -> dict[str, Any]:
    """The numbers of ``metrics`` (no strings, lists or per-class tables; the model id is
    kept) and those of its ``nested`` sections one level down: a short document for
    ``dvc metrics show``."""

    def scalars(d: Mapping[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in d.items()
            if (k in ("model", "model_id") and isinstance(v, str))
            or (
                isinstance(v, (int, float))
                and not isinstance(v, bool)
                and not (isinstance(v, float) and math.isnan(v))
            )
        }

    out = scalars(metrics)
    for key in nested:
        section = metrics.get(key)
        if isinstance(section, Mapping):
            out[key] = scalars(section)
    return out


@contextlib.contextmanager
def served(argv: Sequence[str], cwd: Path, port: int, timeout_s: float = 300) -> Iterator[Any]:
    """``argv`` (a ``clipsearch serve`` command on ``port``; paths in it absolute, but for
    the command itself) in its own session and in ``cwd`` (away from a checkout Gunicorn
    would put on the path); yields the process once ``/api/health`` answers, and stops it
    and its workers after."""
    command = [os.path.abspath(argv[0]) if os.sep in argv[0] else argv[0], *argv[1:]]
    server = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    message = f"{argv[0]} serve did not start (exit {server.poll()})"
                    raise RuntimeError(message) from None
                time.sleep(0.5)
        yield server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
