"""``clipsearch bench-moments``: one point per video (design A) vs one point per segment (B).

The question: a query should find the k videos whose *best moment* matches it best, and
name that moment. Two ways to store the moments in Qdrant:

- **design A**: one point per video, a dense ``pooled`` vector (cosine, HNSW) and a
  ``segments`` multivector (one vector per moment window, MaxSim, no graph). Search
  prefetches the top ``P`` videos by ``pooled``, reranks them by MaxSim over their
  segments, returns the segment vectors and re-scores them client-side to name the winning
  segment (the same re-scoring as :class:`~clipsearch.search.SearchService`). clipsearch
  searched this way until this benchmark; it is measured here with raw Qdrant calls on its
  own shard (:class:`DesignA`), independent of clipsearch's store.
- **design B**: one point per segment (payload: video, segment index, start_s, end_s), HNSW
  on the segment vectors, grouped by video (best segment per video). Qdrant Edge has no
  group-by, so on Edge the query over-fetches ``k * f`` segments and groups client-side
  (first hit of a video = its best segment), or fetches adaptively (doubling the limit until
  ``k`` distinct videos came back). Fetching ``k * max_segments_per_video`` segments always
  yields ``k`` videos, and with an exact scan then the exact answer. These hand-built rows
  (:class:`DesignB`, raw Qdrant calls) map the design space.
- **product**: what clipsearch ships, chosen because of this benchmark - design B in the
  real :class:`~clipsearch.store.edge.QdrantEdgeStore` (:class:`Product`): its video shard
  (one point per video, as in A, to read the segment vectors back) plus its ``moments/``
  segment shard, ``search_segments`` at :class:`~clipsearch.search.SearchLimits`'
  ``prefetch`` (the first segment limit, doubled until ``k`` videos came back), after
  ``optimize``. Its build time and disk size cover both shards.

All approximate the **exact ground truth**: the cosine of every segment of every video with
the query, a video's score = its best segment's, top-k videos by that score - computed by
brute force here (:func:`exact_moments`).

The data is synthetic but structured (:func:`synthetic_moments`): latent class directions,
short trimmed clips whose action fills most of the clip and long untrimmed videos with a
short action somewhere inside, a per-video background, a shared offset and noise; pooled =
the normalised mean of a video's segments; queries = a class direction plus noise. Every
measured figure comes from a run; nothing is hard-coded.

Optionally (``--local-videos``) both designs and the shipped
:class:`~clipsearch.store.client.QdrantClientStore` also run on qdrant-client's local mode,
where design B can use the real ``query_points_groups``; local mode is an exact pure-Python
reference, so its latencies say nothing about Qdrant itself.

``add_parser(sub, common)`` registers the subcommand and ``run(args)`` runs it. Qdrant and
matplotlib are only imported when the benchmark runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import logging
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from clipsearch.benchutil import (
    cpu_line,
    disk_mb,
    environment,
    latency_summary,
    parse_int_list,
    size_label,
)
from clipsearch.errors import ClipSearchError, InvalidInput

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

DEFAULT_VIDEOS = "10000,1000"
DEFAULT_DIMS = "512"
DEFAULT_PREFETCH = "50,100,200,400"
DEFAULT_OVERFETCH = "1,2,4,8,16"

# Design A's two named vectors (one video per point), as clipsearch names them.
POOLED = "pooled"
SEGMENTS = "segments"
# Design B's single named vector (one segment per point).
SEGMENT = "segment"
DESIGN_A = "A"
DESIGN_B = "B"
PRODUCT = "product"
# SearchLimits.prefetch: the first-round segment limit the product searches with.
PRODUCT_PREFETCH = 64
# Two found videos whose exact scores differ by less than this are a tie (float32 scoring).
TIE_TOLERANCE = 1e-5


# --------------------------------------------------------------------------- settings


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidInput(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _span(value: Any, name: str, *, lo: float, integer: bool = False) -> tuple[float, float]:
    try:
        a, b = value
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a (low, high) pair, got {value!r}") from None
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InvalidInput(f"{name} must hold finite numbers, got {value!r}")
        if integer and int(v) != v:
            raise InvalidInput(f"{name} must hold integers, got {value!r}")
    if a < lo or b < a:
        raise InvalidInput(f"{name} must satisfy {lo} <= low <= high, got {value!r}")
    return float(a), float(b)


@dataclass(frozen=True)
class MomentSpec:
    """Shape of the synthetic videos (see :func:`synthetic_moments`).

    A segment vector is ``mean_norm * mu + background * b_video + a * class_dir + noise *
    eps`` (the class term only inside an action span), L2-normalised; ``eps`` has unit
    expected norm. A ``long_share`` of the videos are long and untrimmed
    (``long_windows`` windows, one action of ``long_action_windows`` windows); the rest
    are trimmed clips (``short_windows`` windows) whose action covers a ``short_action_share``
    of them. With probability ``second_action`` a video has a weaker second action of a
    random class. Queries are ``query_mean * mu + class_dir + query_noise * eps``.
    """

    dim: int = 512
    videos_per_class: int = 25
    long_share: float = 0.3
    short_windows: tuple[int, int] = (3, 10)
    long_windows: tuple[int, int] = (10, 60)
    long_action_windows: tuple[int, int] = (1, 8)
    short_action_share: tuple[float, float] = (0.5, 1.0)
    action: tuple[float, float] = (0.5, 1.2)
    second_action: float = 0.5
    second_strength: tuple[float, float] = (0.3, 0.9)
    mean_norm: float = 0.5
    background: float = 0.9
    noise: float = 0.6
    query_mean: float = 0.3
    query_noise: float = 0.9
    window_s: float = 2.0  # segment j spans [j * stride_s, j * stride_s + window_s]
    stride_s: float = 1.0

    def validate(self) -> MomentSpec:
        """Raise InvalidInput on a bad setting; return self."""
        _positive_int(self.dim, "dim")
        _positive_int(self.videos_per_class, "videos_per_class")
        _span(self.short_windows, "short_windows", lo=1, integer=True)
        _span(self.long_windows, "long_windows", lo=1, integer=True)
        _span(self.long_action_windows, "long_action_windows", lo=1, integer=True)
        _span(self.short_action_share, "short_action_share", lo=0)
        if self.short_action_share[1] > 1:
            raise InvalidInput("short_action_share must lie in [0, 1]")
        _span(self.action, "action", lo=0)
        _span(self.second_strength, "second_strength", lo=0)
        for name in ("long_share", "second_action"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 <= value <= 1:
                raise InvalidInput(f"{name} must be a probability, got {value!r}")
        for name in ("mean_norm", "background", "noise", "query_mean", "query_noise"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise InvalidInput(f"{name} must be a non-negative number, got {value!r}")
        if not self.window_s > 0 or not 0 < self.stride_s <= self.window_s:
            raise InvalidInput("need window_s > 0 and 0 < stride_s <= window_s")
        return self

    @property
    def max_segments(self) -> int:
        return int(max(self.short_windows[1], self.long_windows[1]))


@dataclass(frozen=True)
class BenchConfig:
    """What to measure."""

    k: int = 10
    prefetch: tuple[int, ...] = (50, 100, 200, 400)  # design A
    product_prefetch: tuple[int, ...] = (PRODUCT_PREFETCH,)  # the product's first limit
    overfetch: tuple[int, ...] = (1, 2, 4, 8, 16)  # design B: limit = k * factor
    adaptive_start: int = 2  # design B adaptive: first limit k * this, then doubling
    hnsw_ef: tuple[int, ...] = (128, 256)  # design B adaptive also at these HNSW ef
    prime: bool = True  # one untimed pass over all queries before a design's timings
    warmup: int = 20
    target_recall: float = 0.95
    upsert_batch: int = 256
    local_videos: int = 0  # also run qdrant-client local mode at this size (0: skip)
    local_queries: int = 50
    workdir: str | None = None  # where the temporary stores go (None: system temp dir)

    def validate(self) -> BenchConfig:
        """Raise InvalidInput on a bad setting; return self."""
        _positive_int(self.k, "k")
        if not self.prefetch or not self.overfetch:
            raise InvalidInput("give at least one prefetch and one over-fetch value")
        for p in self.prefetch:
            _positive_int(p, "prefetch")
        if not self.product_prefetch:
            raise InvalidInput("give at least one product prefetch value")
        for p in self.product_prefetch:
            _positive_int(p, "product prefetch")
        for f in self.overfetch:
            _positive_int(f, "over-fetch factor")
        _positive_int(self.adaptive_start, "adaptive_start")
        for ef in self.hnsw_ef:
            _positive_int(ef, "hnsw_ef")
        _positive_int(self.upsert_batch, "upsert_batch")
        _positive_int(self.local_queries, "local_queries")
        for name in ("warmup", "local_videos"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput(f"{name} must be a non-negative integer, got {value!r}")
        if not 0 < self.target_recall <= 1:
            raise InvalidInput(f"target recall must be in (0, 1], got {self.target_recall!r}")
        return self


# --------------------------------------------------------------------------- data


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


@dataclass(frozen=True)
class MomentData:
    """Videos as segment vectors, plus queries.

    ``segments`` (T, D) holds every video's segments back to back: video ``i`` owns rows
    ``offsets[i]:offsets[i + 1]``. ``pooled`` (N, D) is one vector per video; ``long`` marks
    the long untrimmed videos; ``video_class`` and ``query_class`` are the latent classes.
    """

    segments: np.ndarray
    offsets: np.ndarray
    pooled: np.ndarray
    long: np.ndarray
    video_class: np.ndarray
    queries: np.ndarray
    query_class: np.ndarray
    window_s: float = 2.0
    stride_s: float = 1.0

    @property
    def n_videos(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_segments(self) -> int:
        return int(self.offsets[-1])

    @property
    def dim(self) -> int:
        return int(self.segments.shape[1])

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def max_segments(self) -> int:
        return int(self.counts.max())

    def video(self, i: int) -> np.ndarray:
        """The (S_i, D) segment vectors of video ``i``."""
        return self.segments[self.offsets[i] : self.offsets[i + 1]]

    def times(self, i: int) -> list[list[float]]:
        """[start_s, end_s] of each segment of video ``i``."""
        n = int(self.offsets[i + 1] - self.offsets[i])
        return [[j * self.stride_s, j * self.stride_s + self.window_s] for j in range(n)]


def from_videos(
    videos: Sequence[np.ndarray],
    queries: np.ndarray,
    *,
    long: Sequence[bool] | None = None,
    video_class: Sequence[int] | None = None,
    query_class: Sequence[int] | None = None,
) -> MomentData:
    """MomentData from a list of (S_i, D) segment arrays (normalised; pooled = their mean)."""
    if not videos:
        raise InvalidInput("need at least one video")
    mats = [normalize(np.atleast_2d(np.asarray(v, dtype=np.float32))) for v in videos]
    dim = mats[0].shape[1]
    if any(m.ndim != 2 or m.shape[1] != dim or len(m) == 0 for m in mats):
        raise InvalidInput("every video needs S >= 1 segment vectors of the same size")
    q = normalize(np.atleast_2d(np.asarray(queries, dtype=np.float32)))
    if q.shape[1] != dim:
        raise InvalidInput(f"queries have size {q.shape[1]}, segments {dim}")
    n = len(mats)
    counts = np.array([len(m) for m in mats], dtype=np.int64)
    return MomentData(
        segments=np.concatenate(mats),
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        pooled=normalize(np.stack([m.mean(axis=0) for m in mats])),
        long=np.asarray(long if long is not None else np.zeros(n), dtype=bool),
        video_class=np.asarray(video_class if video_class is not None else np.zeros(n), int),
        queries=q,
        query_class=np.asarray(
            query_class if query_class is not None else np.zeros(len(q)), dtype=int
        ),
    )


def synthetic_moments(
    n_videos: int, n_queries: int, spec: MomentSpec | None = None, seed: int = 0
) -> MomentData:
    """Seeded synthetic videos and queries (see :class:`MomentSpec`)."""
    spec = (spec or MomentSpec()).validate()
    n = _positive_int(n_videos, "videos")
    nq = _positive_int(n_queries, "queries")
    rng = np.random.default_rng(seed)
    dim = spec.dim
    n_classes = max(2, n // spec.videos_per_class)
    mu = normalize(rng.standard_normal(dim))
    class_dirs = normalize(rng.standard_normal((n_classes, dim)))
    long = rng.random(n) < spec.long_share
    lo_s, hi_s = (int(v) for v in spec.short_windows)
    lo_l, hi_l = (int(v) for v in spec.long_windows)
    counts = np.where(long, rng.integers(lo_l, hi_l + 1, n), rng.integers(lo_s, hi_s + 1, n))
    video_class = rng.integers(0, n_classes, n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    segments = np.empty((int(offsets[-1]), dim), dtype=np.float32)
    scale = 1.0 / math.sqrt(dim)
    lo_a, hi_a = (int(v) for v in spec.long_action_windows)
    for i in range(n):
        s = int(counts[i])
        background = normalize(rng.standard_normal(dim))
        x = (
            spec.mean_norm * mu
            + spec.background * background
            + (spec.noise * scale) * rng.standard_normal((s, dim), dtype=np.float32)
        )
        if long[i]:
            span = min(s, int(rng.integers(lo_a, hi_a + 1)))
        else:
            span = max(1, math.ceil(s * rng.uniform(*spec.short_action_share)))
        start = int(rng.integers(0, s - span + 1))
        # The action's strength varies a little over its windows: it has a best moment.
        strength = rng.uniform(*spec.action) * (0.7 + 0.3 * rng.random(span))
        x[start : start + span] += strength[:, None] * class_dirs[video_class[i]]
        if rng.random() < spec.second_action:
            other = int(rng.integers(0, n_classes))
            span2 = min(s, int(rng.integers(lo_a, hi_a + 1)))
            start2 = int(rng.integers(0, s - span2 + 1))
            x[start2 : start2 + span2] += rng.uniform(*spec.second_strength) * class_dirs[other]
        segments[offsets[i] : offsets[i + 1]] = normalize(x)
    pooled = normalize(np.add.reduceat(segments, offsets[:-1], axis=0))
    query_class = rng.integers(0, n_classes, nq)
    queries = normalize(
        spec.query_mean * mu
        + class_dirs[query_class]
        + (spec.query_noise * scale) * rng.standard_normal((nq, dim))
    )
    return MomentData(
        segments=segments,
        offsets=offsets,
        pooled=pooled,
        long=long,
        video_class=video_class,
        queries=queries,
        query_class=query_class,
        window_s=spec.window_s,
        stride_s=spec.stride_s,
    )


# --------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class Truth:
    """Exact top-k per query: videos (Q, k), their best segment (local index) and score."""

    videos: np.ndarray
    segments: np.ndarray
    scores: np.ndarray


def exact_moments(data: MomentData, k: int, *, chunk: int = 64) -> Truth:
    """Brute force over all segments of all videos: a video scores its best segment's cosine.

    Ranks by the float32 scores, ties broken by the lower video index.
    """
    k = min(_positive_int(k, "k"), data.n_videos)
    q_all = data.queries
    videos = np.empty((len(q_all), k), dtype=np.int64)
    best = np.empty((len(q_all), k), dtype=np.int64)
    scores = np.empty((len(q_all), k), dtype=np.float32)
    starts = data.offsets[:-1]
    for lo in range(0, len(q_all), chunk):
        q = q_all[lo : lo + chunk]
        sims = q @ data.segments.T  # (c, T)
        per_video = np.maximum.reduceat(sims, starts, axis=1)  # (c, N)
        top = np.argsort(-per_video, axis=1, kind="stable")[:, :k]
        for r in range(len(q)):
            for c, v in enumerate(top[r]):
                row = sims[r, data.offsets[v] : data.offsets[v + 1]]
                videos[lo + r, c] = v
                best[lo + r, c] = int(np.argmax(row))
                scores[lo + r, c] = per_video[r, v]
    return Truth(videos=videos, segments=best, scores=scores)


class Found(NamedTuple):
    """One result of a design: a video, the segment it names, its score."""

    video: int
    segment: int
    score: float


def evaluate(
    found: Sequence[Sequence[Found]], truth: Truth, data: MomentData, k: int
) -> dict[str, float]:
    """Recall@k of videos and accuracy of the named segments against the exact answer.

    - ``recall``: |found top-k videos ∩ exact top-k| / k, averaged over queries; a found
      video whose exact score ties the exact k-th (within ``TIE_TOLERANCE``) counts too;
    - ``recall_long`` / ``recall_short``: the same over exact top-k videos that are long
      (untrimmed) / short clips;
    - ``segment_accuracy``: of the exact top-k videos that were found, the share whose named
      segment is the exact best one;
    - ``top1_moment``: the share of queries whose first result is the exact best video and
      names its exact best segment.
    """
    if len(found) != len(truth.videos):
        raise InvalidInput(f"{len(found)} result lists for {len(truth.videos)} queries")
    k = min(k, truth.videos.shape[1])
    hits = seg_ok = seg_n = top1 = 0
    long_hit = long_n = short_hit = short_n = 0
    for qi, results in enumerate(found):
        top = results[:k]
        named = {f.video: f.segment for f in top}
        true_v = truth.videos[qi, :k]
        kth = float(truth.scores[qi, k - 1])
        truth_set = {int(v) for v in true_v}
        for f in top:
            if f.video in truth_set:
                hits += 1
            else:
                exact = float((data.video(f.video) @ data.queries[qi]).max())
                hits += exact >= kth - TIE_TOLERANCE
        for c, v in enumerate(true_v):
            got = int(v) in named
            if data.long[v]:
                long_n += 1
                long_hit += got
            else:
                short_n += 1
                short_hit += got
            if got:
                seg_n += 1
                seg_ok += named[int(v)] == int(truth.segments[qi, c])
        if top and top[0].video == int(true_v[0]) and top[0].segment == int(truth.segments[qi, 0]):
            top1 += 1
    nq = max(1, len(found))
    return {
        "recall": round(min(1.0, hits / (k * nq)), 4),
        "recall_long": round(long_hit / long_n, 4) if long_n else math.nan,
        "recall_short": round(short_hit / short_n, 4) if short_n else math.nan,
        "segment_accuracy": round(seg_ok / seg_n, 4) if seg_n else math.nan,
        "top1_moment": round(top1 / nq, 4),
    }


# --------------------------------------------------------------------------- timing


def timed_queries(
    search: Callable[[np.ndarray], list[Found]], queries: np.ndarray, warmup: int
) -> tuple[list[list[Found]], dict[str, float]]:
    """Run ``search`` on each query, one at a time, after ``warmup`` untimed ones."""
    for i in range(min(warmup, len(queries))):
        search(queries[i])
    found: list[list[Found]] = []
    latencies: list[float] = []
    clock = time.perf_counter
    start = clock()
    for q in queries:
        t = clock()
        found.append(search(q))
        latencies.append(clock() - t)
    return found, latency_summary(latencies, clock() - start, digits=3)


def _disk_mb(path: Path, under: str | None = None) -> float:
    """Allocated size of the files below ``path`` (or below ``path/under``) in MiB."""
    return disk_mb(path / under if under else path, digits=2)


def _shard_info(path: Path) -> dict[str, int]:
    import qdrant_edge as qe

    shard = qe.EdgeShard.load(str(path))
    try:
        info = shard.info()
        return {
            "points": int(info.points_count),
            "segments": int(info.segments_count),
            "indexed_vectors": int(info.indexed_vectors_count),
        }
    finally:
        shard.close()


# --------------------------------------------------------------------------- design A


def _build_shard(
    qe: Any, path: Path, config: Any, batches: Iterable[list[Any]]
) -> tuple[Any, dict[str, Any]]:
    """Create a shard at ``path``, upsert ``batches`` into it and optimize it: the reopened
    shard and its build figures."""
    t = time.perf_counter()
    shard = qe.EdgeShard.create(str(path), config)
    try:
        for batch in batches:
            if batch:
                shard.update(qe.UpdateOperation.upsert_points(batch))
        shard.flush()
        upsert_s = time.perf_counter() - t
        t = time.perf_counter()
        shard.optimize()
        shard.flush()
        optimize_s = time.perf_counter() - t
    finally:
        shard.close()
    build: dict[str, Any] = {
        "upsert_s": round(upsert_s, 2),
        "optimize_s": round(optimize_s, 2),
        "total_s": round(upsert_s + optimize_s, 2),
        **_shard_info(path),
        "disk_mb": _disk_mb(path),
        "wal_mb": _disk_mb(path, "wal"),
    }
    return qe.EdgeShard.load(str(path)), build


def video_id(i: int) -> str:
    """The point id of synthetic video ``i`` (a UUID, as clipsearch stores them)."""
    from clipsearch.store.base import clip_id

    return clip_id(f"momentbench/{i}.mp4")


def _video_payload(data: MomentData, i: int) -> dict[str, Any]:
    """Design A's payload: the video's index and its segments' spans."""
    return {"video": i, "segment_times": data.times(i)}


def _product_payload(data: MomentData, i: int) -> dict[str, Any]:
    """The product's video payload: the segments' spans (the store adds ``video`` = the
    video's id to each segment point, so the video's index is looked up by id instead)."""
    return {"segment_times": data.times(i)}


class DesignA:
    """One point per video in a raw Qdrant Edge shard (``pooled`` + ``segments``).

    The search is design A's two-stage query: prefetch the top ``P`` videos by ``pooled``
    (HNSW), rerank them by MaxSim over ``segments``, return the segment vectors, then name
    the winning segment client-side by re-scoring them, as
    :class:`~clipsearch.search.SearchService` does.
    """

    name = DESIGN_A

    def __init__(self, path: Path, data: MomentData, cfg: BenchConfig) -> None:
        import qdrant_edge as qe

        self._qe = qe
        self.path = path
        self.dim = data.dim
        batches = (
            [
                qe.Point(
                    video_id(i),
                    {POOLED: data.pooled[i].tolist(), SEGMENTS: data.video(i).tolist()},
                    _video_payload(data, i),
                )
                for i in range(lo, min(data.n_videos, lo + cfg.upsert_batch))
            ]
            for lo in range(0, data.n_videos, cfg.upsert_batch)
        )
        from clipsearch.store.edge import video_shard_config  # design A's shard is the video shard

        self.shard, self.build = _build_shard(qe, path, video_shard_config(data.dim), batches)
        self.client_s: list[float] = []

    def search(self, q: np.ndarray, k: int, prefetch: int) -> list[Found]:
        """Prefetch ``prefetch`` videos by pooled cosine, rerank by MaxSim, name the segment."""
        qe = self._qe
        vector = np.asarray(q, np.float32).tolist()
        request = qe.QueryRequest(
            limit=int(k),
            prefetches=[
                qe.Prefetch(
                    limit=max(int(prefetch), int(k)),
                    query=qe.Query.Nearest(vector, using=POOLED),
                )
            ],
            query=qe.Query.Nearest([vector], using=SEGMENTS),
            with_payload=True,
            with_vector=[SEGMENTS],
        )
        scored = self.shard.query(request)
        t = time.perf_counter()
        found = []
        for p in scored:
            payload = dict(p.payload or {})
            segments = _segments_of(p.vector, self.dim)
            found.append(_name_segment(int(payload["video"]), segments, payload, p.score, q))
        self.client_s.append(time.perf_counter() - t)
        return found

    def close(self) -> None:
        self.shard.close()


def _segments_of(vectors: Any, dim: int) -> np.ndarray:
    """The (S, D) ``segments`` vectors of a returned design-A point."""
    if not isinstance(vectors, dict) or SEGMENTS not in vectors:
        raise ClipSearchError(f"a design-A point came back without its {SEGMENTS!r} vectors")
    return np.asarray(vectors[SEGMENTS], dtype=np.float32).reshape(-1, dim)


def _name_segment(
    video: int, segments: np.ndarray, payload: dict[str, Any], score: float, q: np.ndarray
) -> Found:
    """SearchService's client-side naming: re-score the segments, the best moment's index."""
    from clipsearch.search import stored_windows
    from clipsearch.segments import best_moment, segment_scores

    scores = segment_scores(segments, q)
    moment = best_moment(scores, stored_windows(payload, len(scores)))
    return Found(video, moment.index, float(score))


# --------------------------------------------------------------------------- design B


def group_best(points: Sequence[tuple[int, int, float]], k: int) -> list[Found]:
    """Group (video, segment, score) hits sorted by score: each video's first hit, top k."""
    seen: set[int] = set()
    out: list[Found] = []
    for video, segment, score in points:
        if video in seen:
            continue
        seen.add(video)
        out.append(Found(int(video), int(segment), float(score)))
        if len(out) == k:
            break
    return out


def _segment_payload(data: MomentData, i: int, j: int) -> dict[str, Any]:
    start = j * data.stride_s
    return {"video": i, "segment": j, "start_s": start, "end_s": start + data.window_s}


class DesignB:
    """One point per segment in a raw Qdrant Edge shard (HNSW), grouped client-side."""

    name = DESIGN_B

    def __init__(self, path: Path, data: MomentData, cfg: BenchConfig) -> None:
        import qdrant_edge as qe

        self._qe = qe
        self.path = path
        self.max_limit = cfg.k * data.max_segments
        self.total = data.n_segments
        # Qdrant's defaults for everything else, as QdrantEdgeStore has for ``pooled``.
        config = qe.EdgeConfig(
            vectors={SEGMENT: qe.EdgeVectorParams(size=data.dim, distance=qe.Distance.Cosine)}
        )

        def batches() -> Iterator[list[Any]]:
            batch: list[Any] = []
            for i in range(data.n_videos):
                base = int(data.offsets[i])
                for j, vec in enumerate(data.video(i)):
                    batch.append(qe.Point(base + j, {SEGMENT: vec}, _segment_payload(data, i, j)))
                if len(batch) >= cfg.upsert_batch:
                    yield batch
                    batch = []
            yield batch

        self.shard, self.build = _build_shard(qe, path, config, batches())
        self.rounds: list[int] = []
        self.limits: list[int] = []
        self.client_s: list[float] = []

    def _params(self, exact: bool, ef: int | None) -> Any:
        if exact:
            return self._qe.SearchParams(exact=True)
        return self._qe.SearchParams(hnsw_ef=int(ef)) if ef else None

    def _fetch(self, q: list[float], limit: int, params: Any) -> list[Any]:
        qe = self._qe
        request = qe.QueryRequest(
            limit=int(limit),
            query=qe.Query.Nearest(q, using=SEGMENT),
            with_payload=["video", "segment"],
            params=params,
        )
        return self.shard.query(request)

    def _group(self, scored: Sequence[Any], k: int) -> list[Found]:
        t = time.perf_counter()
        found = group_best(
            [(int(p.payload["video"]), int(p.payload["segment"]), float(p.score)) for p in scored],
            k,
        )
        self.client_s.append(time.perf_counter() - t)
        return found

    def search(
        self, q: np.ndarray, k: int, limit: int, *, exact: bool = False, ef: int | None = None
    ) -> list[Found]:
        """Over-fetch ``limit`` segments, keep each video's best, the top k videos.

        ``ef``: HNSW ef of the search (None: Qdrant's default); ``exact``: a full scan.
        """
        vector = np.asarray(q, np.float32).tolist()
        return self._group(self._fetch(vector, limit, self._params(exact, ef)), k)

    def search_adaptive(
        self, q: np.ndarray, k: int, start: int, *, ef: int | None = None
    ) -> list[Found]:
        """Fetch ``start`` segments, doubling until k distinct videos (or everything) came back."""
        vector = np.asarray(q, np.float32).tolist()
        params = self._params(False, ef)
        limit, rounds = min(start, self.max_limit), 1
        while True:
            found = self._group(self._fetch(vector, limit, params), k)
            if len(found) >= k or limit >= min(self.max_limit, self.total):
                break
            limit, rounds = min(limit * 2, self.max_limit), rounds + 1
        self.rounds.append(rounds)
        self.limits.append(limit)
        return found

    def close(self) -> None:
        self.shard.close()


# --------------------------------------------------------------------------- the product


class Product:
    """The shipped :class:`~clipsearch.store.edge.QdrantEdgeStore` (design B as shipped).

    Its video shard (one point per video) plus its ``moments/`` segment shard (one point per
    segment, HNSW), built through the store's own ``upsert`` and ``optimize``; the search is
    its ``search_segments`` (segment hits grouped by video, limit doubled until ``k``
    videos, the videos' segment vectors read back) plus SearchService's client-side naming.
    """

    name = PRODUCT

    def __init__(self, path: Path, data: MomentData, cfg: BenchConfig) -> None:
        from clipsearch.store.base import ClipPoint
        from clipsearch.store.edge import QdrantEdgeStore

        self.path = path
        self.index = {video_id(i): i for i in range(data.n_videos)}
        t = time.perf_counter()
        # No keyword/range indexes on filter fields: the benchmark never filters (the
        # segment shard's own index on ``video`` is always made).
        store = QdrantEdgeStore(path, payload_indexes=(), range_indexes=())
        store.ensure_collection(data.dim)
        moments = store.moments_path
        try:
            for lo in range(0, data.n_videos, cfg.upsert_batch):
                store.upsert(
                    [
                        ClipPoint(
                            id=video_id(i),
                            pooled=data.pooled[i],
                            segments=data.video(i),
                            payload=_product_payload(data, i),
                        )
                        for i in range(lo, min(data.n_videos, lo + cfg.upsert_batch))
                    ]
                )
            store.flush()
            upsert_s = time.perf_counter() - t
            t = time.perf_counter()
            store.optimize()
            store.flush()
            optimize_s = time.perf_counter() - t
        finally:
            store.close()
        videos, segments = _shard_info(path), _shard_info(moments)
        self.build: dict[str, Any] = {
            "upsert_s": round(upsert_s, 2),
            "optimize_s": round(optimize_s, 2),
            "total_s": round(upsert_s + optimize_s, 2),
            **{key: videos[key] + segments[key] for key in videos},
            "video_shard": videos,
            "segment_shard": segments,
            "disk_mb": _disk_mb(path),
            "wal_mb": round(_disk_mb(path, "wal") + _disk_mb(moments, "wal"), 2),
            "segment_shard_mb": _disk_mb(moments),
        }
        self.store = QdrantEdgeStore(path, payload_indexes=(), range_indexes=())
        self.client_s: list[float] = []

    def search(self, q: np.ndarray, k: int, prefetch: int) -> list[Found]:
        """The shipped ``search_segments`` plus SearchService's client-side segment naming."""
        hits = self.store.search_segments(q, k, prefetch=prefetch)
        t = time.perf_counter()
        found = [
            _name_segment(self.index[hit.id], hit.segments, hit.payload, float(hit.score), q)
            for hit in hits
        ]
        self.client_s.append(time.perf_counter() - t)
        return found

    def close(self) -> None:
        self.store.close()


# --------------------------------------------------------------------------- local mode


class LocalA:
    """Design A on qdrant-client local mode: one collection, the same two-stage query."""

    def __init__(self, data: MomentData, cfg: BenchConfig) -> None:
        from qdrant_client import QdrantClient
        from qdrant_client import models as qm

        from clipsearch.store.client import video_vectors_config

        self.dim = data.dim
        t = time.perf_counter()
        self.client = QdrantClient(":memory:")
        self.collection = "videos"
        self.client.create_collection(
            self.collection, vectors_config=video_vectors_config(data.dim)
        )
        points = [
            qm.PointStruct(
                id=video_id(i),
                vector={POOLED: data.pooled[i].tolist(), SEGMENTS: data.video(i).tolist()},
                payload=_video_payload(data, i),
            )
            for i in range(data.n_videos)
        ]
        for lo in range(0, len(points), cfg.upsert_batch):
            self.client.upsert(self.collection, points[lo : lo + cfg.upsert_batch], wait=True)
        self.build = {"upsert_s": round(time.perf_counter() - t, 2)}

    def search(self, q: np.ndarray, k: int, prefetch: int) -> list[Found]:
        from qdrant_client import models as qm

        vector = np.asarray(q, np.float32).tolist()
        response = self.client.query_points(
            self.collection,
            prefetch=qm.Prefetch(query=vector, using=POOLED, limit=max(int(prefetch), int(k))),
            query=[vector],
            using=SEGMENTS,
            limit=int(k),
            with_payload=True,
            with_vectors=[SEGMENTS],
        )
        found = []
        for p in response.points:
            payload = dict(p.payload or {})
            segments = _segments_of(p.vector, self.dim)
            found.append(_name_segment(int(payload["video"]), segments, payload, p.score, q))
        return found

    def close(self) -> None:
        self.client.close()


class LocalProduct:
    """The shipped :class:`~clipsearch.store.client.QdrantClientStore` in local mode."""

    def __init__(self, data: MomentData, cfg: BenchConfig) -> None:
        from clipsearch.store.base import ClipPoint
        from clipsearch.store.client import QdrantClientStore

        self.index = {video_id(i): i for i in range(data.n_videos)}
        t = time.perf_counter()
        self.store = QdrantClientStore.in_memory()
        self.store.ensure_collection(data.dim)
        self.store.upsert(
            [
                ClipPoint(video_id(i), data.pooled[i], data.video(i), _product_payload(data, i))
                for i in range(data.n_videos)
            ]
        )
        self.build = {"upsert_s": round(time.perf_counter() - t, 2)}

    def search(self, q: np.ndarray, k: int, prefetch: int) -> list[Found]:
        return [
            _name_segment(self.index[hit.id], hit.segments, hit.payload, float(hit.score), q)
            for hit in self.store.search_segments(q, k, prefetch=prefetch)
        ]

    def close(self) -> None:
        self.store.close()


class LocalB:
    """Design B on qdrant-client local mode with the server-side ``query_points_groups``."""

    def __init__(self, data: MomentData, cfg: BenchConfig) -> None:
        from qdrant_client import QdrantClient
        from qdrant_client import models as qm

        t = time.perf_counter()
        self.client = QdrantClient(":memory:")
        self.collection = "segments"
        self.client.create_collection(
            self.collection,
            vectors_config={SEGMENT: qm.VectorParams(size=data.dim, distance=qm.Distance.COSINE)},
        )
        points = [
            qm.PointStruct(
                id=int(data.offsets[i]) + j,
                vector={SEGMENT: vec.tolist()},
                payload=_segment_payload(data, i, j),
            )
            for i in range(data.n_videos)
            for j, vec in enumerate(data.video(i))
        ]
        for lo in range(0, len(points), 1024):
            self.client.upsert(self.collection, points[lo : lo + 1024])
        self.build = {"upsert_s": round(time.perf_counter() - t, 2)}

    def search(self, q: np.ndarray, k: int) -> list[Found]:
        response = self.client.query_points_groups(
            self.collection,
            query=np.asarray(q, np.float32).tolist(),
            using=SEGMENT,
            group_by="video",
            limit=k,
            group_size=1,
            with_payload=["segment"],
        )
        return [
            Found(int(g.id), int((g.hits[0].payload or {})["segment"]), float(g.hits[0].score))
            for g in response.groups
        ]

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------- the benchmark


def _row(
    setting: dict[str, Any], metrics: dict[str, float], latency: dict[str, float]
) -> dict[str, Any]:
    return {**setting, **metrics, **latency}


def headline(rows: Sequence[dict[str, Any]], target: float) -> dict[str, Any]:
    """The fastest row (by p50) reaching ``target`` recall, else the row of best recall."""
    good = [r for r in rows if r["recall"] >= target]
    if good:
        return {"reached_target": True, **min(good, key=lambda r: (r["p50_ms"], -r["recall"]))}
    return {"reached_target": False, **max(rows, key=lambda r: (r["recall"], -r["p50_ms"]))}


def verdict(
    a: dict[str, Any],
    b: dict[str, Any],
    target: float,
    *,
    names: tuple[str, str] = (DESIGN_A, DESIGN_B),
) -> str:
    """Which of two headline rows is better, and on what (derived from the figures)."""
    na, nb = names
    if a["reached_target"] and b["reached_target"]:
        winner = na if a["p50_ms"] <= b["p50_ms"] else nb
        why = (
            f"both reach recall@k >= {target:g}; {winner} is faster there "
            f"(p50 {na} {a['p50_ms']:.3f} ms vs {nb} {b['p50_ms']:.3f} ms)"
        )
    elif a["reached_target"] or b["reached_target"]:
        winner = na if a["reached_target"] else nb
        loser = b if winner == na else a
        why = (
            f"only {winner} reaches recall@k >= {target:g} "
            f"(the other peaks at {loser['recall']:.3f})"
        )
    else:
        winner = na if a["recall"] >= b["recall"] else nb
        why = (
            f"neither reaches recall@k >= {target:g}; {winner} gets closer "
            f"({na} {a['recall']:.3f}, {nb} {b['recall']:.3f})"
        )
    return f"{winner}: {why}"


def _data_summary(data: MomentData) -> dict[str, Any]:
    counts = data.counts
    return {
        "videos": data.n_videos,
        "dim": data.dim,
        "segments": data.n_segments,
        "segments_per_video": {
            "mean": round(float(counts.mean()), 2),
            "min": int(counts.min()),
            "max": int(counts.max()),
        },
        "long_videos": int(data.long.sum()),
        "classes": int(data.video_class.max()) + 1,
        "queries": len(data.queries),
    }


def bench_dataset(
    data: MomentData,
    cfg: BenchConfig,
    *,
    name: str,
    workdir: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Ground truth, both designs on Qdrant Edge, every setting; one JSON-able dict."""
    say = progress or (lambda _msg: None)
    k = cfg.k
    queries = data.queries
    result: dict[str, Any] = {"name": name, **_data_summary(data)}
    t = time.perf_counter()
    truth = exact_moments(data, k)
    result["ground_truth_s"] = round(time.perf_counter() - t, 2)

    warmup = cfg.warmup

    def measure(
        engine: DesignA | DesignB | Product, search: Callable[[np.ndarray], list[Found]]
    ) -> dict[str, Any]:
        found, lat = timed_queries(search, queries, warmup)
        client = engine.client_s[-len(queries) :]
        return {
            **evaluate(found, truth, data, k),
            **lat,
            "client_mean_ms": round(1000 * float(np.mean(client)), 3) if client else None,
            "short_results": sum(len(f) < min(k, data.n_videos) for f in found),
        }

    def prime(search: Callable[[np.ndarray], list[Found]]) -> None:
        """One untimed pass over every query: pages the shard's files in (mmap)."""
        if cfg.prime:
            for q in queries:
                search(q)

    def sweep_prefetch(design: Any, label: str, prefetches: Sequence[int]) -> list[dict[str, Any]]:
        """One row per prefetch of a design searched as ``design.search(q, k, prefetch)``."""
        prime(lambda q: design.search(q, k, max(prefetches)))
        rows = []
        for p in prefetches:
            rows.append({"prefetch": p, **measure(design, partial(design.search, k=k, prefetch=p))})
            r = rows[-1]
            say(f"  {label} prefetch={p}: recall {r['recall']:.4f}, p50 {r['p50_ms']:.3f} ms")
        return rows

    say(f"{name}: design A - building the store ({data.n_videos:,} video points)")
    design_a = DesignA(workdir / "design-a", data, cfg)
    try:
        say(f"  built in {design_a.build['total_s']:.1f} s, {design_a.build['disk_mb']:.1f} MB")
        rows_a = sweep_prefetch(design_a, "A", cfg.prefetch)
    finally:
        design_a.close()

    say(f"{name}: design B - building the shard ({data.n_segments:,} segment points)")
    design_b = DesignB(workdir / "design-b", data, cfg)
    try:
        say(f"  built in {design_b.build['total_s']:.1f} s, {design_b.build['disk_mb']:.1f} MB")
        prime(lambda q: design_b.search(q, k, design_b.max_limit))
        rows_b = []
        for limit in sorted({k * f for f in cfg.overfetch} | {design_b.max_limit}):
            setting = {"mode": "fixed", "limit": limit, "factor": round(limit / k, 2)}
            rows_b.append(
                {**setting, **measure(design_b, partial(design_b.search, k=k, limit=limit))}
            )
            r = rows_b[-1]
            say(f"  B limit={limit}: recall {r['recall']:.4f}, p50 {r['p50_ms']:.3f} ms")
        start = k * cfg.adaptive_start
        for ef in (None, *cfg.hnsw_ef):
            design_b.rounds.clear()
            design_b.limits.clear()
            row = measure(design_b, partial(design_b.search_adaptive, k=k, start=start, ef=ef))
            timed = len(queries)
            setting = {
                "mode": "adaptive",
                "limit": start,
                "factor": cfg.adaptive_start,
                "hnsw_ef": ef,
                "mean_rounds": round(float(np.mean(design_b.rounds[-timed:])), 3),
                "mean_final_limit": round(float(np.mean(design_b.limits[-timed:])), 1),
            }
            rows_b.append({**setting, **row})
            r = rows_b[-1]
            say(
                f"  B adaptive (hnsw_ef {ef or 'default'}): recall {r['recall']:.4f}, "
                f"p50 {r['p50_ms']:.3f} ms"
            )
        # The guaranteed over-fetch with an exact scan: the grouping itself is exact.
        warmup = min(cfg.warmup, 5)
        exact_row = {
            "mode": "exact-scan",
            "limit": design_b.max_limit,
            **measure(design_b, lambda q: design_b.search(q, k, design_b.max_limit, exact=True)),
        }
        say(f"  B exact scan: recall {exact_row['recall']:.4f}, p50 {exact_row['p50_ms']:.3f} ms")
    finally:
        design_b.close()

    warmup = cfg.warmup
    say(f"{name}: product - building the shipped QdrantEdgeStore (both shards)")
    product = Product(workdir / "product", data, cfg)
    try:
        say(f"  built in {product.build['total_s']:.1f} s, {product.build['disk_mb']:.1f} MB")
        rows_p = sweep_prefetch(product, "product", cfg.product_prefetch)
    finally:
        product.close()

    head_a = headline(rows_a, cfg.target_recall)
    head_b = headline(rows_b, cfg.target_recall)
    head_p = headline(rows_p, cfg.target_recall)
    result.update(
        {
            "design_a": {"build": design_a.build, "rows": rows_a, "headline": head_a},
            "design_b": {
                "build": design_b.build,
                "rows": rows_b,
                "exact_scan": exact_row,
                "headline": head_b,
            },
            "product": {"build": product.build, "rows": rows_p, "headline": head_p},
            "verdict": verdict(head_a, head_b, cfg.target_recall),
            "product_verdict": verdict(
                head_a, head_p, cfg.target_recall, names=(DESIGN_A, PRODUCT)
            ),
        }
    )
    return result


def bench_local(
    data: MomentData, cfg: BenchConfig, *, name: str, progress: Progress | None = None
) -> dict[str, Any]:
    """Both designs on qdrant-client local mode (exact, pure Python: a correctness reference)."""
    say = progress or (lambda _msg: None)
    k = cfg.k
    queries = data.queries[: cfg.local_queries]
    sub = dataclasses.replace(data, queries=queries, query_class=data.query_class[: len(queries)])
    truth = exact_moments(sub, k)
    warmup = min(cfg.warmup, 5)
    say(f"{name}: qdrant-client local mode ({data.n_videos:,} videos, {len(queries)} queries)")

    def sweep_prefetch(
        design: LocalA | LocalProduct, prefetch: Sequence[int]
    ) -> list[dict[str, Any]]:
        """One row per first-round limit; ``design`` is closed afterwards."""
        try:
            rows = []
            for p in prefetch:
                found, lat = timed_queries(partial(design.search, k=k, prefetch=p), queries, warmup)
                rows.append(_row({"prefetch": p}, evaluate(found, truth, sub, k), lat))
            return rows
        finally:
            design.close()

    local_a = LocalA(data, cfg)
    rows_a = sweep_prefetch(local_a, cfg.prefetch)
    local_b = LocalB(data, cfg)
    try:
        found, lat = timed_queries(lambda q: local_b.search(q, k), queries, warmup)
        row_b = _row({"mode": "query_points_groups"}, evaluate(found, truth, sub, k), lat)
    finally:
        local_b.close()
    say(f"  local B (groups): recall {row_b['recall']:.4f}, p50 {row_b['p50_ms']:.3f} ms")
    local_p = LocalProduct(data, cfg)
    rows_p = sweep_prefetch(local_p, cfg.product_prefetch)
    return {
        "name": name,
        **_data_summary(sub),
        "design_a": {"build": local_a.build, "rows": rows_a},
        "design_b": {"build": local_b.build, "rows": [row_b]},
        "product": {"build": local_p.build, "rows": rows_p},
    }


def run_benchmark(
    videos: Sequence[int],
    dims: Sequence[int],
    *,
    n_queries: int = 200,
    spec: MomentSpec | None = None,
    cfg: BenchConfig | None = None,
    seed: int = 0,
    command: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every (videos, dim) dataset, plus the optional local-mode run; one JSON-able dict."""
    cfg = (cfg or BenchConfig()).validate()
    base_spec = spec or MomentSpec()
    _positive_int(n_queries, "queries")
    if not videos or not dims:
        raise InvalidInput("give at least one size and one dimension")
    started = time.perf_counter()
    result: dict[str, Any] = {
        "command": command,
        "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "environment": environment(
            {"qdrant_edge": "qdrant-edge-py", "qdrant_client": "qdrant-client"}
        ),
        "config": asdict(cfg),
        "spec": asdict(base_spec),
        "queries": n_queries,
        "seed": seed,
        "datasets": [],
        "local": [],
        "notes": [
            "Qdrant Edge has no group-by: design B over-fetches k * factor segments and "
            "groups them client-side; 'adaptive' doubles the limit until k videos came back; "
            "the largest fixed limit is k * max segments per video, which always yields k "
            "videos (and the exact answer with an exact scan, see exact_scan).",
            "Queries run one at a time from one Python thread, after a warm-up; Qdrant's "
            "search pool is left at its default. Latency includes the binding call and the "
            "client-side work (A and product: re-scoring the returned segment vectors; B: "
            "grouping).",
            "A and B are built and queried with raw Qdrant Edge calls, independent of "
            "clipsearch's store; product is the shipped QdrantEdgeStore (design B: a video "
            "shard plus its moments/ segment shard, search_segments at SearchLimits' "
            f"prefetch {PRODUCT_PREFETCH}, segment queries at its hnsw_ef, the limit doubled "
            "until k videos came back, then the videos' segment vectors read back), built "
            "through its upsert and optimize without payload indexes on filter fields.",
            "disk_mb counts the whole store folder, WAL included (wal_mb of it); the "
            "product's covers both shards (segment_shard_mb of it).",
        ],
    }
    root = Path(tempfile.mkdtemp(prefix="clipsearch-momentbench-", dir=cfg.workdir))
    say = progress or (lambda _msg: None)
    try:
        for dim in dims:
            dspec = MomentSpec(**{**asdict(base_spec), "dim": int(dim)}).validate()
            for n in videos:
                name = f"{size_label(n)}-d{dim}"
                t = time.perf_counter()
                data = synthetic_moments(n, n_queries, dspec, seed)
                say(
                    f"{name}: {data.n_videos:,} videos, {data.n_segments:,} segments "
                    f"(generated in {time.perf_counter() - t:.1f} s)"
                )
                workdir = root / name
                workdir.mkdir()
                try:
                    result["datasets"].append(
                        bench_dataset(data, cfg, name=name, workdir=workdir, progress=say)
                    )
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
            if cfg.local_videos:
                data = synthetic_moments(cfg.local_videos, n_queries, dspec, seed)
                name = f"local-{size_label(cfg.local_videos)}-d{dim}"
                result["local"].append(bench_local(data, cfg, name=name, progress=say))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    if hasattr(os, "getloadavg"):
        result["environment"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if result["local"]:
        result["notes"].append(
            "local = qdrant-client local mode (prod-loc: the shipped QdrantClientStore): an "
            "exact pure-Python implementation, so its recall is a correctness reference and "
            "its latencies are not Qdrant's."
        )
    return result


# --------------------------------------------------------------------------- output


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _setting(design: str, row: dict[str, Any]) -> str:
    if design == DESIGN_A:
        return f"prefetch {row['prefetch']}"
    if design == PRODUCT:
        return f"search_segments, prefetch {row['prefetch']}"
    if row["mode"] == "adaptive":
        ef = f"ef {row['hnsw_ef']}, " if row.get("hnsw_ef") else ""
        return (
            f"adaptive from {row['limit']} ({ef}{row['mean_rounds']:.2f} rounds, "
            f"final {row['mean_final_limit']:.0f})"
        )
    if row["mode"] == "exact-scan":
        return f"exact scan, limit {row['limit']}"
    if row["mode"] == "query_points_groups":
        return "query_points_groups"
    return f"limit {row['limit']} (k x {row['factor']:g})"


def table(result: dict[str, Any]) -> str:
    """A plain-text table of every measured row, then build figures and verdicts."""
    k = result["config"]["k"]
    head = (
        f"{'dataset':<15} {'design':<8} {'setting':<50} {f'rec@{k}':>7} {'long':>6} "
        f"{'short':>6} {'seg':>6} {'top1':>6} {'p50 ms':>8} {'p95 ms':>8} {'client':>7}"
    )
    lines = [
        "A: one point per video, prefetch by pooled + MaxSim rerank (raw Qdrant calls); "
        "B: one point per segment, grouped client-side (raw Qdrant calls); product: the "
        "shipped QdrantEdgeStore.search_segments (design B with its video and segment shards)",
        f"rec@{k}: recall of videos vs the exact answer (long/short: of the long untrimmed "
        "videos / short clips among the exact top-k); seg: named segment = exact best one "
        "(of the exact top-k found); top1: first result and its segment both exact; "
        "client: mean ms of client-side work (A, product: re-scoring the returned segment "
        "vectors; B: grouping)",
        "",
        head,
        "-" * len(head),
    ]

    def add(name: str, design: str, row: dict[str, Any], label: str = "") -> None:
        lines.append(
            f"{name:<15} {label or design:<8} {_setting(design, row):<50} "
            f"{_fmt(row['recall'], 4):>7} {_fmt(row['recall_long']):>6} "
            f"{_fmt(row['recall_short']):>6} {_fmt(row['segment_accuracy']):>6} "
            f"{_fmt(row['top1_moment']):>6} {_fmt(row['p50_ms']):>8} {_fmt(row['p95_ms']):>8} "
            f"{_fmt(row.get('client_mean_ms')):>7}"
        )

    for d in result["datasets"]:
        for row in d["design_a"]["rows"]:
            add(d["name"], DESIGN_A, row)
        for row in d["design_b"]["rows"]:
            add(d["name"], DESIGN_B, row)
        add(d["name"], DESIGN_B, d["design_b"]["exact_scan"])
        for row in d["product"]["rows"]:
            add(d["name"], PRODUCT, row)
    for d in result["local"]:
        for row in d["design_a"]["rows"]:
            add(d["name"], DESIGN_A, row, "A-loc")
        for row in d["design_b"]["rows"]:
            add(d["name"], DESIGN_B, row, "B-loc")
        for row in d["product"]["rows"]:
            add(d["name"], PRODUCT, row, "prod-loc")
    lines.append("")
    bhead = (
        f"{'dataset':<15} {'design':<8} {'points':>9} {'indexed':>9} {'segs':>5} "
        f"{'upsert s':>9} {'optimize s':>10} {'disk MB':>9} {'of it WAL':>9} {'seg shard':>9}"
    )
    lines += [
        "indexed: Qdrant's indexed_vectors_count (A counts both named vectors; 0: below "
        "Qdrant's indexing threshold, so searched by a full scan); segs: Qdrant segments; "
        "product: both shards summed (points = videos + segments), seg shard: the MB of "
        "its moments/ segment shard",
        bhead,
        "-" * len(bhead),
    ]
    for d in result["datasets"]:
        for design, key in ((DESIGN_A, "design_a"), (DESIGN_B, "design_b"), (PRODUCT, "product")):
            b = d[key]["build"]
            seg_mb = b.get("segment_shard_mb")
            lines.append(
                f"{d['name']:<15} {design:<8} {b['points']:>9,} {b['indexed_vectors']:>9,} "
                f"{b['segments']:>5} {b['upsert_s']:>9.2f} {b['optimize_s']:>10.2f} "
                f"{b['disk_mb']:>9.1f} {b['wal_mb']:>9.1f} "
                f"{'-' if seg_mb is None else f'{seg_mb:.1f}':>9}"
            )
    lines.append("")
    target = result["config"]["target_recall"]
    for d in result["datasets"]:
        ha, hb, hp = (d[key]["headline"] for key in ("design_a", "design_b", "product"))
        lines.append(
            f"{d['name']}: best A = {_setting(DESIGN_A, ha)} (recall {ha['recall']:.4f}, "
            f"p50 {ha['p50_ms']:.3f} ms); best B = {_setting(DESIGN_B, hb)} "
            f"(recall {hb['recall']:.4f}, p50 {hb['p50_ms']:.3f} ms); product = "
            f"{_setting(PRODUCT, hp)} (recall {hp['recall']:.4f}, p50 {hp['p50_ms']:.3f} ms) "
            f"[target recall {target:g}]"
        )
        builds = {key: d[key]["build"] for key in ("design_a", "design_b", "product")}
        lines.append(
            "  disk: "
            + ", ".join(
                f"{label} {builds[key]['disk_mb']:.1f} MB"
                for label, key in (("A", "design_a"), ("B", "design_b"), (PRODUCT, "product"))
            )
            + "; build: "
            + ", ".join(
                f"{label} {builds[key]['total_s']:.2f} s"
                for label, key in (("A", "design_a"), ("B", "design_b"), (PRODUCT, "product"))
            )
        )
        lines.append(f"  -> A vs B (the design question): {d['verdict']}")
        lines.append(f"  -> A vs product (as shipped): {d['product_verdict']}")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str | Path) -> None:
    """Recall@k against p50 latency, one panel per dataset (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = result["datasets"]
    if not datasets:
        raise InvalidInput("nothing to plot: no Qdrant Edge dataset was measured")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    cols = min(2, len(datasets))
    rows = math.ceil(len(datasets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4.5 * rows), squeeze=False)
    for ax in axes.flat[len(datasets) :]:
        ax.set_visible(False)
    k = result["config"]["k"]
    for ax, d in zip(axes.flat, datasets, strict=False):
        rows_a = d["design_a"]["rows"]
        fixed = [r for r in d["design_b"]["rows"] if r["mode"] == "fixed"]
        adaptive = [r for r in d["design_b"]["rows"] if r["mode"] == "adaptive"]
        ax.plot([r["p50_ms"] for r in rows_a], [r["recall"] for r in rows_a], "o-", label="A")
        for r in rows_a:
            ax.annotate(f"P={r['prefetch']}", (r["p50_ms"], r["recall"]), fontsize=7)
        ax.plot([r["p50_ms"] for r in fixed], [r["recall"] for r in fixed], "s-", label="B fixed")
        for r in fixed:
            ax.annotate(f"x{r['factor']:g}", (r["p50_ms"], r["recall"]), fontsize=7)
        if adaptive:
            ax.plot(
                [r["p50_ms"] for r in adaptive],
                [r["recall"] for r in adaptive],
                "D",
                label="B adaptive",
            )
        shipped = d["product"]["rows"]
        ax.plot(
            [r["p50_ms"] for r in shipped],
            [r["recall"] for r in shipped],
            "*",
            markersize=11,
            label="product (B as shipped)",
        )
        for r in shipped:
            ax.annotate(f"P={r['prefetch']}", (r["p50_ms"], r["recall"]), fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("p50 latency (ms, one query at a time)")
        ax.set_ylabel(f"recall@{k} of videos vs exact")
        ax.set_title(f"{d['name']} ({d['segments']:,} segments)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def write_json(result: dict[str, Any], out: str) -> None:
    """Write the result as JSON to ``out`` ('-': stdout); NaN/inf become null."""
    text = json.dumps(_json_safe(result), indent=2, allow_nan=False)
    if out == "-":
        print(text)
        return
    path = Path(out)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- command line


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--videos",
        default=DEFAULT_VIDEOS,
        help="synthetic collection sizes in videos, comma-separated, k/M allowed "
        "(default %(default)s)",
    )
    p.add_argument(
        "--dim", default=DEFAULT_DIMS, help="vector sizes, comma-separated (default %(default)s)"
    )
    p.add_argument("--queries", type=int, default=200, help="queries per dataset (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-k", type=int, default=10, help="recall@k of videos (default 10)")
    p.add_argument(
        "--prefetch",
        default=DEFAULT_PREFETCH,
        help="design A: pooled candidates before the MaxSim rerank (default %(default)s)",
    )
    p.add_argument(
        "--product-prefetch",
        default=str(PRODUCT_PREFETCH),
        help="the shipped store's search_segments prefetch, comma-separated (default "
        "%(default)s, SearchLimits' value)",
    )
    p.add_argument(
        "--overfetch",
        default=DEFAULT_OVERFETCH,
        help="design B: segments fetched = k x factor; k x max segments per video is always "
        "added (default %(default)s)",
    )
    p.add_argument(
        "--adaptive-start",
        type=int,
        default=2,
        help="design B adaptive: first limit k x this, doubled until k videos (default 2)",
    )
    p.add_argument(
        "--target-recall",
        type=float,
        default=0.95,
        help="the headline row of a design is its fastest reaching this (default 0.95)",
    )
    p.add_argument(
        "--local-videos",
        type=int,
        default=0,
        help="also run both designs and the shipped QdrantClientStore on qdrant-client "
        "local mode at this size "
        "(slow, exact, pure Python; 0: skip, the default)",
    )
    p.add_argument(
        "--local-queries", type=int, default=50, help="queries in local mode (default 50)"
    )
    p.add_argument("--warmup", type=int, default=20, help="untimed queries first (default 20)")
    p.add_argument("--workdir", default=None, help="where the temporary stores go ($TMPDIR)")
    p.add_argument("--json", metavar="OUT", default=None, help="write the results here ('-')")
    p.add_argument("--plot", metavar="PNG", default=None, help="recall-vs-latency plot")


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``bench-moments`` on the ``clipsearch`` subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "bench-moments",
        parents=[common],
        help="benchmark one point per video (MaxSim rerank) against one point per segment "
        "and the shipped store",
    )
    _add_arguments(p)
    p.set_defaults(func=run)
    return p


def _command(args: argparse.Namespace) -> str:
    """The canonical command line of this run (recorded with the results)."""
    parts = ["clipsearch", "bench-moments", "--videos", args.videos, "--dim", str(args.dim)]
    parts += ["--queries", str(args.queries), "--seed", str(args.seed), "-k", str(args.k)]
    parts += ["--prefetch", args.prefetch, "--product-prefetch", args.product_prefetch]
    parts += ["--overfetch", args.overfetch]
    parts += ["--adaptive-start", str(args.adaptive_start)]
    parts += ["--target-recall", f"{args.target_recall:g}", "--warmup", str(args.warmup)]
    if args.local_videos:
        parts += ["--local-videos", str(args.local_videos)]
        parts += ["--local-queries", str(args.local_queries)]
    if args.json:
        parts += ["--json", args.json]
    if args.plot:
        parts += ["--plot", args.plot]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed arguments; raises ClipSearchError on bad input."""
    videos = parse_int_list(args.videos, "--videos", example="10k,1000")
    dims = parse_int_list(str(args.dim), "--dim", example="10k,1000")
    cfg = BenchConfig(
        k=args.k,
        prefetch=parse_int_list(args.prefetch, "--prefetch", example="10k,1000"),
        product_prefetch=parse_int_list(
            args.product_prefetch, "--product-prefetch", example="10k,1000"
        ),
        overfetch=parse_int_list(args.overfetch, "--overfetch", example="10k,1000"),
        adaptive_start=args.adaptive_start,
        warmup=args.warmup,
        target_recall=args.target_recall,
        local_videos=args.local_videos,
        local_queries=args.local_queries,
        workdir=args.workdir,
    ).validate()
    if args.queries < 1:
        raise InvalidInput(f"--queries must be at least 1, got {args.queries}")
    for what, out in (("--json", args.json), ("--plot", args.plot)):
        if out and out != "-" and os.path.isdir(out):
            raise InvalidInput(f"{what} {out} is a directory")
    quiet = getattr(args, "quiet", False)

    def progress(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    result = run_benchmark(
        videos,
        dims,
        n_queries=args.queries,
        cfg=cfg,
        seed=args.seed,
        command=_command(args),
        progress=progress,
    )
    # With the JSON on stdout, the table goes to stderr so stdout stays parseable.
    report = sys.stderr if args.json == "-" else sys.stdout
    print(cpu_line(), file=report)
    print(table(result), file=report)
    for note in result["notes"]:
        print(f"note: {note}", file=report)
    if args.json:
        write_json(result, args.json)
        if args.json != "-":
            print(f"wrote {args.json}", file=report)
    if args.plot:
        plot(result, args.plot)
        print(f"wrote {args.plot}", file=report)
    return 0
