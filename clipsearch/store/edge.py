"""Embedded vector store on Qdrant Edge (``qdrant-edge-py``): two shards in one directory.

Everything lives in-process: no server to run. ``<path>/`` is the **video shard** (one point
per video: ``pooled`` + ``segments`` multivector + payload; its ``wal/``, ``segments/`` and
``edge_config.json``), and ``<path>/moments/`` is the **segment shard**, the per-segment
index: one point per segment window (dense vector ``segment``, cosine, HNSW) with a copy of
the video's filterable payload. Qdrant Edge only ever touches ``wal/``, ``segments/`` and its
config files under a shard path, so nesting the segment shard inside the video shard's
directory is safe. :meth:`QdrantEdgeStore.search_segments` queries the segment shard for the
best segments, keeps each video's best one and reads those videos back from the video shard.

The segment shard is derived data: a store written before it existed (no ``moments/``) gets
it built from the stored ``segments`` vectors when it is opened (built in
``moments.building/`` and renamed when complete, so an interrupted build is redone).

Qdrant Edge is single-process: each shard holds an exclusive ``flock`` on its WAL, and this
adapter adds its own lock file (``<path>/.clipsearch.lock``, covering both shards) so that a
second opener - another process, or a second store object in this process - gets a clear
:class:`StoreError` instead of a raw ``WouldBlock``. Inside one process the shards are safe
for concurrent queries from several threads, also while another thread upserts; writes,
flush and close are serialised by a lock.

The argument checks and the segment-index logic shared by both Qdrant adapters (vector
shapes, filters, paging, ids, segment points, grouping segment hits by video) live here
too, so the adapters validate and rank identically.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import qdrant_edge as qe

from clipsearch.errors import ClipSearchError, InvalidInput, StoreError
from clipsearch.store.base import (
    POOLED,
    SEGMENTS,
    ClipPoint,
    Hit,
    PayloadFilter,
    Range,
    SegmentHit,
)

if sys.platform != "win32":
    import fcntl

logger = logging.getLogger(__name__)

LOCK_FILE = ".clipsearch.lock"
CONFIG_FILE = "edge_config.json"  # written by EdgeShard.create
MOMENTS_DIR = "moments"  # the segment shard, inside the video shard's directory
# Payload fields worth a keyword index (filters of the search UI and the evaluation).
INDEXED_FIELDS = ("class", "split_1", "split_2", "split_3", "model")
# Numeric payload fields worth a float index in the segment index (duration filters).
RANGE_INDEXED_FIELDS = ("duration_s",)
# Points per update/retrieve call.
BATCH = 256

# The per-segment index: one point per segment window.
SEGMENT = "segment"  # its single dense vector (cosine, HNSW)
VIDEO_KEY = "video"  # payload: the id of the video the segment belongs to (keyword index)
INDEX_KEY = "index"  # payload: the segment's position in the video's ``segments``
# Fixed namespace: segment ids must stay stable across machines and releases.
SEGMENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://clipsearch.dev/segment")
# Video payload fields not copied to segment points: per-frame / per-segment lists (the
# segment's own span is ``start_s``/``end_s``) and the plan stamp. Everything else is
# copied, so a payload filter means the same on both indexes.
SEGMENT_PAYLOAD_OMIT = frozenset({"segment_times", "frame_times", "segment_plan"})
# First round of a segment search: at least this many segments per wanted video.
OVERFETCH = 4
# HNSW ef of segment queries (the moments benchmark: recall .984 at the default, .989 at 128).
SEGMENT_HNSW_EF = 128
# Qdrant keeps only scores strictly above score_threshold; the adapters ask it for a little
# less and keep ``score >= threshold`` themselves, as VectorStore promises.
THRESHOLD_SLACK = 1e-6

FilterScalar = str | int | bool
FilterValue = FilterScalar | list[str] | list[int] | Range


# --------------------------------------------------------------------------- shared checks


def check_dim(dim: int) -> int:
    """Validate a collection vector size."""
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim <= 0:
        raise InvalidInput(f"vector size must be a positive integer, got {dim!r}")
    return int(dim)


def check_page(k: int, offset: int) -> None:
    """Validate ``k`` and ``offset`` of a search."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidInput(f"k must be a positive integer, got {k!r}")
    if isinstance(offset, bool) or not isinstance(offset, int | np.integer) or offset < 0:
        raise InvalidInput(f"offset must be a non-negative integer, got {offset!r}")


def check_prefetch(prefetch: int, k: int, offset: int) -> int:
    """The first-stage candidate count: at least ``offset + k``."""
    if isinstance(prefetch, bool) or not isinstance(prefetch, int | np.integer) or prefetch < 1:
        raise InvalidInput(f"prefetch must be a positive integer, got {prefetch!r}")
    return max(int(prefetch), int(offset) + int(k))


def check_threshold(score_threshold: float | None) -> float | None:
    """A score threshold: None or a finite number."""
    if score_threshold is None:
        return None
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, int | float):
        raise InvalidInput(f"score threshold must be a number, got {score_threshold!r}")
    if not np.isfinite(score_threshold):
        raise InvalidInput(f"score threshold must be finite, got {score_threshold}")
    return float(score_threshold)


def segment_matrix(vectors: Any, dim: int, point_id: str) -> np.ndarray:
    """The (S, D) segment vectors of a returned point."""
    if not isinstance(vectors, dict) or SEGMENTS not in vectors:
        raise StoreError(f"point {point_id} came back without its {SEGMENTS!r} vectors")
    return np.asarray(vectors[SEGMENTS], dtype=np.float32).reshape(-1, dim)


def canonical_id(point_id: str) -> str:
    """The canonical UUID string of a point id; ``InvalidInput`` if it is not a UUID."""
    try:
        return str(uuid.UUID(str(point_id)))
    except (ValueError, TypeError, AttributeError):
        raise InvalidInput(f"point id must be a UUID string, got {point_id!r}") from None


def _finite(arr: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(arr)):
        raise InvalidInput(f"{what} contains NaN or infinite values")
    return arr


def _dim_mismatch(got: int, dim: int, what: str) -> StoreError:
    return StoreError(
        f"{what} has size {got} but the collection stores vectors of size {dim} "
        "(was the store built with another model?)"
    )


def query_vector(vector: np.ndarray, using: str, dim: int) -> list[float] | list[list[float]]:
    """Check a query against the collection and turn it into plain lists.

    ``POOLED`` takes a (D,) vector; ``SEGMENTS`` a (Q, D) multivector or a (D,) vector,
    sent as Q=1.
    """
    if using not in (POOLED, SEGMENTS):
        raise InvalidInput(f"unknown vector name {using!r} (expected {POOLED!r} or {SEGMENTS!r})")
    try:
        arr = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"query vector is not numeric: {exc}") from None
    if using == SEGMENTS and arr.ndim == 1:
        arr = arr[None, :]
    want = 1 if using == POOLED else 2
    if arr.ndim != want or arr.size == 0:
        shape = "(D,)" if using == POOLED else "(Q, D) or (D,)"
        raise InvalidInput(f"query for {using!r} must have shape {shape}, got {arr.shape}")
    if arr.shape[-1] != dim:
        raise _dim_mismatch(arr.shape[-1], dim, "query vector")
    _finite(arr, "query vector")
    result: list[float] | list[list[float]] = arr.tolist()
    return result


def pooled_query(vector: np.ndarray, dim: int) -> list[float]:
    """A checked (D,) query as a plain list."""
    return cast(list[float], query_vector(vector, POOLED, dim))


def point_vectors(point: ClipPoint, dim: int) -> tuple[str, list[float], list[list[float]]]:
    """Check a point against the collection: canonical id, pooled (D,), segments (S>=1, D)."""
    pid = canonical_id(point.id)
    pooled = np.asarray(point.pooled, dtype=np.float32)
    segments = np.asarray(point.segments, dtype=np.float32)
    if pooled.ndim != 1:
        raise InvalidInput(f"point {pid}: pooled must have shape (D,), got {pooled.shape}")
    if segments.ndim == 1 and segments.size:
        segments = segments[None, :]
    if segments.ndim != 2 or segments.shape[0] == 0:
        raise InvalidInput(
            f"point {pid}: segments must have shape (S, D) with S >= 1, got {segments.shape}"
        )
    if pooled.shape[0] != dim:
        raise _dim_mismatch(pooled.shape[0], dim, f"point {pid}: pooled vector")
    if segments.shape[1] != dim:
        raise _dim_mismatch(segments.shape[1], dim, f"point {pid}: segment vectors")
    _finite(pooled, f"point {pid}: pooled vector")
    _finite(segments, f"point {pid}: segment vectors")
    return pid, pooled.tolist(), segments.tolist()


def filter_conditions(filter: PayloadFilter | None) -> list[tuple[str, FilterValue]]:
    """Validate a payload filter into ``(key, value)`` pairs; list values mean 'any of'."""
    if not filter:
        return []
    out: list[tuple[str, FilterValue]] = []
    for key, value in filter.items():
        if not isinstance(key, str) or not key:
            raise InvalidInput(f"filter keys must be non-empty strings, got {key!r}")
        if isinstance(value, Range):
            ends = [v for v in (value.gte, value.lte) if v is not None]
            if not ends:
                raise InvalidInput(f"filter {key!r}: a range needs gte, lte or both")
            if any(isinstance(v, bool) or not isinstance(v, int | float) for v in ends):
                raise InvalidInput(f"filter {key!r}: range ends must be numbers, got {value}")
            if not all(np.isfinite(v) for v in ends):
                raise InvalidInput(f"filter {key!r}: range ends must be finite, got {value}")
            if value.gte is not None and value.lte is not None and value.gte > value.lte:
                raise InvalidInput(f"filter {key!r}: empty range {value.gte} > {value.lte}")
            out.append((key, value))
            continue
        if isinstance(value, bool | str):
            out.append((key, value))
            continue
        if isinstance(value, int | np.integer):
            out.append((key, int(value)))
            continue
        if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str | bytes):
            items = list(value)
            if all(isinstance(v, str) for v in items):
                out.append((key, [str(v) for v in items]))
                continue
            if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in items):
                out.append((key, [int(v) for v in items]))
                continue
            raise InvalidInput(
                f"filter {key!r}: a list must hold only strings or only integers, got {value!r}"
            )
        raise InvalidInput(
            f"filter {key!r}: value must be a string, integer, boolean or a list, got {value!r}"
        )
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def plain_payload(point_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as JSON-native values (numpy scalars/arrays and tuples converted)."""
    plain: dict[str, Any] = _plain(dict(payload))
    try:
        json.dumps(plain, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"point {point_id}: payload is not JSON-serialisable: {exc}") from None
    return plain


def empty_vectors(dim: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Placeholder vectors of a point retrieved without vectors."""
    return np.zeros((0,), dtype=np.float32), np.zeros((0, dim or 0), dtype=np.float32)


def as_point(
    point_id: str, payload: dict[str, Any] | None, vectors: Any, dim: int | None
) -> ClipPoint:
    """Build a ClipPoint from a stored record (``vectors`` is a name -> list mapping or None)."""
    if isinstance(vectors, dict) and POOLED in vectors and SEGMENTS in vectors:
        pooled = np.asarray(vectors[POOLED], dtype=np.float32)
        segments = np.asarray(vectors[SEGMENTS], dtype=np.float32).reshape(-1, pooled.shape[0])
    else:
        pooled, segments = empty_vectors(dim)
    return ClipPoint(id=point_id, pooled=pooled, segments=segments, payload=dict(payload or {}))


def check_batch(batch: int) -> int:
    """Validate a page size for bulk reads."""
    if isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch < 1:
        raise InvalidInput(f"batch must be a positive integer, got {batch!r}")
    return int(batch)


def stack_pooled(ids: list[str], rows: list[Any], dim: int | None) -> tuple[list[str], np.ndarray]:
    """The exported ids and their pooled vectors as one (N, D) float32 array."""
    if not rows:
        return [], np.zeros((0, dim or 0), dtype=np.float32)
    matrix = np.asarray(rows, dtype=np.float32)
    if matrix.ndim != 2 or (dim is not None and matrix.shape[1] != dim):
        raise StoreError(
            f"stored {POOLED!r} vectors have shape {matrix.shape}, expected (N, {dim})"
        )
    return ids, matrix


def batched(seq: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


# --------------------------------------------------------------------------- segment index


def segment_id(video_id: str, index: int) -> str:
    """Deterministic id of segment ``index`` of a video: UUIDv5 of ``"<video id>/<index>"``."""
    return str(uuid.uuid5(SEGMENT_NAMESPACE, f"{canonical_id(video_id)}/{int(index)}"))


def _segment_spans(times: Any, n: int) -> list[tuple[float | None, float | None]]:
    """(start_s, end_s) of each of ``n`` segments from a payload's ``segment_times``."""
    if isinstance(times, list) and len(times) == n:
        spans: list[tuple[float | None, float | None]] = []
        for span in times:
            if (
                isinstance(span, list | tuple)
                and len(span) == 2
                and all(
                    isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                    for v in span
                )
            ):
                spans.append((float(span[0]), float(span[1])))
            else:
                spans.append((None, None))
        return spans
    return [(None, None)] * n


def segment_points(
    video_id: str, segments: Sequence[Sequence[float]], payload: Mapping[str, Any]
) -> list[tuple[str, list[float], dict[str, Any]]]:
    """The segment-index points of one (checked) video: ``(id, vector, payload)`` each.

    The payload is the video's, minus :data:`SEGMENT_PAYLOAD_OMIT`, plus ``video`` (its id),
    ``index`` (0-based position in ``segments``) and ``start_s``/``end_s`` (from the video's
    ``segment_times``, else null); these four win over video fields of the same name.
    """
    vid = canonical_id(video_id)
    base = {k: v for k, v in payload.items() if k not in SEGMENT_PAYLOAD_OMIT}
    spans = _segment_spans(payload.get("segment_times"), len(segments))
    out = []
    for i, (vector, (start, end)) in enumerate(zip(segments, spans, strict=True)):
        seg_payload = {**base, VIDEO_KEY: vid, INDEX_KEY: i, "start_s": start, "end_s": end}
        out.append((segment_id(vid, i), list(vector), seg_payload))
    return out


def stale_segment_groups(counts: Mapping[str, int]) -> list[tuple[list[str], int]]:
    """``(video ids, n)`` groups: segment points of these videos with ``index >= n`` are
    left over from an earlier version with more segments and must be deleted."""
    by_count: dict[int, list[str]] = defaultdict(list)
    for vid, n in counts.items():
        by_count[int(n)].append(canonical_id(vid))
    return [(list(chunk), n) for n, vids in sorted(by_count.items()) for chunk in batched(vids)]


def first_segment_limit(prefetch: int, k: int, offset: int) -> int:
    """Segments fetched in the first round: ``max(prefetch, OVERFETCH * (offset + k))``."""
    return max(check_prefetch(prefetch, k, offset), OVERFETCH * (int(offset) + int(k)))


def engine_threshold(threshold: float | None) -> float | None:
    """The threshold to hand Qdrant (strictly-above semantics) so that hits scoring exactly
    ``threshold`` come back; the caller then keeps ``score >= threshold``."""
    return None if threshold is None else threshold - THRESHOLD_SLACK


# Segment hits ``(segment id, score)``, best first, for a limit. A segment id is any
# hashable the adapter's ``videos_of`` understands (Qdrant Edge: its UUID objects, which
# spares turning hundreds of them into strings per query).
SegmentFetch = Callable[[int], Sequence[tuple[Hashable, float]]]
# The videos of segment ids: ``{segment id: video id}``, vanished segments left out.
SegmentVideos = Callable[[list[Hashable]], Mapping[Hashable, str]]
# Videos by id: ``{id: (payload, (S, D) segment vectors)}``, missing ids left out.
VideoLookup = Callable[[list[str]], Mapping[str, tuple[dict[str, Any], np.ndarray]]]
# The subset of video ids that are stored.
VideoExists = Callable[[list[str]], set[str]]


def grouped_segment_search(
    fetch: SegmentFetch,
    videos_of: SegmentVideos,
    lookup: VideoLookup,
    exists: VideoExists,
    count_segments: Callable[[], int],
    *,
    k: int,
    offset: int,
    limit: int,
    threshold: float | None,
) -> list[SegmentHit]:
    """Videos ``[offset : offset + k]`` ranked by their best segment (design B).

    Fetch ``limit`` segment hits (best first) and group them by video: a video's first hit
    is its best segment. Hits are mapped to their videos in growing chunks, only as far as
    needed for ``offset + k`` distinct videos (reading a segment's payload is what a segment
    query mostly costs). While fewer videos came back and the fetch was full (more may
    exist), double the limit and fetch again, up to the number of stored segments. The
    page's videos are then read from the video index; segment points whose video is not
    stored (a write interrupted between the two indexes) are skipped, also before
    ``offset`` (those videos are only checked for existence), so pages stay consistent.
    Hits scoring below ``threshold`` are dropped.
    """
    want = int(offset) + int(k)
    owner: dict[Hashable, str | None] = {}  # segment id -> video id (None: vanished meanwhile)
    found: dict[str, tuple[dict[str, Any], np.ndarray]] = {}
    stored: set[str] = set()  # videos before the page known to exist
    missing: set[str] = set()
    cap: int | None = None
    while True:
        raw = fetch(limit)
        full = len(raw) >= limit
        hits = [h for h in raw if threshold is None or h[1] >= threshold]
        ranked: list[tuple[str, float]] = []
        seen: set[str] = set()
        pos = 0
        while True:
            live = [r for r in ranked if r[0] not in missing]
            if len(live) < want and pos < len(hits):
                chunk = hits[pos : pos + max(pos, OVERFETCH * (want - len(live)))]
                unknown = [sid for sid, _ in chunk if sid not in owner]
                if unknown:
                    got = videos_of(unknown)
                    owner.update((sid, got.get(sid)) for sid in unknown)
                for sid, score in chunk:
                    video = owner[sid]
                    if video is not None and video not in seen:
                        seen.add(video)
                        ranked.append((video, score))
                pos += len(chunk)
                continue
            head = [v for v, _ in live[:offset] if v not in stored and v not in found]
            if head:
                present = exists(head)
                stored.update(v for v in head if v in present)
                missing.update(v for v in head if v not in present)
                continue
            need = [v for v, _ in live[offset:want] if v not in found]
            if not need:
                break
            got_videos = lookup(need)
            for v in need:
                if v in got_videos:
                    found[v] = got_videos[v]
                else:
                    missing.add(v)
        if len(live) >= want or not full:
            break
        if cap is None:
            cap = int(count_segments())
        if limit >= cap:
            break
        limit = min(limit * 2, cap)
    return [
        SegmentHit(id=v, score=float(score), payload=dict(found[v][0]), segments=found[v][1])
        for v, score in live[offset:want]
    ]


# --------------------------------------------------------------------------- the adapter


def _in_use(path: Path) -> StoreError:
    return StoreError(
        f"store {path} is in use by another process (Qdrant Edge is single-process: "
        "stop the server or use a Qdrant server URL)"
    )


def _edge_match(value: FilterScalar | list[str] | list[int]) -> qe.MatchValue | qe.MatchAny:
    if isinstance(value, list):
        return qe.MatchAny(value)
    if isinstance(value, bool):
        # qdrant-edge 0.9 turns a Python bool into an integer (bool subclasses int), which
        # then never matches a boolean payload; numpy.bool_ is extracted as a real bool.
        return qe.MatchValue(np.bool_(value))  # type: ignore[arg-type]
    return qe.MatchValue(value)


def _edge_condition(key: str, value: FilterValue) -> qe.FieldCondition:
    if isinstance(value, Range):
        return qe.FieldCondition(key, range=qe.RangeFloat(gte=value.gte, lte=value.lte))
    return qe.FieldCondition(key, match=_edge_match(value))


def _edge_filter(
    filter: PayloadFilter | None, exclude: Sequence[str] = (), *, exclude_key: str | None = None
) -> qe.Filter | None:
    """A Qdrant Edge filter; ``exclude`` leaves out point ids, or with ``exclude_key`` the
    points whose payload ``exclude_key`` is one of them (segment points by ``video``)."""
    conditions = filter_conditions(filter)
    excluded = [canonical_id(i) for i in exclude]
    if not conditions and not excluded:
        return None
    must: list[Any] = [_edge_condition(key, value) for key, value in conditions]
    must_not: list[Any] = []
    if excluded and exclude_key is None:
        must_not.append(qe.HasIdCondition(set(excluded)))
    elif excluded and exclude_key is not None:
        must_not.append(_edge_condition(exclude_key, excluded))
    return qe.Filter(must=must or None, must_not=must_not or None)


def _stale_filter(videos: list[str], n: int) -> qe.Filter:
    """Segment points of ``videos`` at positions ``n`` and beyond."""
    return qe.Filter(
        must=[
            qe.FieldCondition(VIDEO_KEY, match=qe.MatchAny(videos)),
            qe.FieldCondition(INDEX_KEY, range=qe.RangeFloat(gte=float(n))),
        ]
    )


def _edge_config(dim: int) -> qe.EdgeConfig:
    return qe.EdgeConfig(
        vectors={
            POOLED: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
            SEGMENTS: qe.EdgeVectorParams(
                size=dim,
                distance=qe.Distance.Cosine,
                multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
                # Only used to rerank candidates by MaxSim: never build a graph for it.
                hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10000),
            ),
        }
    )


def _moments_config(dim: int) -> qe.EdgeConfig:
    # Qdrant's defaults for everything else (HNSW as for ``pooled``).
    return qe.EdgeConfig(
        vectors={SEGMENT: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)}
    )


def _read_moments_dim(path: Path) -> int | None:
    """Vector size of a segment shard's persisted config; None if it is not one."""
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        return int(config["vectors"][SEGMENT]["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class QdrantEdgeStore:
    """:class:`~clipsearch.store.base.VectorStore` on two embedded Qdrant Edge shards.

    ``path`` is the video shard's directory, the segment shard is ``path/moments``. If the
    store exists it is locked and opened right away (building a missing segment shard from
    the stored segment vectors), otherwise :meth:`ensure_collection` creates both. Keyword
    indexes are created on ``payload_indexes`` in both shards (each costs ~0.03-0.1 s at
    creation, nothing afterwards); the segment shard always has one on ``video`` (used to
    replace a video's segments) and float indexes on ``range_indexes``.
    """

    kind = "qdrant-edge"

    def __init__(
        self,
        path: str | Path,
        *,
        payload_indexes: Sequence[str] = INDEXED_FIELDS,
        range_indexes: Sequence[str] = RANGE_INDEXED_FIELDS,
    ):
        self.path = Path(path)
        self.payload_indexes = tuple(payload_indexes)
        self.range_indexes = tuple(range_indexes)
        self._lock = threading.RLock()  # serialises open/create/update/flush/close
        self._lock_file: IO[str] | None = None
        self._shard: qe.EdgeShard | None = None  # the videos
        self._moments: qe.EdgeShard | None = None  # the segments
        self._dim: int | None = None
        self._closed = False
        if self.path.exists():
            if not self.path.is_dir():
                raise StoreError(f"store path {self.path} exists and is not a directory")
            with self._lock:
                self._acquire_process_lock()
                try:
                    if self._has_shard():
                        self._open()
                except BaseException:
                    self._release_process_lock()
                    raise

    def __repr__(self) -> str:
        return f"QdrantEdgeStore({str(self.path)!r})"

    def __enter__(self) -> QdrantEdgeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def moments_path(self) -> Path:
        """The segment shard's directory."""
        return self.path / MOMENTS_DIR

    # -- opening

    def _has_shard(self) -> bool:
        return (self.path / CONFIG_FILE).exists() or (self.path / "segments").exists()

    def _acquire_process_lock(self) -> None:
        if self._lock_file is not None or sys.platform == "win32":
            return  # on Windows only Qdrant Edge's own WAL lock protects the shard
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise _in_use(self.path) from None
        except OSError as exc:
            handle.close()
            raise StoreError(f"cannot lock store {self.path}: {exc}") from None
        self._lock_file = handle

    def _release_process_lock(self) -> None:
        if self._lock_file is not None:
            try:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            finally:
                self._lock_file.close()
                self._lock_file = None

    def _open(self) -> None:
        try:
            dim = self._read_dim()
            shard = qe.EdgeShard.load(str(self.path))
        except Exception as exc:
            raise self._error("open", exc) from None
        try:
            moments = self._attach_moments(shard, dim, fresh=False)
        except BaseException:
            shard.close()
            raise
        self._shard, self._moments, self._dim = shard, moments, dim
        logger.info("opened Qdrant Edge store %s (dim %s)", self.path, self._dim)

    def _read_dim(self) -> int:
        """Vector size from the shard's persisted config (the Python API has no getter)."""
        try:
            config = json.loads((self.path / CONFIG_FILE).read_text(encoding="utf-8"))
            vectors = config["vectors"]
            segments = vectors[SEGMENTS]
            dim = int(vectors[POOLED]["size"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{self.path} is not a clipsearch store (no {POOLED!r}/{SEGMENTS!r} vectors "
                f"in {CONFIG_FILE}: {exc})"
            ) from None
        if int(segments.get("size", -1)) != dim or not segments.get("multivector_config"):
            raise StoreError(f"{self.path}: {SEGMENTS!r} is not a multivector of size {dim}")
        return dim

    def _attach_moments(self, videos: qe.EdgeShard, dim: int, *, fresh: bool) -> qe.EdgeShard:
        """Open the segment shard, or build it (from ``videos`` unless ``fresh``) if missing.

        It is built in ``moments.building/`` and renamed into place once complete, so a
        build interrupted by a crash is started again rather than half used.
        """
        path = self.moments_path
        building = path.with_name(f"{MOMENTS_DIR}.building")
        try:
            if building.exists():
                shutil.rmtree(building)
            if path.exists() and not fresh:
                stored = _read_moments_dim(path)
                if stored == dim:
                    return qe.EdgeShard.load(str(path))
                logger.warning(
                    "%s is not a segment index of size %d (found %s): rebuilding it",
                    path,
                    dim,
                    stored,
                )
            if path.exists():
                shutil.rmtree(path)
        except ClipSearchError:
            raise
        except Exception as exc:
            raise self._error("open the segment index", exc) from None
        try:
            shard = qe.EdgeShard.create(str(building), _moments_config(dim))
        except Exception as exc:
            raise self._error("create the segment index", exc) from None
        try:
            keyword = dict.fromkeys((VIDEO_KEY, *self.payload_indexes))
            for name in keyword:
                shard.update(
                    qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword)
                )
            for name in self.range_indexes:
                if name not in keyword:
                    shard.update(
                        qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Float)
                    )
            written = 0 if fresh else self._backfill(videos, shard, dim)
            shard.flush()
        except BaseException as exc:
            shard.close()
            if isinstance(exc, Exception):
                raise self._error("build the segment index", exc) from None
            raise
        try:
            shard.close()
            building.rename(path)
            moments = qe.EdgeShard.load(str(path))
        except Exception as exc:
            raise self._error("open the segment index", exc) from None
        if not fresh:
            logger.info("built the segment index %s (%d segments)", path, written)
        return moments

    def _backfill(self, videos: qe.EdgeShard, moments: qe.EdgeShard, dim: int) -> int:
        """Copy every stored video's segments into the (new, empty) segment shard."""
        written = 0
        offset: Any = None
        while True:
            records, offset = videos.scroll(
                qe.ScrollRequest(
                    offset=offset, limit=BATCH, with_payload=True, with_vector=[SEGMENTS]
                )
            )
            batch: list[qe.Point] = []
            for r in records:
                pid = str(r.id)
                segments = segment_matrix(r.vector, dim, pid).tolist()
                for sid, vector, payload in segment_points(pid, segments, dict(r.payload or {})):
                    batch.append(qe.Point(sid, {SEGMENT: vector}, payload))
            for chunk in batched(batch):
                moments.update(qe.UpdateOperation.upsert_points(list(chunk)))
            written += len(batch)
            if offset is None or not records:
                return written

    def _error(self, action: str, exc: BaseException) -> ClipSearchError:
        if isinstance(exc, ClipSearchError):
            return exc
        message = str(exc)
        if "WouldBlock" in message:
            return _in_use(self.path)
        return StoreError(f"Qdrant Edge store {self.path}: cannot {action}: {message}")

    def _require_shard(self) -> tuple[qe.EdgeShard, int]:
        shard, dim = self._shard, self._dim
        if self._closed:
            raise StoreError(f"store {self.path} is closed")
        if shard is None or dim is None:
            raise StoreError(f"store {self.path} has no collection yet (ingest some videos first)")
        return shard, dim

    def _require_shards(self) -> tuple[qe.EdgeShard, qe.EdgeShard, int]:
        """The video shard, the segment shard and the vector size."""
        shard, dim = self._require_shard()
        moments = self._moments
        if moments is None:  # pragma: no cover - both are opened and closed together
            raise StoreError(f"store {self.path} has no segment index")
        return shard, moments, dim

    # -- VectorStore

    def ensure_collection(self, dim: int) -> None:
        """Create both shards for vectors of size ``dim`` if missing; StoreError on another size."""
        dim = check_dim(dim)
        with self._lock:
            if self._closed:
                raise StoreError(f"store {self.path} is closed")
            self._acquire_process_lock()
            if self._shard is None and self._has_shard():
                self._open()
            if self._shard is not None:
                if self._dim != dim:
                    raise StoreError(
                        f"store {self.path} holds vectors of size {self._dim}, not {dim} "
                        "(use another store path or re-ingest with the same model)"
                    )
                return
            try:
                shard = qe.EdgeShard.create(str(self.path), _edge_config(dim))
            except Exception as exc:
                raise self._error("create the collection", exc) from None
            try:
                for name in self.payload_indexes:
                    shard.update(
                        qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword)
                    )
                shard.flush()
            except Exception as exc:
                shard.close()
                raise self._error("index payload fields", exc) from None
            try:
                moments = self._attach_moments(shard, dim, fresh=True)
            except BaseException:
                shard.close()
                raise
            self._shard, self._moments, self._dim = shard, moments, dim
            logger.info("created Qdrant Edge store %s (dim %d)", self.path, dim)

    def dim(self) -> int | None:
        """Vector size of the shard, or None if there is none yet."""
        return self._dim

    def upsert(self, points: Sequence[ClipPoint]) -> None:
        """Insert or replace points (same id -> vectors and payload replaced) and their
        segment points (a video's former segments beyond its new count are deleted).

        The segment shard is written first: an interrupted upsert leaves, at worst,
        segment points of a video whose point is older or missing (search skips a missing
        video; ingest re-embeds both).
        """
        if not points:
            return
        _, _, dim = self._require_shards()
        edge_points: dict[str, qe.Point] = {}
        seg_points: dict[str, qe.Point] = {}
        counts: dict[str, int] = {}
        for p in points:
            pid, pooled, segments = point_vectors(p, dim)
            payload = plain_payload(pid, p.payload)
            try:
                edge_points[pid] = qe.Point(pid, {POOLED: pooled, SEGMENTS: segments}, payload)
                for sid, vector, seg_payload in segment_points(pid, segments, payload):
                    seg_points[sid] = qe.Point(sid, {SEGMENT: vector}, seg_payload)
            except (TypeError, ValueError, OverflowError) as exc:
                raise InvalidInput(f"point {pid}: payload cannot be stored: {exc}") from None
            counts[pid] = len(segments)  # a repeated id: the last one wins, as in Qdrant
        with self._lock:
            shard, moments, _ = self._require_shards()
            try:
                for batch in batched(list(seg_points.values())):
                    moments.update(qe.UpdateOperation.upsert_points(list(batch)))
                for videos, n in stale_segment_groups(counts):
                    moments.update(
                        qe.UpdateOperation.delete_points_by_filter(_stale_filter(videos, n))
                    )
                for batch in batched(list(edge_points.values())):
                    shard.update(qe.UpdateOperation.upsert_points(list(batch)))
            except Exception as exc:
                raise self._error("upsert", exc) from None
        logger.debug(
            "upserted %d points (%d segments) into %s", len(edge_points), len(seg_points), self.path
        )

    def search(
        self,
        vector: np.ndarray,
        k: int,
        *,
        using: str = POOLED,
        filter: PayloadFilter | None = None,
        offset: int = 0,
    ) -> list[Hit]:
        """Top-k points by cosine (``POOLED``) or MaxSim (``SEGMENTS``) similarity."""
        check_page(k, offset)
        shard, dim = self._require_shard()
        request = qe.QueryRequest(
            limit=int(k),
            offset=int(offset),
            query=qe.Query.Nearest(query_vector(vector, using, dim), using=using),
            filter=_edge_filter(filter),
            with_payload=True,
        )
        try:
            scored = shard.query(request)
        except Exception as exc:
            raise self._error("search", exc) from None
        return [
            Hit(id=str(p.id), score=float(p.score), payload=dict(p.payload or {})) for p in scored
        ]

    def search_segments(
        self,
        vector: np.ndarray,
        k: int,
        *,
        prefetch: int,
        filter: PayloadFilter | None = None,
        offset: int = 0,
        exclude: Sequence[str] = (),
        score_threshold: float | None = None,
    ) -> list[SegmentHit]:
        """Best segments from the segment shard, grouped by video (see VectorStore)."""
        check_page(k, offset)
        limit = first_segment_limit(prefetch, k, offset)
        threshold = check_threshold(score_threshold)
        shard, moments, dim = self._require_shards()
        q = pooled_query(vector, dim)
        seg_filter = _edge_filter(filter, exclude, exclude_key=VIDEO_KEY)
        params = qe.SearchParams(hnsw_ef=SEGMENT_HNSW_EF)

        def fetch(n: int) -> list[tuple[Hashable, float]]:
            request = qe.QueryRequest(
                limit=int(n),
                query=qe.Query.Nearest(q, using=SEGMENT),
                filter=seg_filter,
                score_threshold=engine_threshold(threshold),
                with_payload=False,  # read for as many hits as needed, by videos_of
                params=params,
            )
            return [(p.id, p.score) for p in moments.query(request)]

        def videos_of(ids: list[Hashable]) -> dict[Hashable, str]:
            return {
                r.id: str((r.payload or {})[VIDEO_KEY])
                for b in batched(ids)
                for r in moments.retrieve(list(b), [VIDEO_KEY], False)
            }

        def lookup(ids: list[str]) -> dict[str, tuple[dict[str, Any], np.ndarray]]:
            records = shard.retrieve(list(ids), True, [SEGMENTS])
            return {
                str(r.id): (dict(r.payload or {}), segment_matrix(r.vector, dim, str(r.id)))
                for r in records
            }

        def exists(ids: list[str]) -> set[str]:
            return {str(r.id) for b in batched(ids) for r in shard.retrieve(list(b), False, False)}

        try:
            return grouped_segment_search(
                fetch,
                videos_of,
                lookup,
                exists,
                lambda: int(moments.count(qe.CountRequest(exact=True))),
                k=int(k),
                offset=int(offset),
                limit=limit,
                threshold=threshold,
            )
        except Exception as exc:
            raise self._error("search", exc) from None

    def retrieve(self, ids: Sequence[str], *, with_vectors: bool = False) -> dict[str, ClipPoint]:
        """Points by id (missing ids are left out); vectors only if asked for."""
        wanted = [canonical_id(i) for i in ids]
        if not wanted:
            return {}
        shard, dim = self._shard_or_none()
        if shard is None:
            return {}
        out: dict[str, ClipPoint] = {}
        try:
            for batch in batched(wanted):
                records = shard.retrieve(
                    list(batch), True, [POOLED, SEGMENTS] if with_vectors else False
                )
                for r in records:
                    pid = str(r.id)
                    out[pid] = as_point(pid, r.payload, r.vector if with_vectors else None, dim)
        except Exception as exc:
            raise self._error("retrieve", exc) from None
        return out

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """The subset of ``ids`` (as given) that are stored."""
        by_canonical = {canonical_id(i): i for i in ids}
        if not by_canonical:
            return set()
        shard, _ = self._shard_or_none()
        if shard is None:
            return set()
        found: set[str] = set()
        try:
            for batch in batched(list(by_canonical)):
                found.update(str(r.id) for r in shard.retrieve(list(batch), False, False))
        except Exception as exc:
            raise self._error("look up ids", exc) from None
        return {by_canonical[c] for c in found if c in by_canonical}

    def facet(self, key: str, limit: int = 100) -> dict[str, int]:
        """The most common values of an indexed keyword field and their exact counts."""
        check_page(limit, 0)
        shard, _ = self._shard_or_none()
        if shard is None:
            return {}
        try:
            response = shard.facet(qe.FacetRequest(key, limit=int(limit), exact=True))
        except Exception as exc:
            raise self._error(f"count the values of {key!r}", exc) from None
        return {str(h.value): int(h.count) for h in response.hits}

    def export_vectors(self, *, batch: int = 1024) -> tuple[list[str], np.ndarray]:
        """Every point id and its ``pooled`` vector, (N, D) float32, scrolled in id order."""
        batch = check_batch(batch)
        shard, dim = self._shard_or_none()
        if shard is None:
            return [], np.zeros((0, dim or 0), dtype=np.float32)
        ids: list[str] = []
        rows: list[Any] = []
        offset: Any = None
        try:
            while True:
                records, offset = shard.scroll(
                    qe.ScrollRequest(
                        offset=offset, limit=batch, with_payload=False, with_vector=[POOLED]
                    )
                )
                for r in records:
                    vectors = r.vector
                    if not isinstance(vectors, dict) or POOLED not in vectors:
                        raise StoreError(f"point {r.id} in {self.path} has no {POOLED!r} vector")
                    ids.append(str(r.id))
                    rows.append(vectors[POOLED])
                if offset is None or not records:
                    break
        except ClipSearchError:
            raise
        except Exception as exc:
            raise self._error("export vectors", exc) from None
        return stack_pooled(ids, rows, dim)

    def count(self) -> int:
        """Exact number of videos (0 when there is no shard yet)."""
        shard, _ = self._shard_or_none()
        if shard is None:
            return 0
        try:
            return int(shard.count(qe.CountRequest(exact=True)))
        except Exception as exc:
            raise self._error("count", exc) from None

    def segment_count(self) -> int:
        """Exact number of points in the segment index (0 when there is none yet)."""
        if self._closed:
            raise StoreError(f"store {self.path} is closed")
        moments = self._moments
        if moments is None:
            return 0
        try:
            return int(moments.count(qe.CountRequest(exact=True)))
        except Exception as exc:
            raise self._error("count segments", exc) from None

    def optimize(self) -> bool:
        """Run Qdrant's segment optimizers on both shards (merges segments, builds the HNSW
        graphs of ``pooled`` and of the segment index).

        Qdrant Edge never optimizes on its own; without this, search is an exact scan, which
        stays fast up to tens of thousands of segments. Returns True if anything changed.
        """
        with self._lock:
            shard, moments, _ = self._require_shards()
            try:
                changed = bool(shard.optimize())
                return bool(moments.optimize()) or changed
            except Exception as exc:
                raise self._error("optimize", exc) from None

    def flush(self) -> None:
        """Flush both shards' WAL and segments to disk."""
        with self._lock:
            if self._shard is None or self._closed:
                return
            try:
                if self._moments is not None:
                    self._moments.flush()
                self._shard.flush()
            except Exception as exc:
                raise self._error("flush", exc) from None

    def close(self) -> None:
        """Flush, close both shards and release the lock file; calling it again does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            shards = [s for s in (self._moments, self._shard) if s is not None]
            self._shard = self._moments = None
            errors: list[Exception] = []
            try:
                for shard in shards:
                    try:
                        shard.flush()
                        shard.close()
                    except Exception as exc:
                        errors.append(exc)
            finally:
                self._release_process_lock()
            if errors:
                raise self._error("close", errors[0]) from None
            logger.debug("closed Qdrant Edge store %s", self.path)

    def _shard_or_none(self) -> tuple[qe.EdgeShard | None, int | None]:
        if self._closed:
            raise StoreError(f"store {self.path} is closed")
        return self._shard, self._dim
