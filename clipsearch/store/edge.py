"""Embedded vector store on Qdrant Edge (``qdrant-edge-py``): two shards in one directory.

Everything lives in-process: no server to run. ``<path>/`` is the **video shard** (one point
per video: ``pooled`` + ``segments`` multivector + payload; its ``wal/``, ``segments/`` and
``edge_config.json``), and ``<path>/moments/`` is the **window shard**, the per-window
index: one point per window (dense vector ``segment``, cosine, HNSW) with a copy of
the video's filterable payload. Qdrant Edge only ever touches ``wal/``, ``segments/``,
``temp_segments/`` and its config files under a shard path, so nesting the window shard
inside the video shard's directory is safe. :meth:`QdrantEdgeStore.search_windows`
queries the window shard for the best windows, keeps each video's best one and reads
those videos back from the video shard.

The window shard is derived data: a store written before it existed (no ``moments/``) gets
it built from the stored ``segments`` vectors when it is opened (built in
``moments.building/`` and renamed when complete, so an interrupted build is redone).

Qdrant Edge is single-process: each shard holds an exclusive ``flock`` on its WAL, and this
adapter adds its own lock file (``<path>/.clipsearch.lock``, covering both shards) so that a
second opener - another process, or a second store object in this process - gets a clear
:class:`StoreError` instead of a raw ``WouldBlock``. Inside one process the shards are safe
for concurrent queries from several threads, also while another thread upserts; writes,
flush and close are serialised by a lock.

The argument checks and the window-index logic shared with the qdrant-client adapter
live in :mod:`clipsearch.store.checks` and :mod:`clipsearch.store.window_index`.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import threading
import uuid
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import qdrant_edge as qe

from clipsearch.errors import ClipSearchError, InvalidInput, StoreError
from clipsearch.store.base import (
    POOLED,
    WINDOWS_VECTOR,
    ClipPoint,
    Hit,
    PayloadFilter,
    Range,
    WindowHit,
)
from clipsearch.store.checks import (
    BATCH,
    INDEXED_FIELDS,
    RANGE_INDEXED_FIELDS,
    VIDEO_INDEXED_FIELDS,
    FilterScalar,
    FilterValue,
    as_point,
    batched,
    canonical_id,
    check_batch,
    check_dim,
    check_page,
    check_threshold,
    filter_conditions,
    plain_payload,
    point_vectors,
    pooled_query,
    query_vector,
    stack_pooled,
    window_matrix,
)
from clipsearch.store.read_cache import DEFAULT_VIDEO_CACHE_MB, VideoCache, WindowOwners
from clipsearch.store.window_index import (
    INDEX_KEY,
    VIDEO_KEY,
    WINDOW_HNSW_EF,
    WINDOW_VECTOR,
    engine_threshold,
    first_window_limit,
    grouped_window_search,
    stale_window_groups,
    window_points,
)

if sys.platform != "win32":
    import fcntl

logger = logging.getLogger(__name__)

LOCK_FILE = ".clipsearch.lock"
CONFIG_FILE = "edge_config.json"  # written by EdgeShard.create
MOMENTS_DIR = "moments"  # the window shard, inside the video shard's directory
# Where a shard's optimize builds each new segment before moving it into ``segments/``.
TEMP_SEGMENTS_DIR = "temp_segments"


# --------------------------------------------------------------------------- the adapter


def _clear_unfinished_segments(shard_dir: Path) -> None:
    """Remove the segments an interrupted optimize left half built.

    Qdrant Edge builds them under ``temp_segments/`` and never clears it when a shard is
    loaded, so each build killed mid-way (a crash, ``kill -9``, a container stopped)
    would keep its disk for good (UCF101's window graph: about 300 MB). Their points are still
    in ``segments/``. Call only while holding the store's lock.
    """
    temp = shard_dir / TEMP_SEGMENTS_DIR
    try:
        entries = list(temp.iterdir())
    except OSError:  # none yet
        return
    if not entries:
        return
    size = sum(f.stat().st_size for e in entries for f in [e, *e.rglob("*")] if f.is_file())
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    logger.warning(
        "%s: removed %d unfinished segment(s) (%.0f MB) left by an interrupted index build",
        shard_dir,
        len(entries),
        size / 1e6,
    )


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
    points whose payload ``exclude_key`` is one of them (window points by ``video``)."""
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
    """Window points of ``videos`` at positions ``n`` and beyond."""
    return qe.Filter(
        must=[
            qe.FieldCondition(VIDEO_KEY, match=qe.MatchAny(videos)),
            qe.FieldCondition(INDEX_KEY, range=qe.RangeFloat(gte=float(n))),
        ]
    )


# Threads one search may use inside Qdrant Edge. One: a server's concurrency comes from
# its requests, and a single search on two cores was measured 25 % cheaper in CPU (1.41
# against 1.94 ms per window query at 86k windows) and faster than with Edge's pool.
SEARCH_THREADS = 1


def video_shard_config(dim: int, search_threads: int | None = SEARCH_THREADS) -> qe.EdgeConfig:
    """The video shard: ``pooled`` (HNSW) and the ``segments`` multivector (MaxSim)."""
    return qe.EdgeConfig(
        max_search_threads=search_threads,
        vectors={
            POOLED: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
            WINDOWS_VECTOR: qe.EdgeVectorParams(
                size=dim,
                distance=qe.Distance.Cosine,
                multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
                # Only used to rerank candidates by MaxSim: never build a graph for it.
                hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10000),
            ),
        },
    )


# Windows outside the graph are scanned by every query (benchmarks/index/window_query.py:
# 16.2 ms of CPU a query for 86,166 windows of 512); opening a store with this many says so.
UNINDEXED_WARNING = 20_000
SCAN_MS_PER_VALUE = 16.2 / (86_166 * 512)

# The window graph is walked on int8 copies of the vectors (kept in RAM: a quarter of the
# originals) and the hits are rescored with the originals, so their scores are exact.
# A store made before this gets them at its next optimize (``clipsearch ingest``).
WINDOW_QUANTIZATION = qe.ScalarQuantizationConfig(
    qe.ScalarType.Int8, quantile=0.99, always_ram=True
)
WINDOW_SEARCH_PARAMS = qe.SearchParams(
    hnsw_ef=WINDOW_HNSW_EF, quantization=qe.QuantizationSearchParams(rescore=True)
)


def window_shard_config(
    dim: int,
    search_threads: int | None = SEARCH_THREADS,
    *,
    quantized: bool = True,
) -> qe.EdgeConfig:
    """The window shard: ``segment`` (HNSW, walked on :data:`WINDOW_QUANTIZATION` copies
    if ``quantized``); Qdrant's defaults for everything else."""
    return qe.EdgeConfig(
        vectors={
            WINDOW_VECTOR: qe.EdgeVectorParams(
                size=dim,
                distance=qe.Distance.Cosine,
                quantization_config=WINDOW_QUANTIZATION if quantized else None,
            )
        },
        max_search_threads=search_threads,
    )


def _read_moments_dim(path: Path) -> int | None:
    """Vector size of a window shard's persisted config; None if it is not one."""
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        return int(config["vectors"][WINDOW_VECTOR]["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _window_key(point_id: int | uuid.UUID | str) -> int:
    """A window point's id as its UUID's integer. Window searches key their maps by it:
    an integer hashes in C, a UUID's hash and equality are Python methods (hundreds of
    calls a query)."""
    return point_id.int if isinstance(point_id, uuid.UUID) else uuid.UUID(str(point_id)).int


class QdrantEdgeStore:
    """:class:`~clipsearch.store.base.VectorStore` on two embedded Qdrant Edge shards.

    ``path`` is the video shard's directory, the window shard is ``path/moments``. If the
    store exists it is locked and opened right away (building a missing window shard from
    the stored window vectors), otherwise :meth:`ensure_collection` creates both. Keyword
    indexes are created on ``payload_indexes`` in both shards and on ``video_indexes`` in the
    video shard (each costs ~0.03-0.1 s at creation, nothing afterwards); the window shard
    always has one on ``video`` (used to replace a video's windows) and float indexes on
    ``range_indexes``.
    """

    kind = "qdrant-edge"

    def __init__(
        self,
        path: str | Path,
        *,
        payload_indexes: Sequence[str] = INDEXED_FIELDS,
        range_indexes: Sequence[str] = RANGE_INDEXED_FIELDS,
        video_indexes: Sequence[str] = VIDEO_INDEXED_FIELDS,
        video_cache_mb: float = DEFAULT_VIDEO_CACHE_MB,
    ):
        self.path = Path(path)
        self.payload_indexes = tuple(payload_indexes)
        self.range_indexes = tuple(range_indexes)
        self.video_indexes = tuple(video_indexes)
        self._lock = threading.RLock()  # serialises open/create/update/flush/close
        self._lock_file: IO[str] | None = None
        self._shard: qe.EdgeShard | None = None  # the videos
        self._moments: qe.EdgeShard | None = None  # the windows
        self._dim: int | None = None
        self._closed = False
        # What window searches read back; valid while this process holds the store's lock.
        self.video_cache = VideoCache(video_cache_mb)
        self._owners = WindowOwners()
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
        """The window shard's directory."""
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
        if self._lock_file is not None:  # no other process can be optimizing it
            for shard_dir in (self.path, self.moments_path):
                _clear_unfinished_segments(shard_dir)
        try:
            dim = self._read_dim()
            shard = qe.EdgeShard.load(str(self.path), video_shard_config(dim))
        except Exception as exc:
            raise self._error("open", exc) from None
        try:
            moments = self._attach_moments(shard, dim, fresh=False)
        except BaseException:
            shard.close()
            raise
        self._shard, self._moments, self._dim = shard, moments, dim
        logger.info("opened Qdrant Edge store %s (dim %s)", self.path, self._dim)
        self._warn_unindexed(moments, dim)

    def _warn_unindexed(self, moments: qe.EdgeShard, dim: int) -> None:
        try:
            info = moments.info()
        except Exception:  # a warning only: the store works without it
            return
        scanned = int(info.points_count) - int(info.indexed_vectors_count)
        if scanned >= UNINDEXED_WARNING:
            logger.warning(
                "%s: %d windows are not in the search graph and are scanned by every query "
                "(about %.0f ms); `clipsearch ingest` builds the graph at the end of its run",
                self.path,
                scanned,
                scanned * dim * SCAN_MS_PER_VALUE,
            )

    def _read_dim(self) -> int:
        """Vector size from the shard's persisted config (the Python API has no getter)."""
        try:
            config = json.loads((self.path / CONFIG_FILE).read_text(encoding="utf-8"))
            vectors = config["vectors"]
            windows = vectors[WINDOWS_VECTOR]
            dim = int(vectors[POOLED]["size"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{self.path} is not a clipsearch store (no {POOLED!r}/{WINDOWS_VECTOR!r} vectors "
                f"in {CONFIG_FILE}: {exc})"
            ) from None
        if int(windows.get("size", -1)) != dim or not windows.get("multivector_config"):
            raise StoreError(f"{self.path}: {WINDOWS_VECTOR!r} is not a multivector of size {dim}")
        return dim

    def _attach_moments(self, videos: qe.EdgeShard, dim: int, *, fresh: bool) -> qe.EdgeShard:
        """Open the window shard, or build it (from ``videos`` unless ``fresh``) if missing.

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
                    return qe.EdgeShard.load(str(path), window_shard_config(dim))
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
            shard = qe.EdgeShard.create(str(building), window_shard_config(dim))
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
            moments = qe.EdgeShard.load(str(path), window_shard_config(dim))
        except Exception as exc:
            raise self._error("open the segment index", exc) from None
        if not fresh:
            logger.info("built the segment index %s (%d segments)", path, written)
        return moments

    def _backfill(self, videos: qe.EdgeShard, moments: qe.EdgeShard, dim: int) -> int:
        """Copy every stored video's windows into the (new, empty) window shard."""
        written = 0
        offset: Any = None
        while True:
            records, offset = videos.scroll(
                qe.ScrollRequest(
                    offset=offset, limit=BATCH, with_payload=True, with_vector=[WINDOWS_VECTOR]
                )
            )
            batch: list[qe.Point] = []
            for r in records:
                pid = str(r.id)
                windows = window_matrix(r.vector, dim, pid).tolist()
                for sid, vector, payload in window_points(pid, windows, dict(r.payload or {})):
                    batch.append(qe.Point(sid, {WINDOW_VECTOR: vector}, payload))
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
        """The video shard, the window shard and the vector size."""
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
                self._index_missing(self._shard)
                return
            try:
                shard = qe.EdgeShard.create(str(self.path), video_shard_config(dim))
            except Exception as exc:
                raise self._error("create the collection", exc) from None
            try:
                for name in dict.fromkeys((*self.payload_indexes, *self.video_indexes)):
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

    def _index_missing(self, shard: qe.EdgeShard) -> None:
        """Create the video shard's keyword indexes that a store made by an earlier version
        lacks (``video_indexes``: what ingest filters by)."""
        try:
            have = set(shard.info().payload_schema)
            for name in self.video_indexes:
                if name not in have:
                    shard.update(
                        qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword)
                    )
        except Exception as exc:
            raise self._error("index payload fields", exc) from None

    def dim(self) -> int | None:
        """Vector size of the shard, or None if there is none yet."""
        return self._dim

    def upsert(self, points: Sequence[ClipPoint]) -> None:
        """Insert or replace points (same id -> vectors and payload replaced) and their
        window points (a video's former windows beyond its new count are deleted).

        The window shard is written first: an interrupted upsert leaves, at worst,
        window points of a video whose point is older or missing (search skips a missing
        video; ingest re-embeds both).
        """
        if not points:
            return
        _, _, dim = self._require_shards()
        edge_points: dict[str, qe.Point] = {}
        window_point_map: dict[str, qe.Point] = {}
        counts: dict[str, int] = {}
        for p in points:
            pid, pooled, windows = point_vectors(p, dim)
            payload = plain_payload(pid, p.payload)
            try:
                edge_points[pid] = qe.Point(pid, {POOLED: pooled, WINDOWS_VECTOR: windows}, payload)
                for sid, vector, window_payload in window_points(pid, windows, payload):
                    window_point_map[sid] = qe.Point(sid, {WINDOW_VECTOR: vector}, window_payload)
            except (TypeError, ValueError, OverflowError) as exc:
                raise InvalidInput(f"point {pid}: payload cannot be stored: {exc}") from None
            counts[pid] = len(windows)  # a repeated id: the last one wins, as in Qdrant
        with self._lock:
            shard, moments, _ = self._require_shards()
            try:
                for batch in batched(list(window_point_map.values())):
                    moments.update(qe.UpdateOperation.upsert_points(list(batch)))
                for videos, n in stale_window_groups(counts):
                    moments.update(
                        qe.UpdateOperation.delete_points_by_filter(_stale_filter(videos, n))
                    )
                for batch in batched(list(edge_points.values())):
                    shard.update(qe.UpdateOperation.upsert_points(list(batch)))
            except Exception as exc:
                raise self._error("upsert", exc) from None
            finally:
                self.video_cache.forget(counts)
        logger.debug(
            "upserted %d points (%d segments) into %s",
            len(edge_points),
            len(window_point_map),
            self.path,
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
        """Top-k points by cosine (``POOLED``) or MaxSim (``WINDOWS_VECTOR``) similarity."""
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

    def search_windows(
        self,
        vector: np.ndarray,
        k: int,
        *,
        prefetch: int,
        filter: PayloadFilter | None = None,
        offset: int = 0,
        exclude: Sequence[str] = (),
        score_threshold: float | None = None,
    ) -> list[WindowHit]:
        """Best windows from the window shard, grouped by video (see VectorStore)."""
        check_page(k, offset)
        limit = first_window_limit(prefetch, k, offset)
        threshold = check_threshold(score_threshold)
        shard, moments, dim = self._require_shards()
        q = pooled_query(vector, dim)
        window_filter = _edge_filter(filter, exclude, exclude_key=VIDEO_KEY)

        def fetch(n: int) -> list[tuple[Hashable, float]]:
            request = qe.QueryRequest(
                limit=int(n),
                query=qe.Query.Nearest(q, using=WINDOW_VECTOR),
                filter=window_filter,
                score_threshold=engine_threshold(threshold),
                with_payload=False,  # read for as many hits as needed, by videos_of
                params=WINDOW_SEARCH_PARAMS,
            )
            return [(_window_key(p.id), p.score) for p in moments.query(request)]

        def videos_of(ids: list[Hashable]) -> dict[Hashable, str]:
            known, unknown = self._owners.split(ids)
            if unknown:
                got: dict[Hashable, str] = {
                    _window_key(r.id): str((r.payload or {})[VIDEO_KEY])
                    for b in batched(unknown)
                    for r in moments.retrieve([uuid.UUID(int=i) for i in b], [VIDEO_KEY], False)
                }
                self._owners.add(got)
                known.update(got)
            return known

        def lookup(ids: list[str]) -> dict[str, tuple[dict[str, Any], np.ndarray]]:
            generation = self.video_cache.generation
            found = self.video_cache.get_many(ids)
            missing = [v for v in ids if v not in found]
            if missing:
                records = shard.retrieve(list[Any](missing), True, [WINDOWS_VECTOR])
                read = {
                    str(r.id): (dict(r.payload or {}), window_matrix(r.vector, dim, str(r.id)))
                    for r in records
                }
                self.video_cache.put_many(read, generation)
                found.update(read)
            return found

        def exists(ids: list[str]) -> set[str]:
            return {str(r.id) for b in batched(ids) for r in shard.retrieve(list(b), False, False)}

        try:
            return grouped_window_search(
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
                    list(batch), True, [POOLED, WINDOWS_VECTOR] if with_vectors else False
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

    def payloads(
        self, filter: PayloadFilter | None = None, *, keys: Sequence[str] | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(id, payload)`` of every video matching ``filter`` (only ``keys``), in id order."""
        edge_filter = _edge_filter(filter)
        shard, _ = self._shard_or_none()
        payload = list(keys) if keys is not None else True
        for r in self._scroll(shard, "read payloads", BATCH, payload, False, edge_filter):
            yield str(r.id), dict(r.payload or {})

    def _scroll(
        self,
        shard: qe.EdgeShard | None,
        action: str,
        batch: int,
        with_payload: bool | list[str],
        with_vector: bool | list[str],
        filter: qe.Filter | None = None,
    ) -> Iterator[Any]:
        """Every record of ``shard`` (none without one), ``batch`` at a time in id order."""
        if shard is None:
            return
        offset: Any = None
        while True:
            try:
                records, offset = shard.scroll(
                    qe.ScrollRequest(
                        offset=offset,
                        limit=batch,
                        filter=filter,
                        with_payload=with_payload,
                        with_vector=with_vector,
                    )
                )
            except Exception as exc:
                raise self._error(action, exc) from None
            yield from records
            if offset is None or not records:
                return

    def delete(self, ids: Sequence[str]) -> None:
        """Remove videos and their window points, window points first (see VectorStore)."""
        wanted = list(dict.fromkeys(canonical_id(i) for i in ids))
        if not wanted:
            return
        with self._lock:
            shard, moments = self._shard, self._moments
            if shard is None or moments is None:
                self._shard_or_none()  # a closed store says so
                return
            try:
                for batch in batched(wanted):
                    moments.update(
                        qe.UpdateOperation.delete_points_by_filter(
                            qe.Filter(
                                must=[qe.FieldCondition(VIDEO_KEY, match=qe.MatchAny(list(batch)))]
                            )
                        )
                    )
                    shard.update(qe.UpdateOperation.delete_points(list(batch)))
            except Exception as exc:
                raise self._error("delete", exc) from None
            finally:
                self.video_cache.forget(wanted)
        logger.debug("deleted %d videos from %s", len(wanted), self.path)

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
        for r in self._scroll(shard, "export vectors", batch, False, [POOLED]):
            vectors = r.vector
            if not isinstance(vectors, dict) or POOLED not in vectors:
                raise StoreError(f"point {r.id} in {self.path} has no {POOLED!r} vector")
            ids.append(str(r.id))
            rows.append(vectors[POOLED])
        return stack_pooled(ids, rows, dim)

    def scroll_points(
        self, *, windows: bool = False, batch: int = 256
    ) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        """Every point of the video index (or with ``windows`` the window index) as
        (id, named vectors, payload), in id order."""
        batch = check_batch(batch)
        if self._closed:
            raise StoreError(f"store {self.path} is closed")
        shard = self._moments if windows else self._shard
        for r in self._scroll(shard, "scroll", batch, True, True):
            vectors = r.vector if isinstance(r.vector, dict) else {}
            yield str(r.id), dict(vectors), dict(r.payload or {})

    def count(self) -> int:
        """Exact number of videos (0 when there is no shard yet)."""
        shard, _ = self._shard_or_none()
        if shard is None:
            return 0
        try:
            return int(shard.count(qe.CountRequest(exact=True)))
        except Exception as exc:
            raise self._error("count", exc) from None

    def window_count(self) -> int:
        """Exact number of points in the window index (0 when there is none yet)."""
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
        graphs of ``pooled`` and of the window index).

        Qdrant Edge never optimizes on its own; until this runs, new points are searched by
        an exact scan (16 ms a query at 86k windows, against 0.4 ms on the graph), so
        ``clipsearch ingest`` runs it at the end of every run. It costs little when few
        points are new; it keeps the GIL while it builds. Returns True if anything changed.
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
