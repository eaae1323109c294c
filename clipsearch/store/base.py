"""The vector store contract shared by every Qdrant adapter.

A collection holds one point per video clip:

- ``pooled``: the clip vector (cosine, HNSW) used for the first-pass search;
- ``segments``: a multivector of per-frame/segment vectors (cosine, MaxSim),
  ready for moment reranking;
- payload: path, class, group, split membership, duration, frame timestamps,
  model id, ...

Point ids are UUIDv5 of the clip's path relative to its dataset root
(:func:`clip_id`), so re-ingesting a clip is an upsert, never a duplicate.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

POOLED = "pooled"
SEGMENTS = "segments"

# Fixed namespace: ids must stay stable across machines and releases.
CLIP_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://clipsearch.dev/clip")


def clip_id(relative_path: str) -> str:
    """Deterministic point id for a clip, from its POSIX path relative to the dataset root."""
    return str(uuid.uuid5(CLIP_NAMESPACE, relative_path.replace("\\", "/")))


@dataclass(frozen=True)
class ClipPoint:
    """One clip as stored: id, pooled vector (D,), segment vectors (S, D), payload."""

    id: str
    pooled: np.ndarray
    segments: np.ndarray
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A search result: point id, similarity score and payload."""

    id: str
    score: float
    payload: dict[str, Any]


# Equality filters on payload keys, e.g. {"class": "BallBouncing", "split_1": "test"}.
# A list value matches any of its elements.
PayloadFilter = Mapping[str, str | int | bool | Sequence[str | int]]


@runtime_checkable
class VectorStore(Protocol):
    """What the ingest pipeline, the search service and the web app need from a store."""

    kind: str

    def ensure_collection(self, dim: int) -> None:
        """Create the collection for vectors of size ``dim`` if missing.

        Raises ``StoreError`` if it exists with another dimension.
        """
        ...

    def dim(self) -> int | None:
        """Vector size of the existing collection, or None if there is none yet."""
        ...

    def upsert(self, points: Sequence[ClipPoint]) -> None:
        """Insert or replace points (same id -> replaced)."""
        ...

    def search(
        self,
        vector: np.ndarray,
        k: int,
        *,
        using: str = POOLED,
        filter: PayloadFilter | None = None,
        offset: int = 0,
    ) -> list[Hit]:
        """Top-k points by cosine similarity.

        ``using=POOLED`` takes a (D,) vector; ``using=SEGMENTS`` takes a (Q, D)
        multivector (or a (D,) vector, treated as Q=1) scored by MaxSim.
        """
        ...

    def retrieve(self, ids: Sequence[str], *, with_vectors: bool = False) -> dict[str, ClipPoint]:
        """Points by id (missing ids are left out). Vectors are empty arrays unless asked for."""
        ...

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """The subset of ``ids`` present in the store."""
        ...

    def count(self) -> int:
        """Exact number of points."""
        ...

    def flush(self) -> None:
        """Make every acknowledged write durable."""
        ...

    def close(self) -> None:
        """Flush and release the store."""
        ...


@runtime_checkable
class VectorExporter(Protocol):
    """A store whose ``pooled`` vectors can be read back in bulk (benchmarks, re-indexing).

    Both Qdrant adapters implement it; it is kept apart from :class:`VectorStore`, which is
    what the application needs.
    """

    def export_vectors(self, *, batch: int = 1024) -> tuple[list[str], np.ndarray]:
        """Every point id and its ``pooled`` vector as an (N, D) float32 array, in id order.

        An empty store (or one without a collection) gives ``([], array of shape (0, D))``
        with D = 0 when the vector size is unknown.
        """
        ...
