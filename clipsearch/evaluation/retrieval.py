"""Retrieval metrics for text -> video search.

Relevance comes from class labels and, where the dataset has ``synth_meta.jsonl``,
from clip attributes. A report holds:

- class queries ("a video of {phrase}"; a clip is relevant when it belongs to
  the class): mAP, P@1, P@5, R@10 and per-class AP;
- direction pairs (``pairs``): each pair class's query ranked among the clips
  of its pair only, so the figure isolates order: a model blind to time scores
  about 0.5 there;
- free-form attribute queries ("a red ball", "something spinning"): ``freeform_mAP``;
- held-out compositions ("Class:colour" combos withheld from training, queried
  as "a red ball bouncing"): ``heldout_mAP``.

Ranking is exact (all clips scored), so the figures measure the model, not the index.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from clipsearch.data.collection import class_phrase
from clipsearch.data.synthucf import (
    DIRECTION_PAIRS,
    FREEFORM_KINDS,
    AttributeQuery,
    MetaRow,
    freeform_queries,
    heldout_queries,
)
from clipsearch.errors import DatasetError
from clipsearch.evaluation.interval import scene_interval
from clipsearch.windows import video_scores

if TYPE_CHECKING:
    from clipsearch.windows import WindowPlan

QUERY_TEMPLATE = "a video of {}"


def average_precision(relevant_sorted: np.ndarray) -> float:
    """AP of one ranking given a boolean array of relevance in rank order."""
    n_rel = int(relevant_sorted.sum())
    if n_rel == 0:
        return 0.0
    hits = np.cumsum(relevant_sorted)
    ranks = np.arange(1, len(relevant_sorted) + 1)
    return float((hits / ranks)[relevant_sorted].sum() / n_rel)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


@dataclass(frozen=True)
class RetrievalReport:
    metrics: dict[str, Any]

    def table(self) -> str:
        m = self.metrics
        lines = [
            f"queries {m['n_queries']}  clips {m['n_clips']}",
            f"mAP {m['mAP']:.4f}  P@1 {m['P@1']:.4f}  P@5 {m['P@5']:.4f}  R@10 {m['R@10']:.4f}",
        ]
        if m.get("window_mAP") is not None:
            lines.append(
                f"mAP ranked by each clip's windows (as search does) {m['window_mAP']:.4f}"
            )
        pairs = m.get("pairs") or {}
        if pairs:
            lines += [
                "",
                "direction pairs: AP within the pair's clips (0.5 = blind to order)",
                f"{'pair':<34} {'first':>7} {'second':>7} {'mean':>7} {'full':>7}",
            ]
            for name, p in pairs.items():
                a, b = name.split("/")
                figures = " ".join(f"{_fmt(p[k]):>7}" for k in (a, b, "mean", "full_mean"))
                lines.append(f"{name:<34} {figures}")
        lines += ["", _freeform_line(m), _heldout_line(m), "", f"{'class':<28} {'AP':>7}"]
        lines += [f"{name:<28} {ap:>7.4f}" for name, ap in m["per_class_AP"].items()]
        return "\n".join(lines)


def _freeform_line(m: Mapping[str, Any]) -> str:
    if m.get("n_freeform_queries") is None:
        return "free-form queries: n/a (the dataset has no synth_meta.jsonl)"
    if m.get("freeform_mAP") is None:
        return "free-form queries: n/a (no query has a relevant clip)"
    kinds = ", ".join(f"{k} {v:.4f}" for k, v in (m.get("freeform_by_kind") or {}).items())
    line = f"free-form queries: {m['n_freeform_queries']}, mAP {m['freeform_mAP']:.4f} ({kinds})"
    if m.get("freeform_mAP_interval"):
        low, high = m["freeform_mAP_interval"]
        line += f"; 90 % over resampled scenes {low:.4f}-{high:.4f}"
    return line


def _heldout_line(m: Mapping[str, Any]) -> str:
    if not m.get("heldout"):
        return "held-out compositions: n/a (not trained with held-out compositions)"
    whose = "" if m.get("heldout_own") else " (withheld by the other model, not this one)"
    if m.get("heldout_mAP") is None:
        reason = (
            "the dataset has no synth_meta.jsonl"
            if m.get("n_freeform_queries") is None
            else "no evaluated clip has these class and colour"
        )
        return f"held-out compositions {', '.join(m['heldout'])}: n/a ({reason}){whose}"
    each = ", ".join(f"{c} {_fmt(ap)}" for c, ap in m["heldout_AP"].items())
    return f"held-out compositions: mAP {m['heldout_mAP']:.4f} ({each}){whose}"


def compare_table(reports: Sequence[RetrievalReport]) -> str:
    """Two reports side by side: one row per figure, columns model 1, model 2, delta."""
    m1, m2 = reports[0].metrics, reports[1].metrics
    lines = []
    for i, m in enumerate((m1, m2), 1):
        how = f"{m.get('pooling', '?')} pooling, {m.get('num_frames', '?')} frames"
        lines.append(f"model {i}: {m.get('model', '?')} ({how})")
    lines.append(f"queries {m1['n_queries']}  clips {m1['n_clips']}")
    for i, m in enumerate((m1, m2), 1):
        if m.get("heldout") and m.get("heldout_own"):
            lines.append(f"held-out compositions withheld by model {i}: {', '.join(m['heldout'])}")

    rows: list[tuple[str, float | None, float | None]] = [
        (k, m1.get(k), m2.get(k))
        for k in ("mAP", "window_mAP", "P@1", "P@5", "R@10", "freeform_mAP", "heldout_mAP")
    ]
    pair_names = list(dict.fromkeys([*(m1.get("pairs") or {}), *(m2.get("pairs") or {})]))
    for name in pair_names:
        p1, p2 = (m.get("pairs", {}).get(name, {}) for m in (m1, m2))
        rows.append((f"pair {name}", p1.get("mean"), p2.get("mean")))
    classes = list(dict.fromkeys([*m1["per_class_AP"], *m2["per_class_AP"]]))
    rows += [(f"AP {c}", m1["per_class_AP"].get(c), m2["per_class_AP"].get(c)) for c in classes]

    width = max(28, *(len(r[0]) for r in rows))
    lines += ["", f"{'':<{width}} {'model 1':>8} {'model 2':>8} {'delta':>8}"]
    for name, a, b in rows:
        delta = "n/a" if a is None or b is None else f"{b - a:+.4f}"
        lines.append(f"{name:<{width}} {_fmt(a):>8} {_fmt(b):>8} {delta:>8}")
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


def window_map(
    query_vectors: np.ndarray,
    query_labels: Sequence[str],
    windows: Sequence[np.ndarray],
    clip_labels: Sequence[str | None],
) -> float:
    """mAP of the class queries when a clip scores by its windows as the search ranks
    videos (:func:`clipsearch.windows.video_scores`)."""
    labels = np.asarray(clip_labels, dtype=object)
    lengths = [len(w) for w in windows]
    scores = video_scores(np.concatenate(list(windows)) @ query_vectors.T, lengths).T
    aps = []
    for qi, name in enumerate(query_labels):
        relevant = labels[np.argsort(-scores[qi], kind="stable")] == name
        if relevant.any():
            aps.append(average_precision(relevant))
    return float(np.mean(aps)) if aps else 0.0


def query_aps(
    query_vectors: np.ndarray, clip_vectors: np.ndarray, relevant: np.ndarray
) -> list[float | None]:
    """AP of each query over all clips; ``relevant`` is (queries, clips) bool. None: no relevant."""
    scores = np.atleast_2d(query_vectors @ clip_vectors.T)
    out: list[float | None] = []
    for qi in range(scores.shape[0]):
        if not relevant[qi].any():
            out.append(None)
            continue
        order = np.argsort(-scores[qi], kind="stable")
        out.append(round(average_precision(relevant[qi][order]), 6))
    return out


def pair_metrics(
    class_vectors: Mapping[str, np.ndarray],
    clip_vectors: np.ndarray,
    clip_labels: Sequence[str | None],
    per_class_ap: Mapping[str, float],
) -> dict[str, dict[str, float | None]]:
    """Order sensitivity on the direction pairs.

    For each pair "A/B" whose two classes both have clips and a query vector in
    ``class_vectors``: ``{"A": AP, "B": AP, "mean": ..., "full_mean": ...}`` where
    A's AP ranks only the clips of A and B by A's query (relevant: A), so a model
    that cannot tell the order apart scores about 0.5; ``full_mean`` is the mean
    of the two classes' AP in the ranking over all clips (``per_class_ap``).
    """
    labels = np.asarray(clip_labels, dtype=object)
    out: dict[str, dict[str, float | None]] = {}
    for a, b in DIRECTION_PAIRS:
        in_pair = (labels == a) | (labels == b)
        if not ((labels == a).any() and (labels == b).any()):
            continue
        if a not in class_vectors or b not in class_vectors:
            continue
        pair_vectors, pair_labels = clip_vectors[in_pair], labels[in_pair]
        entry: dict[str, float | None] = {}
        for cls in (a, b):
            (entry[cls],) = query_aps(
                class_vectors[cls][None], pair_vectors, (pair_labels == cls)[None]
            )
        entry["mean"] = _round(_mean([entry[a], entry[b]]))
        entry["full_mean"] = _round(_mean([per_class_ap.get(a), per_class_ap.get(b)]))
        out[f"{a}/{b}"] = entry
    return out


def attribute_metrics(
    query_vectors: np.ndarray,
    queries: Sequence[AttributeQuery],
    clip_vectors: np.ndarray,
    scenes: Sequence[Hashable] | None = None,
) -> dict[str, Any]:
    """Free-form queries: ``freeform_mAP``, ``freeform_AP`` (by query text),
    ``n_freeform_queries``, ``freeform_by_kind`` (mAP per query kind) and, given each
    clip's scene, ``freeform_mAP_interval``: its 90 % interval over resampled scenes
    (:mod:`clipsearch.evaluation.interval`)."""
    if not queries:
        return {
            "freeform_mAP": None,
            "freeform_AP": {},
            "n_freeform_queries": 0,
            "freeform_by_kind": {},
            "freeform_mAP_interval": None,
        }
    relevant = np.stack([q.relevant for q in queries])
    aps = query_aps(query_vectors, clip_vectors, relevant)
    interval = (
        scene_interval(
            lambda idx: _mean(query_aps(query_vectors, clip_vectors[idx], relevant[:, idx])),
            scenes,
        )
        if scenes is not None
        else None
    )
    by_kind = {
        k: _mean([ap for q, ap in zip(queries, aps, strict=True) if q.kind == k])
        for k in FREEFORM_KINDS
    }
    return {
        "freeform_mAP": _mean(aps),
        "freeform_AP": {q.text: ap for q, ap in zip(queries, aps, strict=True)},
        "n_freeform_queries": len(queries),
        "freeform_by_kind": {k: round(v, 6) for k, v in by_kind.items() if v is not None},
        "freeform_mAP_interval": None if interval is None else list(interval),
    }


def _scene(row: MetaRow | None, index: int) -> Hashable:
    if row is None or row.get("group") is None:
        return ("clip", index)
    return (row.get("class"), row.get("group"))


def class_queries(classes: Sequence[str], template: str = QUERY_TEMPLATE) -> list[str]:
    return [template.format(class_phrase(c)) for c in classes]


def evaluate_vectors(
    encoder: Any,
    classes: Sequence[str],
    clip_vectors: np.ndarray,
    clip_labels: Sequence[str | None],
    template: str = QUERY_TEMPLATE,
    *,
    meta: Sequence[MetaRow | None] | None = None,
    heldout: Sequence[str] | None = None,
    windows: Sequence[np.ndarray] | None = None,
    interval: bool = False,
) -> RetrievalReport:
    """All figures for clip vectors under ``encoder``'s text tower.

    ``interval`` adds ``freeform_mAP_interval``, resampling the scenes of ``meta``
    (class x group; a clip without a row is its own scene).

    ``windows`` (each clip's window vectors, (S_i, D)) adds ``window_mAP``: the class
    queries' mAP when each clip scores by its windows as the search ranks videos.

    ``meta`` holds each clip's ``synth_meta.jsonl`` row (None for a clip without
    one), aligned with ``clip_vectors``; without it the free-form and held-out
    figures are null. ``heldout`` lists "Class:colour" combos; None takes the
    encoder's own (``encoder.video.heldout``).
    """
    labelled = set(clip_labels)
    present = [c for c in classes if c in labelled]
    own = list(getattr(encoder.video, "heldout", None) or [])
    combos = own if heldout is None else list(heldout)
    free = freeform_queries(meta) if meta is not None else []
    held = heldout_queries(combos, meta) if meta is not None else []

    texts = class_queries(present, template) + [q.text for q in free] + [q.text for q in held]
    vectors = encoder.encode_text(texts)
    n_class, n_free = len(present), len(free)
    class_vecs, free_vecs = vectors[:n_class], vectors[n_class : n_class + n_free]
    held_vecs = vectors[n_class + n_free :]

    metrics = retrieval_metrics(class_vecs, present, clip_vectors, clip_labels)
    metrics["window_mAP"] = (
        window_map(class_vecs, present, windows, clip_labels) if windows is not None else None
    )
    metrics["query_template"] = template
    pairs = pair_metrics(
        dict(zip(present, class_vecs, strict=True)),
        clip_vectors,
        clip_labels,
        metrics["per_class_AP"],
    )
    metrics["pairs"] = pairs
    metrics["pairs_mAP"] = _mean([p["mean"] for p in pairs.values()])

    if meta is None:
        metrics.update(dict.fromkeys(("freeform_mAP", "freeform_AP", "n_freeform_queries"), None))
        metrics["freeform_by_kind"] = metrics["freeform_mAP_interval"] = None
    else:
        scenes = [_scene(row, i) for i, row in enumerate(meta)] if interval else None
        metrics.update(attribute_metrics(free_vecs, free, clip_vectors, scenes))

    metrics["heldout"] = combos or None
    metrics["heldout_own"] = bool(combos) and set(combos) <= set(own)
    if combos and meta is not None:
        relevant = np.stack([q.relevant for q in held])
        aps = query_aps(held_vecs, clip_vectors, relevant)
        metrics["heldout_AP"] = dict(zip(combos, aps, strict=True))
        metrics["heldout_mAP"] = _mean(aps)
    else:
        metrics["heldout_AP"] = None
        metrics["heldout_mAP"] = None
    return RetrievalReport(metrics)


# --- decoding and embedding --------------------------------------------------------------------


def decode_passes(encoders: Sequence[Any]) -> int:
    """How many times :func:`embed_for_eval` decodes the clips (once per frame count)."""
    return len({e.video.num_frames for e in encoders})


def _embed_decoded(encoder: Any, decoded: Sequence[Any], plan: WindowPlan) -> dict[int, Any]:
    """Embeddings of already decoded clips (``frames.Decoded``) by clip index."""
    from clipsearch.pipeline.embed import embed_decoded

    good = [d for d in decoded if d.frames is not None]
    return {e.index: e.embedding for e in embed_decoded(encoder, good, plan)} if good else {}


@dataclass(frozen=True)
class EvalVectors:
    """What :func:`embed_for_eval` gives: per encoder, the clips' vectors (n, D) and each
    clip's window vectors (S_i, D); the indices of the clips every encoder embedded; the
    paths of the clips that failed."""

    vectors: list[np.ndarray]
    windows: list[list[np.ndarray]]
    kept: list[int]
    failed: list[str]
    # each clip's whole-clip view, one unit vector per frame (T, D)
    frames: list[list[np.ndarray]] = field(default_factory=list)


def embed_for_eval(
    encoders: Sequence[Any],
    clips: Sequence[Any],
    *,
    plan: WindowPlan | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> EvalVectors:
    """Each encoder's vectors of ``clips`` (``dataset.Clip``), decoded and cut into windows
    as ingest does (``plan``: a :class:`~clipsearch.windows.WindowPlan`, None: ingest's
    default), so a clip's vector is the mean of its windows' vectors as stored.

    Clips are decoded once per distinct frame count and shared by the encoders
    that sample that many frames.
    """
    from clipsearch.pipeline.embed import EmbeddedClip, embed_clips
    from clipsearch.windows import WindowPlan

    cut = plan if plan is not None else WindowPlan()
    sources = [c.source for c in clips]
    embedded: list[dict[int, Any]] = [{} for _ in encoders]
    failed: set[int] = set()
    for num_frames in dict.fromkeys(e.video.num_frames for e in encoders):
        group = [i for i, e in enumerate(encoders) if e.video.num_frames == num_frames]
        first, others = group[0], group[1:]
        batch_decoded: list[Any] = []
        hook = batch_decoded.append if others else None
        for batch in embed_clips(
            encoders[first], sources, workers=workers, on_decoded=hook, plan=cut
        ):
            for item in batch:
                if isinstance(item, EmbeddedClip):
                    embedded[first][item.index] = item.embedding
                else:
                    failed.add(item.index)
            for i in others:
                embedded[i].update(_embed_decoded(encoders[i], batch_decoded, cut))
            batch_decoded.clear()
            if progress:
                progress(len(batch))
    kept = [i for i in range(len(clips)) if i not in failed and all(i in e for e in embedded)]
    failed_paths = [clips[i].path for i in range(len(clips)) if i not in set(kept)]
    if not kept:
        raise DatasetError(f"none of the {len(clips)} clips could be decoded")
    return EvalVectors(
        vectors=[np.stack([e[i].pooled for i in kept]) for e in embedded],
        windows=[[e[i].windows for i in kept] for e in embedded],
        kept=kept,
        failed=failed_paths,
        frames=[[e[i].frames for i in kept] for e in embedded],
    )


def evaluate_models(
    encoders: Sequence[Any],
    classes: Sequence[str],
    clips: Sequence[Any],
    *,
    meta: Mapping[str, MetaRow] | None = None,
    template: str = QUERY_TEMPLATE,
    plan: WindowPlan | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[RetrievalReport]:
    """One report per encoder, all on the same clips (those every encoder could embed),
    cut into windows by ``plan`` (None: ingest's default).

    ``meta`` is :func:`clipsearch.data.synthucf.read_meta`'s dict (None: no free-form
    or held-out figures). Held-out combos are the first encoder's own list, or
    else the next one's that has one, and every model is scored on those same combos.
    """
    embedded = embed_for_eval(encoders, clips, plan=plan, workers=workers, progress=progress)
    return score_embedded(encoders, classes, clips, embedded, meta=meta, template=template)


def score_embedded(
    encoders: Sequence[Any],
    classes: Sequence[str],
    clips: Sequence[Any],
    embedded: EvalVectors,
    *,
    meta: Mapping[str, MetaRow] | None = None,
    template: str = QUERY_TEMPLATE,
) -> list[RetrievalReport]:
    """:func:`evaluate_models`'s reports from what :func:`embed_for_eval` gave."""
    kept = embedded.kept
    labels = [clips[i].label for i in kept]
    rows = [meta.get(clips[i].path) for i in kept] if meta is not None else None
    combos = next((list(e.video.heldout) for e in encoders if e.video.heldout), [])
    reports = []
    for encoder, vecs, windows in zip(encoders, embedded.vectors, embedded.windows, strict=True):
        report = evaluate_vectors(
            encoder,
            classes,
            vecs,
            labels,
            template,
            meta=rows,
            heldout=combos,
            windows=windows,
            interval=True,
        )
        report.metrics["failed"] = embedded.failed
        report.metrics["pooling"] = encoder.video.pooling
        report.metrics["num_frames"] = encoder.video.num_frames
        reports.append(report)
    return reports


def evaluate_clips(
    encoder: Any,
    classes: Sequence[str],
    clips: Sequence[Any],
    *,
    meta: Mapping[str, MetaRow] | None = None,
    template: str = QUERY_TEMPLATE,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> RetrievalReport:
    """Decode and embed ``clips`` (``dataset.Clip``) exactly as ingest does, then score."""
    return evaluate_models(
        [encoder], classes, clips, meta=meta, template=template, workers=workers, progress=progress
    )[0]
