"""In-process read caches of the embedded store's window search.

A window query names its result videos' window points, then reads those videos back
(payload and window vectors, the vectors arriving as Python lists of floats). For an
embedded Qdrant Edge store this process is the only reader and writer (the directory is
locked), so what it read stays true until it writes: both caches are emptied of the
videos an upsert touches. The window-to-video map never goes stale at all: a window's
id is derived from its video's id.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np

from clipsearch import telemetry
from clipsearch.errors import InvalidInput

DEFAULT_VIDEO_CACHE_MB = 256
DEFAULT_OWNER_ENTRIES = 1_000_000


class VideoCache:
    """LRU of ``video id -> (payload, (S, D) window vectors)`` up to ``capacity_mb``."""

    def __init__(self, capacity_mb: float = DEFAULT_VIDEO_CACHE_MB):
        if isinstance(capacity_mb, bool) or not capacity_mb >= 0:
            raise InvalidInput(f"the store cache size must be >= 0 MB, got {capacity_mb!r}")
        self.capacity = int(capacity_mb * 2**20)
        self._entries: OrderedDict[str, tuple[dict[str, Any], np.ndarray, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        # Bumped by every ``forget``: a read that began before a write is not cached.
        self.generation = 0

    def get_many(self, ids: Iterable[str]) -> dict[str, tuple[dict[str, Any], np.ndarray]]:
        out: dict[str, tuple[dict[str, Any], np.ndarray]] = {}
        hit = missed = 0
        with self._lock:
            for vid in ids:
                entry = self._entries.get(vid)
                if entry is None:
                    missed += 1
                    continue
                self._entries.move_to_end(vid)
                hit += 1
                out[vid] = (dict(entry[0]), entry[1])
            self.hits += hit
            self.misses += missed
        telemetry.event("store_cache", "hit", hit)
        telemetry.event("store_cache", "miss", missed)
        return out

    def put_many(
        self, found: Mapping[str, tuple[dict[str, Any], np.ndarray]], generation: int
    ) -> None:
        """Cache what a read that began at ``generation`` found (dropped if a write came
        in between)."""
        if self.capacity <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return
            for vid, (payload, windows) in found.items():
                windows.setflags(write=False)  # shared by every request that finds it
                size = int(windows.nbytes) + 64 * (len(payload) + 1)
                old = self._entries.pop(vid, None)
                if old is not None:
                    self._bytes -= old[2]
                self._entries[vid] = (dict(payload), windows, size)
                self._bytes += size
            while self._bytes > self.capacity and self._entries:
                _, (_, _, size) = self._entries.popitem(last=False)
                self._bytes -= size

    def forget(self, ids: Iterable[str]) -> None:
        """Drop ``ids`` (call after writing them)."""
        with self._lock:
            self.generation += 1
            for vid in ids:
                old = self._entries.pop(vid, None)
                if old is not None:
                    self._bytes -= old[2]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            total = self.hits + self.misses
            return {
                "videos": len(self._entries),
                "mb": round(self._bytes / 2**20, 1),
                "capacity_mb": round(self.capacity / 2**20, 1),
                "hit_rate": round(self.hits / total, 4) if total else None,
            }


class WindowOwners:
    """``window id -> video id``, at most ``max_entries`` (then started afresh)."""

    def __init__(self, max_entries: int = DEFAULT_OWNER_ENTRIES):
        self.max_entries = max_entries
        self._owner: dict[Hashable, str] = {}
        self._lock = threading.Lock()

    def split(self, ids: Iterable[Hashable]) -> tuple[dict[Hashable, str], list[Hashable]]:
        """(known owners, ids still to look up)."""
        known: dict[Hashable, str] = {}
        unknown: list[Hashable] = []
        with self._lock:
            for sid in ids:
                video = self._owner.get(sid)
                if video is None:
                    unknown.append(sid)
                else:
                    known[sid] = video
        return known, unknown

    def add(self, owners: Mapping[Hashable, str]) -> None:
        with self._lock:
            if len(self._owner) + len(owners) > self.max_entries:
                self._owner.clear()
            self._owner.update(owners)
