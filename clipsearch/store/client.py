"""Vector store on ``qdrant-client``: a Qdrant server (URL) or the client's local mode.

Same layout as the Qdrant Edge adapter, as two collections:

- ``<collection>``, one point per video: named dense vector ``pooled`` (cosine, HNSW) and
  named multivector ``segments`` (cosine, MaxSim, no HNSW graph), and the payload;
- ``<collection>_moments``, the per-window index: one point per window, dense
  vector ``segment`` (cosine, HNSW), payload = the video's (minus per-frame lists) plus
  ``video``, ``index``, ``start_s``, ``end_s``. ``search_windows`` queries it and groups
  the hits by video client-side, exactly as the Edge adapter does.

On a server, keyword payload indexes are created for the filterable fields (and on
``video``, a float index on ``duration_s``, in the window collection). A video collection
without its window collection (written before it existed) gets it built from the stored
window vectors by :meth:`QdrantClientStore.ensure_collection`. Every client, transport or
server error comes out as a :class:`StoreError` naming the server URL (or local path).

Local mode (``QdrantClient(":memory:")`` / ``QdrantClient(path=...)``) is an exact
pure-Python implementation that is not documented as thread-safe, so this adapter
serialises its calls with a lock; a server client is used lock-free.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from qdrant_client.local.qdrant_local import QdrantLocal

from clipsearch.errors import ClipSearchError, InvalidInput, StoreError, StoreUnavailable
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

try:  # only present with the gRPC extra; the REST transport is the default
    import grpc

    _TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
        ResponseHandlingException,
        httpx.HTTPError,
        grpc.RpcError,
    )
except ImportError:  # pragma: no cover
    _TRANSPORT_ERRORS = (ResponseHandlingException, httpx.HTTPError)

logger = logging.getLogger(__name__)

# Points per upsert request: a point is ~1 + S vectors of D floats as JSON (~10 KB per
# 512-d vector), and a Qdrant server refuses requests over 32 MB by default.
UPSERT_BATCH = 64
# Window points (one vector each) per upsert request.
WINDOW_UPSERT_BATCH = 256
# The window collection's name is the video collection's plus this.
MOMENTS_SUFFIX = "_moments"

# On a server whose collections are int8-quantized (deploy/qdrant/config.yaml makes that the
# default), the graph is walked on the int8 copies and twice the hits are rescored with the
# originals: `clipsearch bench-index` measured recall@10 0.996 (100k) that way, against
# under 0.99 at any ef without the oversampling. Unquantized collections ignore it.
WINDOW_SEARCH_PARAMS = qm.SearchParams(
    hnsw_ef=WINDOW_HNSW_EF,
    quantization=qm.QuantizationSearchParams(rescore=True, oversampling=2.0),
)


def _condition(key: str, value: FilterValue) -> qm.FieldCondition:
    if isinstance(value, Range):
        return qm.FieldCondition(key=key, range=qm.Range(gte=value.gte, lte=value.lte))
    if isinstance(value, list):
        return qm.FieldCondition(key=key, match=qm.MatchAny(any=value))
    return qm.FieldCondition(key=key, match=qm.MatchValue(value=value))


def _client_filter(
    filter: PayloadFilter | None, exclude: Sequence[str] = (), *, exclude_key: str | None = None
) -> qm.Filter | None:
    """A qdrant-client filter; ``exclude`` leaves out point ids, or with ``exclude_key`` the
    points whose payload ``exclude_key`` is one of them (window points by ``video``)."""
    conditions = filter_conditions(filter)
    excluded = [canonical_id(i) for i in exclude]
    if not conditions and not excluded:
        return None
    must: list[qm.Condition] = [_condition(key, value) for key, value in conditions]
    must_not: list[qm.Condition] = []
    if excluded and exclude_key is None:
        ids: list[qm.ExtendedPointId] = list(excluded)
        must_not.append(qm.HasIdCondition(has_id=ids))
    elif excluded and exclude_key is not None:
        must_not.append(_condition(exclude_key, excluded))
    return qm.Filter(must=must or None, must_not=must_not or None)


def _stale_filter(videos: list[str], n: int) -> qm.Filter:
    """Window points of ``videos`` at positions ``n`` and beyond."""
    return qm.Filter(
        must=[
            qm.FieldCondition(key=VIDEO_KEY, match=qm.MatchAny(any=videos)),
            qm.FieldCondition(key=INDEX_KEY, range=qm.Range(gte=n)),
        ]
    )


def video_vectors_config(dim: int) -> dict[str, qm.VectorParams]:
    """The video collection: ``pooled`` (HNSW) and the ``segments`` multivector (MaxSim)."""
    return {
        POOLED: qm.VectorParams(size=dim, distance=qm.Distance.COSINE),
        WINDOWS_VECTOR: qm.VectorParams(
            size=dim,
            distance=qm.Distance.COSINE,
            multivector_config=qm.MultiVectorConfig(comparator=qm.MultiVectorComparator.MAX_SIM),
            # Only used to rerank candidates by MaxSim: never build a graph for it.
            hnsw_config=qm.HnswConfigDiff(m=0),
        ),
    }


def _moments_vectors_config(dim: int) -> dict[str, qm.VectorParams]:
    return {WINDOW_VECTOR: qm.VectorParams(size=dim, distance=qm.Distance.COSINE)}


def _window_structs(
    video_id: str, windows: list[list[float]], payload: dict[str, Any]
) -> list[qm.PointStruct]:
    return [
        qm.PointStruct(id=sid, vector={WINDOW_VECTOR: vector}, payload=window_payload)
        for sid, vector, window_payload in window_points(video_id, windows, payload)
    ]


def _response_detail(exc: UnexpectedResponse) -> str:
    try:
        error = exc.structured().get("status", {}).get("error")
    except Exception:
        error = None
    if error:
        return str(error)
    text = exc.content.decode("utf-8", "replace").strip()
    return text[:300] or exc.reason_phrase


def _describe(client: QdrantClient) -> str:
    options: dict[str, Any] = getattr(client, "init_options", {}) or {}
    for key in ("url", "path", "location", "host"):
        if options.get(key):
            return str(options[key])
    return "localhost"


@dataclass(frozen=True)
class Distribution:
    """How a Qdrant cluster spreads the collections this store creates (both the video and
    the window collection): ``shard_number`` shards, each on ``replication_factor`` nodes,
    a write acknowledged by ``write_consistency_factor`` replicas. None: the server's
    default. Existing collections keep theirs."""

    shard_number: int | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None

    def __post_init__(self) -> None:
        for name in ("shard_number", "replication_factor", "write_consistency_factor"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise InvalidInput(f"{name} must be an integer >= 1, got {value!r}")
        if (
            self.replication_factor is not None
            and self.write_consistency_factor is not None
            and self.write_consistency_factor > self.replication_factor
        ):
            raise InvalidInput(
                f"write_consistency_factor ({self.write_consistency_factor}) cannot exceed "
                f"replication_factor ({self.replication_factor})"
            )


class QdrantClientStore:
    """:class:`~clipsearch.store.base.VectorStore` on a ``QdrantClient`` collection."""

    def __init__(
        self,
        client: QdrantClient,
        collection: str = "clips",
        *,
        where: str | None = None,
        distribution: Distribution | None = None,
        owns_client: bool = True,
    ):
        if not isinstance(collection, str) or not collection.strip():
            raise InvalidInput(f"collection name must be a non-empty string, got {collection!r}")
        self.client = client
        self.owns_client = owns_client
        self.distribution = distribution or Distribution()
        self.collection = collection
        self.local = isinstance(getattr(client, "_client", None), QdrantLocal)
        self.kind = "qdrant-local" if self.local else "qdrant-server"
        self.where = where or _describe(client)
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self.local else contextlib.nullcontext()
        )
        self._dim: int | None = None
        self._windows_ready = False
        self._closed = False

    def _create(self, name: str, vectors: dict[str, qm.VectorParams]) -> None:
        """Create collection ``name`` sharded and replicated by ``self.distribution``."""
        d = self.distribution
        self.client.create_collection(
            name,
            vectors_config=vectors,
            shard_number=d.shard_number,
            replication_factor=d.replication_factor,
            write_consistency_factor=d.write_consistency_factor,
        )

    def with_collection(self, collection: str) -> QdrantClientStore:
        """A store on another collection of the same server, sharing this one's client
        (closing it leaves the client open)."""
        return QdrantClientStore(
            self.client,
            collection,
            where=self.where,
            distribution=self.distribution,
            owns_client=False,
        )

    @property
    def moments(self) -> str:
        """Name of the window collection."""
        return f"{self.collection}{MOMENTS_SUFFIX}"

    @classmethod
    def from_url(
        cls,
        url: str,
        collection: str = "clips",
        api_key: str | None = None,
        timeout: int = 10,
        distribution: Distribution | None = None,
    ) -> QdrantClientStore:
        """A store on the Qdrant server at ``url`` (nothing is sent until the first call);
        ``distribution`` shards and replicates the collections it creates on a cluster."""
        try:
            client = QdrantClient(
                url=url, api_key=api_key, timeout=timeout, check_compatibility=False
            )
        except Exception as exc:
            raise StoreError(f"invalid Qdrant server URL {url!r}: {exc}") from None
        return cls(client, collection, where=url, distribution=distribution)

    @classmethod
    def in_memory(cls, collection: str = "clips") -> QdrantClientStore:
        """A throw-away store in qdrant-client's local in-memory mode (tests, demos)."""
        return cls(QdrantClient(":memory:"), collection, where=":memory:")

    def __repr__(self) -> str:
        return f"QdrantClientStore({self.where!r}, collection={self.collection!r})"

    def __enter__(self) -> QdrantClientStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- error handling

    @contextlib.contextmanager
    def _call(self, action: str) -> Iterator[None]:
        """Serialise (local mode) and turn every client error into a StoreError."""
        if self._closed:
            raise StoreError(f"store {self.where} is closed")
        name = f"collection {self.collection!r}"
        try:
            with self._lock:
                yield
        except ClipSearchError:
            raise
        except UnexpectedResponse as exc:
            logger.debug("Qdrant error during %s", action, exc_info=True)
            hint = " (check the API key)" if exc.status_code in (401, 403) else ""
            error = StoreUnavailable if (exc.status_code or 0) >= 500 else StoreError
            raise error(
                f"Qdrant at {self.where} refused to {action} ({name}): "
                f"HTTP {exc.status_code}: {_response_detail(exc)}{hint}"
            ) from None
        except _TRANSPORT_ERRORS as exc:
            logger.debug("Qdrant error during %s", action, exc_info=True)
            reason = getattr(exc, "details", None)
            detail = reason() if callable(reason) else str(exc) or type(exc).__name__
            raise StoreUnavailable(
                f"cannot reach Qdrant at {self.where} to {action} ({name}): {detail}"
            ) from None
        except (ValueError, RuntimeError, KeyError, TypeError, AssertionError) as exc:
            # Local mode reports bad requests with plain Python exceptions.
            logger.debug("Qdrant error during %s", action, exc_info=True)
            raise StoreError(f"Qdrant ({self.where}) cannot {action} ({name}): {exc}") from None

    def _read_dim(self) -> int | None:
        if not self.client.collection_exists(self.collection):
            return None
        vectors = self.client.get_collection(self.collection).config.params.vectors
        if not isinstance(vectors, dict) or POOLED not in vectors or WINDOWS_VECTOR not in vectors:
            raise StoreError(
                f"collection {self.collection!r} at {self.where} is not a clipsearch collection "
                f"(needs named vectors {POOLED!r} and {WINDOWS_VECTOR!r})"
            )
        dim = int(vectors[POOLED].size)
        windows = vectors[WINDOWS_VECTOR]
        if int(windows.size) != dim or windows.multivector_config is None:
            raise StoreError(
                f"collection {self.collection!r} at {self.where}: {WINDOWS_VECTOR!r} is not a "
                f"multivector of size {dim}"
            )
        return dim

    def _require_dim(self) -> int:
        dim = self.dim()
        if dim is None:
            raise StoreError(
                f"collection {self.collection!r} does not exist at {self.where} yet "
                "(ingest some videos first)"
            )
        return dim

    def _read_moments_dim(self) -> int | None:
        """Vector size of the window collection; None if missing or not one."""
        if not self.client.collection_exists(self.moments):
            return None
        vectors = self.client.get_collection(self.moments).config.params.vectors
        if not isinstance(vectors, dict) or WINDOW_VECTOR not in vectors:
            return 0  # something else under that name
        return int(vectors[WINDOW_VECTOR].size)

    def _require_windows(self) -> int:
        """The vector size, once the window collection is known to exist."""
        dim = self._require_dim()
        if not self._windows_ready:
            with self._call("read the segment collection"):
                ready = self._read_moments_dim() == dim
            if not ready:
                raise StoreError(
                    f"collection {self.collection!r} at {self.where} has no segment index "
                    f"{self.moments!r} yet (it was written by an older clipsearch): run "
                    "`clipsearch ingest` once, which builds it from the stored segments"
                )
            self._windows_ready = True
        return dim

    def _create_moments(self, dim: int, *, backfill: bool) -> None:
        """(Re)create the window collection, filled from the video collection if asked."""
        if self.client.collection_exists(self.moments):
            self.client.delete_collection(self.moments)
        try:
            self._create(self.moments, _moments_vectors_config(dim))
        except UnexpectedResponse as exc:
            if exc.status_code != 409:
                raise
            return  # created meanwhile by someone else, who fills it
        if not self.local:  # local mode ignores payload indexes
            for name in dict.fromkeys((VIDEO_KEY, *INDEXED_FIELDS)):
                self.client.create_payload_index(
                    self.moments, name, qm.PayloadSchemaType.KEYWORD, wait=True
                )
            for name in RANGE_INDEXED_FIELDS:
                self.client.create_payload_index(
                    self.moments, name, qm.PayloadSchemaType.FLOAT, wait=True
                )
        try:
            written = self._backfill(dim) if backfill else 0
        except BaseException:
            # Never leave a half-built index that looks complete (Ctrl-C, a lost server):
            # without it, the next ensure_collection builds it again.
            with contextlib.suppress(Exception):
                self.client.delete_collection(self.moments)
            raise
        logger.info(
            "created segment collection %r at %s (dim %d, %d segments)",
            self.moments,
            self.where,
            dim,
            written,
        )

    def _backfill(self, dim: int) -> int:
        """Copy every stored video's windows into the (new, empty) window collection."""
        written = 0
        pages = self._scroll(
            self.collection,
            UPSERT_BATCH,
            action="read the stored segments",
            with_payload=True,
            with_vectors=[WINDOWS_VECTOR],
        )
        for records in pages:
            structs: list[qm.PointStruct] = []
            for r in records:
                pid = str(r.id)
                windows = window_matrix(r.vector, dim, pid).tolist()
                structs.extend(_window_structs(pid, windows, dict(r.payload or {})))
            for batch in batched(structs, WINDOW_UPSERT_BATCH):
                self.client.upsert(self.moments, points=list(batch), wait=True)
            written += len(structs)
        return written

    def _scroll(
        self,
        name: str,
        batch: int,
        *,
        action: str,
        with_payload: bool | list[str],
        with_vectors: bool | list[str],
        filter: qm.Filter | None = None,
    ) -> Iterator[list[qm.Record]]:
        """Every point of collection ``name`` matching ``filter``, a page of ``batch`` at a
        time in id order."""
        offset: Any = None
        while True:
            with self._call(action):
                records, offset = self.client.scroll(
                    name,
                    scroll_filter=filter,
                    limit=batch,
                    offset=offset,
                    with_payload=with_payload,
                    with_vectors=with_vectors,
                )
            if records:
                yield records
            if offset is None or not records:
                return

    # -- VectorStore

    def ensure_collection(self, dim: int) -> None:
        """Create the video and window collections for vectors of size ``dim`` if missing.

        A video collection without its window collection gets one built from the stored
        window vectors. Raises StoreError if it exists with another size.
        """
        dim = check_dim(dim)
        created = False
        with self._call("create the collection"):
            existing = self._read_dim()
            if existing is None:
                try:
                    self._create(self.collection, video_vectors_config(dim))
                    created = True
                except UnexpectedResponse as exc:
                    if exc.status_code != 409:  # 409: created meanwhile by someone else
                        raise
                    created = False
                if created and not self.local:  # local mode ignores payload indexes
                    for name in (*INDEXED_FIELDS, *VIDEO_INDEXED_FIELDS):
                        self.client.create_payload_index(
                            self.collection, name, qm.PayloadSchemaType.KEYWORD, wait=True
                        )
                if created:
                    logger.info(
                        "created collection %r at %s (dim %d)", self.collection, self.where, dim
                    )
                existing = self._read_dim()
        if existing == dim and not created and not self.local:
            with self._call("index payload fields"):
                have = set(self.client.get_collection(self.collection).payload_schema)
                for name in VIDEO_INDEXED_FIELDS:  # stores made before ingest filtered by them
                    if name not in have:
                        self.client.create_payload_index(
                            self.collection, name, qm.PayloadSchemaType.KEYWORD, wait=True
                        )
        if existing != dim:
            raise StoreError(
                f"collection {self.collection!r} at {self.where} holds vectors of size "
                f"{existing}, not {dim} (use another collection or re-ingest with the same model)"
            )
        with self._call("create the segment collection"):
            moments_dim = self._read_moments_dim()
            if created:
                # A new video collection starts with an empty window index (dropping one
                # left over from an earlier collection of that name).
                self._create_moments(dim, backfill=False)
            elif moments_dim != dim:
                if moments_dim is not None:
                    logger.warning(
                        "%r at %s is not a segment index of size %d: rebuilding it",
                        self.moments,
                        self.where,
                        dim,
                    )
                self._create_moments(dim, backfill=True)
        self._dim = dim
        self._windows_ready = True

    def dim(self) -> int | None:
        """Vector size of the collection, or None if it does not exist yet."""
        if self._dim is None:
            with self._call("read the collection"):
                self._dim = self._read_dim()
        return self._dim

    def upsert(self, points: Sequence[ClipPoint]) -> None:
        """Insert or replace points and their window points (a video's former windows
        beyond its new count are deleted), waiting until the server has applied them.

        The window collection is written first: an interrupted upsert leaves, at worst,
        window points of a video whose point is older or missing (search skips a missing
        video; ingest re-embeds both).
        """
        if not points:
            return
        dim = self._require_windows()
        structs: dict[str, qm.PointStruct] = {}
        window_structs: dict[str, qm.PointStruct] = {}
        counts: dict[str, int] = {}
        for p in points:
            pid, pooled, windows = point_vectors(p, dim)
            payload = plain_payload(pid, p.payload)
            structs[pid] = qm.PointStruct(
                id=pid, vector={POOLED: pooled, WINDOWS_VECTOR: windows}, payload=payload
            )
            for struct in _window_structs(pid, windows, payload):
                window_structs[str(struct.id)] = struct
            counts[pid] = len(windows)  # a repeated id: the last one wins, as in Qdrant
        with self._call("upsert points"):
            for batch in batched(list(window_structs.values()), WINDOW_UPSERT_BATCH):
                self.client.upsert(self.moments, points=list(batch), wait=True)
            for videos, n in stale_window_groups(counts):
                self.client.delete(
                    self.moments,
                    points_selector=qm.FilterSelector(filter=_stale_filter(videos, n)),
                    wait=True,
                )
            for batch in batched(list(structs.values()), UPSERT_BATCH):
                self.client.upsert(self.collection, points=list(batch), wait=True)
        logger.debug(
            "upserted %d points (%d segments) into %r at %s",
            len(structs),
            len(window_structs),
            self.collection,
            self.where,
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
        dim = self._require_dim()
        query = query_vector(vector, using, dim)
        query_filter = _client_filter(filter)
        with self._call("search"):
            response = self.client.query_points(
                self.collection,
                query=query,
                using=using,
                limit=int(k),
                offset=int(offset),
                query_filter=query_filter,
                with_payload=True,
            )
        return [
            Hit(id=str(p.id), score=float(p.score), payload=dict(p.payload or {}))
            for p in response.points
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
        """Best windows from the window collection, grouped by video (see VectorStore)."""
        check_page(k, offset)
        limit = first_window_limit(prefetch, k, offset)
        threshold = check_threshold(score_threshold)
        dim = self._require_windows()
        q = pooled_query(vector, dim)
        window_filter = _client_filter(filter, exclude, exclude_key=VIDEO_KEY)
        # Local mode is an exact scan and warns that search params have no effect.
        params = None if self.local else WINDOW_SEARCH_PARAMS

        owners: dict[Hashable, str] = {}  # window id -> video id, from the hits' payload

        def fetch(n: int) -> list[tuple[Hashable, float]]:
            # The video ids come with the hits: one round trip to a server, not two.
            response = self.client.query_points(
                self.moments,
                query=q,
                using=WINDOW_VECTOR,
                limit=int(n),
                query_filter=window_filter,
                score_threshold=engine_threshold(threshold),
                search_params=params,
                with_payload=[VIDEO_KEY],
            )
            owners.update((p.id, str((p.payload or {})[VIDEO_KEY])) for p in response.points)
            return [(p.id, p.score) for p in response.points]

        def videos_of(ids: list[Hashable]) -> dict[Hashable, str]:
            return {i: owners[i] for i in ids if i in owners}

        def lookup(ids: list[str]) -> dict[str, tuple[dict[str, Any], np.ndarray]]:
            wanted: list[qm.ExtendedPointId] = list(ids)
            records = self.client.retrieve(
                self.collection, wanted, with_payload=True, with_vectors=[WINDOWS_VECTOR]
            )
            return {
                str(r.id): (dict(r.payload or {}), window_matrix(r.vector, dim, str(r.id)))
                for r in records
            }

        def exists(ids: list[str]) -> set[str]:
            found: set[str] = set()
            for batch in batched(ids):
                wanted: list[qm.ExtendedPointId] = list(batch)
                records = self.client.retrieve(
                    self.collection, wanted, with_payload=False, with_vectors=False
                )
                found.update(str(r.id) for r in records)
            return found

        def count_windows() -> int:
            return int(self.client.count(self.moments, exact=True).count)

        with self._call("search"):
            return grouped_window_search(
                fetch,
                videos_of,
                lookup,
                exists,
                count_windows,
                k=int(k),
                offset=int(offset),
                limit=limit,
                threshold=threshold,
            )

    def retrieve(self, ids: Sequence[str], *, with_vectors: bool = False) -> dict[str, ClipPoint]:
        """Points by id (missing ids are left out); vectors only if asked for."""
        wanted = [canonical_id(i) for i in ids]
        if not wanted or self.dim() is None:
            return {}
        out: dict[str, ClipPoint] = {}
        with self._call("retrieve points"):
            for batch in batched(wanted):
                records = self.client.retrieve(
                    self.collection,
                    list(batch),
                    with_payload=True,
                    with_vectors=[POOLED, WINDOWS_VECTOR] if with_vectors else False,
                )
                for r in records:
                    pid = str(r.id)
                    out[pid] = as_point(
                        pid, r.payload, r.vector if with_vectors else None, self._dim
                    )
        return out

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """The subset of ``ids`` (as given) that are stored."""
        by_canonical = {canonical_id(i): i for i in ids}
        if not by_canonical or self.dim() is None:
            return set()
        found: set[str] = set()
        with self._call("look up point ids"):
            for batch in batched(list(by_canonical)):
                records = self.client.retrieve(
                    self.collection, list(batch), with_payload=False, with_vectors=False
                )
                found.update(str(r.id) for r in records)
        return {by_canonical[c] for c in found if c in by_canonical}

    def payloads(
        self, filter: PayloadFilter | None = None, *, keys: Sequence[str] | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(id, payload)`` of every video matching ``filter`` (only ``keys``), in id order."""
        scroll_filter = _client_filter(filter)
        if self.dim() is None:
            return
        pages = self._scroll(
            self.collection,
            BATCH,
            action="read payloads",
            with_payload=list(keys) if keys is not None else True,
            with_vectors=False,
            filter=scroll_filter,
        )
        for records in pages:
            for r in records:
                yield str(r.id), dict(r.payload or {})

    def delete(self, ids: Sequence[str]) -> None:
        """Remove videos and their window points, window points first (see VectorStore)."""
        wanted = list(dict.fromkeys(canonical_id(i) for i in ids))
        if not wanted or self.dim() is None:
            return
        with self._call("delete points"):
            moments = self.client.collection_exists(self.moments)
            for batch in batched(wanted, UPSERT_BATCH):
                if moments:
                    self.client.delete(
                        self.moments,
                        points_selector=qm.FilterSelector(
                            filter=qm.Filter(
                                must=[
                                    qm.FieldCondition(
                                        key=VIDEO_KEY, match=qm.MatchAny(any=list(batch))
                                    )
                                ]
                            )
                        ),
                        wait=True,
                    )
                selected: list[qm.ExtendedPointId] = list(batch)
                self.client.delete(
                    self.collection, points_selector=qm.PointIdsList(points=selected), wait=True
                )
        logger.debug("deleted %d videos from %r at %s", len(wanted), self.collection, self.where)

    def facet(self, key: str, limit: int = 100) -> dict[str, int]:
        """The most common values of an indexed keyword field and their exact counts."""
        check_page(limit, 0)
        if self.dim() is None:
            return {}
        with self._call(f"count the values of {key!r}"):
            response = self.client.facet(self.collection, key, limit=int(limit), exact=True)
        return {str(h.value): int(h.count) for h in response.hits}

    def export_vectors(self, *, batch: int = 1024) -> tuple[list[str], np.ndarray]:
        """Every point id and its ``pooled`` vector, (N, D) float32, scrolled in id order."""
        batch = check_batch(batch)
        dim = self.dim()
        if dim is None:
            return [], np.zeros((0, 0), dtype=np.float32)
        ids: list[str] = []
        rows: list[Any] = []
        pages = self._scroll(
            self.collection,
            batch,
            action="export vectors",
            with_payload=False,
            with_vectors=[POOLED],
        )
        for records in pages:
            for r in records:
                vectors = r.vector
                if not isinstance(vectors, dict) or POOLED not in vectors:
                    raise StoreError(
                        f"point {r.id} in collection {self.collection!r} has no {POOLED!r} vector"
                    )
                ids.append(str(r.id))
                rows.append(vectors[POOLED])
        return stack_pooled(ids, rows, dim)

    def scroll_points(
        self, *, windows: bool = False, batch: int = 256
    ) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        """Every point of the video collection (or with ``windows`` the window
        collection) as (id, named vectors, payload), in id order."""
        batch = check_batch(batch)
        name = self.moments if windows else self.collection
        if self.dim() is None:
            return
        pages = self._scroll(name, batch, action="scroll", with_payload=True, with_vectors=True)
        for records in pages:
            for r in records:
                vectors = r.vector if isinstance(r.vector, dict) else {}
                yield str(r.id), dict(vectors), dict(r.payload or {})

    def count(self) -> int:
        """Exact number of videos (0 when the collection does not exist yet)."""
        if self.dim() is None:
            return 0
        with self._call("count points"):
            return int(self.client.count(self.collection, exact=True).count)

    def window_count(self) -> int:
        """Exact number of points in the window collection (0 when there is none yet)."""
        with self._call("count segments"):
            if not self.client.collection_exists(self.moments):
                return 0
            return int(self.client.count(self.moments, exact=True).count)

    def flush(self) -> None:
        """Nothing to do: upserts use ``wait=True``, so acknowledged writes are applied."""

    def optimize(self) -> bool:
        """Nothing to do: a Qdrant server runs its optimizers on its own (local mode builds
        no graphs)."""
        return False

    def close(self) -> None:
        """Close the client (unless it is shared); calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        if not self.owns_client:
            return
        try:
            with self._lock:
                self.client.close()
        except Exception as exc:  # closing must not fail the caller's shutdown
            logger.warning("closing Qdrant client for %s failed: %s", self.where, exc)
