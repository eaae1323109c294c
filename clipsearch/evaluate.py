"""Retrieval metrics for text -> video search with class labels as relevance.

Each class gives one query ("a video of {phrase}"); a clip is relevant when it
belongs to that class. Ranking is exact (all clips scored), so the figures
measure the model, not the index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clipsearch.dataset import class_phrase
from clipsearch.errors import DatasetError

QUERY_TEMPLATE = "a video of {}"


def average_precision(relevant_sorted: np.ndarray) -> float:
    """AP of one ranking given a boolean array of relevance in rank order."""
    n_rel = int(relevant_sorted.sum())
    if n_rel == 0:
        return 0.0
    hits = np.cumsum(relevant_sorted)
    ranks = np.arange(1, len(relevant_sorted) + 1)
    return float((hits / ranks)[relevant_sorted].sum() / n_rel)


@dataclass(frozen=True)
class RetrievalReport:
    metrics: dict[str, Any]

    def table(self) -> str:
        m = self.metrics
        lines = [
            f"queries {m['n_queries']}  clips {m['n_clips']}",
            f"mAP {m['mAP']:.4f}  P@1 {m['P@1']:.4f}  P@5 {m['P@5']:.4f}  R@10 {m['R@10']:.4f}",
            "",
            f"{'class':<28} {'AP':>7}",
        ]
        lines += [f"{name:<28} {ap:>7.4f}" for name, ap in m["per_class_AP"].items()]
        return "\n".join(lines)


def retrieval_metrics(
    query_vectors: np.ndarray,
    query_labels: Sequence[str],
    clip_vectors: np.ndarray,
    clip_labels: Sequence[str | None],
) -> dict[str, Any]:
    """mAP, P@1, P@5, R@10 (recall of all relevant clips in the top 10) and per-query AP."""
    labels = np.asarray(clip_labels, dtype=object)
    scores = query_vectors @ clip_vectors.T
    aps, p1, p5, r10 = [], [], [], []
    per_class: dict[str, float] = {}
    for qi, name in enumerate(query_labels):
        order = np.argsort(-scores[qi], kind="stable")
        relevant = labels[order] == name
        n_rel = int(relevant.sum())
        if n_rel == 0:
            continue
        ap = average_precision(relevant)
        aps.append(ap)
        per_class[name] = round(ap, 6)
        p1.append(float(relevant[:1].mean()))
        p5.append(float(relevant[:5].sum() / 5))
        r10.append(float(relevant[:10].sum() / n_rel))
    return {
        "mAP": float(np.mean(aps)) if aps else 0.0,
        "P@1": float(np.mean(p1)) if p1 else 0.0,
        "P@5": float(np.mean(p5)) if p5 else 0.0,
        "R@10": float(np.mean(r10)) if r10 else 0.0,
        "per_class_AP": per_class,
        "n_queries": len(aps),
        "n_clips": len(clip_labels),
    }


def class_queries(classes: Sequence[str], template: str = QUERY_TEMPLATE) -> list[str]:
    return [template.format(class_phrase(c)) for c in classes]


def evaluate_vectors(
    encoder: Any,
    classes: Sequence[str],
    clip_vectors: np.ndarray,
    clip_labels: Sequence[str | None],
    template: str = QUERY_TEMPLATE,
) -> RetrievalReport:
    """Class-phrase queries through ``encoder.encode_text`` against given clip vectors."""
    present = [c for c in classes if c in set(clip_labels)]
    queries = encoder.encode_text(class_queries(present, template))
    metrics = retrieval_metrics(queries, present, clip_vectors, clip_labels)
    metrics["query_template"] = template
    return RetrievalReport(metrics)


def evaluate_clips(
    encoder: Any,
    classes: Sequence[str],
    clips: Sequence[Any],
    *,
    template: str = QUERY_TEMPLATE,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> RetrievalReport:
    """Decode and embed ``clips`` (``dataset.Clip``) exactly as ingest does, then score."""
    from clipsearch.embed import EmbeddedClip, embed_clips

    vectors, labels, failed = [], [], []
    for batch in embed_clips(encoder, [c.source for c in clips], workers=workers):
        for item in batch:
            if isinstance(item, EmbeddedClip):
                vectors.append(item.embedding.pooled)
                labels.append(clips[item.index].label)
            else:
                failed.append(clips[item.index].path)
        if progress:
            progress(len(batch))
    if not vectors:
        raise DatasetError(f"none of the {len(clips)} clips could be decoded")
    report = evaluate_vectors(encoder, classes, np.stack(vectors), labels, template)
    report.metrics["failed"] = failed
    return report
