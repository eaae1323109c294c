"""The two Qdrant adapters of the VectorStore protocol: behaviour, errors and congruence,
for the video index and the per-window index behind ``search_windows``."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qdrant_edge as qe
from conftest import RefusingQdrant
from qdrant_client import models as qm

from clipsearch.errors import InvalidInput, StoreError
from clipsearch.store import (
    POOLED,
    WINDOWS_VECTOR,
    ClipPoint,
    PayloadFilter,
    Range,
    VectorStore,
    WindowHit,
    clip_id,
)
from clipsearch.store.client import QdrantClientStore
from clipsearch.store.edge import (
    LOCK_FILE,
    MOMENTS_DIR,
    QdrantEdgeStore,
)
from clipsearch.store.factory import StoreSettings, open_store
from clipsearch.store.window_index import (
    WINDOW_PAYLOAD_OMIT,
    WINDOW_VECTOR,
    window_id,
)

DIM = 16
KINDS = ["edge", "client"]
AnyStore = QdrantEdgeStore | QdrantClientStore


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def make_points(
    n: int, dim: int = DIM, *, clusters: int = 8, seed: int = 0, prefix: str = "clip"
) -> list[ClipPoint]:
    """A clustered dataset: normalised pooled vectors, 2-6 normalised windows per clip."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(clusters, dim)))
    points = []
    for i in range(n):
        c = i % clusters
        windows = unit(centres[c] + 0.6 * rng.normal(size=(int(rng.integers(2, 7)), dim)))
        pooled = unit(windows.mean(axis=0) + 0.1 * rng.normal(size=dim))
        payload = {
            "path": f"{prefix}/{i:04d}.avi",
            "class": f"c{c}",
            "split_1": "test" if i % 3 == 0 else "train",
            "group": i % 5,
            "has_audio": i % 2 == 0,
            "model": "test-model",
        }
        points.append(ClipPoint(clip_id(f"{prefix}/{i:04d}.avi"), pooled, windows, payload))
    return points


def brute_force(
    points: list[ClipPoint],
    query: np.ndarray,
    using: str,
    keep: Callable[[ClipPoint], bool] = lambda p: True,
) -> list[tuple[str, float]]:
    """Exact ranking with numpy (float64): cosine on pooled, MaxSim on windows."""
    q = np.asarray(query, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    scored = []
    for p in points:
        if not keep(p):
            continue
        if using == POOLED:
            v = p.pooled.astype(np.float64)
            score = float(q @ (v / np.linalg.norm(v)))
        else:
            s = p.windows.astype(np.float64)
            s = s / np.linalg.norm(s, axis=1, keepdims=True)
            score = float((np.atleast_2d(q) @ s.T).max(axis=1).sum())
        scored.append((p.id, score))
    return sorted(scored, key=lambda t: -t[1])


def open_kind(kind: str, tmp_path: Path) -> AnyStore:
    if kind == "edge":
        # Payload indexes cost ~0.1 s each at creation; test_edge_creates_payload_indexes
        # covers them.
        return QdrantEdgeStore(tmp_path / "edge", payload_indexes=())
    return QdrantClientStore.in_memory("test_clips")


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnyStore]:
    s = open_kind(request.param, tmp_path)
    yield s
    s.close()


@pytest.fixture
def filled(store: AnyStore) -> tuple[AnyStore, list[ClipPoint]]:
    points = make_points(120)
    store.ensure_collection(DIM)
    store.upsert(points)
    return store, points


# --------------------------------------------------------------------------- protocol


def test_is_a_vector_store(store: AnyStore) -> None:
    assert isinstance(store, VectorStore)
    assert store.kind in {"qdrant-edge", "qdrant-local"}


def test_ensure_collection_and_dim(store: AnyStore) -> None:
    assert store.dim() is None
    assert store.count() == 0
    store.ensure_collection(DIM)
    assert store.dim() == DIM
    store.ensure_collection(DIM)  # idempotent
    assert store.dim() == DIM
    with pytest.raises(StoreError, match="size 16, not 32"):
        store.ensure_collection(32)
    with pytest.raises(InvalidInput):
        store.ensure_collection(0)


def test_missing_collection(store: AnyStore) -> None:
    with pytest.raises(StoreError, match="ingest"):
        store.search(unit(np.ones(DIM)), 5)
    with pytest.raises(StoreError):
        store.upsert(make_points(1))
    assert store.retrieve([clip_id("x")]) == {}
    assert store.existing_ids([clip_id("x")]) == set()


def test_upsert_count_and_replace(filled: tuple[AnyStore, list[ClipPoint]]) -> None:
    store, points = filled
    assert store.count() == len(points)
    changed = [
        ClipPoint(p.id, p.pooled, p.windows, {**p.payload, "class": "renamed", "new": 1})
        for p in points[:10]
    ]
    store.upsert(changed)
    assert store.count() == len(points)
    got = store.retrieve([p.id for p in points[:10]])
    assert {p.payload["class"] for p in got.values()} == {"renamed"}
    assert all(p.payload["new"] == 1 for p in got.values())
    store.upsert([])  # no-op
    store.flush()
    assert store.count() == len(points)


def test_upsert_replaces_whole_payload(filled: tuple[AnyStore, list[ClipPoint]]) -> None:
    store, points = filled
    p = points[0]
    store.upsert([ClipPoint(p.id, p.pooled, p.windows, {"only": "this"})])
    assert store.retrieve([p.id])[p.id].payload == {"only": "this"}


def test_search_pooled_top_k(filled: tuple[AnyStore, list[ClipPoint]]) -> None:
    store, points = filled
    rng = np.random.default_rng(1)
    target = points[37]
    query = unit(target.pooled + 0.01 * rng.normal(size=DIM))
    hits = store.search(query, 10)
    assert len(hits) == 10
    assert hits[0].id == target.id
    assert hits[0].payload["path"] == target.payload["path"]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    expected = brute_force(points, query, POOLED)[:10]
    assert [h.id for h in hits] == [i for i, _ in expected]
    np.testing.assert_allclose(scores, [s for _, s in expected], atol=1e-4)


def test_search_filters(filled: tuple[AnyStore, list[ClipPoint]]) -> None:
    store, points = filled
    query = unit(points[5].pooled + points[6].pooled)
    cases: list[tuple[PayloadFilter, Callable[[ClipPoint], bool]]] = [
        ({"class": "c3"}, lambda p: p.payload["class"] == "c3"),
        ({"class": ["c1", "c2"]}, lambda p: p.payload["class"] in {"c1", "c2"}),
        (
            {"class": "c1", "split_1": "test"},
            lambda p: p.payload["class"] == "c1" and p.payload["split_1"] == "test",
        ),
        ({"group": 3}, lambda p: p.payload["group"] == 3),
        ({"group": [0, 4]}, lambda p: p.payload["group"] in {0, 4}),
        ({"has_audio": True}, lambda p: p.payload["has_audio"] is True),
        ({"has_audio": False}, lambda p: p.payload["has_audio"] is False),
        ({"class": []}, lambda p: False),
        ({"class": "nope"}, lambda p: False),
    ]
    for flt, keep in cases:
        hits = store.search(query, 200, filter=flt)
        expected = brute_force(points, query, POOLED, keep)
        assert [h.id for h in hits] == [i for i, _ in expected], flt
    with pytest.raises(InvalidInput):
        store.search(query, 5, filter={"class": 1.5})  # type: ignore[dict-item]
    with pytest.raises(InvalidInput):
        store.search(query, 5, filter={"class": ["a", 1]})


def test_offset_paging(filled: tuple[AnyStore, list[ClipPoint]]) -> None:
    store, points = filled
    query = unit(points[0].pooled)
    full = store.search(query, 15)
    pages = [store.search(query, 5, offset=o) for o in (0, 5, 10)]
    assert [h.id for page in pages for h in page] == [h.id for h in full]
    assert store.search(query, 5, offset=len(points)) == []
    filtered = store.search(query, 6, filter={"split_1": "train"})
    assert [h.id for h in store.search(query, 3, filter={"split_1": "train"}, offset=3)] == [
        h.id for h in filtered[3:]
    ]


def test_windows_maxsim(store: AnyStore) -> None:
    rng = np.random.default_rng(2)
    store.ensure_collection(DIM)
    points = make_points(60, seed=3)
    store.upsert(points)
    # A moment that only one clip contains, far from its pooled vector.
    moment = unit(rng.normal(size=DIM))
    target = points[11]
    windows = np.vstack([target.windows, moment[None, :]])
    store.upsert([ClipPoint(target.id, target.pooled, windows, target.payload)])
    points[11] = ClipPoint(target.id, target.pooled, windows, target.payload)

    hits = store.search(moment, 5, using=WINDOWS_VECTOR)
    assert hits[0].id == target.id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    # A (Q, D) query: MaxSim sums the best match of each query vector.
    query = np.vstack([moment, unit(rng.normal(size=DIM))])
    hits = store.search(query, 10, using=WINDOWS_VECTOR)
    expected = brute_force(points, query, WINDOWS_VECTOR)[:10]
    assert [h.id for h in hits] == [i for i, _ in expected]
    np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], atol=1e-4)
    # Filters apply to multivector search too.
    hits = store.search(
        moment, 5, using=WINDOWS_VECTOR, filter={"class": points[12].payload["class"]}
    )
    assert target.id not in {h.id for h in hits}


def test_retrieve(filled: tuple[AnyStore, list[ClipPoint]]) -> None:
    store, points = filled
    ids = [points[0].id, points[7].id, clip_id("not/stored.avi")]
    plain = store.retrieve(ids)
    assert set(plain) == {points[0].id, points[7].id}
    for p in (points[0], points[7]):
        got = plain[p.id]
        assert got.id == p.id
        assert got.payload == p.payload
        assert got.pooled.size == 0 and got.windows.size == 0
    full = store.retrieve(ids, with_vectors=True)
    for p in (points[0], points[7]):
        got = full[p.id]
        assert got.pooled.dtype == np.float32 and got.windows.dtype == np.float32
        assert got.windows.shape == p.windows.shape
        np.testing.assert_allclose(got.pooled, p.pooled, atol=1e-5)
        np.testing.assert_allclose(got.windows, p.windows, atol=1e-5)
    assert store.retrieve([]) == {}
    # Canonical ids: an upper-case spelling finds the point, returned in canonical form.
    assert set(store.retrieve([points[3].id.upper()])) == {points[3].id}


def test_existing_ids(filled: tuple[AnyStore, list[ClipPoint]]) -> None:
    store, points = filled
    missing = [clip_id(f"missing/{i}") for i in range(3)]
    asked = [p.id for p in points[:4]] + missing
    assert store.existing_ids(asked) == {p.id for p in points[:4]}
    assert store.existing_ids([]) == set()
    many = [p.id for p in points] + [clip_id(f"m/{i}") for i in range(400)]
    assert store.existing_ids(many) == {p.id for p in points}


def test_payloads_by_filter_with_chosen_keys(filled: tuple[AnyStore, list[ClipPoint]]) -> None:
    store, points = filled
    everything = dict(store.payloads())
    assert sorted(everything) == sorted(p.id for p in points)
    assert everything[points[0].id] == points[0].payload
    chosen = dict(store.payloads({"class": ["c1", "c2"]}, keys=["path", "model"]))
    expected = {p.id for p in points if p.payload["class"] in ("c1", "c2")}
    assert set(chosen) == expected
    assert all(set(v) == {"path", "model"} for v in chosen.values())
    assert dict(store.payloads({"class": "nope"})) == {}


def test_delete_removes_videos_and_their_windows(
    filled: tuple[AnyStore, list[ClipPoint]],
) -> None:
    store, points = filled
    doomed = [p.id for p in points[:7]]
    windows_before = store.window_count()
    store.delete([*doomed, doomed[0], clip_id("never/stored.avi")])
    assert store.count() == len(points) - 7
    assert not store.existing_ids(doomed)
    gone = sum(len(p.windows) for p in points[:7])
    assert store.window_count() == windows_before - gone
    query = points[0].windows[0]
    hits = store.search_windows(query, 10, prefetch=40)
    assert not {h.id for h in hits} & set(doomed)
    store.delete([])  # nothing to do
    assert store.count() == len(points) - 7


def test_invalid_arguments(filled: tuple[AnyStore, list[ClipPoint]]) -> None:
    store, points = filled
    q = unit(np.ones(DIM))
    for kwargs in ({"k": 0}, {"k": 5, "offset": -1}, {"k": 5, "using": "other"}):
        with pytest.raises(InvalidInput):
            store.search(q, **kwargs)
    with pytest.raises(InvalidInput):
        store.search(np.ones((2, DIM)), 5)  # a multivector on pooled
    with pytest.raises(InvalidInput):
        store.search(np.full(DIM, np.nan), 5)
    with pytest.raises(StoreError, match="size 8"):
        store.search(np.ones(8), 5)
    with pytest.raises(StoreError, match="size 8"):
        store.search(np.ones((3, 8)), 5, using=WINDOWS_VECTOR)
    p = points[0]
    with pytest.raises(StoreError, match="size 8"):
        store.upsert([ClipPoint(p.id, np.ones(8), p.windows, {})])
    with pytest.raises(InvalidInput):
        store.upsert([ClipPoint(p.id, p.pooled, np.zeros((0, DIM)), {})])
    with pytest.raises(InvalidInput):
        store.upsert([ClipPoint("not-a-uuid", p.pooled, p.windows, {})])
    with pytest.raises(InvalidInput):
        store.upsert([ClipPoint(p.id, p.pooled, p.windows, {"bad": object()})])
    with pytest.raises(InvalidInput):
        store.retrieve(["not-a-uuid"])
    assert store.count() == len(points)


def test_numpy_payload_values(store: AnyStore) -> None:
    store.ensure_collection(DIM)
    p = make_points(1)[0]
    payload = {"duration": np.float32(2.5), "frames": np.arange(3), "n": np.int64(7)}
    store.upsert([ClipPoint(p.id, p.pooled, p.windows, payload)])
    assert store.retrieve([p.id])[p.id].payload == {"duration": 2.5, "frames": [0, 1, 2], "n": 7}


def test_close_is_idempotent(store: AnyStore) -> None:
    store.ensure_collection(DIM)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.search(unit(np.ones(DIM)), 3)


def test_concurrent_queries_while_upserting(filled: tuple[AnyStore, list[ClipPoint]]) -> None:
    """4 threads x 200 queries while another thread upserts new and existing points.

    (4 x 50 on qdrant-client's local mode: it is an exact pure-Python scan that the adapter
    serialises with a lock, so more queries only test patience.)
    """
    store, points = filled
    n_queries = 200 if store.kind == "qdrant-edge" else 50
    errors: list[BaseException] = []
    extra = make_points(200, seed=9, prefix="extra")

    def reader(offset: int) -> None:
        try:
            for j in range(n_queries):
                target = points[(offset + j) % len(points)]
                if j % 4 == 3:
                    # Replacing a point never hides it from the window index meanwhile.
                    found = store.search_windows(target.windows[-1], 5, prefetch=20)
                    assert found[0].id == target.id
                    assert found[0].score == pytest.approx(1.0, abs=1e-5)
                    assert found[0].windows.shape == target.windows.shape
                    continue
                if j % 3 == 2:
                    hits = store.search(target.windows, 5, using=WINDOWS_VECTOR)
                else:
                    hits = store.search(target.pooled, 5, filter={"model": "test-model"})
                assert hits[0].id == target.id
                assert hits[0].score == pytest.approx(1.0 if j % 3 != 2 else len(target.windows))
        except BaseException as exc:
            errors.append(exc)

    def writer() -> None:
        try:
            for i in range(0, len(extra), 20):
                store.upsert(extra[i : i + 20])
                store.upsert(points[i // 2 : i // 2 + 10])  # replace existing points meanwhile
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(k * 30,)) for k in range(4)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert store.count() == len(points) + len(extra)
    assert store.window_count() == sum(len(p.windows) for p in points + extra)


# --------------------------------------------------------------------------- window index


def best_window(
    points: list[ClipPoint],
    query: np.ndarray,
    keep: Callable[[ClipPoint], bool] = lambda p: True,
    exclude: tuple[str, ...] = (),
) -> list[tuple[str, float]]:
    """Exact design-B ranking: a video scores its best window's cosine (float64)."""
    q = np.asarray(query, dtype=np.float64)
    q = q / np.linalg.norm(q)
    scored = []
    for p in points:
        if not keep(p) or p.id in exclude:
            continue
        s = p.windows.astype(np.float64)
        s = s / np.linalg.norm(s, axis=1, keepdims=True)
        scored.append((p.id, float((s @ q).max())))
    return sorted(scored, key=lambda t: -t[1])


def assert_ranking(hits: list[WindowHit], expected: list[tuple[str, float]]) -> None:
    assert [h.id for h in hits] == [i for i, _ in expected]
    np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], atol=1e-5)


def window_payloads(store: AnyStore) -> list[dict[str, Any]]:
    """Every window point's payload, read from the adapter's window index."""
    if isinstance(store, QdrantEdgeStore):
        assert store._moments is not None
        records, _ = store._moments.scroll(
            qe.ScrollRequest(limit=100_000, with_payload=True, with_vector=False)
        )
    else:
        records, _ = store.client.scroll(store.moments, limit=100_000, with_payload=True)
    return [dict(r.payload or {}) for r in records]


def long_video_points(seed: int = 4) -> tuple[np.ndarray, ClipPoint, list[ClipPoint]]:
    """The case a pooled first stage misses: a 40-window video whose pooled vector points
    away from the query, with one window that matches it, among 30 short videos whose
    pooled vectors are near the query but whose windows only half match it."""
    rng = np.random.default_rng(seed)
    q = unit(rng.normal(size=DIM))
    far = unit(-q + 0.3 * rng.normal(size=DIM))
    wins = unit(far + 0.3 * rng.normal(size=(40, DIM)))
    wins[23] = q
    long = ClipPoint(
        clip_id("long.avi"),
        unit(wins.mean(axis=0)),
        wins,
        {
            "path": "long.avi",
            "class": "long",
            "duration_s": 80.0,
            "segment_times": [[2.0 * j, 2.0 * j + 2.0] for j in range(40)],
        },
    )
    short = []
    for j in range(30):
        s = unit(q + 1.1 * rng.normal(size=(2, DIM)))
        short.append(
            ClipPoint(
                clip_id(f"short/{j}.avi"),
                unit(q + 0.05 * rng.normal(size=DIM)),
                s,
                {"path": f"short/{j}.avi", "class": "short", "duration_s": 4.0},
            )
        )
    return q, long, short


def test_search_windows_finds_a_long_video_by_one_window(store: AnyStore) -> None:
    q, long, short = long_video_points()
    everyone = [long, *short]
    store.ensure_collection(DIM)
    store.upsert(everyone)
    # By pooled vector the long video is last: a pooled first stage of 5 (or 30) misses it.
    assert [h.id for h in store.search(q, 31)][-1] == long.id
    hits = store.search_windows(q, 5, prefetch=5)
    assert hits[0].id == long.id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].payload == long.payload
    assert hits[0].windows.shape == (40, DIM) and hits[0].windows.dtype == np.float32
    np.testing.assert_allclose(hits[0].windows, long.windows, atol=1e-5)
    assert int(np.argmax(hits[0].windows @ q)) == 23
    assert_ranking(hits, best_window(everyone, q)[:5])
    assert_ranking(store.search_windows(q, 31, prefetch=1), best_window(everyone, q))


def test_search_windows_is_the_exact_best_window_ranking(
    filled: tuple[AnyStore, list[ClipPoint]],
) -> None:
    """Below Qdrant's indexing threshold the window index is scanned exactly, so the
    ranking equals the brute force: each video scores its best window's cosine."""
    store, points = filled
    by_id = {p.id: p for p in points}
    rng = np.random.default_rng(11)
    for j in range(8):
        base = points[int(rng.integers(len(points)))]
        q = unit(base.windows[0] + 0.4 * rng.normal(size=DIM))
        hits = store.search_windows(q, 10, prefetch=(1, 10, 500)[j % 3])
        assert_ranking(hits, best_window(points, q)[:10])
        for h in hits:
            assert h.payload == by_id[h.id].payload
            np.testing.assert_allclose(h.windows, by_id[h.id].windows, atol=1e-5)
            assert h.score == pytest.approx(float((h.windows @ q).max()), abs=1e-5)
    assert store.count() == len(points)
    assert store.window_count() == sum(len(p.windows) for p in points)


def test_search_windows_pages_over_videos(store: AnyStore) -> None:
    """One video owns the 60 best windows: the first rounds (20, then 40 windows) see
    only it, so the limit doubles until enough distinct videos came back."""
    rng = np.random.default_rng(5)
    q = unit(rng.normal(size=DIM))
    hog = ClipPoint(
        clip_id("hog.avi"),
        q,
        unit(q + 0.02 * rng.normal(size=(60, DIM))),
        {"path": "hog.avi", "class": "hog"},
    )
    others = make_points(40, seed=6)
    everyone = [hog, *others]
    store.ensure_collection(DIM)
    store.upsert(everyone)
    truth = best_window(everyone, q)
    assert truth[0][0] == hog.id
    full = store.search_windows(q, 5, prefetch=1)
    assert_ranking(full, truth[:5])
    pages = [store.search_windows(q, 4, prefetch=1, offset=o) for o in range(0, 41, 4)]
    assert [h.id for page in pages for h in page] == [i for i, _ in truth]
    assert [len(page) for page in pages] == [4] * 10 + [1]
    assert_ranking(pages[3], truth[12:16])
    assert store.search_windows(q, 5, prefetch=1, offset=len(everyone)) == []
    assert_ranking(store.search_windows(q, 10, prefetch=1, offset=36), truth[36:])


def test_search_windows_filters_exclude_and_threshold(
    filled: tuple[AnyStore, list[ClipPoint]],
) -> None:
    store, points = filled
    q = unit(points[5].windows[0] + points[6].windows[1])
    cases: list[tuple[PayloadFilter, Callable[[ClipPoint], bool]]] = [
        ({"class": "c3"}, lambda p: p.payload["class"] == "c3"),
        ({"class": ["c1", "c2"]}, lambda p: p.payload["class"] in {"c1", "c2"}),
        ({"split_1": "test", "model": "test-model"}, lambda p: p.payload["split_1"] == "test"),
        ({"group": 3}, lambda p: p.payload["group"] == 3),
        ({"group": [0, 4]}, lambda p: p.payload["group"] in {0, 4}),
        ({"has_audio": True}, lambda p: p.payload["has_audio"] is True),
        ({"duration_s": Range(gte=20.0, lte=40.0)}, lambda p: 20 <= p.payload["duration_s"] <= 40),
        ({"duration_s": Range(lte=10)}, lambda p: p.payload["duration_s"] <= 10),
        ({"class": "nope"}, lambda p: False),
    ]
    timed = [
        ClipPoint(p.id, p.pooled, p.windows, {**p.payload, "duration_s": float(i % 60)})
        for i, p in enumerate(points)
    ]
    store.upsert(timed)
    for flt, keep in cases:
        for prefetch in (1, 200):
            hits = store.search_windows(q, 12, prefetch=prefetch, filter=flt)
            assert_ranking(hits, best_window(timed, q, keep)[:12])
    truth = best_window(timed, q)
    gone = (truth[0][0], truth[2][0])
    hits = store.search_windows(q, 8, prefetch=1, exclude=[gone[0].upper(), gone[1]])
    assert_ranking(hits, best_window(timed, q, exclude=gone)[:8])
    hits = store.search_windows(
        q, 5, prefetch=1, filter={"class": "c1"}, exclude=[truth[0][0]], offset=2
    )
    keep_c1 = lambda p: p.payload["class"] == "c1"  # noqa: E731
    assert_ranking(hits, best_window(timed, q, keep_c1, exclude=(truth[0][0],))[2:7])
    # The threshold keeps hits scoring at least it: one exactly at it too.
    full = store.search_windows(q, 30, prefetch=1)
    for cut in (1, 4, 17):
        threshold = (full[cut - 1].score + full[cut].score) / 2
        kept = store.search_windows(q, 30, prefetch=1, score_threshold=threshold)
        assert [h.id for h in kept] == [h.id for h in full[:cut]]
        assert store.search_windows(q, 5, prefetch=1, offset=cut, score_threshold=threshold) == []
    at = store.search_windows(q, 30, prefetch=1, score_threshold=full[3].score)
    assert [h.id for h in at] == [h.id for h in full[:4]]
    assert store.search_windows(q, 5, prefetch=1, score_threshold=full[0].score + 1e-4) == []
    with pytest.raises(InvalidInput):
        store.search_windows(q, 5, prefetch=0)
    with pytest.raises(InvalidInput):
        store.search_windows(q, 5, prefetch=5, exclude=["not-a-uuid"])
    with pytest.raises(InvalidInput):
        store.search_windows(q, 5, prefetch=5, score_threshold=float("nan"))


def test_window_points_and_their_payload(store: AnyStore) -> None:
    store.ensure_collection(DIM)
    p = make_points(1)[0]
    n = len(p.windows)
    times = [[1.5 * j, 1.5 * j + 2.0] for j in range(n)]
    payload = {
        **p.payload,
        "duration_s": 9.5,
        "segment_times": times,
        "frame_times": [0.1, 0.2],
        "segment_plan": {"window_s": 2.0, "stride_s": 1.5},
        "split_2": "train",
    }
    store.upsert([ClipPoint(p.id, p.pooled, p.windows, payload)])
    got = sorted(window_payloads(store), key=lambda d: d["index"])
    assert [d["index"] for d in got] == list(range(n))
    copied = {k: v for k, v in payload.items() if k not in WINDOW_PAYLOAD_OMIT}
    for j, d in enumerate(got):
        assert d == {
            **copied,
            "video": p.id,
            "index": j,
            "start_s": times[j][0],
            "end_s": times[j][1],
        }
    assert window_id(p.id, 0) == window_id(p.id.upper(), 0) != window_id(p.id, 1)
    assert uuid.UUID(window_id(p.id, 3)).version == 5
    # Without (matching) segment_times the spans are null.
    store.upsert([ClipPoint(p.id, p.pooled, p.windows, {"path": "x", "segment_times": [[0, 1]]})])
    got = window_payloads(store)
    assert len(got) == n
    assert all(d["start_s"] is None and d["end_s"] is None and d["path"] == "x" for d in got)


def test_reupsert_with_fewer_windows_leaves_no_stale_windows(store: AnyStore) -> None:
    store.ensure_collection(DIM)
    points = make_points(30, seed=8)
    store.upsert(points)
    total = sum(len(p.windows) for p in points)
    assert store.window_count() == total
    rng = np.random.default_rng(3)
    shrunk = []
    for p in points[:10]:  # 7 windows, then 1
        grown = ClipPoint(p.id, p.pooled, unit(rng.normal(size=(7, DIM))), p.payload)
        shrunk.append(ClipPoint(p.id, p.pooled, grown.windows[:1], p.payload))
        store.upsert([grown])
    store.upsert(shrunk)
    expected = [*shrunk, *points[10:]]
    assert store.count() == 30
    assert store.window_count() == sum(len(p.windows) for p in expected)
    assert sorted((d["video"], d["index"]) for d in window_payloads(store)) == sorted(
        (p.id, j) for p in expected for j in range(len(p.windows))
    )
    dropped = unit(rng.normal(size=DIM))
    victim = points[0]
    store.upsert([ClipPoint(victim.id, victim.pooled, np.vstack([victim.windows, dropped]), {})])
    assert store.search_windows(dropped, 1, prefetch=5)[0].id == victim.id
    store.upsert([ClipPoint(victim.id, victim.pooled, victim.windows, {})])
    expected[0] = ClipPoint(victim.id, victim.pooled, victim.windows, {})
    for q in (dropped, unit(rng.normal(size=DIM))):
        assert_ranking(store.search_windows(q, 30, prefetch=1), best_window(expected, q))
    # In one call, a repeated id: the last version wins, its windows too.
    a = ClipPoint(points[1].id, points[1].pooled, unit(rng.normal(size=(6, DIM))), {"v": 1})
    b = ClipPoint(points[1].id, points[1].pooled, unit(rng.normal(size=(2, DIM))), {"v": 2})
    store.upsert([a, b])
    mine = [d for d in window_payloads(store) if d["video"] == points[1].id]
    assert sorted(d["index"] for d in mine) == [0, 1] and {d["v"] for d in mine} == {2}


def test_windows_of_a_missing_video_are_skipped(store: AnyStore) -> None:
    """Window points whose video is not stored (a write interrupted between the two
    indexes) are left out, and the page is filled from the next videos."""
    store.ensure_collection(DIM)
    points = make_points(20, seed=2)
    store.upsert(points)
    q = unit(points[4].windows[0])
    ghost = clip_id("ghost.avi")
    ghosts = [(window_id(ghost, j), unit(q + 0.01 * j).tolist()) for j in range(30)]
    payload = {"video": ghost, "class": "c4", "model": "test-model"}
    if isinstance(store, QdrantEdgeStore):
        assert store._moments is not None
        store._moments.update(
            qe.UpdateOperation.upsert_points(
                [
                    qe.Point(i, {WINDOW_VECTOR: v}, {**payload, "index": j})
                    for j, (i, v) in enumerate(ghosts)
                ]
            )
        )
    else:
        store.client.upsert(
            store.moments,
            [
                qm.PointStruct(id=i, vector={WINDOW_VECTOR: v}, payload={**payload, "index": j})
                for j, (i, v) in enumerate(ghosts)
            ],
        )
    hits = store.search_windows(q, 5, prefetch=1)
    assert ghost not in {h.id for h in hits}
    assert_ranking(hits, best_window(points, q)[:5])
    assert_ranking(store.search_windows(q, 3, prefetch=1, offset=2), best_window(points, q)[2:5])


# --------------------------------------------------------------------------- Qdrant Edge


def test_edge_persists_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "store"
    points = make_points(50)
    with QdrantEdgeStore(path, payload_indexes=()) as store:
        assert store.dim() is None
        store.ensure_collection(DIM)
        store.upsert(points)
    assert (path / LOCK_FILE).exists()
    with QdrantEdgeStore(path, payload_indexes=()) as again:
        assert again.dim() == DIM
        assert again.count() == len(points)
        got = again.retrieve([points[4].id], with_vectors=True)[points[4].id]
        np.testing.assert_allclose(got.windows, points[4].windows, atol=1e-5)
        assert again.search(points[4].pooled, 1)[0].id == points[4].id
        again.ensure_collection(DIM)
        with pytest.raises(StoreError, match="size 16, not 8"):
            again.ensure_collection(8)


def test_edge_creates_payload_indexes(tmp_path: Path) -> None:
    with QdrantEdgeStore(tmp_path / "s") as store:
        store.ensure_collection(DIM)
        assert store._shard is not None
        indexed = set(store._shard.info().payload_schema)
        assert {
            "class",
            "split_1",
            "split_2",
            "split_3",
            "model",
            "root",
            "content_hash",
        } <= indexed


def test_edge_store_from_before_gets_the_sync_indexes(tmp_path: Path) -> None:
    with QdrantEdgeStore(tmp_path / "s", video_indexes=()) as store:  # as made before
        store.ensure_collection(DIM)
        assert store._shard is not None
        assert "content_hash" not in store._shard.info().payload_schema
    with QdrantEdgeStore(tmp_path / "s") as store:
        store.ensure_collection(DIM)  # what ingest does first
        assert store._shard is not None
        assert {"root", "content_hash"} <= set(store._shard.info().payload_schema)


def test_edge_second_opener_in_process(tmp_path: Path) -> None:
    path = tmp_path / "store"
    first = QdrantEdgeStore(path, payload_indexes=())
    first.ensure_collection(DIM)
    with pytest.raises(StoreError, match="in use by another process"):
        QdrantEdgeStore(path, payload_indexes=())
    first.close()
    second = QdrantEdgeStore(path, payload_indexes=())  # released on close
    assert second.dim() == DIM
    second.close()


def test_edge_second_opener_before_creation(tmp_path: Path) -> None:
    path = tmp_path / "store"
    first = QdrantEdgeStore(path, payload_indexes=())  # no directory yet: nothing locked
    second = QdrantEdgeStore(path, payload_indexes=())
    first.ensure_collection(DIM)
    with pytest.raises(StoreError, match="in use"):
        second.ensure_collection(DIM)
    first.close()
    second.ensure_collection(DIM)
    assert second.count() == 0
    second.close()


def test_edge_second_opener_other_process(tmp_path: Path) -> None:
    path = tmp_path / "store"
    code = textwrap.dedent(
        f"""
        from clipsearch.errors import StoreError
        from clipsearch.store.edge import QdrantEdgeStore
        try:
            QdrantEdgeStore({str(path)!r}).close()
            print("opened")
        except StoreError as exc:
            print("refused:", exc)
        """
    )
    with QdrantEdgeStore(path, payload_indexes=()) as store:
        store.ensure_collection(DIM)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert "refused: store" in out.stdout, out.stderr
        assert "in use by another process" in out.stdout
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "opened", out.stderr


def test_edge_path_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StoreError, match="not a directory"):
        QdrantEdgeStore(f)


def test_edge_foreign_directory(tmp_path: Path) -> None:
    path = tmp_path / "store"
    path.mkdir()
    (path / "edge_config.json").write_text(json.dumps({"vectors": {"": {"size": 4}}}))
    for _ in range(2):  # the lock was released when opening failed: same error again
        with pytest.raises(StoreError, match="not a clipsearch store"):
            QdrantEdgeStore(path, payload_indexes=())


def test_edge_layout_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "store"
    points = make_points(40)
    with QdrantEdgeStore(path, payload_indexes=()) as store:
        store.ensure_collection(DIM)
        store.upsert(points)
        assert store.moments_path == path / MOMENTS_DIR
        assert store._moments is not None
        # the window shard always indexes ``video`` (replacing windows) and duration_s
        assert {"video", "duration_s"} <= set(store._moments.info().payload_schema)
        assert isinstance(store.optimize(), bool)
    assert (path / MOMENTS_DIR / "edge_config.json").exists()
    assert (path / "edge_config.json").exists() and (path / "segments").is_dir()
    with QdrantEdgeStore(path, payload_indexes=()) as again:
        assert again.count() == 40
        assert again.window_count() == sum(len(p.windows) for p in points)
        q = unit(points[9].windows[1])
        assert_ranking(again.search_windows(q, 5, prefetch=5), best_window(points, q)[:5])


def test_edge_old_layout_gets_its_window_index(tmp_path: Path) -> None:
    """A store written before the window shard existed (no ``moments/``): opening it
    builds the shard from the stored window vectors; an interrupted build is redone."""
    path = tmp_path / "store"
    points = make_points(60, seed=12)
    with QdrantEdgeStore(path, payload_indexes=()) as store:
        store.ensure_collection(DIM)
        store.upsert(points)
    shutil.rmtree(path / MOMENTS_DIR)
    (path / f"{MOMENTS_DIR}.building" / "segments").mkdir(parents=True)  # an interrupted build
    total = sum(len(p.windows) for p in points)
    q = unit(points[17].windows[-1])
    with QdrantEdgeStore(path, payload_indexes=()) as old:
        assert not (path / f"{MOMENTS_DIR}.building").exists()
        assert (path / MOMENTS_DIR).is_dir()
        assert old.count() == 60 and old.window_count() == total
        assert_ranking(old.search_windows(q, 10, prefetch=1), best_window(points, q)[:10])
        old.ensure_collection(DIM)
        assert old.window_count() == total
        more = make_points(5, seed=13, prefix="more")
        old.upsert(more)
        assert old.window_count() == total + sum(len(p.windows) for p in more)
    # the same through ensure_collection of a store object made before the directory
    shutil.rmtree(path / MOMENTS_DIR)
    with QdrantEdgeStore(path, payload_indexes=()) as again:
        again.ensure_collection(DIM)
        assert again.count() == 65
        assert_ranking(
            again.search_windows(q, 10, prefetch=1), best_window([*points, *more], q)[:10]
        )


def _window_graphs(path: Path) -> list[Any]:
    """The quantization of each window-shard segment searched by a graph."""
    configs = [
        json.loads(f.read_text())["config"]["vector_data"][WINDOW_VECTOR]
        for f in (path / MOMENTS_DIR / "segments").glob("*/segment.json")
    ]
    return [c.get("quantization_config") for c in configs if c["index"]["type"] == "hnsw"]


@pytest.mark.slow
def test_edge_optimize_builds_the_window_graph_on_int8_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past Qdrant's indexing threshold the window shard is scanned exactly until optimize
    builds its graph, walked on int8 copies; hits are rescored with the originals, so a
    window finds its own video first at its exact cosine. A window shard whose graph was
    built before the quantization (float32) gets it at its next optimize."""
    import clipsearch.store.edge as edge

    dim, path = 512, tmp_path / "store"
    points = make_points(1500, dim, seed=5)  # ~6k windows of 2 KB: past the threshold
    monkeypatch.setattr(edge, "WINDOW_QUANTIZATION", None)  # what an earlier version made
    with QdrantEdgeStore(path, payload_indexes=()) as store:
        store.ensure_collection(dim)
        store.upsert(points)
        assert _window_graphs(path) == []
        assert store.optimize()
        assert _window_graphs(path) == [None]
    monkeypatch.undo()
    with QdrantEdgeStore(path, payload_indexes=()) as store:
        assert store.optimize()
        assert store._moments is not None
        assert store._moments.info().indexed_vectors_count == store.window_count()
        for p in points[:: len(points) // 20]:
            hit = store.search_windows(unit(p.windows[-1]), 1, prefetch=1)[0]
            assert hit.id == p.id and abs(hit.score - 1.0) < 1e-5
        assert not store.optimize()  # nothing left to do
    # (the replaced segment's files go when the shard closes)
    assert _window_graphs(path) == [
        {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}
    ]


def test_edge_says_when_many_windows_are_outside_the_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Windows never optimized into the graph are scanned by every query: opening such a
    store warns, with how many and what it costs, from a number of them on."""
    import clipsearch.store.edge as edge

    path = tmp_path / "store"
    points = make_points(30, seed=21)
    with QdrantEdgeStore(path, payload_indexes=()) as store:
        store.ensure_collection(DIM)
        store.upsert(points)
    windows = sum(len(p.windows) for p in points)
    monkeypatch.setattr(edge, "UNINDEXED_WARNING", windows + 1)
    with caplog.at_level(logging.WARNING, logger=edge.__name__):
        QdrantEdgeStore(path, payload_indexes=()).close()
        assert caplog.records == []
        monkeypatch.setattr(edge, "UNINDEXED_WARNING", windows)
        QdrantEdgeStore(path, payload_indexes=()).close()
    assert f"{windows} windows are not in the search graph" in caplog.text
    assert "`clipsearch ingest` builds the graph" in caplog.text


def test_edge_clears_segments_an_interrupted_optimize_left(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An optimize killed mid-way leaves its half-built segment in ``temp_segments/``,
    which Qdrant Edge never removes (a killed UCF101-size build kept about 300 MB): opening the
    store removes it, and every point is still there."""
    import clipsearch.store.edge as edge

    path = tmp_path / "store"
    points = make_points(12, seed=4)
    with QdrantEdgeStore(path, payload_indexes=()) as store:
        store.ensure_collection(DIM)
        store.upsert(points)
    left = []
    for shard_dir in (path, path / MOMENTS_DIR):
        builder = shard_dir / edge.TEMP_SEGMENTS_DIR / "segment_builder_Xy12ab"
        (builder / "vector_storage").mkdir(parents=True)
        (builder / "vector_storage" / "chunk_0.mmap").write_bytes(b"\0" * 4096)
        left.append(builder)
    with (
        caplog.at_level(logging.WARNING, logger=edge.__name__),
        QdrantEdgeStore(path, payload_indexes=()) as store,
    ):
        assert store.count() == len(points)
        assert store.window_count() == sum(len(p.windows) for p in points)
        hit = store.search_windows(unit(points[3].windows[0]), 1, prefetch=1)[0]
        assert hit.id == points[3].id
    assert not any(b.exists() for b in left)
    assert caplog.text.count("unfinished segment(s)") == 2


def test_edge_leaves_temp_segments_alone_without_the_lock(tmp_path: Path) -> None:
    """A second opener, refused the store's lock, must not touch what the first one's
    optimize is building."""
    import clipsearch.store.edge as edge

    path = tmp_path / "store"
    with QdrantEdgeStore(path, payload_indexes=()) as store:
        store.ensure_collection(DIM)
        store.upsert(make_points(3))
        building = path / MOMENTS_DIR / edge.TEMP_SEGMENTS_DIR / "segment_builder_busy"
        building.mkdir(parents=True)
        with pytest.raises(StoreError, match="in use"):
            QdrantEdgeStore(path, payload_indexes=())
        assert building.exists()


def test_edge_foreign_window_index_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "store"
    points = make_points(10)
    with QdrantEdgeStore(path, payload_indexes=()) as store:
        store.ensure_collection(DIM)
        store.upsert(points)
    shutil.rmtree(path / MOMENTS_DIR)
    qe.EdgeShard.create(
        str(path / MOMENTS_DIR),
        qe.EdgeConfig(
            vectors={WINDOW_VECTOR: qe.EdgeVectorParams(size=8, distance=qe.Distance.Cosine)}
        ),
    ).close()
    with QdrantEdgeStore(path, payload_indexes=()) as store:
        assert store.window_count() == sum(len(p.windows) for p in points)
        assert store.search_windows(points[3].windows[0], 1, prefetch=1)[0].id == points[3].id


def test_edge_new_store_drops_a_leftover_window_index(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with QdrantEdgeStore(path, payload_indexes=()) as store:
        store.ensure_collection(DIM)
        store.upsert(make_points(10))
    for name in ("edge_config.json", "segments", "wal"):  # the video shard is gone
        target = path / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    with QdrantEdgeStore(path, payload_indexes=()) as store:
        assert store.dim() is None
        store.ensure_collection(DIM)
        assert store.count() == 0 and store.window_count() == 0
        assert store.search_windows(unit(np.ones(DIM)), 5, prefetch=5) == []


# --------------------------------------------------------------------------- qdrant-client


def test_client_unreachable_url() -> None:
    store = QdrantClientStore.from_url("http://127.0.0.1:9", collection="c", timeout=2)
    assert store.kind == "qdrant-server"
    for call in (store.count, store.dim, lambda: store.ensure_collection(DIM)):
        with pytest.raises(StoreError, match=r"http://127\.0\.0\.1:9") as info:
            call()
        assert info.value.__cause__ is None and info.value.__suppress_context__
    store.close()


def test_client_http_error_is_store_error(refusing_qdrant: RefusingQdrant) -> None:
    url = refusing_qdrant.url
    store = QdrantClientStore.from_url(url, timeout=2)
    with pytest.raises(StoreError, match="API key") as info:
        store.dim()
    assert url in info.value.message and "403" in info.value.message
    store.close()


def test_client_local_path_kind(tmp_path: Path) -> None:
    from qdrant_client import QdrantClient

    store = QdrantClientStore(QdrantClient(path=str(tmp_path / "local")), "c")
    assert store.kind == "qdrant-local"
    store.ensure_collection(DIM)
    store.upsert(make_points(5))
    assert store.count() == 5
    store.close()


def test_client_window_collection(tmp_path: Path) -> None:
    from qdrant_client import QdrantClient

    client = QdrantClient(":memory:")
    store = QdrantClientStore(client, "vids")
    assert store.moments == "vids_moments" and store.window_count() == 0
    store.ensure_collection(DIM)
    assert client.collection_exists("vids_moments")
    points = make_points(50, seed=21)
    store.upsert(points)
    total = sum(len(p.windows) for p in points)
    assert store.window_count() == total
    # An older collection (no window collection): search says what to do, and
    # ensure_collection builds it from the stored windows.
    client.delete_collection("vids_moments")
    old = QdrantClientStore(client, "vids")
    q = unit(points[8].windows[0])
    with pytest.raises(StoreError, match="no segment index"):
        old.search_windows(q, 5, prefetch=5)
    with pytest.raises(StoreError, match="no segment index"):
        old.upsert(points[:1])
    assert old.count() == 50 and old.search(q, 1)[0].id  # the video collection still works
    old.ensure_collection(DIM)
    assert old.window_count() == total
    assert_ranking(old.search_windows(q, 10, prefetch=1), best_window(points, q)[:10])
    # A new video collection does not inherit a leftover window collection.
    client.delete_collection("vids")
    fresh = QdrantClientStore(client, "vids")
    fresh.ensure_collection(DIM)
    assert fresh.window_count() == 0 and fresh.search_windows(q, 5, prefetch=5) == []
    client.close()


def test_client_backfill_interrupted_leaves_no_partial_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qdrant_client import QdrantClient

    client = QdrantClient(":memory:")
    store = QdrantClientStore(client, "vids")
    store.ensure_collection(DIM)
    store.upsert(make_points(100, seed=2))
    client.delete_collection("vids_moments")
    again = QdrantClientStore(client, "vids")
    calls = []
    real = client.upsert

    def flaky(collection: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(collection)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(collection, *args, **kwargs)

    monkeypatch.setattr(client, "upsert", flaky)
    with pytest.raises(KeyboardInterrupt):
        again.ensure_collection(DIM)
    assert not client.collection_exists("vids_moments")
    monkeypatch.setattr(client, "upsert", real)
    again.ensure_collection(DIM)
    assert again.window_count() == sum(len(p.windows) for p in make_points(100, seed=2))
    client.close()


# --------------------------------------------------------------------------- factory


def test_open_store(tmp_path: Path) -> None:
    edge = open_store(StoreSettings(path=str(tmp_path / "e")))
    assert isinstance(edge, QdrantEdgeStore) and edge.kind == "qdrant-edge"
    edge.close()
    mem = open_store(StoreSettings(path=str(tmp_path / "ignored"), url=":memory:", collection="x"))
    assert isinstance(mem, QdrantClientStore) and mem.kind == "qdrant-local"
    assert mem.collection == "x"
    assert not (tmp_path / "ignored").exists()
    server = open_store(StoreSettings(url="http://127.0.0.1:9", api_key=None))
    assert isinstance(server, QdrantClientStore) and server.kind == "qdrant-server"
    assert isinstance(StoreSettings(), StoreSettings) and StoreSettings().path == "var/store"
    with pytest.raises(InvalidInput):
        open_store(StoreSettings(path=None))


# --------------------------------------------------------------------------- congruence


def test_adapters_agree(tmp_path: Path) -> None:
    """Same data, same queries: Qdrant Edge and qdrant-client give the same rankings.

    500 points are far below Qdrant's indexing/full-scan thresholds, so both adapters
    search exactly; both are also checked against a numpy brute force.
    """
    dim = 64
    points = make_points(500, dim, clusters=12, seed=42)
    rng = np.random.default_rng(7)
    edge = QdrantEdgeStore(tmp_path / "edge")
    client = QdrantClientStore.in_memory()
    stores: list[VectorStore] = [edge, client]
    for s in stores:
        s.ensure_collection(dim)
        s.upsert(points)
        assert s.count() == 500

    queries = []
    for j in range(50):
        base = points[int(rng.integers(len(points)))]
        using = POOLED if j % 2 == 0 else WINDOWS_VECTOR
        if using == POOLED:
            q = unit(base.pooled + 0.3 * rng.normal(size=dim))
        else:
            q = unit(base.windows[: 1 + j % 3] + 0.3 * rng.normal(size=(1 + j % 3, dim)))
        classes = [f"c{j % 12}", f"c{(j + 5) % 12}"] if j % 4 >= 2 else None
        queries.append((q, using, classes))

    for q, using, classes in queries:
        flt = {"class": classes} if classes else None
        results = [s.search(q, 10, using=using, filter=flt) for s in stores]
        pool = [p for p in points if not classes or p.payload["class"] in classes]
        truth = brute_force(pool, q, using)
        for hits in results:
            assert [h.id for h in hits] == [i for i, _ in truth[:10]], (using, flt)
            np.testing.assert_allclose(
                [h.score for h in hits], [s for _, s in truth[:10]], atol=1e-4, rtol=0
            )
        np.testing.assert_allclose(
            [h.score for h in results[0]], [h.score for h in results[1]], atol=1e-4, rtol=0
        )
        assert [h.payload for h in results[0]] == [h.payload for h in results[1]]
    for s in stores:
        s.close()


def test_adapters_agree_on_search_windows(tmp_path: Path) -> None:
    """Same videos, same window queries and options: the same videos in the same order,
    the same scores, payloads and windows from Qdrant Edge and qdrant-client, equal to
    the exact best-window ranking (both scan exactly at this size)."""
    dim = 32
    points = make_points(300, dim, clusters=10, seed=31)
    points = [
        ClipPoint(p.id, p.pooled, p.windows, {**p.payload, "duration_s": float(i % 50)})
        for i, p in enumerate(points)
    ]
    edge = QdrantEdgeStore(tmp_path / "edge", payload_indexes=())
    client = QdrantClientStore.in_memory()
    for s in (edge, client):
        s.ensure_collection(dim)
        s.upsert(points)
        assert s.window_count() == sum(len(p.windows) for p in points)
    rng = np.random.default_rng(17)
    for j in range(30):
        base = points[int(rng.integers(len(points)))]
        q = unit(base.windows[j % len(base.windows)] + 0.3 * rng.normal(size=dim))
        k, offset, prefetch = (1, 5, 10)[j % 3], (0, 0, 4, 9)[j % 4], (1, 20, 300)[j % 3]
        flt: PayloadFilter | None = None
        keep: Callable[[ClipPoint], bool] = lambda p: True  # noqa: E731
        if j % 4 == 1:
            flt = {"class": ["c1", "c2", "c7"]}
            keep = lambda p: p.payload["class"] in {"c1", "c2", "c7"}  # noqa: E731
        elif j % 4 == 2:
            flt = {"duration_s": Range(gte=10.0, lte=30.0), "split_1": "train"}
            keep = lambda p: (  # noqa: E731
                10 <= p.payload["duration_s"] <= 30 and p.payload["split_1"] == "train"
            )
        exclude = tuple(points[int(i)].id for i in rng.choice(len(points), 8, replace=False))
        exclude = exclude if j % 2 else ()
        truth = best_window(points, q, keep, exclude)[offset : offset + k]
        threshold = None
        if j % 5 == 4 and len(truth) > 1:  # between the last two hits: the last one goes
            threshold = (truth[-2][1] + truth[-1][1]) / 2
            truth = truth[:-1]
        results = [
            s.search_windows(
                q,
                k,
                prefetch=prefetch,
                filter=flt,
                offset=offset,
                exclude=exclude,
                score_threshold=threshold,
            )
            for s in (edge, client)
        ]
        a, b = results
        assert [h.id for h in a] == [h.id for h in b], j
        assert_ranking(a, truth)
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
        for ha, hb in zip(a, b, strict=True):
            assert ha.payload == hb.payload
            np.testing.assert_allclose(ha.windows, hb.windows, atol=1e-6)
    edge.close()
    client.close()


def test_clip_ids_are_stable() -> None:
    assert clip_id("a/b.avi") == clip_id("a\\b.avi")
    assert uuid.UUID(clip_id("a/b.avi")).version == 5
