"""Vector store on ``qdrant-client``: a Qdrant server (URL) or the client's local mode.

Same collection schema as the Qdrant Edge adapter: named dense vector ``pooled`` (cosine,
HNSW) and named multivector ``segments`` (cosine, MaxSim, no HNSW graph). On a server,
keyword payload indexes are created for the filterable fields. Every client, transport or
server error comes out as a :class:`StoreError` naming the server URL (or local path).

Local mode (``QdrantClient(":memory:")`` / ``QdrantClient(path=...)``) is an exact
pure-Python implementation that is not documented as thread-safe, so this adapter
serialises its calls with a lock; a server client is used lock-free.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from qdrant_client.local.qdrant_local import QdrantLocal

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
from clipsearch.store.edge import (
    INDEXED_FIELDS,
    FilterValue,
    as_point,
    batched,
    canonical_id,
    check_batch,
    check_dim,
    check_page,
    check_prefetch,
    check_threshold,
    filter_conditions,
    plain_payload,
    point_vectors,
    pooled_query,
    query_vector,
    segment_matrix,
    stack_pooled,
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


def _condition(key: str, value: FilterValue) -> qm.FieldCondition:
    if isinstance(value, Range):
        return qm.FieldCondition(key=key, range=qm.Range(gte=value.gte, lte=value.lte))
    if isinstance(value, list):
        return qm.FieldCondition(key=key, match=qm.MatchAny(any=value))
    return qm.FieldCondition(key=key, match=qm.MatchValue(value=value))


def _client_filter(filter: PayloadFilter | None, exclude: Sequence[str] = ()) -> qm.Filter | None:
    conditions = filter_conditions(filter)
    excluded: list[qm.ExtendedPointId] = [canonical_id(i) for i in exclude]
    if not conditions and not excluded:
        return None
    must: list[qm.Condition] = [_condition(key, value) for key, value in conditions]
    must_not: list[qm.Condition] = [qm.HasIdCondition(has_id=excluded)] if excluded else []
    return qm.Filter(must=must or None, must_not=must_not or None)


def _vectors_config(dim: int) -> dict[str, qm.VectorParams]:
    return {
        POOLED: qm.VectorParams(size=dim, distance=qm.Distance.COSINE),
        SEGMENTS: qm.VectorParams(
            size=dim,
            distance=qm.Distance.COSINE,
            multivector_config=qm.MultiVectorConfig(comparator=qm.MultiVectorComparator.MAX_SIM),
            # Only used to rerank candidates by MaxSim: never build a graph for it.
            hnsw_config=qm.HnswConfigDiff(m=0),
        ),
    }


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


class QdrantClientStore:
    """:class:`~clipsearch.store.base.VectorStore` on a ``QdrantClient`` collection."""

    def __init__(
        self, client: QdrantClient, collection: str = "clips", *, where: str | None = None
    ):
        if not isinstance(collection, str) or not collection.strip():
            raise InvalidInput(f"collection name must be a non-empty string, got {collection!r}")
        self.client = client
        self.collection = collection
        self.local = isinstance(getattr(client, "_client", None), QdrantLocal)
        self.kind = "qdrant-local" if self.local else "qdrant-server"
        self.where = where or _describe(client)
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self.local else contextlib.nullcontext()
        )
        self._dim: int | None = None
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        collection: str = "clips",
        api_key: str | None = None,
        timeout: int = 10,
    ) -> QdrantClientStore:
        """A store on the Qdrant server at ``url`` (nothing is sent until the first call)."""
        try:
            client = QdrantClient(
                url=url, api_key=api_key, timeout=timeout, check_compatibility=False
            )
        except Exception as exc:
            raise StoreError(f"invalid Qdrant server URL {url!r}: {exc}") from None
        return cls(client, collection, where=url)

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
            raise StoreError(
                f"Qdrant at {self.where} refused to {action} ({name}): "
                f"HTTP {exc.status_code}: {_response_detail(exc)}{hint}"
            ) from None
        except _TRANSPORT_ERRORS as exc:
            logger.debug("Qdrant error during %s", action, exc_info=True)
            reason = getattr(exc, "details", None)
            detail = reason() if callable(reason) else str(exc) or type(exc).__name__
            raise StoreError(
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
        if not isinstance(vectors, dict) or POOLED not in vectors or SEGMENTS not in vectors:
            raise StoreError(
                f"collection {self.collection!r} at {self.where} is not a clipsearch collection "
                f"(needs named vectors {POOLED!r} and {SEGMENTS!r})"
            )
        dim = int(vectors[POOLED].size)
        segments = vectors[SEGMENTS]
        if int(segments.size) != dim or segments.multivector_config is None:
            raise StoreError(
                f"collection {self.collection!r} at {self.where}: {SEGMENTS!r} is not a "
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

    # -- VectorStore

    def ensure_collection(self, dim: int) -> None:
        """Create the collection for vectors of size ``dim`` if missing.

        Raises StoreError if it exists with another size.
        """
        dim = check_dim(dim)
        with self._call("create the collection"):
            existing = self._read_dim()
            if existing is None:
                try:
                    self.client.create_collection(
                        self.collection, vectors_config=_vectors_config(dim)
                    )
                    created = True
                except UnexpectedResponse as exc:
                    if exc.status_code != 409:  # 409: created meanwhile by someone else
                        raise
                    created = False
                if created and not self.local:  # local mode ignores payload indexes
                    for name in INDEXED_FIELDS:
                        self.client.create_payload_index(
                            self.collection, name, qm.PayloadSchemaType.KEYWORD, wait=True
                        )
                if created:
                    logger.info(
                        "created collection %r at %s (dim %d)", self.collection, self.where, dim
                    )
                existing = self._read_dim()
        if existing != dim:
            raise StoreError(
                f"collection {self.collection!r} at {self.where} holds vectors of size "
                f"{existing}, not {dim} (use another collection or re-ingest with the same model)"
            )
        self._dim = dim

    def dim(self) -> int | None:
        """Vector size of the collection, or None if it does not exist yet."""
        if self._dim is None:
            with self._call("read the collection"):
                self._dim = self._read_dim()
        return self._dim

    def upsert(self, points: Sequence[ClipPoint]) -> None:
        """Insert or replace points, waiting until the server has applied them."""
        if not points:
            return
        dim = self._require_dim()
        structs = []
        for p in points:
            pid, pooled, segments = point_vectors(p, dim)
            structs.append(
                qm.PointStruct(
                    id=pid,
                    vector={POOLED: pooled, SEGMENTS: segments},
                    payload=plain_payload(pid, p.payload),
                )
            )
        with self._call("upsert points"):
            for batch in batched(structs, UPSERT_BATCH):
                self.client.upsert(self.collection, points=list(batch), wait=True)
        logger.debug("upserted %d points into %r at %s", len(structs), self.collection, self.where)

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
        """Prefetch by ``pooled`` cosine, rerank by ``segments`` MaxSim (see VectorStore)."""
        check_page(k, offset)
        candidates = check_prefetch(prefetch, k, offset)
        threshold = check_threshold(score_threshold)
        dim = self._require_dim()
        pooled = pooled_query(vector, dim)
        query_filter = _client_filter(filter, exclude)
        with self._call("search"):
            response = self.client.query_points(
                self.collection,
                prefetch=qm.Prefetch(
                    query=pooled, using=POOLED, limit=candidates, filter=query_filter
                ),
                query=[pooled],
                using=SEGMENTS,
                limit=int(k),
                offset=int(offset),
                query_filter=query_filter,
                score_threshold=threshold,
                with_payload=True,
                with_vectors=[SEGMENTS],
            )
        return [
            SegmentHit(
                id=str(p.id),
                score=float(p.score),
                payload=dict(p.payload or {}),
                segments=segment_matrix(p.vector, dim, str(p.id)),
            )
            for p in response.points
        ]

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
                    with_vectors=[POOLED, SEGMENTS] if with_vectors else False,
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
        offset: Any = None
        with self._call("export vectors"):
            while True:
                records, offset = self.client.scroll(
                    self.collection,
                    limit=batch,
                    offset=offset,
                    with_payload=False,
                    with_vectors=[POOLED],
                )
                for r in records:
                    vectors = r.vector
                    if not isinstance(vectors, dict) or POOLED not in vectors:
                        raise StoreError(
                            f"point {r.id} in collection {self.collection!r} has no "
                            f"{POOLED!r} vector"
                        )
                    ids.append(str(r.id))
                    rows.append(vectors[POOLED])
                if offset is None or not records:
                    break
        return stack_pooled(ids, rows, dim)

    def count(self) -> int:
        """Exact number of points (0 when the collection does not exist yet)."""
        if self.dim() is None:
            return 0
        with self._call("count points"):
            return int(self.client.count(self.collection, exact=True).count)

    def flush(self) -> None:
        """Nothing to do: upserts use ``wait=True``, so acknowledged writes are applied."""

    def close(self) -> None:
        """Close the client; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            with self._lock:
                self.client.close()
        except Exception as exc:  # closing must not fail the caller's shutdown
            logger.warning("closing Qdrant client for %s failed: %s", self.where, exc)
