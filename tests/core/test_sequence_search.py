"""Sequence queries ("A then B"): splitting, exact scoring with the order penalty, both
moments in order, paging, thresholds, filters, and the API and page that show them.

The store is real (in-memory Qdrant) and its vectors are built around the tiny untrained
model's own embeddings ``qa`` and ``qb`` of the two steps: a window is ``qa`` or ``qb``
itself, ``x * q + sqrt(1 - x²) * u`` (``u`` orthogonal to both: cosine ``x`` with ``q``),
or noise orthogonal to both. Expected scores come from a brute force over every pair of
windows, written here independently of :mod:`clipsearch.sequence`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from clipsearch.errors import InvalidInput
from clipsearch.model import ClipEncoder, load_model
from clipsearch.search import SearchLimits, SearchService
from clipsearch.sequence import MAX_STEPS, match_sequence, split_steps
from clipsearch.store.base import ClipPoint, clip_id
from clipsearch.store.client import QdrantClientStore
from clipsearch.store.factory import StoreSettings
from clipsearch.windows import WindowPlan, best_moment, grow_moment, video_score, window_scores
from webapp import create_app
from webapp.settings import Settings

A = "a ball bouncing"
B = "a box spinning"
QUERY = f"{A} then {B}"


@dataclass(frozen=True)
class Video:
    """One indexed video: which windows show a step (step, cosine), the rest noise."""

    path: str
    cls: str
    duration_s: float
    shows: dict[int, tuple[str, float]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return clip_id(self.path)

    @property
    def windows(self) -> list[tuple[float, float]]:
        return WindowPlan().windows(self.duration_s)


# 10-s videos have 9 windows of 2 s every 1 s: window i is [i, i + 2]
RIGHT = Video("right.avi", "Right", 10.0, {2: ("A", 1.0), 6: ("B", 1.0)})
WRONG = Video("wrong.avi", "Wrong", 10.0, {2: ("B", 1.0), 6: ("A", 1.0)})
# A throughout 2-7 s, B at 6-8 s: A's moment must stop before B's window
GROW = Video("grow.avi", "Right", 10.0, {2: ("A", 1.0), 3: ("A", 1.0), 4: ("A", 1.0),
                                         5: ("A", 1.0), 6: ("B", 0.95)})  # fmt: skip
WEAK = Video("weak.avi", "Other", 10.0, {1: ("A", 0.8), 7: ("B", 0.8)})
ONLY_A = Video("only_a.avi", "Other", 10.0, {2: ("A", 1.0)})
ONLY_B = Video("only_b.avi", "Other", 10.0, {6: ("B", 0.9)})
# 3 s: windows [0, 2] and [1, 3] overlap, so the order falls back to start after start
SHORT = Video("short.avi", "Other", 3.0, {0: ("A", 0.6), 1: ("B", 0.6)})
# one window: no order to tell, never a sequence match
SINGLE = Video("single.avi", "Other", 2.0, {0: ("A", 1.0)})
NOISE = Video("noise.avi", "Other", 5.0)
VIDEOS = [RIGHT, WRONG, GROW, WEAK, ONLY_A, ONLY_B, SHORT, SINGLE, NOISE]
SEQUENCE_IDS = {v.id for v in VIDEOS} - {SINGLE.id}


def unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v / np.linalg.norm(v), dtype=np.float32)


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> ClipEncoder:
    return load_model(tiny_model_dir, towers="both")


@pytest.fixture(scope="module")
def steps(encoder: ClipEncoder) -> dict[str, np.ndarray]:
    qa, qb = encoder.encode_text([A, B])
    assert float(qa @ qb) < 0.99  # two different directions
    return {"A": np.asarray(qa, dtype=np.float32), "B": np.asarray(qb, dtype=np.float32)}


def outside(steps: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A unit vector orthogonal to both step vectors."""
    basis, _ = np.linalg.qr(np.stack([steps["A"], steps["B"]]).T)
    v = rng.normal(size=basis.shape[0])
    return unit(v - basis @ (basis.T @ v))


def windows_of(video: Video, steps: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    rows = []
    for i in range(len(video.windows)):
        noise = outside(steps, rng)
        if i in video.shows:
            step, x = video.shows[i]
            rows.append(unit(x * steps[step] + np.sqrt(max(0.0, 1 - x * x)) * noise))
        else:
            rows.append(noise)
    return np.stack(rows)


@pytest.fixture(scope="module")
def store(steps: dict[str, np.ndarray]) -> Iterator[QdrantClientStore]:
    rng = np.random.default_rng(3)
    points = []
    for v in VIDEOS:
        windows = windows_of(v, steps, rng)
        payload = {
            "path": v.path,
            "source": f"/videos/{v.path}",
            "class": v.cls,
            "duration_s": v.duration_s,
            "segment_times": [[s, e] for s, e in v.windows],
            "model": "tiny-random",
        }
        points.append(ClipPoint(v.id, unit(windows.mean(0)), windows, payload))
    memory = QdrantClientStore.in_memory()
    memory.ensure_collection(steps["A"].shape[0])
    memory.upsert(points)
    yield memory
    memory.close()


@pytest.fixture(scope="module")
def service(encoder: ClipEncoder, store: QdrantClientStore) -> SearchService:
    return SearchService(encoder, store, SearchLimits(max_k=20))


def brute_force(
    windows: np.ndarray, times: list[tuple[float, float]], qa: np.ndarray, qb: np.ndarray
) -> tuple[float, float, float] | None:
    """(in_order, reversed, score) over every pair of windows, or None without a pair."""
    sa = (windows @ qa).astype(np.float64)
    sb = (windows @ qb).astype(np.float64)
    n = len(windows)
    pairs = [(i, j) for i in range(n) for j in range(n) if times[j][0] >= times[i][1] - 1e-6]
    if not pairs:
        pairs = [(i, j) for i in range(n) for j in range(n) if times[j][0] > times[i][0]]
    if not pairs:
        return None
    forward = max((sa[i] + sb[j]) / 2 for i, j in pairs)
    backward = max((sb[i] + sa[j]) / 2 for i, j in pairs)
    return forward, backward, forward - max(0.0, backward - forward)


# --------------------------------------------------------------------------- splitting


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a ball bouncing then a box spinning", [A, B]),
        ("a ball bouncing, then a box spinning", [A, B]),
        ("a ball bouncing and then a box spinning", [A, B]),
        ("a ball bouncing, and then, a box spinning", [A, B]),
        ("A ball bouncing THEN a box spinning", ["A ball bouncing", B]),
        ("ball then box Then triangle", ["ball", "box", "triangle"]),
        ("a ball bouncing", [A]),
        ("the then-mayor waving", ["the then-mayor waving"]),
        ("a lighthouse thence a boat", ["a lighthouse thence a boat"]),
        ("a rock band then a crowd", ["a rock band", "a crowd"]),
    ],
)
def test_split_steps(text: str, expected: list[str]) -> None:
    assert split_steps(text) == expected


@pytest.mark.parametrize("text", ["then a ball", "a ball then", "and then a box", "a then then b"])
def test_an_empty_step_is_an_error(text: str, service: SearchService) -> None:
    with pytest.raises(InvalidInput) as info:
        split_steps(text)
    assert info.value.code == "empty_step" and "empty step" in info.value.message
    with pytest.raises(InvalidInput) as info:
        service.search(text)
    assert info.value.code == "empty_step" and info.value.status == 400


@pytest.mark.parametrize(
    ("query", "then", "code"),
    [
        (A, [""], "empty_step"),
        (A, ["   "], "empty_step"),
        (A, [5], "invalid_query"),
        (A, ["x"] * MAX_STEPS, "too_many_steps"),
        (A, ["x" * 501], "query_too_long"),
    ],
)
def test_bad_then_steps(service: SearchService, query: str, then: list[Any], code: str) -> None:
    with pytest.raises(InvalidInput) as info:
        service.search(query, then=then)
    assert info.value.code == code


# --------------------------------------------------------------------------- scoring


def test_grow_moment_over_the_whole_video_is_best_moment() -> None:
    rng = np.random.default_rng(0)
    windows = WindowPlan().windows(20.0)
    for _ in range(20):
        scores = rng.normal(size=len(windows))
        best = int(np.argmax(scores))
        moment, lo, hi = grow_moment(scores, windows, best)
        assert moment == best_moment(scores, windows)
        assert lo <= best <= hi


def test_a_chain_needs_windows_later_in_time() -> None:
    two = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert match_sequence(two, [(0.0, 0.0), (0.0, 0.0)]) is None  # stored without times
    assert match_sequence(two[:, :1], [(0.0, 2.0)]) is None  # one window
    apart = match_sequence(two, [(0.0, 1.0), (1.0, 2.0)])
    assert apart is not None and apart.apart and apart.windows == (0, 1)
    overlapping = match_sequence(two, [(0.0, 2.0), (1.0, 3.0)])
    assert overlapping is not None and not overlapping.apart


def test_sequence_scores_are_exact_and_rank_the_right_order_first(
    service: SearchService, store: QdrantClientStore, steps: dict[str, np.ndarray]
) -> None:
    response = service.search(QUERY, 20, min_score=None)
    assert response.steps == (A, B) and response.query == QUERY and response.kind == "text"
    ids = [r.id for r in response.results]
    assert set(ids) == SEQUENCE_IDS  # the one-window video cannot hold an order
    stored = store.retrieve(ids, with_vectors=True)
    expected = {}
    for r in response.results:
        point = stored[r.id]
        found = brute_force(point.windows, r.window_times, steps["A"], steps["B"])
        assert found is not None
        in_order, reverse, score = found
        assert r.sequence is not None
        assert r.sequence.in_order == pytest.approx(in_order, abs=1e-5)
        assert r.sequence.reversed == pytest.approx(reverse, abs=1e-5)
        assert r.score == pytest.approx(score, abs=1e-5) == r.sequence.score
        expected[r.id] = score
    scores = [r.score for r in response.results]
    assert scores == sorted(scores, reverse=True)
    # (the wrong order's score, 2 cos(qa, qb) - 1, depends on the untrained model)
    assert ids[:3] == [RIGHT.id, GROW.id, WEAK.id]
    assert ids.index(RIGHT.id) < ids.index(WRONG.id)
    assert expected[WRONG.id] < expected[WEAK.id]
    assert expected[RIGHT.id] == pytest.approx(1.0, abs=1e-5)


def test_the_wrong_order_is_penalised(
    encoder: ClipEncoder, store: QdrantClientStore, service: SearchService
) -> None:
    wrong = next(r for r in service.search(QUERY, 20, min_score=None).results if r.id == WRONG.id)
    match = wrong.sequence
    assert match is not None and match.reversed > match.in_order
    assert match.score == pytest.approx(match.in_order - (match.reversed - match.in_order))
    # the reversed query finds it first, and the right-order video is penalised instead
    flipped = service.search(f"{B} then {A}", 20, min_score=None).results
    assert flipped[0].id == WRONG.id
    right = next(r for r in flipped if r.id == RIGHT.id)
    assert right.sequence is not None and right.score < right.sequence.in_order
    # without the penalty, the score is the in-order mean
    lenient = SearchService(encoder, store, SearchLimits(max_k=20, order_penalty=0.0))
    plain = next(r for r in lenient.search(QUERY, 20, min_score=None).results if r.id == WRONG.id)
    assert plain.sequence is not None
    assert plain.score == pytest.approx(plain.sequence.in_order)


def test_both_moments_come_back_in_order(service: SearchService) -> None:
    results = {r.id: r for r in service.search(QUERY, 20, min_score=None).results}
    right = results[RIGHT.id]
    assert right.steps == (A, B)
    assert right.sequence is not None and right.sequence.windows == (2, 6)
    first, second = right.moments
    assert right.moment == first
    assert (first.index, first.start_s, first.end_s) == (2, 2.0, 4.0)
    assert (second.index, second.start_s, second.end_s) == (6, 6.0, 8.0)
    assert first.score == pytest.approx(1.0, abs=1e-5)
    assert second.score == pytest.approx(1.0, abs=1e-5)
    # the strip scores each window by its best step
    assert np.argsort(right.window_scores)[-2:].tolist() in ([2, 6], [6, 2])
    # A shows at 2-7 s but B's window starts at 6 s: A's moment grows only up to it
    grow = results[GROW.id]
    a, b = grow.moments
    assert (a.index, a.start_s, a.end_s) == (2, 2.0, 6.0)
    assert (b.index, b.start_s) == (6, 6.0)
    assert a.end_s <= b.start_s
    for r in results.values():
        assert len(r.moments) == 2 and r.moments[0].start_s < r.moments[1].start_s
        assert r.sequence is not None
        assert r.sequence.apart == (r.id != SHORT.id)
        if r.sequence.apart:
            assert r.moments[0].end_s <= r.moments[1].start_s
        for m in r.moments:
            assert 0.0 <= m.start_s < m.end_s <= r.payload["duration_s"]


@pytest.mark.parametrize(
    ("query", "then"),
    [
        (A, [B]),
        (A, B),
        (f"{A}, then {B}", ()),
        (f"{A} and then {B}", ()),
        (f"{A} THEN {B}", ()),
        (f"  {A}   then   {B} ", ()),
    ],
)
def test_every_way_of_asking_is_the_same_query(
    service: SearchService, query: str, then: Any
) -> None:
    expected = service.search(QUERY, 20, min_score=None)
    got = service.search(query, 20, min_score=None, then=then)
    assert got.steps == (A, B) and got.query == QUERY
    assert [(r.id, r.score, r.moments) for r in got.results] == [
        (r.id, r.score, r.moments) for r in expected.results
    ]


def test_three_steps(service: SearchService) -> None:
    response = service.search(f"{A} then {B}", 20, min_score=None, then=[A])
    assert response.steps == (A, B, A)
    for r in response.results:
        assert len(r.moments) == 3
        assert r.moments[0].start_s < r.moments[1].start_s < r.moments[2].start_s


def test_a_single_step_query_is_unchanged(service: SearchService, store: QdrantClientStore) -> None:
    response = service.search(A, 20, min_score=None)
    assert response.steps == () and response.query == A
    q = service.cache.get(A, service.encode_query)
    direct = store.search_windows(q, 20, prefetch=100)
    # several videos hold A itself: compare scores by id (ties may come in any order)
    assert {r.id: r.score for r in response.results} == {
        h.id: pytest.approx(video_score(window_scores(h.windows, q)), abs=1e-6) for h in direct
    }
    assert len(response.results) == len(VIDEOS) and SINGLE.id in {r.id for r in response.results}
    scores = [r.score for r in response.results]
    assert scores == sorted(scores, reverse=True)
    for r in response.results:
        assert r.moments == () and r.steps == () and r.sequence is None
        expected = best_moment(r.window_scores, r.window_times)
        assert (r.moment.index, r.moment.start_s, r.moment.end_s) == (
            expected.index,
            expected.start_s,
            expected.end_s,
        )
        # the moment's score is its best window's; the video's, its best three windows'
        assert r.moment.score == pytest.approx(expected.score, abs=1e-6)
        assert r.score <= r.moment.score + 1e-6


def test_paging(service: SearchService) -> None:
    full = service.search(QUERY, 20, min_score=None)
    assert full.next_offset is None and len(full.results) == len(SEQUENCE_IDS)
    ids: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = service.search(QUERY, 3, offset=offset, min_score=None)
        assert page.offset == offset and page.steps == (A, B)
        ids += [r.id for r in page.results]
        offset = page.next_offset
    assert ids == [r.id for r in full.results]
    beyond = service.search(QUERY, 3, offset=len(SEQUENCE_IDS), min_score=None)
    assert beyond.results == [] and beyond.next_offset is None and not beyond.no_good_match
    with pytest.raises(InvalidInput) as info:
        service.search(QUERY, 0)
    assert info.value.code == "invalid_k"


def test_min_score_applies_to_the_sequence_score(
    encoder: ClipEncoder, store: QdrantClientStore, service: SearchService
) -> None:
    scores = {r.id: r.score for r in service.search(QUERY, 20, min_score=None).results}
    cut = (scores[WEAK.id] + scores[WRONG.id]) / 2
    kept = service.search(QUERY, 20, min_score=cut)
    assert [r.id for r in kept.results] == [RIGHT.id, GROW.id, WEAK.id]
    assert kept.min_score == cut and not kept.no_good_match and kept.next_offset is None
    assert service.search(QUERY, 2, min_score=cut).next_offset == 2
    # nothing passes: no good match, with the best (hidden) score
    none = service.search(QUERY, 20, min_score=0.9, filter={"class": "Wrong"})
    assert none.results == [] and none.no_good_match
    assert none.best_score == pytest.approx(scores[WRONG.id])
    # the service's calibrated threshold is the default
    strict = SearchService(encoder, store, SearchLimits(max_k=20), min_score=cut)
    assert [r.id for r in strict.search(QUERY, 20).results] == [RIGHT.id, GROW.id, WEAK.id]


def test_filters(service: SearchService) -> None:
    response = service.search(QUERY, 20, min_score=None, filter={"class": ["Wrong", "Other"]})
    assert response.filters == {"class": ["Wrong", "Other"]}
    assert {r.payload["class"] for r in response.results} == {"Wrong", "Other"}
    assert response.results[0].id == WEAK.id


def test_few_candidates_per_step_still_rank_exactly(
    encoder: ClipEncoder, store: QdrantClientStore
) -> None:
    """Candidates are each step's top videos (at least offset + k + 1 of them)."""
    narrow = SearchService(encoder, store, SearchLimits(sequence_candidates=1, prefetch=1))
    top = narrow.search(QUERY, 1, min_score=None).results
    assert [r.id for r in top] == [RIGHT.id]


# --------------------------------------------------------------------------- web app


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, encoder: ClipEncoder, store: QdrantClientStore
) -> FlaskClient:
    settings = Settings(
        model="tiny-random",
        store=StoreSettings(url=":memory:"),
        media_dir=str(tmp_path_factory.mktemp("media")),
        default_k=5,
        max_k=20,
    )
    app: Flask = create_app(settings, search=SearchService(encoder, store, SearchLimits(max_k=20)))
    app.config["TESTING"] = True
    return app.test_client()


def api(client: FlaskClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/search", query_string=params)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_api_sequence_results_carry_both_moments(client: FlaskClient) -> None:
    body = api(client, q=QUERY, k=3, min_score="off")
    assert body["steps"] == [A, B] and body["query"] == QUERY
    assert body["next_offset"] == 3
    top = body["results"][0]
    assert top["id"] == RIGHT.id
    assert top["moments"] == [
        {"start_s": 2.0, "end_s": 4.0, "score": pytest.approx(1.0, abs=1e-5), "segment": 2,
         "step": A},
        {"start_s": 6.0, "end_s": 8.0, "score": pytest.approx(1.0, abs=1e-5), "segment": 6,
         "step": B},
    ]  # fmt: skip
    first = {k: v for k, v in top["moments"][0].items() if k != "step"}
    assert top["moment"] == first
    assert (top["start_s"], top["end_s"]) == (2.0, 4.0)
    # plays from the first moment's start to the last one's end
    assert top["play_url"] == f"/media/video/{RIGHT.id}.mp4#t=2.00,8.00"
    assert top["score"] == pytest.approx(1.0, abs=1e-5)


def test_api_then_parameter_and_json_body(client: FlaskClient) -> None:
    text = api(client, q=QUERY, k=20, min_score="off")
    param = api(client, q=A, then=B, k=20, min_score="off")
    assert param == {**text, "took_ms": param["took_ms"]}
    posted = client.post("/api/search", json={"q": A, "then": [B], "k": 20, "min_score": None})
    assert posted.status_code == 200
    assert posted.get_json()["results"] == text["results"]
    one = client.post("/api/search", json={"q": A, "then": B, "k": 20, "min_score": None})
    assert one.get_json()["results"] == text["results"]
    paged = api(client, q=QUERY, k=2, offset=2, min_score="off")
    assert [r["id"] for r in paged["results"]] == [r["id"] for r in text["results"][2:4]]
    filtered = api(client, q=QUERY, k=20, min_score="off", **{"class": "Wrong"})
    assert [r["id"] for r in filtered["results"]] == [WRONG.id]


def test_api_single_step_shape_is_unchanged(client: FlaskClient) -> None:
    body = api(client, q=A, k=20, min_score="off")
    assert "steps" not in body
    assert all("moments" not in r for r in body["results"])
    assert SINGLE.id in {r["id"] for r in body["results"]}


@pytest.mark.parametrize(
    ("method", "params", "code"),
    [
        ("get", {"q": "then a ball"}, "empty_step"),
        ("get", {"q": "a ball then"}, "empty_step"),
        ("get", {"q": A, "then": ""}, "empty_step"),
        ("post", {"q": "a ball, then"}, "empty_step"),
        ("post", {"q": A, "then": [""]}, "empty_step"),
        ("post", {"q": A, "then": 3}, "invalid_query"),
        ("post", {"q": A, "then": [B, 3]}, "invalid_query"),
        ("post", {"q": A, "then": [B] * MAX_STEPS}, "too_many_steps"),
    ],
)
def test_api_bad_steps_are_400_json(
    client: FlaskClient, method: str, params: dict[str, Any], code: str
) -> None:
    if method == "get":
        response = client.get("/api/search", query_string=params)
    else:
        response = client.post("/api/search", json=params)
    assert response.status_code == 400
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"]


def test_search_page_shows_both_moments(client: FlaskClient) -> None:
    response = client.get("/", query_string={"q": QUERY, "min_score": "off"})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    cards = text.split('<li class="card result"')[1:]
    assert len(cards) == 5 and f'data-id="{RIGHT.id}"' in cards[0]
    first = cards[0]
    assert 'data-start="2.0" data-end="4.0"' in first
    steps = re.findall(
        r'<button type="button" class="step moment" data-start="([\d.]+)" data-end="([\d.]+)"'
        r'\s+title="[^"]*">(.*?)</button>\s*<span class="step-text">(.*?)</span>',
        first,
    )
    assert [(s, e, html.unescape(label), step) for s, e, label, step in steps] == [
        ("2.0", "4.0", "1. 2.0–4.0 s", A),
        ("6.0", "8.0", "2. 6.0–8.0 s", B),
    ]
    assert "→" in first
    assert first.count("seg win") == 2  # both windows marked in the strip
    assert "#t=2.00,8.00" in first
    assert "Clips for “a ball bouncing then a box spinning”" in html.unescape(text)


def test_search_page_single_step_and_errors(client: FlaskClient) -> None:
    single = client.get("/", query_string={"q": A, "min_score": "off"}).get_data(as_text=True)
    assert 'class="sequence' not in single and "moment 2.0–4.0 s" in html.unescape(single)
    bad = client.get("/", query_string={"q": "then a ball"})
    assert bad.status_code == 400
    page = html.unescape(bad.get_data(as_text=True))
    assert "Can't search that" in page and "empty step" in page


def test_words_keep_what_shows_and_drop_what_does_not() -> None:
    from clipsearch.sequence import words

    assert words("  ball\tbouncing \x00 fast ") == "ball bouncing fast"
    assert words("foot\u00adball") == "foot\u00adball"  # a soft hyphen stays in its word
    assert words("\U0001f469\u200d\U0001f4bb coding") == "\U0001f469\u200d\U0001f4bb coding"
    assert words("\u200b\u200b") == "" and words("\x00\u200b\ufeff ") == ""
