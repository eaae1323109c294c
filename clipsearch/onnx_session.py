"""ONNX Runtime sessions of the exported towers, without torch: what serving queries
needs once a tower is exported (:mod:`clipsearch.onnx_int8` exports them, with torch)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from clipsearch.checkpoint import one_line
from clipsearch.cpu import usable_cpus
from clipsearch.errors import ModelLoadError


def cpu_session(path: str | os.PathLike[str], threads: int | None, tower: str) -> Any:
    """An ONNX Runtime CPU session (thread-safe; releases the GIL while it runs)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or usable_cpus())
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle pool threads would spin for the next call, taking CPU from request threads.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        message = f"cannot load the ONNX {tower} tower {path}: {one_line(exc)}"
        raise ModelLoadError(message) from None


class TextSession:
    """An ONNX Runtime session of an exported text tower (thread-safe, releases the GIL):
    token ids and mask (B, L) -> projected text features (B, D), unnormalised."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None):
        self.session = cpu_session(path, threads, "text")
        self.path = Path(path)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {
            "input_ids": np.asarray(input_ids, dtype=np.int64),
            "attention_mask": np.asarray(attention_mask, dtype=np.int64),
        }
        (features,) = self.session.run(None, feeds)
        return np.asarray(features, dtype=np.float32)


class VisionSession:
    """An ONNX Runtime session of an exported vision tower (releases the GIL): normalised
    pixels (N, 3, h, w) -> projected image features (N, D), unnormalised, and the patch
    tokens (N, P, W) when the export has them.

    With ``threads`` > 1 a call's frames are split into that many parts, each run on one
    thread side by side, rather than one run on a pool of threads, which meet after every
    operator: 6-8 % more frames a second for a ViT-B/32 on two cores, with AMX or without
    (benchmarks/RESULTS.md, "Ingest"). The session, and its weights, is one.
    """

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None):
        self.threads = max(1, int(threads or usable_cpus()))
        self.session = cpu_session(path, 1, "vision")
        self.path = Path(path)
        self.tokens = len(self.session.get_outputs()) > 1
        self._pool = ThreadPoolExecutor(self.threads, "vision-tower") if self.threads > 1 else None

    def __call__(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        pixels = np.ascontiguousarray(pixels, np.float32)
        if self._pool is None or len(pixels) < 2:
            return self._run(pixels)
        chunks = np.array_split(pixels, min(self.threads, len(pixels)))
        parts = list(self._pool.map(self._run, chunks))
        feats = np.concatenate([f for f, _ in parts])
        if not self.tokens:
            return feats, None
        return feats, np.concatenate([g for _, g in parts if g is not None])

    def _run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        outputs = self.session.run(None, {"pixels": pixels})  # contiguous float32 already
        feats = np.asarray(outputs[0], dtype=np.float32)
        return feats, np.asarray(outputs[1], dtype=np.float32) if self.tokens else None
