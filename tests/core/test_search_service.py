"""SearchService: text, image and more-like-this queries over a real store, with the
moment of each result, paging and the "no good match" threshold."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from clipsearch.data.collection import load_collection
from clipsearch.errors import InvalidInput, NotFound
from clipsearch.model import ClipEncoder, load_model
from clipsearch.pipeline.runner import IngestOptions, ingest
from clipsearch.search import (
    Result,
    SearchLimits,
    SearchService,
    stored_windows,
    validate_k,
    validate_min_score,
    validate_offset,
)
from clipsearch.store import ClipPoint, Range, clip_id
from clipsearch.store.base import WindowHit
from clipsearch.store.client import QdrantClientStore
from clipsearch.store.edge import QdrantEdgeStore
from clipsearch.video import sample_frames
from clipsearch.windows import WindowPlan

QUERY = "a video of ball bouncing"
N_CLIPS = 6  # 4 labelled clips + 2 moments clips


def three_windows(scores: Sequence[float]) -> float:
    """A video's score as the search ranks it, written apart from the library: the best
    mean of three neighbouring windows' scores, an end window counted again for the
    neighbour it lacks."""
    s = [float(x) for x in scores]
    padded = [s[0], *s, s[-1]]
    return max(sum(padded[i : i + 3]) / 3 for i in range(len(s)))


def ranked(hits: Sequence[WindowHit], q: np.ndarray) -> list[str]:
    """Ids of ``hits`` in the order the search gives them (ties by id)."""
    return [h.id for h in sorted(hits, key=lambda h: (-three_windows(h.windows @ q), h.id))]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 classes x 1 group x 1 clip, and a moments set of 2 clips (1 per class)."""
    from clipsearch.data.synth import generate

    root = tmp_path_factory.mktemp("svc") / "synth"
    generate(root, classes=4, groups=1, clips=1, workers=2, moments_per_class=1, long_videos=0)
    return root


@pytest.fixture(scope="module")
def both(tiny_model_dir: Path) -> ClipEncoder:
    return load_model(tiny_model_dir, towers="both")


@pytest.fixture(scope="module")
def text(tiny_model_dir: Path) -> ClipEncoder:
    return load_model(tiny_model_dir, towers="text")


@pytest.fixture(scope="module")
def store(
    synth_root: Path, both: ClipEncoder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QdrantEdgeStore]:
    s = QdrantEdgeStore(tmp_path_factory.mktemp("svcstore") / "store")
    for folder in (synth_root, synth_root / "moments"):
        report = ingest(load_collection(folder), both, s, IngestOptions(workers=2))
        assert report.failed == []
    assert s.count() == N_CLIPS
    yield s
    s.close()


def query_vector(encoder: ClipEncoder, query: str = QUERY) -> np.ndarray:
    return encoder.encode_text([query])[0]


def expected_span(
    scores: Sequence[float], windows: Sequence[tuple[float, float]], spread: float, floor: float
) -> tuple[int, float, float]:
    """(best, start_s, end_s): the winner grown over neighbours within the margin, from
    the first window's start to the last one's end."""
    best = int(np.argmax(scores))
    margin = max(spread * (scores[best] - float(np.median(scores))), floor)
    lo = hi = best
    while lo > 0 and scores[lo - 1] >= scores[best] - margin:
        lo -= 1
    while hi < len(scores) - 1 and scores[hi + 1] >= scores[best] - margin:
        hi += 1
    return best, windows[lo][0], windows[hi][1]


EXACT = SearchLimits(moment_spread=0.0, moment_min_margin=0.0)


# --------------------------------------------------------------------------- real store


def test_moments_come_from_the_best_window(text: ClipEncoder, store: QdrantEdgeStore) -> None:
    service = SearchService(text, store, EXACT)
    response = service.search(QUERY, N_CLIPS, min_score=None)
    assert response.kind == "text" and response.query == QUERY
    assert len(response.results) == N_CLIPS
    q = query_vector(text)
    direct = store.search_windows(q, N_CLIPS, prefetch=100)
    assert [r.id for r in response.results] == ranked(direct, q)
    for r in response.results:
        spans = r.payload["segment_times"]
        assert r.window_times == [(float(s), float(e)) for s, e in spans]
        assert r.window_times == [
            (round(s, 3), round(e, 3)) for s, e in WindowPlan().windows(r.payload["duration_s"])
        ]
        assert r.hit.windows.shape == (len(spans), text.dim)
        np.testing.assert_allclose(r.window_scores, r.hit.windows @ q, atol=1e-5)
        best = int(np.argmax(r.hit.windows @ q))
        assert r.moment.index == best
        # the moment lies inside the winning window and holds its centre
        start, end = r.window_times[best]
        assert start <= r.moment.start_s < (start + end) / 2 < r.moment.end_s <= end
        assert r.score == pytest.approx(three_windows(r.window_scores), abs=1e-5)
        assert r.moment.score == pytest.approx(float(r.window_scores.max()), abs=1e-5)
        assert r.score <= r.moment.score + 1e-6
    assert any(len(r.window_times) > 4 for r in response.results)  # the moments clips
    scores = [r.score for r in response.results]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(("spread", "floor"), [(0.0, 0.0), (0.5, 0.0), (0.5, 0.1), (0.0, 0.05)])
def test_a_moment_grows_over_near_ties(
    text: ClipEncoder, store: QdrantEdgeStore, spread: float, floor: float
) -> None:
    limits = SearchLimits(moment_spread=spread, moment_min_margin=floor)
    service = SearchService(text, store, limits)
    for r in service.search(QUERY, N_CLIPS, min_score=None).results:
        best, start, end = expected_span(list(r.window_scores), r.window_times, spread, floor)
        assert r.moment.index == best
        assert r.moment.start_s == pytest.approx(start) and r.moment.end_s == pytest.approx(end)
        assert 0.0 <= r.moment.start_s < r.moment.end_s <= r.payload["duration_s"] + 1e-3


def test_a_wide_margin_takes_the_whole_video(text: ClipEncoder, store: QdrantEdgeStore) -> None:
    everything = SearchService(text, store, SearchLimits(moment_min_margin=2.0))
    for r in everything.search(QUERY, N_CLIPS, min_score=None).results:
        assert r.moment.start_s == 0.0
        assert r.moment.end_s == pytest.approx(r.payload["duration_s"], abs=1e-3)


def test_paging(text: ClipEncoder, store: QdrantEdgeStore) -> None:
    service = SearchService(text, store)
    full = service.search(QUERY, N_CLIPS)
    assert full.next_offset is None and full.offset == 0
    assert service.search(QUERY, N_CLIPS - 1).next_offset == N_CLIPS - 1
    ids: list[str] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        page = service.search(QUERY, 2, offset=offset)
        assert page.offset == offset and len(page.results) == 2
        ids += [r.id for r in page.results]
        offset = page.next_offset
        pages += 1
    assert pages == 3 and ids == [r.id for r in full.results]
    beyond = service.search(QUERY, 2, offset=N_CLIPS)
    assert beyond.results == [] and beyond.next_offset is None
    assert not beyond.no_good_match
    for bad in (-1, 1001, "x", True, 2.5):
        with pytest.raises(InvalidInput) as info:
            service.search(QUERY, 2, offset=bad)
        assert info.value.code == "invalid_offset"
    with pytest.raises(InvalidInput) as info:
        service.search(QUERY, 0)
    assert info.value.code == "invalid_k"


def test_filters_reach_the_store(text: ClipEncoder, store: QdrantEdgeStore) -> None:
    service = SearchService(text, store)
    one = service.search(QUERY, 10, filter={"class": "BallBouncing"})
    assert [r.payload["class"] for r in one.results] == ["BallBouncing"]
    assert one.filters == {"class": "BallBouncing"}
    long = service.search(QUERY, 10, filter={"duration_s": Range(gte=6.0)})
    assert sorted(r.payload["path"] for r in long.results) == ["m_0001.avi", "m_0002.avi"]
    tests = service.search(QUERY, 10, filter={"split_1": "test"})
    assert len(tests.results) == 4 and all(r.payload["class"] for r in tests.results)


def test_thresholds(text: ClipEncoder, store: QdrantEdgeStore) -> None:
    scores = [r.score for r in SearchService(text, store).search(QUERY, N_CLIPS).results]
    assert len(scores) == N_CLIPS and scores[0] < 0.99
    cut = (scores[1] + scores[2]) / 2

    service = SearchService(text, store, min_score=cut)
    assert service.min_score == cut
    default = service.search(QUERY, N_CLIPS)
    assert default.min_score == cut and len(default.results) == 2
    assert all(r.score >= cut for r in default.results)
    assert not default.no_good_match and default.best_score is None
    assert default.next_offset is None
    assert service.search(QUERY, 1).next_offset == 1
    # an override replaces the service's threshold; None disables it
    lower = service.search(QUERY, N_CLIPS, min_score=(scores[3] + scores[4]) / 2)
    assert len(lower.results) == 4
    off = service.search(QUERY, N_CLIPS, min_score=None)
    assert off.min_score is None and len(off.results) == N_CLIPS
    everything = service.search(QUERY, N_CLIPS, min_score=-1)
    assert everything.min_score == -1.0 and len(everything.results) == N_CLIPS
    assert service.search(QUERY, N_CLIPS, min_score="-1").min_score == -1.0

    # a threshold above every score: nothing shown, and the response says why
    high = SearchService(text, store, min_score=scores[0] + 0.005)
    none = high.search(QUERY, 5)
    assert none.results == [] and none.no_good_match
    assert none.best_score == pytest.approx(scores[0], abs=1e-5)
    assert none.min_score == pytest.approx(scores[0] + 0.005)
    # only on the first page, and not when the filter itself matches nothing
    later = high.search(QUERY, 2, offset=2)
    assert later.results == [] and not later.no_good_match and later.best_score is None
    empty = high.search(QUERY, 5, filter={"class": "Nope"})
    assert empty.results == [] and not empty.no_good_match and empty.best_score is None
    # results were shown: no "no good match" even though some were hidden
    assert not service.search(QUERY, 5).no_good_match

    for bad in ("abc", 2, -1.5, float("nan"), float("inf"), True, [0.1]):
        with pytest.raises(InvalidInput) as info:
            service.search(QUERY, 5, min_score=bad)
        assert info.value.code == "invalid_min_score"
    with pytest.raises(InvalidInput):
        SearchService(text, store, min_score=1.5)


def test_more_like_excludes_the_clip(text: ClipEncoder, store: QdrantEdgeStore) -> None:
    seed = clip_id("m_0001.avi")
    service = SearchService(text, store, min_score=0.9999)  # the text threshold is not used
    response = service.more_like(seed, 10)
    assert response.kind == "clip" and response.query == "m_0001.avi"
    assert response.min_score is None
    ids = [r.id for r in response.results]
    assert seed not in ids and len(ids) == N_CLIPS - 1
    point = store.retrieve([seed], with_vectors=True)[seed]
    direct = store.search_windows(point.pooled, 10, prefetch=100, exclude=[seed])
    assert ids == [h.id for h in direct]
    for r in response.results:
        np.testing.assert_allclose(r.window_scores, r.hit.windows @ point.pooled, atol=1e-5)
    page = service.more_like(seed, 2, offset=2)
    assert [r.id for r in page.results] == ids[2:4] and page.next_offset == 4
    only = service.more_like(seed, 10, filter={"class": "BoxSpinning"})
    assert [r.payload["class"] for r in only.results] == ["BoxSpinning"]
    assert service.more_like(seed, 10, min_score=1.0).no_good_match


def test_more_like_an_unknown_clip(text: ClipEncoder, store: QdrantEdgeStore) -> None:
    service = SearchService(text, store)
    with pytest.raises(NotFound) as info:
        service.more_like(clip_id("not/stored.avi"))
    assert info.value.code == "clip_not_found" and info.value.status == 404
    with pytest.raises(InvalidInput):
        service.more_like("not-a-uuid")


def test_more_like_accepts_any_spelling_of_an_id(text: ClipEncoder, store: QdrantEdgeStore) -> None:
    seed = clip_id("m_0001.avi")
    service = SearchService(text, store)
    upper = service.more_like(seed.upper(), 10)
    assert [r.id for r in upper.results] == [r.id for r in service.more_like(seed, 10).results]


def test_search_image(both: ClipEncoder, store: QdrantEdgeStore, synth_root: Path) -> None:
    service = SearchService(both, store)
    assert service.image_queries
    source = synth_root / "UCF-101" / "BoxSpinning" / "v_BoxSpinning_g01_c01.avi"
    frame = sample_frames(source, 1).frames[0]
    response = service.search_image(frame, 4, name="box.png")
    assert response.kind == "image" and response.query == "box.png"
    q = both.encode_frames(frame[None])[0]
    direct = store.search_windows(q, N_CLIPS, prefetch=100)
    assert [r.id for r in response.results] == ranked(direct, q)[:4]
    for r in response.results:
        np.testing.assert_allclose(r.window_scores, r.hit.windows @ q, atol=1e-5)
        assert r.score == pytest.approx(three_windows(r.window_scores), abs=1e-5)
    only = service.search_image(frame, 4, filter={"class": "BallBouncing"})
    assert [r.payload["class"] for r in only.results] == ["BallBouncing"]

    bad_images = [
        frame.astype(np.float32),
        frame[..., 0],
        np.concatenate([frame, frame[..., :1]], axis=2),
        frame[None],
        np.zeros((4, 4, 3), dtype=np.int64),
    ]
    for bad in bad_images:
        with pytest.raises(InvalidInput) as info:
            service.search_image(bad)
        assert info.value.code == "invalid_image"


def test_image_search_needs_the_vision_tower(text: ClipEncoder, store: QdrantEdgeStore) -> None:
    service = SearchService(text, store)
    assert not service.image_queries
    with pytest.raises(InvalidInput) as info:
        service.search_image(np.zeros((32, 32, 3), np.uint8))
    assert info.value.code == "image_search_unavailable"


def test_frame_by_frame_points_and_a_changed_plan(
    both: ClipEncoder, text: ClipEncoder, synth_root: Path, tmp_path: Path
) -> None:
    """Points stored frame by frame (no plan): one span per frame; ingesting again with a
    plan re-embeds them into windows."""
    moments = load_collection(synth_root / "moments")
    with QdrantEdgeStore(tmp_path / "store", payload_indexes=()) as s:
        report = ingest(moments, both, s, IngestOptions(workers=1, windows=None))
        assert report.ingested == 2
        for r in SearchService(text, s).search(QUERY, 5).results:
            times = r.payload["frame_times"]
            assert r.payload["segment_plan"] is None and len(times) == both.video.num_frames
            assert r.hit.windows.shape == (len(times), both.dim)
            ends = [*times[1:], r.payload["duration_s"]]
            assert r.window_times == [
                (float(a), float(b)) for a, b in zip(times, ends, strict=True)
            ]
            assert r.window_times == [tuple(w) for w in r.payload["segment_times"]]
            assert r.moment.index == int(np.argmax(r.window_scores))
        assert ingest(moments, both, s, IngestOptions(workers=1, windows=None)).ingested == 0
        again = ingest(moments, both, s, IngestOptions(workers=1))
        assert (again.ingested, again.up_to_date) == (2, 0)
        for r in SearchService(text, s).search(QUERY, 5).results:
            assert r.payload["segment_plan"] == {
                "window_s": 2.0,
                "stride_s": 1.0,
                "frames": 6,
                "video": "window_mean",
            }
            assert len(r.window_times) == len(WindowPlan().windows(r.payload["duration_s"]))


# --------------------------------------------------------------------------- validators


def test_validate_offset() -> None:
    limits = SearchLimits()
    assert validate_offset(0, limits) == 0
    assert validate_offset("7", limits) == 7
    assert validate_offset(limits.max_offset, limits) == limits.max_offset
    for bad in (-1, limits.max_offset + 1, "x", "", None, True, 1.5, [1]):
        with pytest.raises(InvalidInput) as info:
            validate_offset(bad, limits)
        assert info.value.code == "invalid_offset"
    assert validate_offset(5, SearchLimits(max_offset=5)) == 5
    with pytest.raises(InvalidInput, match="between 0 and 5"):
        validate_offset(6, SearchLimits(max_offset=5))


def test_validate_min_score() -> None:
    assert validate_min_score(None) is None
    assert validate_min_score(0.25) == 0.25
    assert validate_min_score("0.5") == 0.5
    assert validate_min_score(-1) == -1.0 and validate_min_score(1) == 1.0
    bad_values: list[object] = ["abc", "", 1.0001, -2, float("nan"), float("-inf"), "nan"]
    for bad in [*bad_values, True, [0.5], {}]:
        with pytest.raises(InvalidInput) as info:
            validate_min_score(bad)
        assert info.value.code == "invalid_min_score"


def test_validate_k() -> None:
    limits = SearchLimits(max_k=20)
    assert validate_k("3", limits) == 3 and validate_k(20, limits) == 20
    for bad in (0, 21, "many", False, None):
        with pytest.raises(InvalidInput) as info:
            validate_k(bad, limits)
        assert info.value.code == "invalid_k"


# --------------------------------------------------------------------------- stored windows


def test_stored_windows_from_window_times() -> None:
    payload = {"segment_times": [[0, 2], [1, 3], [1.5, 3.5]], "duration_s": 3.5}
    assert stored_windows(payload, 3) == [(0.0, 2.0), (1.0, 3.0), (1.5, 3.5)]
    assert all(isinstance(s, float) for w in stored_windows(payload, 3) for s in w)


def test_stored_windows_falls_back_to_frame_times() -> None:
    payload = {"frame_times": [0.0, 0.5, 1.25], "duration_s": 2.0}
    assert stored_windows(payload, 3) == [(0.0, 0.5), (0.5, 1.25), (1.25, 2.0)]
    # segment_times of another length belong to other vectors: not used
    stale = {**payload, "segment_times": [[0, 2]]}
    assert stored_windows(stale, 3) == [(0.0, 0.5), (0.5, 1.25), (1.25, 2.0)]
    # the last span never runs backwards when the duration is missing or short
    assert stored_windows({"frame_times": [0.0, 1.0]}, 2) == [(0.0, 1.0), (1.0, 1.0)]


def test_stored_windows_with_neither_split_the_duration() -> None:
    assert stored_windows({"duration_s": 6.0}, 3) == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    assert stored_windows({"duration_s": 6.0, "frame_times": [0.0]}, 2) == [
        (0.0, 3.0),
        (3.0, 6.0),
    ]
    assert stored_windows({}, 2) == [(0.0, 0.0), (0.0, 0.0)]
    assert stored_windows({"duration_s": None}, 1) == [(0.0, 0.0)]


# --------------------------------------------------------------------------- controlled vectors


class FixedEncoder:
    """A query encoder that maps every text to one chosen unit vector."""

    model_id = "fixed"
    towers = "text"

    def __init__(self, vector: np.ndarray):
        self.vector = vector.astype(np.float32)

    def encode_text(
        self, texts: Sequence[str], *, normalize: bool = True, batch_size: int = 256
    ) -> np.ndarray:
        return np.stack([self.vector for _ in texts])


def test_a_lasting_match_outranks_one_high_window() -> None:
    """The store ranks by the best window; the search by the best three neighbouring
    windows, and its threshold and "no good match" score count that score."""
    eye = np.eye(8, dtype=np.float32)
    steady = (0.8 * eye[0] + 0.6 * eye[1]).astype(np.float32)  # cosine 0.8 with the query
    spans = [[0, 2], [1, 3], [2, 4], [3, 5]]

    def point(path: str, windows: list[np.ndarray]) -> ClipPoint:
        payload = {"path": path, "segment_times": spans, "duration_s": 5}
        return ClipPoint(clip_id(path), windows[0], np.stack(windows), payload)

    store = QdrantClientStore.in_memory()
    store.ensure_collection(8)
    store.upsert(
        [
            point("blip", [eye[1], eye[0], eye[1], eye[1]]),  # one window at 1.0
            point("steady", [steady] * 4),
            point("other", [eye[2]] * 4),
        ]
    )
    try:
        by_window = store.search_windows(eye[0], 3, prefetch=12)
        assert [h.payload["path"] for h in by_window[:2]] == ["blip", "steady"]
        service = SearchService(FixedEncoder(eye[0]), store)
        response = service.search("anything", 3, min_score=None)
        assert [r.payload["path"] for r in response.results] == ["steady", "blip", "other"]
        assert [r.score for r in response.results] == pytest.approx([0.8, 1 / 3, 0.0], abs=1e-5)
        blip = response.results[1]
        assert blip.moment.index == 1 and blip.moment.score == pytest.approx(1.0, abs=1e-5)
        second = service.search("anything", 1, offset=1, min_score=None)
        assert [r.payload["path"] for r in second.results] == ["blip"]
        assert second.next_offset == 2
        passing = service.search("anything", 3, min_score=0.5)
        assert [r.payload["path"] for r in passing.results] == ["steady"]
        none = service.search("anything", 3, min_score=0.9)
        assert none.results == [] and none.no_good_match
        assert none.best_score == pytest.approx(0.8, abs=1e-5)
        # twenty more blips rank "steady" 21st by its best window: within the candidates
        # taken from the store it still comes first, and beyond them it is not looked at
        blips = [0.9 + 0.004 * i for i in range(20)]
        store.upsert(
            [
                point(f"blip{i}", [eye[1], (x * eye[0] + np.sqrt(1 - x * x) * eye[1]), eye[1]])
                for i, x in enumerate(blips)
            ]
        )
        assert len(store.search_windows(eye[0], 20, prefetch=64)) == 20
        first = service.search("anything", 1, min_score=None)
        assert [r.payload["path"] for r in first.results] == ["steady"]
        assert first.results[0].score == pytest.approx(0.8, abs=1e-5)
        narrow = SearchService(FixedEncoder(eye[0]), store, SearchLimits(video_candidates=1))
        assert narrow.search("anything", 1, min_score=None).results[0].payload["path"] != "steady"
    finally:
        store.close()


def test_moments_of_each_kind_of_stored_point() -> None:
    """Window times, frame times only (older points) and neither: the winning window's
    span comes from whichever the payload has."""
    eye = np.eye(8, dtype=np.float32)

    def u(v: np.ndarray) -> np.ndarray:
        return (v / np.linalg.norm(v)).astype(np.float32)

    points = [
        ClipPoint(
            clip_id("a"),
            u(eye[0] + eye[1]),
            np.stack([eye[1], u(0.5 * eye[0] + eye[1]), eye[0], eye[2]]),
            {"path": "a", "segment_times": [[0, 2], [1, 3], [2, 4], [3, 5]], "duration_s": 5},
        ),
        ClipPoint(
            clip_id("b"),
            u(eye[0] + eye[2]),
            np.stack([eye[2], u(3 * eye[0] + eye[3]), eye[3]]),
            {"path": "b", "frame_times": [0.0, 0.5, 1.0], "duration_s": 1.5},
        ),
        ClipPoint(
            clip_id("c"),
            u(eye[0] + eye[3]),
            np.stack([eye[3], eye[4], u(eye[0] + eye[5])]),
            {"path": "c", "duration_s": 6.0},
        ),
    ]
    store = QdrantClientStore.in_memory()
    store.ensure_collection(8)
    store.upsert(points)
    try:
        service = SearchService(FixedEncoder(eye[0]), store)
        response = service.search("anything", 10)
        results: dict[str, Result] = {r.payload["path"]: r for r in response.results}
        a, b, c = results["a"], results["b"], results["c"]
        # a lone winner: its own window; the video scores its best three windows' mean
        assert (a.moment.index, a.moment.start_s, a.moment.end_s) == (2, 2.0, 4.0)
        assert a.moment.score == pytest.approx(1.0, abs=1e-5)
        assert a.score == pytest.approx((1 / np.sqrt(5) + 1.0) / 3, abs=1e-5)
        assert (b.moment.index, b.moment.start_s, b.moment.end_s) == (1, 0.5, 1.0)
        assert b.moment.score == pytest.approx(3 / np.sqrt(10), abs=1e-5)
        assert b.score == pytest.approx(1 / np.sqrt(10), abs=1e-5)
        # c's best window is its last: counted again for the neighbour it lacks
        assert (c.moment.index, c.moment.start_s, c.moment.end_s) == (2, 4.0, 6.0)
        assert c.moment.score == pytest.approx(1 / np.sqrt(2), abs=1e-5)
        assert c.score == pytest.approx(2 / np.sqrt(2) / 3, abs=1e-5)
        # b's best window beats c's, but it stands between two zeros, and c's counts twice
        assert [r.payload["path"] for r in response.results] == ["a", "c", "b"]
        np.testing.assert_allclose(a.window_scores, [0.0, 1 / np.sqrt(5), 1.0, 0.0], atol=1e-5)
        # a wide margin grows a's moment over its 0.447 neighbour but not over its zeros
        limits = SearchLimits(moment_spread=0.0, moment_min_margin=0.6)
        wide = SearchService(FixedEncoder(eye[0]), store, limits)
        a_wide = next(r for r in wide.search("x", 10).results if r.payload["path"] == "a")
        assert (a_wide.moment.start_s, a_wide.moment.end_s) == (1.0, 4.0)
    finally:
        store.close()
