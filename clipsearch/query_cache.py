"""An LRU cache of query embeddings: a repeated query skips the text tower.

Keys are the validated query text (whitespace already collapsed), so "a  ball" and
"a ball" share an entry. Thread-safe: Gunicorn threads of one worker share it; each
worker process has its own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from clipsearch import telemetry
from clipsearch.errors import InvalidInput


class QueryCache:
    """At most ``capacity`` query vectors, least recently used evicted first (0: off)."""

    def __init__(self, capacity: int = 4096):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise InvalidInput(f"query cache capacity must be an integer >= 0, got {capacity!r}")
        self.capacity = capacity
        self._entries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, text: str, compute: Callable[[str], np.ndarray]) -> np.ndarray:
        """The cached vector of ``text``, computing (and caching) it on a miss."""
        if self.capacity == 0:
            with self._lock:
                self.misses += 1
            telemetry.event("query_cache", "miss")
            return compute(text)
        with self._lock:
            vector = self._entries.get(text)
            if vector is not None:
                self._entries.move_to_end(text)
                self.hits += 1
        if vector is not None:
            telemetry.event("query_cache", "hit")
            return vector
        with self._lock:
            self.misses += 1
        telemetry.event("query_cache", "miss")
        vector = np.array(compute(text), dtype=np.float32)  # computed outside the lock
        vector.setflags(write=False)  # shared between requests: nobody may change it
        with self._lock:
            self._entries[text] = vector
            self._entries.move_to_end(text)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return vector

    def stats(self) -> dict[str, Any]:
        """Size, capacity, hits, misses and hit rate since the process started."""
        with self._lock:
            total = self.hits + self.misses
            return {
                "size": len(self._entries),
                "capacity": self.capacity,
                "hits": self.hits,
                "misses": self.misses,
                "hit_rate": round(self.hits / total, 4) if total else None,
            }
