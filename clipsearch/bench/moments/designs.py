"""The designs under test: one point per video (A), one point per window (B), the
product's store, and their local-mode stand-ins; each answers top-k moments."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clipsearch.bench.common import (
    disk_mb,
    latency_summary,
)
from clipsearch.bench.moments.data import (
    DESIGN_A,
    DESIGN_B,
    POOLED,
    PRODUCT,
    WINDOW_VECTOR,
    WINDOWS_VECTOR,
    BenchConfig,
    Found,
    MomentData,
)
from clipsearch.errors import ClipSearchError

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
    """Design A's payload: the video's index and its windows' spans."""
    return {"video": i, "segment_times": data.times(i)}


def _product_payload(data: MomentData, i: int) -> dict[str, Any]:
    """The product's video payload: the windows' spans (the store adds ``video`` = the
    video's id to each window point, so the video's index is looked up by id instead)."""
    return {"segment_times": data.times(i)}


class DesignA:
    """One point per video in a raw Qdrant Edge shard (``pooled`` + ``segments``).

    The search is design A's two-stage query: prefetch the top ``P`` videos by ``pooled``
    (HNSW), rerank them by MaxSim over ``segments``, return the window vectors, then name
    the winning window client-side by re-scoring them, as
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
                    {POOLED: data.pooled[i].tolist(), WINDOWS_VECTOR: data.video(i).tolist()},
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
        """Prefetch ``prefetch`` videos by pooled cosine, rerank by MaxSim, name the window."""
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
            query=qe.Query.Nearest([vector], using=WINDOWS_VECTOR),
            with_payload=True,
            with_vector=[WINDOWS_VECTOR],
        )
        scored = self.shard.query(request)
        t = time.perf_counter()
        found = []
        for p in scored:
            payload = dict(p.payload or {})
            windows = _windows_of(p.vector, self.dim)
            found.append(_name_window(int(payload["video"]), windows, payload, p.score, q))
        self.client_s.append(time.perf_counter() - t)
        return found

    def close(self) -> None:
        self.shard.close()


def _windows_of(vectors: Any, dim: int) -> np.ndarray:
    """The (S, D) ``segments`` vectors of a returned design-A point."""
    if not isinstance(vectors, dict) or WINDOWS_VECTOR not in vectors:
        raise ClipSearchError(f"a design-A point came back without its {WINDOWS_VECTOR!r} vectors")
    return np.asarray(vectors[WINDOWS_VECTOR], dtype=np.float32).reshape(-1, dim)


def _name_window(
    video: int, windows: np.ndarray, payload: dict[str, Any], score: float, q: np.ndarray
) -> Found:
    """SearchService's client-side naming: re-score the windows, the best moment's index."""
    from clipsearch.search import stored_windows
    from clipsearch.windows import best_moment, window_scores

    scores = window_scores(windows, q)
    moment = best_moment(scores, stored_windows(payload, len(scores)))
    return Found(video, moment.index, float(score))


# --------------------------------------------------------------------------- design B


def group_best(points: Sequence[tuple[int, int, float]], k: int) -> list[Found]:
    """Group (video, window, score) hits sorted by score: each video's first hit, top k."""
    seen: set[int] = set()
    out: list[Found] = []
    for video, window, score in points:
        if video in seen:
            continue
        seen.add(video)
        out.append(Found(int(video), int(window), float(score)))
        if len(out) == k:
            break
    return out


def _window_payload(data: MomentData, i: int, j: int) -> dict[str, Any]:
    start = j * data.stride_s
    return {"video": i, "segment": j, "start_s": start, "end_s": start + data.window_s}


class DesignB:
    """One point per window in a raw Qdrant Edge shard (HNSW), grouped client-side."""

    name = DESIGN_B

    def __init__(self, path: Path, data: MomentData, cfg: BenchConfig) -> None:
        import qdrant_edge as qe

        self._qe = qe
        self.path = path
        self.max_limit = cfg.k * data.max_windows
        self.total = data.n_windows
        # Qdrant's defaults for everything else, as QdrantEdgeStore has for ``pooled``.
        config = qe.EdgeConfig(
            vectors={WINDOW_VECTOR: qe.EdgeVectorParams(size=data.dim, distance=qe.Distance.Cosine)}
        )

        def batches() -> Iterator[list[Any]]:
            batch: list[Any] = []
            for i in range(data.n_videos):
                base = int(data.offsets[i])
                for j, vec in enumerate(data.video(i)):
                    batch.append(
                        qe.Point(base + j, {WINDOW_VECTOR: vec}, _window_payload(data, i, j))
                    )
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
            query=qe.Query.Nearest(q, using=WINDOW_VECTOR),
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
        """Over-fetch ``limit`` windows, keep each video's best, the top k videos.

        ``ef``: HNSW ef of the search (None: Qdrant's default); ``exact``: a full scan.
        """
        vector = np.asarray(q, np.float32).tolist()
        return self._group(self._fetch(vector, limit, self._params(exact, ef)), k)

    def search_adaptive(
        self, q: np.ndarray, k: int, start: int, *, ef: int | None = None
    ) -> list[Found]:
        """Fetch ``start`` windows, doubling until k distinct videos (or everything) came back."""
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

    Its video shard (one point per video) plus its ``moments/`` window shard (one point per
    window, HNSW), built through the store's own ``upsert`` and ``optimize``; the search is
    its ``search_windows`` (window hits grouped by video, limit doubled until ``k``
    videos, the videos' window vectors read back) plus SearchService's client-side naming.
    """

    name = PRODUCT

    def __init__(self, path: Path, data: MomentData, cfg: BenchConfig) -> None:
        from clipsearch.store.base import ClipPoint
        from clipsearch.store.edge import QdrantEdgeStore

        self.path = path
        self.index = {video_id(i): i for i in range(data.n_videos)}
        t = time.perf_counter()
        # No keyword/range indexes on filter fields: the benchmark never filters (the
        # window shard's own index on ``video`` is always made).
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
                            windows=data.video(i),
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
        video_shard, window_shard = _shard_info(path), _shard_info(moments)
        self.build: dict[str, Any] = {
            "upsert_s": round(upsert_s, 2),
            "optimize_s": round(optimize_s, 2),
            "total_s": round(upsert_s + optimize_s, 2),
            **{key: video_shard[key] + window_shard[key] for key in video_shard},
            "video_shard": video_shard,
            "segment_shard": window_shard,
            "disk_mb": _disk_mb(path),
            "wal_mb": round(_disk_mb(path, "wal") + _disk_mb(moments, "wal"), 2),
            "segment_shard_mb": _disk_mb(moments),
        }
        self.store = QdrantEdgeStore(path, payload_indexes=(), range_indexes=())
        self.client_s: list[float] = []

    def search(self, q: np.ndarray, k: int, prefetch: int) -> list[Found]:
        """The shipped ``search_windows`` plus SearchService's client-side window naming."""
        hits = self.store.search_windows(q, k, prefetch=prefetch)
        t = time.perf_counter()
        found = [
            _name_window(self.index[hit.id], hit.windows, hit.payload, float(hit.score), q)
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
                vector={POOLED: data.pooled[i].tolist(), WINDOWS_VECTOR: data.video(i).tolist()},
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
            using=WINDOWS_VECTOR,
            limit=int(k),
            with_payload=True,
            with_vectors=[WINDOWS_VECTOR],
        )
        found = []
        for p in response.points:
            payload = dict(p.payload or {})
            windows = _windows_of(p.vector, self.dim)
            found.append(_name_window(int(payload["video"]), windows, payload, p.score, q))
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
            _name_window(self.index[hit.id], hit.windows, hit.payload, float(hit.score), q)
            for hit in self.store.search_windows(q, k, prefetch=prefetch)
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
            vectors_config={
                WINDOW_VECTOR: qm.VectorParams(size=data.dim, distance=qm.Distance.COSINE)
            },
        )
        points = [
            qm.PointStruct(
                id=int(data.offsets[i]) + j,
                vector={WINDOW_VECTOR: vec.tolist()},
                payload=_window_payload(data, i, j),
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
            using=WINDOW_VECTOR,
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
