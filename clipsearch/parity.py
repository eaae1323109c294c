"""What running the text tower in bf16 changes: vectors, retrieval figures and speed.

The clip vectors do not depend on the text tower, so the split's test clips are
embedded once; the model's own evaluation queries are then encoded and scored in fp32,
the tower is switched to bf16 and everything is encoded and scored again. bf16 may
become a default only where the mAP drops by at most ``MAX_MAP_DROP``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from clipsearch.attributes import MetaRow, freeform_queries
from clipsearch.evaluate import QUERY_TEMPLATE, class_queries, embed_for_eval, evaluate_vectors
from clipsearch.model import ClipEncoder

MAX_MAP_DROP = 0.01
SPEED_QUERIES = 32


def _single_query_ms(encoder: ClipEncoder, texts: Sequence[str]) -> float:
    encoder.encode_text(list(texts[:1]))  # warm-up
    started = time.perf_counter()
    for text in texts:
        encoder.encode_text([text])
    return round((time.perf_counter() - started) / len(texts) * 1000, 3)


def text_parity(
    encoder: ClipEncoder,
    classes: Sequence[str],
    clips: Sequence[Any],
    *,
    meta: Mapping[str, MetaRow] | None = None,
    template: str = QUERY_TEMPLATE,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """fp32 against bf16 text vectors of one fp32-loaded ``encoder`` (left in bf16)."""
    if encoder.text_dtype != "fp32":
        raise ValueError("text_parity needs an encoder loaded with its text tower in fp32")
    vectors, kept, failed = embed_for_eval([encoder], clips, workers=workers, progress=progress)
    labels = [clips[i].label for i in kept]
    rows = [meta.get(clips[i].path) for i in kept] if meta is not None else None
    present = [c for c in classes if c in set(labels)]
    texts = class_queries(present, template) + [q.text for q in freeform_queries(rows or [])]
    speed_texts = texts[:SPEED_QUERIES]

    def score() -> tuple[dict[str, Any], np.ndarray, float]:
        report = evaluate_vectors(encoder, classes, vectors[0], labels, template, meta=rows)
        return report.metrics, encoder.encode_text(texts), _single_query_ms(encoder, speed_texts)

    fp32, fp32_vecs, fp32_ms = score()
    encoder.text_to_bfloat16()
    bf16, bf16_vecs, bf16_ms = score()
    cosine = np.sum(fp32_vecs * bf16_vecs, axis=1)
    delta = round(float(bf16["mAP"]) - float(fp32["mAP"]), 6)
    keys = ("mAP", "P@1", "freeform_mAP", "heldout_mAP", "pairs_mAP")
    return {
        "model": encoder.model_id,
        "n_clips": len(kept),
        "failed": failed,
        "n_queries": len(texts),
        "cosine_fp32_bf16": {
            "min": round(float(cosine.min()), 6),
            "mean": round(float(cosine.mean()), 6),
            "p01": round(float(np.quantile(cosine, 0.01)), 6),
        },
        "fp32": {k: fp32.get(k) for k in keys},
        "bf16": {k: bf16.get(k) for k in keys},
        "mAP_delta": delta,
        "bf16_ok_as_default": delta >= -MAX_MAP_DROP,
        "single_query_ms": {"fp32": fp32_ms, "bf16": bf16_ms},
    }
