"""The "no good match" threshold of a model, from its own score distribution.

The labelled clips (by default the validation groups of a split's training list, see
:func:`clipsearch.data.collection.validation_split`) are ingested into a throw-away Qdrant Edge
store with the product's ingest, and every class phrase is searched and scored the way
the product scores videos (:func:`clipsearch.windows.score_videos`). A (query, clip) pair
is relevant when the clip is of the query's class. The threshold is the score that only
``fpr`` of irrelevant pairs reach (default 1 %): below it, a result is more likely
noise than a match. It is saved in the checkpoint's ``clipsearch.json``
(``min_score``), with the figures behind it in ``calibration.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from clipsearch.checkpoint import VIDEO_CONFIG_NAME, VideoConfig
from clipsearch.data.collection import Clip, Collection, class_phrase
from clipsearch.errors import DatasetError, InvalidInput, ModelLoadError
from clipsearch.evaluation.retrieval import QUERY_TEMPLATE
from clipsearch.model import ClipEncoder
from clipsearch.windows import WindowPlan, score_videos

CALIBRATION_FILE = "calibration.json"
DEFAULT_FPR = 0.01


def threshold_at_fpr(positives: np.ndarray, negatives: np.ndarray, fpr: float) -> float:
    """The smallest score that at most ``fpr`` of the negatives reach or exceed."""
    if not 0.0 < fpr < 1.0:
        raise InvalidInput(f"fpr must be between 0 and 1, got {fpr}")
    if len(negatives) == 0 or len(positives) == 0:
        raise DatasetError("calibration needs both relevant and irrelevant clips")
    return float(np.quantile(negatives, 1.0 - fpr, method="higher"))


def calibrate(
    encoder: ClipEncoder,
    collection: Collection,
    clips: Sequence[Clip],
    *,
    fpr: float = DEFAULT_FPR,
    plan: WindowPlan | None = None,
    template: str = QUERY_TEMPLATE,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Search scores of relevant and irrelevant clips and the threshold between them."""
    from clipsearch.pipeline.runner import IngestOptions, scratch_index

    labelled = [c for c in clips if c.label]
    classes = sorted({c.label for c in labelled if c.label})
    if len(classes) < 2:
        raise DatasetError("calibration needs labelled clips of at least two classes")
    options = IngestOptions(workers=workers, windows=plan or WindowPlan(), media_dir=None)
    labelled_only = replace(collection, clips=labelled)
    with scratch_index(labelled_only, encoder, options, progress) as (store, _):
        n = store.count()
        if n == 0:
            raise DatasetError("no clip could be ingested for calibration")
        queries = encoder.encode_text([template.format(class_phrase(c)) for c in classes])
        pos: list[float] = []
        neg: list[float] = []
        top_scores: list[float] = []
        for cls, vector in zip(classes, queries, strict=True):
            hits = store.search_windows(vector, n, prefetch=n)
            # scored as the search ranks them (clipsearch.search.SearchService)
            scores = score_videos([h.windows for h in hits], vector).tolist()
            relevant = [h.payload.get("class") == cls for h in hits]
            for score, is_relevant in zip(scores, relevant, strict=True):
                (pos if is_relevant else neg).append(score)
            top_scores.append(max(s for s, r in zip(scores, relevant, strict=True) if r))
    positives, negatives = np.asarray(pos), np.asarray(neg)
    threshold = threshold_at_fpr(positives, negatives, fpr)
    return {
        "min_score": round(threshold, 6),
        "fpr_target": fpr,
        "fpr": round(float(np.mean(negatives >= threshold)), 4),
        "tpr": round(float(np.mean(positives >= threshold)), 4),
        "top_relevant_kept": round(float(np.mean(np.asarray(top_scores) >= threshold)), 4),
        "n_queries": len(classes),
        "n_clips": n,
        "relevant_scores": _quantiles(positives),
        "irrelevant_scores": _quantiles(negatives),
        "query_template": template,
    }


def _quantiles(values: np.ndarray) -> dict[str, float]:
    qs = np.quantile(values, [0.01, 0.5, 0.99])
    return {
        "p01": round(float(qs[0]), 4),
        "p50": round(float(qs[1]), 4),
        "p99": round(float(qs[2]), 4),
    }


def save_calibration(model_dir: str | Path, result: dict[str, Any]) -> Path:
    """Write ``min_score`` into the checkpoint's clipsearch.json and the figures beside it."""
    directory = Path(model_dir)
    if not directory.is_dir():
        raise ModelLoadError(
            f"{model_dir} is not a local checkpoint directory; pass --out to write the "
            "calibration elsewhere and set CLIPSEARCH_MIN_SCORE when serving"
        )
    video = replace(VideoConfig.load(directory), min_score=float(result["min_score"]))
    video.save(directory)
    target = directory / CALIBRATION_FILE
    target.write_text(json.dumps(result, indent=2) + "\n")
    return directory / VIDEO_CONFIG_NAME
