"""Argument checks and conversions shared by both Qdrant adapters.

Vector shapes, payload filters, paging, point ids and payloads are validated here, once,
so :mod:`clipsearch.store.edge` and :mod:`clipsearch.store.client` refuse the same input
with the same message.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, cast

import numpy as np

from clipsearch.errors import InvalidInput, StoreError
from clipsearch.store.base import (
    POOLED,
    WINDOWS_VECTOR,
    ClipPoint,
    PayloadFilter,
    Range,
)

# Payload fields worth a keyword index (filters of the search UI and the evaluation).
INDEXED_FIELDS = ("class", "split_1", "split_2", "split_3", "model")
# Keyword indexes of the video index alone: how an ingest finds a folder's videos and a
# moved file's stored content.
VIDEO_INDEXED_FIELDS = ("root", "content_hash")
# Numeric payload fields worth a float index in the window index (duration filters).
RANGE_INDEXED_FIELDS = ("duration_s",)
# Points per update/retrieve call.
BATCH = 256

FilterScalar = str | int | bool
FilterValue = FilterScalar | list[str] | list[int] | Range


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


def window_matrix(vectors: Any, dim: int, point_id: str) -> np.ndarray:
    """The (S, D) window vectors of a returned point."""
    if not isinstance(vectors, dict) or WINDOWS_VECTOR not in vectors:
        raise StoreError(f"point {point_id} came back without its {WINDOWS_VECTOR!r} vectors")
    return np.asarray(vectors[WINDOWS_VECTOR], dtype=np.float32).reshape(-1, dim)


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

    ``POOLED`` takes a (D,) vector; ``WINDOWS_VECTOR`` a (Q, D) multivector or a (D,) vector,
    sent as Q=1.
    """
    if using not in (POOLED, WINDOWS_VECTOR):
        raise InvalidInput(
            f"unknown vector name {using!r} (expected {POOLED!r} or {WINDOWS_VECTOR!r})"
        )
    try:
        arr = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"query vector is not numeric: {exc}") from None
    if using == WINDOWS_VECTOR and arr.ndim == 1:
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
    """Check a point against the collection: canonical id, pooled (D,), windows (S>=1, D)."""
    pid = canonical_id(point.id)
    pooled = np.asarray(point.pooled, dtype=np.float32)
    windows = np.asarray(point.windows, dtype=np.float32)
    if pooled.ndim != 1:
        raise InvalidInput(f"point {pid}: pooled must have shape (D,), got {pooled.shape}")
    if windows.ndim == 1 and windows.size:
        windows = windows[None, :]
    if windows.ndim != 2 or windows.shape[0] == 0:
        raise InvalidInput(
            f"point {pid}: segments must have shape (S, D) with S >= 1, got {windows.shape}"
        )
    if pooled.shape[0] != dim:
        raise _dim_mismatch(pooled.shape[0], dim, f"point {pid}: pooled vector")
    if windows.shape[1] != dim:
        raise _dim_mismatch(windows.shape[1], dim, f"point {pid}: segment vectors")
    _finite(pooled, f"point {pid}: pooled vector")
    _finite(windows, f"point {pid}: segment vectors")
    return pid, pooled.tolist(), windows.tolist()


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
    if isinstance(vectors, dict) and POOLED in vectors and WINDOWS_VECTOR in vectors:
        pooled = np.asarray(vectors[POOLED], dtype=np.float32)
        windows = np.asarray(vectors[WINDOWS_VECTOR], dtype=np.float32).reshape(-1, pooled.shape[0])
    else:
        pooled, windows = empty_vectors(dim)
    return ClipPoint(id=point_id, pooled=pooled, windows=windows, payload=dict(payload or {}))


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
