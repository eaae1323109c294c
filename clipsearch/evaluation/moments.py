"""Moment retrieval figures: does a class query find the right video *and* the right span?

The videos of a moments folder (``moments.jsonl``: each video's labelled spans) are
ingested into a throw-away embedded Qdrant Edge store with the product's own ingest,
then every span's class phrase is searched through the product's own search. A
span counts at k when its video is in the top k and that result's moment overlaps
the true span at tIoU >= 0.5. Several videos hold each class, and only one of them
can rank first, so R@1 has a ceiling below 1: ``R@1_bound`` reports it.

Sequence queries: each pair of consecutive spans (A, B) of a video (of different
classes) is searched as "<template of A> then <template of B>" (each step worded as a
single-class query, so each step's vector is that query's). ``then_R@5`` counts a pair
when its video is in the top 5 and both of that result's moments overlap their true
spans at tIoU >= 0.5; ``then_order_acc`` counts it when the video scores higher for
"A then B" than for "B then A".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from clipsearch.data.collection import class_phrase, load_collection
from clipsearch.errors import DatasetError
from clipsearch.evaluation.retrieval import QUERY_TEMPLATE
from clipsearch.model import ClipEncoder
from clipsearch.search import SearchLimits, SearchService
from clipsearch.store.base import ClipPoint, clip_id
from clipsearch.windows import WindowPlan, temporal_iou

TIOU = 0.5
KS = (1, 5)
THEN_K = 5


def _summary(
    rows: Sequence[dict[str, Any]], ks: Sequence[int], *, bound: bool = False
) -> dict[str, Any]:
    if not rows:
        return {"n_segments": 0}
    out: dict[str, Any] = {"n_segments": len(rows)}
    for k in ks:
        hits = [r["rank"] is not None and r["rank"] <= k and r["tIoU"] >= TIOU for r in rows]
        out[f"R@{k}_tIoU{TIOU}"] = round(float(np.mean(hits)), 4)
    out["mean_tIoU"] = round(float(np.mean([r["tIoU"] for r in rows])), 4)
    out["localized_tIoU0.5"] = round(float(np.mean([r["tIoU"] >= TIOU for r in rows])), 4)
    if bound:  # over all rows only: a subset's ceiling depends on who ranks first
        out["R@1_bound"] = round(float(np.mean([1.0 / r["videos_with_class"] for r in rows])), 4)
    return out


def evaluate_moments(
    encoder: ClipEncoder,
    folder: str | Path,
    *,
    plan: WindowPlan | None = None,
    limits: SearchLimits | None = None,
    template: str = QUERY_TEMPLATE,
    ks: Sequence[int] = KS,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """R@k at tIoU 0.5, mean tIoU and per-span detail for a moments folder."""
    from clipsearch.data.synthucf import read_moments  # the moments.jsonl contract
    from clipsearch.pipeline.runner import IngestOptions, scratch_index

    root = Path(folder)
    videos = read_moments(root)
    collection = load_collection(root)
    by_path = {c.path: c for c in collection.clips}
    missing = [v["path"] for v in videos if v["path"] not in by_path]
    if missing:
        raise DatasetError(f"{root}: moments.jsonl names videos that are not there: {missing[:3]}")
    collection = replace(collection, clips=[by_path[v["path"]] for v in videos])
    options = IngestOptions(workers=workers, windows=plan or WindowPlan(), media_dir=None)
    holders: dict[str, set[str]] = defaultdict(set)
    for v in videos:
        for span in v["segments"]:
            holders[span["class"]].add(v["path"])

    with scratch_index(collection, encoder, options, progress) as (store, report):
        if report.failed:
            raise DatasetError(f"{root}: could not ingest {report.failed[0]['path']}")
        service = SearchService(encoder, store, limits)
        depth = max(ks)
        stored = store.retrieve([clip_id(v["path"]) for v in videos], with_vectors=True)
        queries = sorted(holders)
        vectors = dict(
            zip(
                queries,
                encoder.encode_text([template.format(class_phrase(c)) for c in queries]),
                strict=True,
            )
        )
        ranked = {
            c: service.search(template.format(class_phrase(c)), depth, min_score=None).results
            for c in queries
        }
        rows = []
        for v in videos:
            pid = clip_id(v["path"])
            point = stored[pid]
            for span in v["segments"]:
                cls = span["class"]
                truth = (float(span["start_s"]), float(span["end_s"]))
                results = ranked[cls]
                rank = next((i for i, r in enumerate(results, 1) if r.id == pid), None)
                moment, _, _ = service.moment(point.windows, point.payload, vectors[cls])
                rows.append(
                    {
                        "video": v["path"],
                        "duration_s": v["duration_s"],
                        "class": cls,
                        "true_s": list(truth),
                        "moment_s": [round(moment.start_s, 3), round(moment.end_s, 3)],
                        "tIoU": round(temporal_iou(truth, (moment.start_s, moment.end_s)), 4),
                        "rank": rank,
                        "videos_with_class": len(holders[cls]),
                    }
                )
        then_rows = _then_pairs(service, videos, stored, template)

    long_rows = [r for r in rows if r["duration_s"] >= 30.0]
    short_rows = [r for r in rows if r["duration_s"] < 30.0]
    metrics = _summary(rows, ks, bound=True)
    metrics.update(_then_summary(then_rows))
    metrics.update(
        {
            "n_videos": len(videos),
            "query_template": template,
            "window_s": options.windows.window_s if options.windows else None,
            "stride_s": options.windows.stride_s if options.windows else None,
            "window_frames": options.windows.frames if options.windows else None,
            "moment_spread": service.limits.moment_spread,
            "moment_min_margin": service.limits.moment_min_margin,
            "short": _summary(short_rows, ks),
            "long": _summary(long_rows, ks),
            "ingest_s": report.wall_s,
            "segments": rows,
            "then_query_template": f"{template} then {template}",
            "then_pairs": then_rows,
        }
    )
    return metrics


def _then_pairs(
    service: SearchService,
    videos: Sequence[dict[str, Any]],
    stored: dict[str, ClipPoint],
    template: str,
) -> list[dict[str, Any]]:
    """One row per pair of consecutive spans of different classes: the sequence
    query's rank for the video, its moments' tIoU and the video's score both ways."""
    rows = []
    for v in videos:
        pid = clip_id(v["path"])
        point = stored[pid]
        for a, b in zip(v["segments"], v["segments"][1:], strict=False):
            if a["class"] == b["class"]:
                continue
            steps = [template.format(class_phrase(span["class"])) for span in (a, b)]
            results = service.search(f"{steps[0]} then {steps[1]}", THEN_K, min_score=None)
            rank = next((i for i, r in enumerate(results.results, 1) if r.id == pid), None)
            vectors = np.stack([service.cache.get(s, service.encode_query) for s in steps])
            forward = service.sequence(point.windows, point.payload, vectors)
            backward = service.sequence(point.windows, point.payload, vectors[::-1])
            truths = [(float(span["start_s"]), float(span["end_s"])) for span in (a, b)]
            moments = forward[1] if forward is not None else []
            tious = [
                round(temporal_iou(t, (m.start_s, m.end_s)), 4)
                for t, m in zip(truths, moments, strict=True)
            ]
            scores = [None if f is None else round(f[0].score, 6) for f in (forward, backward)]
            rows.append(
                {
                    "video": v["path"],
                    "classes": [a["class"], b["class"]],
                    "true_s": [list(t) for t in truths],
                    "moments_s": [[round(m.start_s, 3), round(m.end_s, 3)] for m in moments],
                    "tIoU": tious,
                    "rank": rank,
                    "score": scores[0],
                    "reversed_score": scores[1],
                }
            )
    return rows


def _then_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {"n_then_pairs": 0, "then_R@5": None, "then_order_acc": None}
    hits = [
        r["rank"] is not None
        and r["rank"] <= THEN_K
        and len(r["tIoU"]) == 2
        and min(r["tIoU"]) >= TIOU
        for r in rows
    ]
    ordered = [
        r["score"] is not None
        and r["reversed_score"] is not None
        and r["score"] > r["reversed_score"]
        for r in rows
    ]
    return {
        "n_then_pairs": len(rows),
        f"then_R@{THEN_K}": round(float(np.mean(hits)), 4),
        "then_order_acc": round(float(np.mean(ordered)), 4),
    }


def moments_table(metrics: dict[str, Any]) -> str:
    """The headline figures as a few aligned lines."""
    keys = [f"R@{k}_tIoU{TIOU}" for k in KS] + ["mean_tIoU", "localized_tIoU0.5", "R@1_bound"]
    lines = [f"{'':<10}" + "".join(f"{k:>18}" for k in keys)]
    for name, part in (("all", metrics), ("short", metrics["short"]), ("long", metrics["long"])):
        if not part.get("n_segments"):
            continue
        cells = "".join(f"{part[k]:>18.3f}" if k in part else f"{'':>18}" for k in keys)
        lines.append(f"{name + ' (' + str(part['n_segments']) + ')':<10}{cells}")
    if metrics.get("n_then_pairs"):
        lines.append(
            f"then ({metrics['n_then_pairs']} pairs): then_R@{THEN_K} "
            f"{metrics[f'then_R@{THEN_K}']:.3f}, then_order_acc {metrics['then_order_acc']:.3f}"
        )
    return "\n".join(lines)
