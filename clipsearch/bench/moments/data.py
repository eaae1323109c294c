"""Settings, data and ground truth of the moment-index benchmark: the synthetic
videos and their window vectors, the exact moments a query should find, and recall."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from clipsearch.errors import InvalidInput

DEFAULT_VIDEOS = "10000,1000"
DEFAULT_DIMS = "512"
DEFAULT_PREFETCH = "50,100,200,400"
DEFAULT_OVERFETCH = "1,2,4,8,16"

# Design A's two named vectors (one video per point), as clipsearch names them.
POOLED = "pooled"
WINDOWS_VECTOR = "segments"
# Design B's single named vector (one window per point).
WINDOW_VECTOR = "segment"
DESIGN_A = "A"
DESIGN_B = "B"
PRODUCT = "product"
# SearchLimits.prefetch: the first-round window limit the product searches with.
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

    A window vector is ``mean_norm * mu + background * b_video + a * class_dir + noise *
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
    window_s: float = 2.0  # window j spans [j * stride_s, j * stride_s + window_s]
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
    def max_windows(self) -> int:
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
    """Videos as window vectors, plus queries.

    ``windows`` (T, D) holds every video's windows back to back: video ``i`` owns rows
    ``offsets[i]:offsets[i + 1]``. ``pooled`` (N, D) is one vector per video; ``long`` marks
    the long untrimmed videos; ``video_class`` and ``query_class`` are the latent classes.
    """

    windows: np.ndarray
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
    def n_windows(self) -> int:
        return int(self.offsets[-1])

    @property
    def dim(self) -> int:
        return int(self.windows.shape[1])

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def max_windows(self) -> int:
        return int(self.counts.max())

    def video(self, i: int) -> np.ndarray:
        """The (S_i, D) window vectors of video ``i``."""
        return self.windows[self.offsets[i] : self.offsets[i + 1]]

    def times(self, i: int) -> list[list[float]]:
        """[start_s, end_s] of each window of video ``i``."""
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
    """MomentData from a list of (S_i, D) window arrays (normalised; pooled = their mean)."""
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
        windows=np.concatenate(mats),
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
    windows = np.empty((int(offsets[-1]), dim), dtype=np.float32)
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
        windows[offsets[i] : offsets[i + 1]] = normalize(x)
    pooled = normalize(np.add.reduceat(windows, offsets[:-1], axis=0))
    query_class = rng.integers(0, n_classes, nq)
    queries = normalize(
        spec.query_mean * mu
        + class_dirs[query_class]
        + (spec.query_noise * scale) * rng.standard_normal((nq, dim))
    )
    return MomentData(
        windows=windows,
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
    """Exact top-k per query: videos (Q, k), their best window (local index) and score."""

    videos: np.ndarray
    windows: np.ndarray
    scores: np.ndarray


def exact_moments(data: MomentData, k: int, *, chunk: int = 64) -> Truth:
    """Brute force over all windows of all videos: a video scores its best window's cosine.

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
        sims = q @ data.windows.T  # (c, T)
        per_video = np.maximum.reduceat(sims, starts, axis=1)  # (c, N)
        top = np.argsort(-per_video, axis=1, kind="stable")[:, :k]
        for r in range(len(q)):
            for c, v in enumerate(top[r]):
                row = sims[r, data.offsets[v] : data.offsets[v + 1]]
                videos[lo + r, c] = v
                best[lo + r, c] = int(np.argmax(row))
                scores[lo + r, c] = per_video[r, v]
    return Truth(videos=videos, windows=best, scores=scores)


class Found(NamedTuple):
    """One result of a design: a video, the window it names, its score."""

    video: int
    window: int
    score: float


def evaluate(
    found: Sequence[Sequence[Found]], truth: Truth, data: MomentData, k: int
) -> dict[str, float]:
    """Recall@k of videos and accuracy of the named windows against the exact answer.

    - ``recall``: |found top-k videos ∩ exact top-k| / k, averaged over queries; a found
      video whose exact score ties the exact k-th (within ``TIE_TOLERANCE``) counts too;
    - ``recall_long`` / ``recall_short``: the same over exact top-k videos that are long
      (untrimmed) / short clips;
    - ``segment_accuracy``: of the exact top-k videos that were found, the share whose named
      window is the exact best one;
    - ``top1_moment``: the share of queries whose first result is the exact best video and
      names its exact best window.
    """
    if len(found) != len(truth.videos):
        raise InvalidInput(f"{len(found)} result lists for {len(truth.videos)} queries")
    k = min(k, truth.videos.shape[1])
    hits = win_ok = win_n = top1 = 0
    long_hit = long_n = short_hit = short_n = 0
    for qi, results in enumerate(found):
        top = results[:k]
        named = {f.video: f.window for f in top}
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
                win_n += 1
                win_ok += named[int(v)] == int(truth.windows[qi, c])
        if top and top[0].video == int(true_v[0]) and top[0].window == int(truth.windows[qi, 0]):
            top1 += 1
    nq = max(1, len(found))
    return {
        "recall": round(min(1.0, hits / (k * nq)), 4),
        "recall_long": round(long_hit / long_n, 4) if long_n else math.nan,
        "recall_short": round(short_hit / short_n, 4) if short_n else math.nan,
        "segment_accuracy": round(win_ok / win_n, 4) if win_n else math.nan,
        "top1_moment": round(top1 / nq, 4),
    }
