"""The vector store contract shared by every Qdrant adapter.

A store holds two indexes. The **video index** holds one point per video clip:

- ``pooled``: the clip vector (cosine, HNSW), for pooled search and more-like-this;
- ``segments``: a multivector of one vector per moment window (cosine, MaxSim,
  no HNSW graph), returned with window hits so the caller can name the moment;
- payload: path, class, group, split membership, duration, ``segment_times``
  (start_s, end_s of each window vector, in order), model id, ...

The **window index** beside it holds one point per window: its vector (dense,
cosine, HNSW) and a payload naming its video and position (``video``, ``index``,
``start_s``, ``end_s``) plus a copy of the video's payload (without its per-frame and
per-window lists), so payload filters mean the same on both. It is written by ``upsert``
together with the videos and is what :meth:`VectorStore.search_windows` queries. On Qdrant
Edge it is the shard ``<store>/moments/``; on qdrant-client the collection
``<collection>_moments``.

Point ids are UUIDv5 of the (bytes of the) clip's path relative to its dataset root
(:func:`clip_id`), so re-ingesting a clip is an upsert, never a duplicate; a window's id
is UUIDv5 of ``"<video id>/<index>"``.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

POOLED = "pooled"
WINDOWS_VECTOR = "segments"

# Fixed namespace: ids must stay stable across machines and releases.
CLIP_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://clipsearch.dev/clip")


def clip_id(relative_path: str | bytes) -> str:
    """Deterministic point id for a clip: UUIDv5 of the raw bytes of its POSIX path relative
    to the dataset root (for a UTF-8 name, the same as UUIDv5 of the text)."""
    raw = relative_path if isinstance(relative_path, bytes) else os.fsencode(relative_path)
    return str(uuid5_bytes(CLIP_NAMESPACE, raw.replace(b"\\", b"/")))


def uuid5_bytes(namespace: uuid.UUID, name: bytes) -> uuid.UUID:
    """``uuid.uuid5`` of a name given as bytes (any bytes, not only UTF-8 text)."""
    digest = hashlib.sha1(namespace.bytes + name, usedforsecurity=False).digest()
    return uuid.UUID(bytes=digest[:16], version=5)


@dataclass(frozen=True)
class ClipPoint:
    """One clip as stored: id, pooled vector (D,), window vectors (S, D), payload."""

    id: str
    pooled: np.ndarray
    windows: np.ndarray
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A search result: point id, similarity score and payload."""

    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class WindowHit(Hit):
    """A video found by its windows: its score (the cosine of its best window, i.e. MaxSim
    for a single query vector) and its stored window vectors (S, D), in order."""

    windows: np.ndarray


@dataclass(frozen=True)
class Range:
    """A numeric payload range (either end may be open), e.g. ``Range(gte=2.0, lte=6.0)``."""

    gte: float | None = None
    lte: float | None = None


# Filters on payload keys, e.g. {"class": "BallBouncing", "split_1": "test",
# "duration_s": Range(lte=10)}. A list value matches any of its elements.
PayloadFilter = Mapping[str, str | int | bool | Sequence[str | int] | Range]


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
        """Insert or replace points (same id -> replaced), and replace their window points
        (no window of an earlier version is left behind)."""
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

        ``using=POOLED`` takes a (D,) vector; ``using=WINDOWS_VECTOR`` takes a (Q, D)
        multivector (or a (D,) vector, treated as Q=1) scored by MaxSim.
        """
        ...

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
        """Videos ranked by their best window for a unit (D,) query.

        The window index is searched for the best windows (at first
        ``max(prefetch, 4 * (offset + k))`` of them, doubled while fewer than
        ``offset + k`` distinct videos came back and more may exist); the hits are grouped
        by video, keeping each video's best, and videos ``[offset : offset + k]`` are
        returned in order of that score. Each hit's score is its best window's cosine
        (= MaxSim over its ``segments`` for this one query vector); it carries its payload
        and window vectors (read from the video index) so the caller can tell which moment
        won.

        ``filter`` applies to the windows' copy of the video payload; ``exclude`` leaves
        videos out by id; ``score_threshold`` drops hits scoring lower (a hit scoring exactly
        the threshold is kept).
        """
        ...

    def retrieve(self, ids: Sequence[str], *, with_vectors: bool = False) -> dict[str, ClipPoint]:
        """Points by id (missing ids are left out). Vectors are empty arrays unless asked for."""
        ...

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """The subset of ``ids`` present in the store."""
        ...

    def payloads(
        self, filter: PayloadFilter | None = None, *, keys: Sequence[str] | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(id, payload)`` of every video matching ``filter``, in id order; with ``keys``
        only those payload fields are read."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Remove videos and their window points (unknown ids are ignored). The window
        points go first, a batch at a time: an interrupted delete leaves, at worst,
        videos without their window points, which deleting them again finishes."""
        ...

    def facet(self, key: str, limit: int = 100) -> dict[str, int]:
        """The most common values of a keyword payload field and their point counts."""
        ...

    def count(self) -> int:
        """Exact number of videos."""
        ...

    def flush(self) -> None:
        """Make every acknowledged write durable."""
        ...

    def optimize(self) -> bool:
        """Build the search graphs of what was written (merging small segments); True if
        anything changed. Until then new points are searched by an exact scan."""
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
