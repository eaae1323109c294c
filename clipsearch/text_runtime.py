"""The text tower's ``auto`` setting: of the runtimes this CPU has, the one that encodes
queries fastest here, measured once per checkpoint and machine and cached beside the int8
export.

Which runtime wins depends on the CPU: ONNX Runtime's int8 runs at 3x torch fp32 with
AVX-512 VNNI, but adds pairs of products in 16 bits without VNNI and gains little
there; torch bf16 is fast with AVX-512 BF16 or AMX and emulated (slower than fp32)
elsewhere. So the candidates are int8 and fp32 everywhere, bf16 where the CPU multiplies
bf16 in hardware; each encodes the same batches of queries the size the server's
micro-batches have, on the threads it gets when serving, and the fastest wins. A
candidate whose vectors stray from fp32 (cosine below :data:`MIN_COSINE`) is not chosen.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clipsearch.cpu import cpu_info

log = logging.getLogger(__name__)

# Served micro-batches held 7.8 queries on average at 32 users (benchmarks/RESULTS.md).
BATCH = 8
ROUNDS = 3
MIN_COSINE = 0.99
# Queries of the lengths people type (4 to 20 words).
SAMPLE = (
    "a ball bouncing",
    "a person playing tennis",
    "a red ball rolling to the left",
    "show me a small green box spinning quickly",
    "a dog running on the beach at sunset",
    "two people shaking hands in an office",
    "the moment a large blue triangle falls on a noisy background",
    "a video of a yellow star blinking slowly on a gradient background",
    "clip of a purple ring going round in a circle",
    "someone cooking pasta in a small kitchen and stirring the pot",
    "a car driving through a city street at night in the rain",
    "a child riding a bicycle",
    "stripes scrolling",
    "a tiny white square rotating at medium speed on a flat background",
    "a man lifting weights in a gym while his friend counts the repetitions out loud",
    "dots spreading out",
)


def candidates(info: dict[str, Any] | None = None) -> list[str]:
    """The text dtypes worth measuring on a CPU with ``info`` (default: this one)."""
    info = info or cpu_info()
    return ["int8", "fp32"] + (["bf16"] if info["native_bf16"] else [])


def machine_key(torch_threads: int, text_threads: int) -> str:
    """What a measurement holds for: the CPU model and flags and the thread counts."""
    info = cpu_info()
    text = json.dumps([info["model"], info["flags"], os.cpu_count(), torch_threads, text_threads])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def queries_per_s(encode: Callable[[list[str]], np.ndarray], rounds: int = ROUNDS) -> float:
    """The best of ``rounds`` rates at which ``encode`` takes :data:`SAMPLE` in batches."""
    batches = [list(SAMPLE[i : i + BATCH]) for i in range(0, len(SAMPLE), BATCH)]
    encode(batches[0])  # warm-up
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for batch in batches:
            encode(batch)
        best = min(best, time.perf_counter() - started)
    return len(SAMPLE) / best


def pick(measured: dict[str, dict[str, float]]) -> str:
    """The fastest of ``measured`` ({dtype: {"qps", "min_cosine"}}) that stays close to
    fp32; fp32 when none does."""
    fit = {d: m["qps"] for d, m in measured.items() if m["min_cosine"] >= MIN_COSINE}
    return max(fit, key=lambda d: fit[d]) if fit else "fp32"


@contextmanager
def _locked(path: Path) -> Any:
    # Gunicorn workers start together: one measures, the others wait and read its answer
    # (measuring side by side, they would time each other).
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def choose(
    digest: str,
    cache_dir: str | os.PathLike[str],
    encoders: Callable[[str], Any],
    *,
    torch_threads: int,
    text_threads: int,
    dtypes: Sequence[str] | None = None,
) -> str:
    """The text dtype ``auto`` means for the tower of ``digest`` (its int8 export's
    digest) on this machine: read from ``<cache_dir>/onnx/<digest>/``, else measured
    there with ``encoders(dtype)`` (an encoder running the text tower as ``dtype``)."""
    path = (
        Path(cache_dir)
        / "onnx"
        / digest
        / f"text-auto-{machine_key(torch_threads, text_threads)}.json"
    )
    with _locked(path.with_suffix(".lock")):
        try:
            return str(json.loads(path.read_text())["choice"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        measured: dict[str, dict[str, float]] = {}
        reference: np.ndarray | None = None
        for dtype in ["fp32", *(d for d in (dtypes or candidates()) if d != "fp32")]:
            encoder = encoders(dtype)
            vectors = encoder.encode_text(list(SAMPLE))
            if reference is None:
                reference = vectors
            cosine = float(np.min(np.sum(vectors * reference, axis=1)))
            measured[dtype] = {
                "qps": round(queries_per_s(encoder.encode_text), 1),
                "min_cosine": round(cosine, 6),
            }
        choice = pick(measured)
        record = {
            "choice": choice,
            "measured": measured,
            "batch": BATCH,
            "cpu": cpu_info(),
            "torch_threads": torch_threads,
            "text_threads": text_threads,
            "torch": torch.__version__,
        }
        staged = path.with_suffix(".tmp")
        staged.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(staged, path)
        log.info(
            "text tower auto: %s on this CPU (%s)",
            choice,
            ", ".join(f"{d} {m['qps']:.0f} queries/s" for d, m in measured.items()),
        )
        return choice
