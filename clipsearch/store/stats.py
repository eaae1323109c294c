"""What a store holds, in a form two stores can be compared by: ``clipsearch store stats``.

For the video index and the window index: the point count the engine reports, the points
a full scroll returns, ids seen more than once, and a SHA-256 over the sorted points (id,
vectors rounded to 4 decimals, payload without the fields that legitimately differ between
two ingests of the same files). Two stores with the same digest hold the same points.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any, Protocol

# Payload fields that differ between two ingests of the same files.
VOLATILE_FIELDS = frozenset({"ingested_at"})
DIGITS = 4


class Scrollable(Protocol):
    def count(self) -> int: ...

    def window_count(self) -> int: ...

    def scroll_points(
        self, *, windows: bool = False, batch: int = 256
    ) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]: ...


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        rounded = round(value, DIGITS)
        return 0.0 if rounded == 0 else rounded  # -0.0 and 0.0 are one value
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def _canonical(point_id: str, vectors: dict[str, Any], payload: dict[str, Any]) -> bytes:
    doc = {
        "id": point_id,
        "vectors": {name: _rounded(list(v)) for name, v in sorted(vectors.items())},
        "payload": {k: v for k, v in payload.items() if k not in VOLATILE_FIELDS},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def index_stats(store: Scrollable, *, windows: bool) -> dict[str, Any]:
    """Count, scroll count, duplicate ids and digest of one of the store's two indexes."""
    count = store.window_count() if windows else store.count()
    entries: dict[str, bytes] = {}
    scrolled = 0
    duplicates: list[str] = []
    for point_id, vectors, payload in store.scroll_points(windows=windows):
        scrolled += 1
        if point_id in entries:
            duplicates.append(point_id)
        entries[point_id] = _canonical(point_id, vectors, payload)
    digest = hashlib.sha256()
    for point_id in sorted(entries):
        digest.update(entries[point_id])
        digest.update(b"\n")
    return {
        "count": count,
        "scroll_count": scrolled,
        "count_equals_scroll": count == scrolled,
        "duplicate_ids": sorted(set(duplicates)),
        "digest": digest.hexdigest(),
    }


def store_stats(store: Scrollable) -> dict[str, Any]:
    """Both indexes; ``consistent`` when counts equal scrolls and no id repeats."""
    videos = index_stats(store, windows=False)
    moments = index_stats(store, windows=True)
    consistent = all(s["count_equals_scroll"] and not s["duplicate_ids"] for s in (videos, moments))
    return {"videos": videos, "segments": moments, "consistent": consistent}
