"""The two Qdrant adapters of the VectorStore protocol: behaviour, errors and congruence."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from clipsearch.errors import InvalidInput, StoreError
from clipsearch.store import POOLED, SEGMENTS, ClipPoint, PayloadFilter, VectorStore, clip_id
from clipsearch.store.client import QdrantClientStore
from clipsearch.store.edge import LOCK_FILE, QdrantEdgeStore
from clipsearch.store.factory import StoreSettings, open_store

DIM = 16
KINDS = ["edge", "client"]
AnyStore = QdrantEdgeStore | QdrantClientStore


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def make_points(
    n: int, dim: int = DIM, *, clusters: int = 8, seed: int = 0, prefix: str = "clip"
) -> list[ClipPoint]:
    """A clustered dataset: normalised pooled vectors, 2-6 normalised segments per clip."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(clusters, dim)))
    points = []
    for i in range(n):
        c = i % clusters
        segments = unit(centres[c] + 0.6 * rng.normal(size=(int(rng.integers(2, 7)), dim)))
        pooled = unit(segments.mean(axis=0) + 0.1 * rng.normal(size=dim))
        payload = {
            "path": f"{prefix}/{i:04d}.avi",
            "class": f"c{c}",
            "split_1": "test" if i % 3 == 0 else "train",
            "group": i % 5,
            "has_audio": i % 2 == 0,
            "model": "test-model",
        }
        points.append(ClipPoint(clip_id(f"{prefix}/{i:04d}.avi"), pooled, segments, payload))
    return points


def brute_force(
    points: list[ClipPoint],
    query: np.ndarray,
    using: str,
    keep: Callable[[ClipPoint], bool] = lambda p: True,
) -> list[tuple[str, float]]:
    """Exact ranking with numpy (float64): cosine on pooled, MaxSim on segments."""
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
            s = p.segments.astype(np.float64)
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
        ClipPoint(p.id, p.pooled, p.segments, {**p.payload, "class": "renamed", "new": 1})
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
    store.upsert([ClipPoint(p.id, p.pooled, p.segments, {"only": "this"})])
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


def test_segments_maxsim(store: AnyStore) -> None:
    rng = np.random.default_rng(2)
    store.ensure_collection(DIM)
    points = make_points(60, seed=3)
    store.upsert(points)
    # A moment that only one clip contains, far from its pooled vector.
    moment = unit(rng.normal(size=DIM))
    target = points[11]
    segments = np.vstack([target.segments, moment[None, :]])
    store.upsert([ClipPoint(target.id, target.pooled, segments, target.payload)])
    points[11] = ClipPoint(target.id, target.pooled, segments, target.payload)

    hits = store.search(moment, 5, using=SEGMENTS)
    assert hits[0].id == target.id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    # A (Q, D) query: MaxSim sums the best match of each query vector.
    query = np.vstack([moment, unit(rng.normal(size=DIM))])
    hits = store.search(query, 10, using=SEGMENTS)
    expected = brute_force(points, query, SEGMENTS)[:10]
    assert [h.id for h in hits] == [i for i, _ in expected]
    np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], atol=1e-4)
    # Filters apply to multivector search too.
    hits = store.search(moment, 5, using=SEGMENTS, filter={"class": points[12].payload["class"]})
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
        assert got.pooled.size == 0 and got.segments.size == 0
    full = store.retrieve(ids, with_vectors=True)
    for p in (points[0], points[7]):
        got = full[p.id]
        assert got.pooled.dtype == np.float32 and got.segments.dtype == np.float32
        assert got.segments.shape == p.segments.shape
        np.testing.assert_allclose(got.pooled, p.pooled, atol=1e-5)
        np.testing.assert_allclose(got.segments, p.segments, atol=1e-5)
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
        store.search(np.ones((3, 8)), 5, using=SEGMENTS)
    p = points[0]
    with pytest.raises(StoreError, match="size 8"):
        store.upsert([ClipPoint(p.id, np.ones(8), p.segments, {})])
    with pytest.raises(InvalidInput):
        store.upsert([ClipPoint(p.id, p.pooled, np.zeros((0, DIM)), {})])
    with pytest.raises(InvalidInput):
        store.upsert([ClipPoint("not-a-uuid", p.pooled, p.segments, {})])
    with pytest.raises(InvalidInput):
        store.upsert([ClipPoint(p.id, p.pooled, p.segments, {"bad": object()})])
    with pytest.raises(InvalidInput):
        store.retrieve(["not-a-uuid"])
    assert store.count() == len(points)


def test_numpy_payload_values(store: AnyStore) -> None:
    store.ensure_collection(DIM)
    p = make_points(1)[0]
    payload = {"duration": np.float32(2.5), "frames": np.arange(3), "n": np.int64(7)}
    store.upsert([ClipPoint(p.id, p.pooled, p.segments, payload)])
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
                if j % 3 == 2:
                    hits = store.search(target.segments, 5, using=SEGMENTS)
                else:
                    hits = store.search(target.pooled, 5, filter={"model": "test-model"})
                assert hits[0].id == target.id
                assert hits[0].score == pytest.approx(1.0 if j % 3 != 2 else len(target.segments))
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
        np.testing.assert_allclose(got.segments, points[4].segments, atol=1e-5)
        assert again.search(points[4].pooled, 1)[0].id == points[4].id
        again.ensure_collection(DIM)
        with pytest.raises(StoreError, match="size 16, not 8"):
            again.ensure_collection(8)


def test_edge_creates_payload_indexes(tmp_path: Path) -> None:
    with QdrantEdgeStore(tmp_path / "s") as store:
        store.ensure_collection(DIM)
        assert store._shard is not None
        assert {"class", "split_1", "split_2", "split_3", "model"} <= set(
            store._shard.info().payload_schema
        )


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


# --------------------------------------------------------------------------- qdrant-client


def test_client_unreachable_url() -> None:
    store = QdrantClientStore.from_url("http://127.0.0.1:9", collection="c", timeout=2)
    assert store.kind == "qdrant-server"
    for call in (store.count, store.dim, lambda: store.ensure_collection(DIM)):
        with pytest.raises(StoreError, match=r"http://127\.0\.0\.1:9") as info:
            call()
        assert info.value.__cause__ is None and info.value.__suppress_context__
    store.close()


class _Refuse(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = json.dumps({"status": {"error": "Invalid API key"}}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


def test_client_http_error_is_store_error() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        store = QdrantClientStore.from_url(url, timeout=2)
        with pytest.raises(StoreError, match="API key") as info:
            store.dim()
        assert url in info.value.message and "403" in info.value.message
        store.close()
    finally:
        server.shutdown()
        server.server_close()


def test_client_local_path_kind(tmp_path: Path) -> None:
    from qdrant_client import QdrantClient

    store = QdrantClientStore(QdrantClient(path=str(tmp_path / "local")), "c")
    assert store.kind == "qdrant-local"
    store.ensure_collection(DIM)
    store.upsert(make_points(5))
    assert store.count() == 5
    store.close()


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
        using = POOLED if j % 2 == 0 else SEGMENTS
        if using == POOLED:
            q = unit(base.pooled + 0.3 * rng.normal(size=dim))
        else:
            q = unit(base.segments[: 1 + j % 3] + 0.3 * rng.normal(size=(1 + j % 3, dim)))
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


def test_clip_ids_are_stable() -> None:
    assert clip_id("a/b.avi") == clip_id("a\\b.avi")
    assert uuid.UUID(clip_id("a/b.avi")).version == 5
