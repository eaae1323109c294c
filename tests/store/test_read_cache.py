"""The embedded store's read caches: same answers as reading the shards, never stale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_store_windows import DIM, make_points, queries, unit

from clipsearch.store import ClipPoint, clip_id
from clipsearch.store.edge import QdrantEdgeStore
from clipsearch.store.read_cache import VideoCache, WindowOwners


def entry(n: int, value: float = 1.0) -> tuple[dict[str, object], np.ndarray]:
    return {"path": f"{n}.avi"}, np.full((n, 4), value, dtype=np.float32)


def test_video_cache_evicts_least_recently_used_by_size() -> None:
    cache = VideoCache(capacity_mb=(2 * 1000 * 16 + 300) / 2**20)  # room for two 1000x4 entries
    cache.put_many({"a": entry(1000), "b": entry(1000)}, cache.generation)
    assert set(cache.get_many(["a"])) == {"a"}  # a is now the most recent
    cache.put_many({"c": entry(1000)}, cache.generation)
    assert set(cache.get_many(["a", "b", "c"])) == {"a", "c"}
    stats = cache.stats()
    assert stats["videos"] == 2 and 0 < stats["hit_rate"] < 1


def test_a_read_that_began_before_a_write_is_not_cached() -> None:
    cache = VideoCache()
    began = cache.generation
    cache.forget(["a"])  # a write of "a" finished meanwhile
    cache.put_many({"a": entry(3, 0.0)}, began)
    assert cache.get_many(["a"]) == {}


def test_cached_entries_cannot_be_changed_by_a_caller() -> None:
    cache = VideoCache()
    cache.put_many({"a": entry(3)}, cache.generation)
    payload, windows = cache.get_many(["a"])["a"]
    payload["path"] = "changed"
    with pytest.raises(ValueError):
        windows[0, 0] = 5.0
    assert cache.get_many(["a"])["a"][0]["path"] == "3.avi"


def test_window_owners_split_known_from_unknown() -> None:
    owners = WindowOwners(max_entries=3)
    owners.add({"s1": "v1", "s2": "v1"})
    assert owners.split(["s1", "s3"]) == ({"s1": "v1"}, ["s3"])
    owners.add({"s3": "v2", "s4": "v2"})  # over the cap: starts afresh
    assert owners.split(["s1", "s4"]) == ({"s4": "v2"}, ["s1"])


def test_edge_searches_answer_the_same_from_the_cache(tmp_path: Path) -> None:
    points = make_points(40)
    with QdrantEdgeStore(tmp_path / "store") as store:
        store.ensure_collection(DIM)
        store.upsert(points)
        for q in queries(5):
            first = store.search_windows(q, 5, prefetch=20)
            again = store.search_windows(q, 5, prefetch=20)
            assert [(h.id, h.score, h.payload) for h in first] == [
                (h.id, h.score, h.payload) for h in again
            ]
            for a, b in zip(first, again, strict=True):
                assert np.array_equal(a.windows, b.windows)
        assert store.video_cache.stats()["hit_rate"] >= 0.5


def test_an_upsert_is_seen_by_the_next_search(tmp_path: Path) -> None:
    q = unit(np.random.default_rng(3).normal(size=DIM))
    with QdrantEdgeStore(tmp_path / "store") as store:
        store.ensure_collection(DIM)
        store.upsert(make_points(10))
        target = ClipPoint(clip_id("t"), q, np.vstack([q, -q]), {"path": "t", "class": "old"})
        store.upsert([target])
        hit = store.search_windows(q, 1, prefetch=10)[0]
        assert hit.id == target.id and hit.windows.shape == (2, DIM)  # now cached
        store.upsert([ClipPoint(target.id, q, q[None], {"path": "t", "class": "new"})])
        hit = store.search_windows(q, 1, prefetch=10)[0]
        assert hit.payload["class"] == "new" and hit.windows.shape == (1, DIM)
