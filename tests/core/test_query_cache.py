"""The LRU cache of query embeddings."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipsearch.errors import InvalidInput
from clipsearch.model import load_model
from clipsearch.query_cache import QueryCache
from clipsearch.search import SearchLimits, SearchService
from clipsearch.store.base import ClipPoint, clip_id
from clipsearch.store.client import QdrantClientStore


def vector_of(text: str) -> np.ndarray:
    return np.full(4, float(len(text)), dtype=np.float32)


def test_hits_misses_and_eviction_in_lru_order() -> None:
    cache = QueryCache(2)
    computed: list[str] = []

    def compute(text: str) -> np.ndarray:
        computed.append(text)
        return vector_of(text)

    cache.get("a", compute)
    cache.get("bb", compute)
    np.testing.assert_array_equal(cache.get("a", compute), vector_of("a"))  # hit, now newest
    cache.get("ccc", compute)  # evicts "bb", the least recently used
    cache.get("a", compute)  # still there
    cache.get("bb", compute)  # computed again
    assert computed == ["a", "bb", "ccc", "bb"]
    assert cache.stats() == {"size": 2, "capacity": 2, "hits": 2, "misses": 4, "hit_rate": 0.3333}


def test_cached_vectors_are_read_only() -> None:
    cache = QueryCache(4)
    vector = cache.get("a", vector_of)
    with pytest.raises(ValueError):
        vector[0] = 99.0
    assert cache.get("a", vector_of)[0] == 1.0


def test_capacity_zero_turns_it_off_and_bad_capacities_are_refused() -> None:
    cache = QueryCache(0)
    for _ in range(3):
        cache.get("a", vector_of)
    assert cache.stats() == {"size": 0, "capacity": 0, "hits": 0, "misses": 3, "hit_rate": 0.0}
    for bad in (-1, 1.5, True):
        with pytest.raises(InvalidInput):
            QueryCache(bad)  # type: ignore[arg-type]


def test_threads_share_it_safely() -> None:
    cache = QueryCache(8)
    texts = [f"q{i % 16}" for i in range(400)]

    def work(chunk: list[str]) -> None:
        for t in chunk:
            np.testing.assert_array_equal(cache.get(t, vector_of), vector_of(t))

    threads = [threading.Thread(target=work, args=(texts[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = cache.stats()
    assert stats["hits"] + stats["misses"] == 400 and stats["size"] <= 8


class CountingEncoder:
    """The real tiny text tower, counting how often it runs."""

    def __init__(self, encoder: Any):
        self.encoder = encoder
        self.model_id = encoder.model_id
        self.calls = 0

    def encode_text(self, texts: Any, **kwargs: Any) -> np.ndarray:
        self.calls += 1
        vectors: np.ndarray = self.encoder.encode_text(texts, **kwargs)
        return vectors


def test_a_repeated_query_skips_the_text_tower(tiny_model_dir: Path) -> None:
    encoder = CountingEncoder(load_model(tiny_model_dir, towers="text"))
    store = QdrantClientStore.in_memory()
    vec = encoder.encoder.encode_text(["ball bouncing"])[0]
    store.ensure_collection(len(vec))
    store.upsert([ClipPoint(clip_id("a.avi"), vec, vec[None], {"path": "a.avi"})])
    service = SearchService(encoder, store)
    first = service.search("ball bouncing", 1)
    again = service.search("  ball   bouncing ", 1)
    assert encoder.calls == 1
    assert [r.id for r in first.results] == [r.id for r in again.results]
    assert first.results[0].score == again.results[0].score
    assert service.health()["query_cache"]["hits"] == 1
    uncached = SearchService(encoder, store, SearchLimits(query_cache=0))
    uncached.search("ball bouncing", 1)
    uncached.search("ball bouncing", 1)
    assert encoder.calls == 3
