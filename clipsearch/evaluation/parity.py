"""What the fast paths of each tower change against fp32: vectors, retrieval figures and
(for text) speed.

Text: the clip vectors do not depend on the text tower, so the split's test clips are
embedded once; the model's own evaluation queries are then encoded and scored with the
fp32 tower, with its ONNX Runtime int8 export and with bf16 weights (in that order: bf16
changes the weights in place). A fast path may become a default only where the mAP drops
by at most ``MAX_MAP_DROP``.

Vision: the clips are decoded once and embedded by the tower in fp32 and in each fast
path (the text tower stays fp32), as ingest embeds them; then the cosine of each frame's
vector to fp32's, every retrieval figure, and with a moments folder the moment figures. A
fast path may become a default only where no figure drops by more than ``MAX_MAP_DROP``
(moments R@5: ``MAX_MOMENTS_R5_DROP``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clipsearch.data.synthucf import MetaRow, freeform_queries
from clipsearch.evaluation.retrieval import (
    QUERY_TEMPLATE,
    class_queries,
    embed_for_eval,
    evaluate_vectors,
    score_embedded,
)
from clipsearch.model import ClipEncoder, load_model
from clipsearch.settings import DEFAULT_CACHE_DIR

MAX_MAP_DROP = 0.01
SPEED_QUERIES = 32
FAST_PATHS = ("int8", "bf16")
METRICS = ("mAP", "P@1", "freeform_mAP", "heldout_mAP", "pairs_mAP")
VISION_PATHS = ("bf16", "int8")
VISION_METRICS = ("mAP", "P@1", "window_mAP", "pairs_mAP", "freeform_mAP", "heldout_mAP")
MOMENT_METRICS = ("R@5_tIoU0.5", "R@1_tIoU0.5", "mean_tIoU")
MAX_MOMENTS_R5_DROP = 0.02
# the figures a vision path is judged on (P@1 over 12 class queries moves in steps of 0.083)
JUDGED = tuple(k for k in VISION_METRICS + MOMENT_METRICS if k != "P@1")


def _seconds_per_query(
    encoder: ClipEncoder, singles: Sequence[str], batches: Sequence[Sequence[str]]
) -> tuple[float, float]:
    """Mean seconds per query with each of ``singles`` encoded alone, and with each of
    ``batches`` encoded in one call."""
    started = time.perf_counter()
    for text in singles:
        encoder.encode_text([text])
    single = (time.perf_counter() - started) / len(singles)
    started = time.perf_counter()
    for chunk in batches:
        encoder.encode_text(list(chunk))
    batched = (time.perf_counter() - started) / sum(len(chunk) for chunk in batches)
    return single, batched


def _query_ms(encoder: ClipEncoder, texts: Sequence[str]) -> dict[str, float]:
    """Mean ms per query, one query per call and all of ``texts`` in one call."""
    encoder.encode_text(list(texts[:1]))  # warm-up
    single, batched = _seconds_per_query(encoder, texts, [texts])
    return {
        "single": round(single * 1000, 3),
        "batched": round(batched * 1000, 3),
        "batch_size": len(texts),
    }


def _cosine(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cos = np.sum(a * b, axis=1)
    return {
        "min": round(float(cos.min()), 6),
        "mean": round(float(cos.mean()), 6),
        "p01": round(float(np.quantile(cos, 0.01)), 6),
    }


def text_parity(
    encoder: ClipEncoder,
    classes: Sequence[str],
    clips: Sequence[Any],
    *,
    meta: Mapping[str, MetaRow] | None = None,
    template: str = QUERY_TEMPLATE,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    paths: Sequence[str] = FAST_PATHS,
    cache_dir: str | os.PathLike[str] = DEFAULT_CACHE_DIR,
) -> dict[str, Any]:
    """fp32 against each of ``paths`` ("int8", "bf16") for one fp32-loaded ``encoder``
    (left on the last path)."""
    if encoder.text_dtype != "fp32":
        raise ValueError("text_parity needs an encoder loaded with its text tower in fp32")
    unknown = [p for p in paths if p not in FAST_PATHS]
    if unknown:
        raise ValueError(f"unknown text paths {unknown} (known: {FAST_PATHS})")
    embedded = embed_for_eval([encoder], clips, workers=workers, progress=progress)
    vectors, kept, failed = embedded.vectors, embedded.kept, embedded.failed
    labels = [clips[i].label for i in kept]
    rows = [meta.get(clips[i].path) for i in kept] if meta is not None else None
    present = [c for c in classes if c in set(labels)]
    texts = class_queries(present, template) + [q.text for q in freeform_queries(rows or [])]
    speed_texts = texts[:SPEED_QUERIES]

    def score() -> tuple[dict[str, Any], np.ndarray, dict[str, float]]:
        report = evaluate_vectors(encoder, classes, vectors[0], labels, template, meta=rows)
        metrics = {k: report.metrics.get(k) for k in METRICS}
        return metrics, encoder.encode_text(texts), _query_ms(encoder, speed_texts)

    fp32, fp32_vecs, fp32_ms = score()
    out: dict[str, Any] = {
        "model": encoder.model_id,
        "n_clips": len(kept),
        "failed": failed,
        "n_queries": len(texts),
        "max_map_drop": MAX_MAP_DROP,
        "fp32": {"metrics": fp32, "query_ms": fp32_ms},
    }
    for path in sorted(paths, key=FAST_PATHS.index):  # int8 before bf16 changes the weights
        encoder.text_to_torch()
        if path == "int8":
            encoder.text_to_int8(cache_dir)
        else:
            encoder.text_to_bfloat16()
        metrics, vecs, ms = score()
        delta = round(float(metrics["mAP"]) - float(fp32["mAP"]), 6)
        out[path] = {
            "metrics": metrics,
            "query_ms": ms,
            "cosine_to_fp32": _cosine(fp32_vecs, vecs),
            "mAP_delta": delta,
            "ok_as_default": delta >= -MAX_MAP_DROP,
        }
    return out


def text_speed(encoder: ClipEncoder, texts: Sequence[str], batch: int = 32) -> dict[str, Any]:
    """Queries/s of the text tower alone: one query per call (each a new text), and
    ``batch`` queries per call (the compute ceiling a server's micro-batching can approach)."""
    if len(texts) < 2 * batch:
        raise ValueError(f"need at least {2 * batch} texts, got {len(texts)}")
    encoder.encode_text(list(texts[:batch]))  # warm-up
    singles = list(texts[batch : batch + min(len(texts) - batch, 128)])
    batches = [texts[i : i + batch] for i in range(0, len(texts) - batch + 1, batch)]
    single_s, batched_s = _seconds_per_query(encoder, singles, batches)
    return {
        "text_dtype": encoder.text_dtype,
        "single_ms": round(single_s * 1000, 3),
        "single_qps": round(1 / single_s, 1),
        f"batch{batch}_ms_per_query": round(batched_s * 1000, 3),
        f"batch{batch}_qps": round(1 / batched_s, 1),
        "queries": len(singles) + len(batches) * batch,
    }


def _allowed(metric: str) -> float:
    return MAX_MOMENTS_R5_DROP if metric == "R@5_tIoU0.5" else MAX_MAP_DROP


def vision_parity(
    model: str | os.PathLike[str],
    classes: Sequence[str],
    clips: Sequence[Any],
    *,
    meta: Mapping[str, MetaRow] | None = None,
    moments: str | os.PathLike[str] | None = None,
    paths: Sequence[str] = VISION_PATHS,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    cache_dir: str | os.PathLike[str] = DEFAULT_CACHE_DIR,
) -> dict[str, Any]:
    """The vision tower of ``model`` in fp32 against each of ``paths`` ("bf16", "int8")."""
    unknown = [p for p in paths if p not in VISION_PATHS]
    if unknown:
        raise ValueError(f"unknown vision paths {unknown} (known: {VISION_PATHS})")
    names = ["fp32", *dict.fromkeys(paths)]
    encoders = [load_model(model, vision_dtype=name, cache_dir=cache_dir) for name in names]
    embedded = embed_for_eval(encoders, clips, workers=workers, progress=progress)
    reports = score_embedded(encoders, classes, clips, embedded, meta=meta)
    figures = [{k: r.metrics.get(k) for k in VISION_METRICS} for r in reports]
    if moments is not None:
        from clipsearch.evaluation.moments import evaluate_moments

        for encoder, found in zip(encoders, figures, strict=True):
            got = evaluate_moments(encoder, Path(moments), workers=workers)
            found.update({k: got.get(k) for k in MOMENT_METRICS})
    fp32_frames = np.concatenate(embedded.frames[0])
    out: dict[str, Any] = {
        "model": encoders[0].model_id,
        "n_clips": len(embedded.kept),
        "failed": embedded.failed,
        "n_frames": len(fp32_frames),
        "moments": str(moments) if moments is not None else None,
        "max_map_drop": MAX_MAP_DROP,
        "max_moments_r5_drop": MAX_MOMENTS_R5_DROP,
        "fp32": {"metrics": figures[0]},
    }
    for j, name in enumerate(names[1:], start=1):
        base = figures[0]
        deltas = {
            k: round(float(v) - float(b), 6)
            for k, v in figures[j].items()
            if v is not None and (b := base.get(k)) is not None
        }
        worse = sorted(k for k, d in deltas.items() if k in JUDGED and d < -_allowed(k))
        out[name] = {
            "metrics": figures[j],
            "deltas": deltas,
            "frame_cosine_to_fp32": _cosine(fp32_frames, np.concatenate(embedded.frames[j])),
            "beyond_tolerance": worse,
            "ok_as_default": not worse,
        }
    return out
