"""``search_windows`` on both Qdrant adapters: videos ranked by their best window.

Synthetic unit vectors decide which window of which point matches a query; every
ranking is checked against numpy: a video's score is the best cosine among its windows
(MaxSim for one query vector), whatever ``prefetch`` is (it only sizes the first fetch of
the window index, which grows until ``offset + k`` videos are found).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from clipsearch.errors import InvalidInput, StoreError
from clipsearch.store import ClipPoint, PayloadFilter, Range, WindowHit, clip_id
from clipsearch.store.client import QdrantClientStore
from clipsearch.store.edge import QdrantEdgeStore

DIM = 16
N = 60
KINDS = ["edge", "client"]
AnyStore = QdrantEdgeStore | QdrantClientStore
Keep = Callable[[ClipPoint], bool]

TARGET = 7  # the point whose window 1 is exactly TARGET_QUERY


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def target_query() -> np.ndarray:
    return unit(np.random.default_rng(123).normal(size=DIM))


def make_points(n: int = N, dim: int = DIM, seed: int = 0) -> list[ClipPoint]:
    """Points with 1-5 unit windows, a pooled vector near their mean, and filterable payload."""
    rng = np.random.default_rng(seed)
    points = []
    for i in range(n):
        windows = unit(rng.normal(size=(int(rng.integers(1, 6)), dim)))
        if i == TARGET and dim == DIM:
            windows = np.vstack([windows[:1], target_query()[None], windows[1:]])
        pooled = unit(windows.mean(axis=0) + 0.3 * rng.normal(size=dim))
        path = f"v/{i:03d}.avi"
        payload = {
            "path": path,
            "class": f"c{i % 4}",
            "group": i % 5,
            "split_1": "test" if i % 3 == 0 else "train",
            "duration_s": 1.0 + 0.25 * i,  # 1.0 .. 15.75, exact in binary
        }
        points.append(ClipPoint(clip_id(path), pooled, windows, payload))
    return points


def maxsim(point: ClipPoint, q: np.ndarray) -> float:
    return float((point.windows.astype(np.float64) @ q.astype(np.float64)).max())


def ranked(
    points: Sequence[ClipPoint],
    q: np.ndarray,
    k: int,
    *,
    keep: Keep = lambda p: True,
    offset: int = 0,
    exclude: Sequence[str] = (),
    threshold: float | None = None,
) -> list[tuple[str, float]]:
    """numpy: videos by their best window's cosine, filtered, thresholded, paged."""
    pool = [p for p in points if keep(p) and p.id not in set(exclude)]
    scored = sorted(((p.id, maxsim(p, q)) for p in pool), key=lambda t: -t[1])
    if threshold is not None:
        scored = [t for t in scored if t[1] >= threshold]
    return scored[offset : offset + k]


def open_kind(kind: str, path: Path, *, indexes: bool = False) -> AnyStore:
    if kind == "edge":
        # Edge facets need a keyword index; each index costs time at creation
        return QdrantEdgeStore(path, payload_indexes=("class", "split_1") if indexes else ())
    return QdrantClientStore.in_memory("segment_tests")


@pytest.fixture(scope="module")
def points() -> list[ClipPoint]:
    return make_points()


@pytest.fixture(scope="module", params=KINDS)
def filled(
    request: pytest.FixtureRequest,
    points: list[ClipPoint],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AnyStore]:
    """One store per adapter, filled once and only read by the tests using it."""
    store = open_kind(request.param, tmp_path_factory.mktemp("segstore") / "s", indexes=True)
    store.ensure_collection(DIM)
    store.upsert(points)
    yield store
    store.close()


@pytest.fixture(params=KINDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnyStore]:
    store = open_kind(request.param, tmp_path / "s")
    yield store
    store.close()


def ids_scores(hits: Sequence[WindowHit]) -> list[tuple[str, float]]:
    return [(h.id, h.score) for h in hits]


def assert_same(hits: Sequence[WindowHit], expected: list[tuple[str, float]]) -> None:
    assert [h.id for h in hits] == [i for i, _ in expected]
    np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], atol=1e-5)


def queries(n: int, seed: int = 5, dim: int = DIM) -> np.ndarray:
    return unit(np.random.default_rng(seed).normal(size=(n, dim)))


# --------------------------------------------------------------------------- scores and windows


def test_the_point_whose_best_window_matches_wins(
    filled: AnyStore, points: list[ClipPoint]
) -> None:
    q = target_query()
    hits = filled.search_windows(q, 5, prefetch=N)
    top = hits[0]
    assert top.id == points[TARGET].id
    assert top.score == pytest.approx(1.0, abs=1e-5)
    assert top.payload == points[TARGET].payload
    # the windows come back in their stored order, so the winner can be named
    assert top.windows.dtype == np.float32
    assert top.windows.shape == points[TARGET].windows.shape
    np.testing.assert_allclose(top.windows, points[TARGET].windows, atol=1e-5)
    assert int(np.argmax(top.windows @ q)) == 1


def test_scores_are_the_best_window_cosine(filled: AnyStore, points: list[ClipPoint]) -> None:
    by_id = {p.id: p for p in points}
    for q in queries(6):
        hits = filled.search_windows(q, 10, prefetch=N)
        assert len(hits) == 10
        assert_same(hits, ranked(points, q, 10))
        for h in hits:
            stored = by_id[h.id]
            np.testing.assert_allclose(h.windows, stored.windows, atol=1e-5)
            assert h.score == pytest.approx(maxsim(stored, q), abs=1e-5)
            assert h.score == pytest.approx(float((h.windows @ q).max()), abs=1e-5)
            assert h.payload == stored.payload  # the video's own payload, not a window's
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_the_ranking_is_by_windows_not_by_pooled_vectors(
    filled: AnyStore, points: list[ClipPoint]
) -> None:
    q = queries(1, seed=11)[0]
    hits = filled.search_windows(q, 20, prefetch=20)
    assert [h.id for h in hits] != [h.id for h in filled.search(q, 20)]
    assert_same(hits, ranked(points, q, 20))
    # the same answer whatever the first fetch's size
    for prefetch in (1, 7, 1000):
        assert_same(filled.search_windows(q, 20, prefetch=prefetch), ranked(points, q, 20))


# --------------------------------------------------------------------------- prefetch


def far_and_near() -> tuple[np.ndarray, ClipPoint, list[ClipPoint]]:
    """A video far by pooled vector with one exactly matching window, and 5 near ones."""
    rng = np.random.default_rng(3)
    q = unit(rng.normal(size=DIM))
    far = ClipPoint(
        clip_id("far"),
        unit(-q + 0.1 * rng.normal(size=DIM)),
        np.vstack([unit(rng.normal(size=(2, DIM))), q[None]]),
        {"path": "far"},
    )
    near = []
    for j in range(5):
        orth = rng.normal(size=(2, DIM))
        orth -= np.outer(orth @ q, q)  # orthogonal to q, then a little of q: low, distinct
        wins = unit(unit(orth) + (0.05 * (j + 1)) * q)
        pooled = unit(q + (0.1 + 0.1 * j) * unit(rng.normal(size=DIM)))
        near.append(ClipPoint(clip_id(f"near{j}"), pooled, wins, {"path": f"near{j}"}))
    return q, far, near


def test_a_video_far_by_its_pooled_vector_is_found_by_its_window(fresh: AnyStore) -> None:
    q, far, near = far_and_near()
    everyone = [far, *near]
    fresh.ensure_collection(DIM)
    fresh.upsert(everyone)
    assert fresh.search(q, 6)[-1].id == far.id  # last by pooled cosine ...
    for prefetch in (1, 5, 6, 1000):  # ... first by its matching window, whatever prefetch
        found = fresh.search_windows(q, 1, prefetch=prefetch)
        assert [h.id for h in found] == [far.id], prefetch
        assert found[0].score == pytest.approx(1.0, abs=1e-5)
        assert int(np.argmax(found[0].windows @ q)) == 2
    page = fresh.search_windows(q, 5, prefetch=1, offset=1)
    assert_same(page, ranked(everyone, q, 5, offset=1))
    assert far.id not in {h.id for h in page} and len(page) == 5


def test_many_matching_windows_of_one_video_do_not_crowd_out_the_others(
    fresh: AnyStore,
) -> None:
    """One video's 40 windows are the 40 best windows: the first fetch (prefetch, at least
    4 x (offset + k) windows) holds only that video, so the store must fetch more."""
    rng = np.random.default_rng(17)
    q = unit(rng.normal(size=DIM))
    crowd = ClipPoint(
        clip_id("crowd"),
        unit(rng.normal(size=DIM)),
        unit(q + 0.05 * rng.normal(size=(40, DIM))),
        {"path": "crowd"},
    )
    others = [
        ClipPoint(
            clip_id(f"o{j}"),
            unit(rng.normal(size=DIM)),
            unit(q * (0.5 - 0.05 * j) + unit(rng.normal(size=(2, DIM)))),
            {"path": f"o{j}"},
        )
        for j in range(6)
    ]
    everyone = [crowd, *others]
    assert min(float(s @ q) for s in crowd.windows) > max(maxsim(o, q) for o in others)
    fresh.ensure_collection(DIM)
    fresh.upsert(everyone)
    assert fresh.count() == 7  # videos, not windows
    for k, offset, prefetch in ((3, 0, 1), (4, 2, 1), (7, 0, 5), (2, 5, 1)):
        hits = fresh.search_windows(q, k, prefetch=prefetch, offset=offset)
        assert_same(hits, ranked(everyone, q, k, offset=offset))
        assert len({h.id for h in hits}) == len(hits) == min(k, 7 - offset)
    assert fresh.search_windows(q, 5, prefetch=1, offset=7) == []


def test_upsert_replaces_a_videos_windows(fresh: AnyStore) -> None:
    """No window of an earlier version of a video is left to match, and the windows'
    copy of the payload follows the video's."""
    rng = np.random.default_rng(23)
    q = unit(rng.normal(size=DIM))
    others = make_points(8, seed=2)
    old = ClipPoint(
        clip_id("changing"),
        unit(rng.normal(size=DIM)),
        np.vstack([unit(rng.normal(size=(4, DIM))), q[None]]),  # window 4 matches
        {"path": "changing", "class": "old"},
    )
    fresh.ensure_collection(DIM)
    fresh.upsert([*others, old])
    top = fresh.search_windows(q, 1, prefetch=10)[0]
    assert top.id == old.id and top.score == pytest.approx(1.0, abs=1e-5)
    # fewer windows, none matching, another class
    new = ClipPoint(
        old.id, old.pooled, unit(rng.normal(size=(2, DIM))), {"path": "changing", "class": "new"}
    )
    fresh.upsert([new])
    assert fresh.count() == 9
    hits = fresh.search_windows(q, 9, prefetch=100)
    assert_same(hits, ranked([*others, new], q, 9))
    mine = next(h for h in hits if h.id == old.id)
    assert mine.windows.shape == (2, DIM) and mine.payload["class"] == "new"
    assert mine.score == pytest.approx(maxsim(new, q), abs=1e-5) and mine.score < 0.9
    assert fresh.search_windows(q, 5, prefetch=100, filter={"class": "old"}) == []
    assert [h.id for h in fresh.search_windows(q, 5, prefetch=100, filter={"class": "new"})] == [
        old.id
    ]
    # and back to more windows than ever
    again = ClipPoint(old.id, old.pooled, unit(rng.normal(size=(6, DIM))), {"path": "changing"})
    fresh.upsert([again])
    assert_same(fresh.search_windows(q, 9, prefetch=100), ranked([*others, again], q, 9))


# --------------------------------------------------------------------------- filters


def _filter_cases() -> list[tuple[PayloadFilter, Keep]]:
    def dur(p: ClipPoint) -> float:
        return float(p.payload["duration_s"])

    return [
        ({"class": "c1"}, lambda p: p.payload["class"] == "c1"),
        ({"class": ["c0", "c3"]}, lambda p: p.payload["class"] in {"c0", "c3"}),
        ({"group": 2}, lambda p: p.payload["group"] == 2),
        ({"group": [0, 4]}, lambda p: p.payload["group"] in {0, 4}),
        ({"split_1": "test"}, lambda p: p.payload["split_1"] == "test"),
        ({"duration_s": Range(gte=10.0)}, lambda p: dur(p) >= 10.0),
        ({"duration_s": Range(lte=4.5)}, lambda p: dur(p) <= 4.5),  # 4.5 is stored: inclusive
        ({"duration_s": Range(gte=3.0, lte=8.0)}, lambda p: 3.0 <= dur(p) <= 8.0),
        ({"duration_s": Range(gte=5, lte=5)}, lambda p: dur(p) == 5.0),  # integer ends
        ({"duration_s": Range(gte=2.1, lte=2.2)}, lambda p: False),  # between stored values
        (
            {"class": "c2", "duration_s": Range(lte=9.0), "split_1": "train"},
            lambda p: (
                p.payload["class"] == "c2" and dur(p) <= 9.0 and p.payload["split_1"] == "train"
            ),
        ),
        ({"class": "nope"}, lambda p: False),
    ]


def test_filters(filled: AnyStore, points: list[ClipPoint]) -> None:
    q = queries(1, seed=21)[0]
    for flt, keep in _filter_cases():
        hits = filled.search_windows(q, N, prefetch=N, filter=flt)
        assert_same(hits, ranked(points, q, N, keep=keep))
        assert all(keep(p) for p in points if p.id in {h.id for h in hits}), flt
        # a small first fetch holds only matching windows: still the filtered top 3
        small = filled.search_windows(q, 3, prefetch=1, filter=flt)
        assert_same(small, ranked(points, q, 3, keep=keep))


def test_exclude_leaves_points_out(filled: AnyStore, points: list[ClipPoint]) -> None:
    q = target_query()
    full = filled.search_windows(q, 10, prefetch=N)
    assert full[0].id == points[TARGET].id
    gone = filled.search_windows(q, 10, prefetch=N, exclude=[points[TARGET].id])
    assert points[TARGET].id not in {h.id for h in gone}
    assert_same(gone, ranked(points, q, 10, exclude=[points[TARGET].id]))
    two = [full[0].id, full[2].id]
    hits = filled.search_windows(q, 8, prefetch=N, exclude=two)
    assert [h.id for h in hits] == [h.id for h in full if h.id not in two][:8]
    # ids are compared in canonical form; an id that is not stored changes nothing
    upper = filled.search_windows(q, 3, prefetch=N, exclude=[full[0].id.upper()])
    assert [h.id for h in upper] == [h.id for h in full[1:4]]
    unknown = filled.search_windows(q, 10, prefetch=N, exclude=[clip_id("not/stored")])
    assert [h.id for h in unknown] == [h.id for h in full]
    # exclusion applies to the first fetch too: two videos still come back
    keep_c = {"class": points[TARGET].payload["class"]}
    hits = filled.search_windows(q, 2, prefetch=1, filter=keep_c, exclude=[points[TARGET].id])
    expected = ranked(
        points,
        q,
        2,
        keep=lambda p: p.payload["class"] == keep_c["class"],
        exclude=[points[TARGET].id],
    )
    assert_same(hits, expected)
    assert len(hits) == 2


def test_score_threshold_drops_lower_hits(filled: AnyStore, points: list[ClipPoint]) -> None:
    q = queries(1, seed=8)[0]
    full = filled.search_windows(q, N, prefetch=N)
    scores = [h.score for h in full]
    assert len(set(np.round(scores, 6))) == len(scores)  # no ties at this precision
    for cut in (1, 5, 20):
        threshold = (scores[cut - 1] + scores[cut]) / 2
        hits = filled.search_windows(q, N, prefetch=N, score_threshold=threshold)
        assert [h.id for h in hits] == [h.id for h in full[:cut]]
        assert all(h.score >= threshold for h in hits)
        # paging past the hits that pass is empty, not the hits below the threshold
        assert filled.search_windows(q, 5, prefetch=N, offset=cut, score_threshold=threshold) == []
    assert filled.search_windows(q, 5, prefetch=N, score_threshold=scores[0] + 1e-3) == []
    low = filled.search_windows(q, N, prefetch=N, score_threshold=-1.0)
    assert [h.id for h in low] == [h.id for h in full]
    # an integer threshold is a number too
    assert filled.search_windows(q, 5, prefetch=N, score_threshold=1) == []


def test_a_hit_scoring_exactly_the_threshold_is_kept(filled: AnyStore) -> None:
    """Qdrant keeps only scores strictly above its score_threshold; the contract (and
    calibrate's "scores >= min_score pass") keeps a hit scoring exactly the threshold."""
    q = queries(1, seed=8)[0]
    top = filled.search_windows(q, 2, prefetch=N)
    for hit in top:
        kept = filled.search_windows(q, 2, prefetch=N, score_threshold=hit.score)
        assert [h.id for h in kept] == [h.id for h in top if h.score >= hit.score]


def test_offset_pages_through_the_ranking(filled: AnyStore, points: list[ClipPoint]) -> None:
    q = queries(1, seed=13)[0]
    full = filled.search_windows(q, 12, prefetch=1)
    pages = [filled.search_windows(q, 4, prefetch=1, offset=o) for o in (0, 4, 8)]
    assert [h.id for page in pages for h in page] == [h.id for h in full]
    assert_same(pages[1], ranked(points, q, 4, offset=4))
    assert filled.search_windows(q, 5, prefetch=N, offset=N) == []
    tail = filled.search_windows(q, 10, prefetch=N, offset=N - 3)
    assert len(tail) == 3
    flt: PayloadFilter = {"class": "c0"}
    keep: Keep = lambda p: p.payload["class"] == "c0"  # noqa: E731
    first = filled.search_windows(q, 6, prefetch=N, filter=flt)
    second = filled.search_windows(q, 3, prefetch=N, filter=flt, offset=3)
    assert [h.id for h in second] == [h.id for h in first[3:]]
    assert_same(second, ranked(points, q, 3, keep=keep, offset=3))


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prefetch": 0}, "prefetch must be a positive integer"),
        ({"prefetch": -5}, "prefetch must be a positive integer"),
        ({"prefetch": 2.5}, "prefetch must be a positive integer"),
        ({"prefetch": True}, "prefetch must be a positive integer"),
        ({"prefetch": "10"}, "prefetch must be a positive integer"),
        ({"score_threshold": float("nan")}, "score threshold must be finite"),
        ({"score_threshold": float("inf")}, "score threshold must be finite"),
        ({"score_threshold": "0.5"}, "score threshold must be a number"),
        ({"score_threshold": True}, "score threshold must be a number"),
        ({"k": 0}, "k must be a positive integer"),
        ({"offset": -1}, "offset must be a non-negative integer"),
        ({"filter": {"duration_s": Range()}}, "a range needs gte, lte or both"),
        ({"filter": {"duration_s": Range(gte=5.0, lte=1.0)}}, r"empty range 5.0 > 1.0"),
        ({"filter": {"duration_s": Range(gte=float("nan"))}}, "range ends must be finite"),
        ({"filter": {"duration_s": Range(lte=float("inf"))}}, "range ends must be finite"),
        ({"filter": {"duration_s": Range(gte="1")}}, "range ends must be numbers"),  # type: ignore[arg-type]
        ({"filter": {"duration_s": Range(gte=True)}}, "range ends must be numbers"),
        ({"filter": {"class": 1.5}}, "value must be a string"),
        ({"filter": {"class": ["a", 1]}}, "only strings or only integers"),
        ({"exclude": ["not-a-uuid"]}, "point id must be a UUID"),
    ],
)
def test_invalid_arguments(filled: AnyStore, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"k": 5, "prefetch": 10, **kwargs}
    with pytest.raises(InvalidInput, match=message):
        filled.search_windows(target_query(), **args)  # type: ignore[arg-type]


def test_invalid_query_vectors(filled: AnyStore) -> None:
    with pytest.raises(InvalidInput, match="NaN"):
        filled.search_windows(np.full(DIM, np.nan), 5, prefetch=10)
    with pytest.raises(InvalidInput, match="shape"):
        filled.search_windows(np.ones((2, DIM)), 5, prefetch=10)  # one vector only
    with pytest.raises(InvalidInput):
        filled.search_windows(np.array(["a"] * DIM), 5, prefetch=10)
    with pytest.raises(StoreError, match="size 8"):
        filled.search_windows(np.ones(8), 5, prefetch=10)


def test_search_windows_needs_a_collection(fresh: AnyStore) -> None:
    with pytest.raises(StoreError, match="ingest"):
        fresh.search_windows(target_query(), 5, prefetch=10)


# --------------------------------------------------------------------------- facets


def test_facet_counts(filled: AnyStore, points: list[ClipPoint]) -> None:
    expected = {f"c{c}": sum(p.payload["class"] == f"c{c}" for p in points) for c in range(4)}
    assert filled.facet("class") == expected
    splits = filled.facet("split_1")
    assert splits == {"test": 20, "train": 40}
    assert list(splits) == ["train", "test"]  # most common first
    assert filled.facet("split_1", limit=1) == {"train": 40}
    with pytest.raises(InvalidInput):
        filled.facet("class", limit=0)


def test_facet_follows_upserts(tmp_path: Path) -> None:
    for kind in KINDS:
        store = open_kind(kind, tmp_path / kind, indexes=True)
        assert store.facet("class") == {}  # no collection yet
        store.ensure_collection(DIM)
        pts = make_points(6, seed=4)
        store.upsert(pts)
        assert store.facet("class") == {"c0": 2, "c1": 2, "c2": 1, "c3": 1}, kind
        p = pts[0]
        store.upsert([ClipPoint(p.id, p.pooled, p.windows, {**p.payload, "class": "c3"})])
        assert store.facet("class") == {"c0": 1, "c1": 2, "c2": 1, "c3": 2}, kind
        store.close()


# --------------------------------------------------------------------------- congruence


def test_adapters_agree_on_window_search(tmp_path: Path) -> None:
    """Same points, same queries and options: same ids, scores and order from both adapters,
    and both equal the numpy ranking."""
    dim = 32
    pts = make_points(200, dim, seed=42)
    edge = QdrantEdgeStore(tmp_path / "edge", payload_indexes=())
    client = QdrantClientStore.in_memory()
    for s in (edge, client):
        s.ensure_collection(dim)
        s.upsert(pts)
    rng = np.random.default_rng(9)
    qs = unit(rng.normal(size=(24, dim)))
    checked = 0
    for j, q in enumerate(qs):
        prefetch = (5, 20, 200)[j % 3]
        k = (1, 5, 10)[j % 3]
        offset = (0, 0, 3, 7)[j % 4]
        flt: PayloadFilter | None = None
        keep: Keep = lambda p: True  # noqa: E731
        if j % 4 == 1:
            flt = {"class": ["c1", "c2"]}
            keep = lambda p: p.payload["class"] in {"c1", "c2"}  # noqa: E731
        elif j % 4 == 2:
            flt = {"duration_s": Range(gte=5.0, lte=30.0)}
            keep = lambda p: 5.0 <= p.payload["duration_s"] <= 30.0  # noqa: E731
        exclude = [pts[int(i)].id for i in rng.choice(len(pts), 10, replace=False)] if j % 2 else []
        options = {"prefetch": prefetch, "offset": offset, "filter": flt, "exclude": exclude}
        a = edge.search_windows(q, k, **options)  # type: ignore[arg-type]
        b = client.search_windows(q, k, **options)  # type: ignore[arg-type]
        truth = ranked(pts, q, k, keep=keep, offset=offset, exclude=exclude)
        assert [h.id for h in a] == [h.id for h in b] == [i for i, _ in truth], j
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
        np.testing.assert_allclose([h.score for h in a], [s for _, s in truth], atol=1e-5)
        for ha, hb in zip(a, b, strict=True):
            assert ha.payload == hb.payload
            np.testing.assert_allclose(ha.windows, hb.windows, atol=1e-6)
        if j % 3 == 0 and a:  # thresholds between two results cut both lists alike
            cut = (a[0].score + (a[1].score if len(a) > 1 else -1.0)) / 2
            ta = edge.search_windows(q, k, score_threshold=cut, **options)  # type: ignore[arg-type]
            tb = client.search_windows(q, k, score_threshold=cut, **options)  # type: ignore[arg-type]
            assert [h.id for h in ta] == [h.id for h in tb] == [a[0].id]
        checked += len(a)
    assert checked > 50
    edge.close()
    client.close()
