"""Collapsing near-duplicate results (``collapse=group|near|none``): the fold rules, the
data-derived ``near`` threshold, paging over kept results, sequence queries, the API, the
search page and the CLI.

The store is real (in-memory Qdrant; a Qdrant Edge directory for the CLI). Each video's
best window has an exact cosine with the tiny untrained model's embedding ``qa`` of the
query (``x * qa + sqrt(1 - x²) * u``, ``u`` orthogonal to it), so the ranking is known.
Pooled vectors are built per *scene*: the clips of one scene are copies (cosine 0.99 with
the scene's direction), distinct scenes are random directions, and two scenes of one class
are made alike (cosine 0.6) without being copies, the hardest "distinct" pair.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from clipsearch.cli import main
from clipsearch.collapse import (
    CANDIDATE_FACTOR,
    TOLERANCE,
    Kept,
    collapse_page,
    fold_groups,
    fold_near,
    group_key,
    near_threshold,
    validate_collapse,
)
from clipsearch.errors import InvalidInput
from clipsearch.model import ClipEncoder, load_model
from clipsearch.responses import MAX_COLLAPSED_IDS
from clipsearch.search import SearchLimits, SearchResponse, SearchService
from clipsearch.store.base import ClipPoint, clip_id
from clipsearch.store.client import QdrantClientStore
from clipsearch.store.edge import QdrantEdgeStore
from clipsearch.store.factory import StoreSettings
from webapp import create_app
from webapp.settings import Settings

A = "a ball bouncing"
B = "a box spinning"
WINDOWS = [[0.0, 2.0], [1.0, 3.0], [2.0, 4.0]]


@dataclass(frozen=True)
class Video:
    """One indexed clip: its best cosine with the query and the scene it shows."""

    path: str
    cls: str | None
    group: int | None
    score: float
    scene: str

    @property
    def id(self) -> str:
        return clip_id(self.path)


def ucf(cls: str, group: int, clip: int, score: float, scene: str) -> Video:
    return Video(f"{cls}/v_{cls}_g{group:02d}_c{clip:02d}.avi", cls, group, score, scene)


VIDEOS = [
    ucf("BallBouncing", 1, 1, 0.95, "ball-1"),
    ucf("BallBouncing", 1, 2, 0.93, "ball-1"),
    ucf("BallBouncing", 2, 1, 0.90, "ball-2"),
    # group 1 of another class: never folds with BallBouncing group 1
    ucf("BoxSpinning", 1, 1, 0.88, "box-1"),
    Video("holiday.mp4", None, None, 0.87, "holiday"),
    Video("holiday-reencoded.mp4", None, None, 0.86, "holiday"),
    ucf("TriangleRising", 3, 1, 0.85, "triangle-3"),
    Video("garden.mp4", None, None, 0.83, "garden"),
    ucf("BallBouncing", 1, 3, 0.80, "ball-1"),
    ucf("BallBouncing", 2, 2, 0.70, "ball-2"),
    # like triangle-3 (cosine 0.6) but another group: the hardest distinct pair
    ucf("TriangleRising", 4, 1, 0.60, "triangle-4"),
    ucf("BallBouncing", 1, 4, 0.55, "ball-1"),
    ucf("BoxSpinning", 2, 1, 0.50, "box-2"),
    Video("beach.mp4", None, None, 0.45, "beach"),
    # a long group: more copies than collapsed_ids names
    *(ucf("Crowd", 7, c, round(0.40 - 0.01 * c, 2), "crowd") for c in range(1, 24)),
]
RANKING = [v.id for v in sorted(VIDEOS, key=lambda v: -v.score)]
BY_ID = {v.id: v for v in VIDEOS}
N = len(VIDEOS)


def unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v / np.linalg.norm(v), dtype=np.float32)


def at_cosine(x: float, q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A unit vector whose cosine with the unit vector ``q`` is ``x``."""
    u = rng.normal(size=q.shape)
    u = unit(u - float(u @ q) * q)
    return unit(x * q + np.sqrt(max(0.0, 1 - x * x)) * u)


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> ClipEncoder:
    return load_model(tiny_model_dir, towers="text")


@pytest.fixture(scope="module")
def qa(encoder: ClipEncoder) -> np.ndarray:
    return unit(encoder.encode_text([A])[0])


def build_points(qa: np.ndarray) -> list[ClipPoint]:
    rng = np.random.default_rng(11)
    scenes = {v.scene: unit(rng.normal(size=qa.shape)) for v in VIDEOS}
    scenes["triangle-4"] = at_cosine(0.6, scenes["triangle-3"], rng)
    points = []
    for v in VIDEOS:
        # the first two windows score ``score``, and so does the video (windows.video_score)
        windows = np.stack([at_cosine(x, qa, rng) for x in (v.score, v.score, v.score - 0.3)])
        payload: dict[str, Any] = {
            "path": v.path,
            "class": v.cls,
            "label": v.cls.lower() if v.cls else None,
            "group": v.group,
            "clip": 1 if v.group else None,
            "duration_s": 4.0,
            "width": 64,
            "height": 48,
            "segment_times": WINDOWS,
            "model": "tiny-random",
        }
        pooled = at_cosine(0.99, scenes[v.scene], rng)
        points.append(ClipPoint(v.id, pooled, windows, payload))
    return points


@pytest.fixture(scope="module")
def points(qa: np.ndarray) -> list[ClipPoint]:
    return build_points(qa)


@pytest.fixture(scope="module")
def store(points: list[ClipPoint], qa: np.ndarray) -> Iterator[QdrantClientStore]:
    memory = QdrantClientStore.in_memory()
    memory.ensure_collection(qa.shape[0])
    memory.upsert(points)
    yield memory
    memory.close()


@pytest.fixture(scope="module")
def service(encoder: ClipEncoder, store: QdrantClientStore) -> SearchService:
    return SearchService(encoder, store, SearchLimits(max_k=50))


def expected_groups(ranking: list[str]) -> list[tuple[str, list[str]]]:
    """(kept id, folded ids) by (class, group), written apart from the module."""
    out: list[tuple[str, list[str]]] = []
    first: dict[tuple[str, int], list[str]] = {}
    for vid in ranking:
        v = BY_ID[vid]
        if v.cls is not None and v.group is not None and (v.cls, v.group) in first:
            first[(v.cls, v.group)].append(vid)
            continue
        folded: list[str] = []
        out.append((vid, folded))
        if v.cls is not None and v.group is not None:
            first[(v.cls, v.group)] = folded
    return out


def expected_scenes(ranking: list[str]) -> list[tuple[str, list[str]]]:
    """(kept id, folded ids) when every copy of a scene folds into its best clip."""
    out: list[tuple[str, list[str]]] = []
    first: dict[str, list[str]] = {}
    for vid in ranking:
        scene = BY_ID[vid].scene
        if scene in first:
            first[scene].append(vid)
            continue
        first[scene] = []
        out.append((vid, first[scene]))
    return out


def pairs(response: SearchResponse) -> list[tuple[str, list[str]]]:
    return [(r.id, list(r.folded)) for r in response.results]


# --------------------------------------------------------------------------- rules


def test_validate_collapse() -> None:
    assert [validate_collapse(v) for v in ("none", "group", "near", " Near ")] == [
        "none",
        "group",
        "near",
        "near",
    ]
    assert validate_collapse(None) == validate_collapse("") == "none"
    assert validate_collapse(None, "group") == "group"
    for bad in ("all", "groups", 1, True, ["group"]):
        with pytest.raises(InvalidInput) as info:
            validate_collapse(bad)
        assert info.value.code == "invalid_collapse" and info.value.status == 400


def test_group_key_needs_class_and_group() -> None:
    assert group_key({"class": "A", "group": 3}) == group_key({"class": "A", "group": "3"})
    assert group_key({"class": "A", "group": 3}) != group_key({"class": "B", "group": 3})
    assert group_key({"class": "A", "group": None}) is None
    assert group_key({"group": 3}) is None and group_key({}) is None


def test_fold_groups_and_fold_near() -> None:
    keys = ["a", None, "b", "a", None, "a", "b"]
    assert fold_groups(keys) == [Kept(0, (3, 5)), Kept(1), Kept(2, (6,)), Kept(4)]
    e = np.eye(3, dtype=np.float32)
    close = unit(e[0] + 0.05 * e[1])  # cosine ~0.999 with e[0]
    vectors = [e[0], e[1], close, None, e[2], e[1]]
    assert fold_near(vectors, 0.9) == [Kept(0, (2,)), Kept(1, (5,)), Kept(3), Kept(4)]
    assert fold_near(vectors, None) == [Kept(i) for i in range(6)]


def test_near_threshold_without_groups_is_the_outlier_fence() -> None:
    rng = np.random.default_rng(5)
    vectors = np.stack([unit(rng.normal(size=48)) for _ in range(30)])
    vectors[1] = at_cosine(0.98, vectors[0], rng)  # a copy
    found = near_threshold(vectors, [None] * 30)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    nearest = sims.max(axis=1)
    q1, q3 = np.percentile(nearest, [25, 75])
    assert found.rule == "outliers" and found.samples == 30
    assert found.value == pytest.approx(q3 + 1.5 * (q3 - q1), abs=1e-6)
    assert sims[0, 1] >= found.value > max(np.delete(nearest, [0, 1]))
    assert fold_near(list(vectors), found.value) == [Kept(0, (1,)), *map(Kept, range(2, 30))]


def test_near_threshold_needs_data() -> None:
    one = np.ones((1, 4), dtype=np.float32)
    assert near_threshold(one, [("A", 1)]).value is None
    three = np.eye(3, 4, dtype=np.float32)
    assert near_threshold(three, [None, None, ("A", 1)]).rule == "none"


def test_collapse_page_fetches_more_until_a_page_is_full() -> None:
    @dataclass(frozen=True)
    class Item:
        id: str
        payload: dict[str, Any]

    ranking = [Item(f"s{i}", {"class": "Same", "group": 1}) for i in range(30)]
    ranking += [Item(f"o{i}", {"class": "Other", "group": i}) for i in range(5)]
    asked: list[int] = []

    def fetch(n: int) -> tuple[list[Item], bool]:
        asked.append(n)
        return ranking[:n], n >= len(ranking)

    page = collapse_page(fetch, "group", offset=0, k=2, max_candidates=1000)
    need = 3
    assert asked == [CANDIDATE_FACTOR * need, 2 * CANDIDATE_FACTOR * need, 48]
    assert [(c.item.id, c.rank) for c in page.results] == [("s0", 0), ("o0", 30)]
    assert page.results[0].folded == tuple(f"s{i}" for i in range(1, 30))
    assert page.has_next and page.candidates == len(ranking)
    asked.clear()
    capped = collapse_page(fetch, "group", offset=0, k=2, max_candidates=10)
    assert asked == [10] and [c.item.id for c in capped.results] == ["s0"]
    assert not capped.has_next


# --------------------------------------------------------------------------- service


def test_none_is_unchanged(service: SearchService) -> None:
    plain = service.search(A, 10)
    none = service.search(A, 10, collapse="none")
    assert [r.id for r in plain.results] == [r.id for r in none.results] == RANKING[:10]
    assert [r.score for r in plain.results] == pytest.approx([r.score for r in none.results])
    assert plain.next_offset == none.next_offset == 10
    assert plain.collapse == none.collapse == "none" and plain.near_threshold is None
    assert all(r.folded == () and r.rank is None for r in none.results)


def test_group_keeps_the_best_of_each_group(service: SearchService) -> None:
    response = service.search(A, 50, collapse="group")
    assert response.collapse == "group" and response.next_offset is None
    expected = expected_groups(RANKING)
    assert pairs(response) == expected
    ball = response.results[0]
    assert ball.payload["path"] == "BallBouncing/v_BallBouncing_g01_c01.avi"
    assert len(ball.folded) == 3  # c02, c03 and c04 of the same group
    # group 1 of BoxSpinning and loose files stand on their own
    kept = {r.payload["path"] for r in response.results}
    assert {"BoxSpinning/v_BoxSpinning_g01_c01.avi", "holiday.mp4"} <= kept
    assert "holiday-reencoded.mp4" in kept
    assert [r.rank for r in response.results] == [RANKING.index(r.id) for r in response.results]
    assert sum(1 + len(r.folded) for r in response.results) == N


def test_the_near_threshold_comes_from_the_store(
    service: SearchService, points: list[ClipPoint]
) -> None:
    found = service.near_threshold()
    assert found.rule == "groups" and found is service.near_threshold()  # cached
    grouped = [p for p in points if p.payload["group"] is not None]
    pooled = np.stack([unit(p.pooled) for p in grouped])
    keys = [(p.payload["class"], p.payload["group"]) for p in grouped]
    sims = pooled @ pooled.T
    other = np.array([[a != b for b in keys] for a in keys])
    nearest = np.where(other, sims, -np.inf).max(axis=1)
    assert found.samples == len(grouped) < 100  # too few for a 1 % tail: above the highest
    assert found.value is not None
    assert found.value == pytest.approx(float(nearest.max()) + TOLERANCE, abs=1e-5)
    assert 0.5 < found.value < 0.7  # the two alike triangle scenes set it


def test_near_folds_copies_and_keeps_distinct_videos(service: SearchService) -> None:
    response = service.search(A, 50, collapse="near")
    assert response.near_threshold == service.near_threshold().value
    assert pairs(response) == expected_scenes(RANKING)
    kept = {r.payload["path"] for r in response.results}
    assert "holiday.mp4" in kept and "holiday-reencoded.mp4" not in kept  # loose copies fold
    # alike but distinct (cosine ~0.6, below the threshold): both kept
    assert {"TriangleRising/v_TriangleRising_g03_c01.avi"} <= kept
    assert {"TriangleRising/v_TriangleRising_g04_c01.avi"} <= kept
    assert {"garden.mp4", "beach.mp4"} <= kept


def test_an_explicit_near_threshold_wins(encoder: ClipEncoder, store: QdrantClientStore) -> None:
    strict = SearchService(encoder, store, SearchLimits(max_k=50, near_threshold=0.999))
    assert strict.near_threshold().rule == "override"
    assert [r.id for r in strict.search(A, 50, collapse="near").results] == RANKING
    loose = SearchService(encoder, store, SearchLimits(max_k=50, near_threshold=0.5))
    kept = {r.payload["path"] for r in loose.search(A, 50, collapse="near").results}
    assert "TriangleRising/v_TriangleRising_g04_c01.avi" not in kept
    for bad in (1.5, float("nan")):
        with pytest.raises(InvalidInput) as info:
            SearchService(encoder, store, SearchLimits(near_threshold=bad))
        assert info.value.code == "invalid_near_threshold"


def test_the_threshold_follows_the_store(encoder: ClipEncoder, qa: np.ndarray) -> None:
    with QdrantClientStore.in_memory() as memory:
        memory.ensure_collection(qa.shape[0])
        points = build_points(qa)
        memory.upsert(points[:-1])
        service = SearchService(encoder, memory)
        first = service.near_threshold()
        assert service.near_threshold() is first
        memory.upsert(points[-1:])
        assert service.near_threshold() is not first


@pytest.mark.parametrize("mode", ["group", "near"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_pages_of_kept_results_are_disjoint_and_consecutive(
    service: SearchService, mode: str, k: int
) -> None:
    full = service.search(A, 50, collapse=mode)
    seen: list[tuple[str, list[str]]] = []
    offset: int | None = 0
    while offset is not None:
        page = service.search(A, k, offset=offset, collapse=mode)
        assert page.offset == offset and 1 <= len(page.results) <= k
        seen += pairs(page)
        offset = page.next_offset
        if offset is not None:
            assert len(page.results) == k and offset == page.offset + k
    assert seen == pairs(full)
    ids = [vid for vid, _ in seen]
    assert len(ids) == len(set(ids))
    beyond = service.search(A, k, offset=len(full.results), collapse=mode)
    assert beyond.results == [] and beyond.next_offset is None


def test_a_threshold_applies_before_collapsing(service: SearchService) -> None:
    response = service.search(A, 50, collapse="group", min_score=0.75)
    passing = [vid for vid in RANKING if BY_ID[vid].score >= 0.75]
    assert pairs(response) == expected_groups(passing)
    nothing = service.search(A, 5, collapse="group", min_score=0.99)
    assert nothing.results == [] and nothing.no_good_match
    assert nothing.best_score == pytest.approx(0.95, abs=1e-4)


@pytest.mark.parametrize("mode", ["group", "near"])
def test_sequence_queries_collapse(service: SearchService, mode: str) -> None:
    query = f"{A} then {B}"
    ranking = [r.id for r in service.search(query, 50, min_score=None).results]
    assert sorted(ranking) == sorted(RANKING)  # every video holds the two steps in order
    collapsed = service.search(query, 50, min_score=None, collapse=mode)
    expected = expected_groups(ranking) if mode == "group" else expected_scenes(ranking)
    assert pairs(collapsed) == expected
    assert collapsed.steps == (A, B) and all(len(r.moments) == 2 for r in collapsed.results)
    paged = service.search(query, 2, offset=2, min_score=None, collapse=mode)
    assert pairs(paged) == expected[2:4] and paged.next_offset == 4


def test_similar_clips_collapse(service: SearchService) -> None:
    top = BY_ID[RANKING[0]]
    similar = service.more_like(top.id, 50, collapse="near")
    ids = {r.id for r in similar.results} | {f for r in similar.results for f in r.folded}
    assert top.id not in ids and len(ids) == N - 1
    # its own copies fold into the best of them
    copies = [r for r in similar.results if BY_ID[r.id].scene == top.scene]
    assert len(copies) == 1 and len(copies[0].folded) == 2


# --------------------------------------------------------------------------- web app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, service: SearchService) -> Flask:
    settings = Settings(
        model="tiny-random",
        store=StoreSettings(url=":memory:"),
        media_dir=str(tmp_path_factory.mktemp("media")),
        default_k=5,
        max_k=50,
    )
    app = create_app(settings, search=service)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def api(client: FlaskClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/search", query_string={"q": A, **params})
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_api_group_collapse(client: FlaskClient) -> None:
    body = api(client, collapse="group", k=4)
    assert body["collapse"] == "group" and "near_threshold" not in body
    expected = expected_groups(RANKING)
    assert [(r["id"], r["collapsed_ids"]) for r in body["results"]] == expected[:4]
    assert [r["collapsed"] for r in body["results"]] == [len(f) for _, f in expected[:4]]
    assert body["next_offset"] == 4
    second = api(client, collapse="group", k=4, offset=4)
    assert [r["id"] for r in second["results"]] == [vid for vid, _ in expected[4:8]]
    posted = client.post("/api/search", json={"q": A, "k": 4, "collapse": "group"})
    assert posted.get_json()["results"] == body["results"]


def test_api_collapsed_ids_are_capped(client: FlaskClient) -> None:
    body = api(client, collapse="group", k=50)
    crowd = next(r for r in body["results"] if r["class"] == "Crowd")
    assert crowd["collapsed"] == 22 and len(crowd["collapsed_ids"]) == MAX_COLLAPSED_IDS == 20
    expected = dict(expected_groups(RANKING))[crowd["id"]]
    assert crowd["collapsed_ids"] == expected[:20]


def test_api_near_collapse_reports_its_threshold(
    client: FlaskClient, service: SearchService
) -> None:
    body = api(client, collapse="near", k=50)
    threshold = service.near_threshold().value
    assert threshold is not None and body["near_threshold"] == pytest.approx(threshold, abs=1e-6)
    expected = [(vid, folded[:20]) for vid, folded in expected_scenes(RANKING)]
    assert [(r["id"], r["collapsed_ids"]) for r in body["results"]] == expected


def test_api_none_is_unchanged(client: FlaskClient) -> None:
    plain = api(client, k=6)
    none = api(client, k=6, collapse="none")
    assert none == {**plain, "took_ms": none["took_ms"]}
    assert "collapse" not in plain and all("collapsed" not in r for r in plain["results"])


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("get", {"collapse": "all"}),
        ("get", {"collapse": "duplicates"}),
        ("post", {"collapse": 3}),
        ("post", {"collapse": ["group"]}),
    ],
)
def test_api_bad_collapse_is_400_json(
    client: FlaskClient, method: str, params: dict[str, Any]
) -> None:
    if method == "get":
        response = client.get("/api/search", query_string={"q": A, **params})
    else:
        response = client.post("/api/search", json={"q": A, **params})
    assert response.status_code == 400
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == "invalid_collapse" and "collapse" in body["error"]["message"]


def card_ids(text: str) -> list[str]:
    return re.findall(r'<li class="card result" data-id="([0-9a-f-]+)"', text)


def more_links(text: str) -> list[tuple[dict[str, list[str]], str]]:
    """(query of the link, its text) of every "N more like this" link."""
    found = re.findall(r'<a class="collapsed" href="([^"]+)">([^<]+)</a>', text)
    out = []
    for href, label in found:
        url = urlsplit(html.unescape(href))
        assert url.path == "/"
        out.append((parse_qs(url.query), label))
    return out


def test_the_page_collapses_by_group_and_links_to_the_rest(client: FlaskClient) -> None:
    response = client.get("/", query_string={"q": A})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    expected = expected_groups(RANKING)[:5]
    assert card_ids(text) == [vid for vid, _ in expected]
    links = more_links(text)
    assert [label for _, label in links] == [f"{len(f)} more like this" for _, f in expected if f]
    first_query, _ = links[0]
    assert first_query == {"q": [A], "collapse": ["none"], "offset": ["0"]}
    # the second group's link starts the full ranking at its best clip
    second_query, _ = links[1]
    ball2 = next(vid for vid, f in expected[1:] if f)
    assert second_query["offset"] == [str(RANKING.index(ball2))]
    following = client.get("/", query_string={k: v[0] for k, v in second_query.items()})
    shown = card_ids(following.get_data(as_text=True))
    assert shown[0] == ball2 and "more like this</a>" not in following.get_data(as_text=True)
    assert re.search(r'<option value="group" selected>', text)


def test_the_page_follows_the_collapse_parameter(client: FlaskClient) -> None:
    none = client.get("/", query_string={"q": A, "collapse": "none", "k": 8})
    text = none.get_data(as_text=True)
    assert card_ids(text) == RANKING[:8] and more_links(text) == []
    assert re.search(r'<option value="none" selected>', text)
    near = client.get("/", query_string={"q": A, "collapse": "near", "k": 8})
    assert card_ids(near.get_data(as_text=True)) == [v for v, _ in expected_scenes(RANKING)[:8]]
    # the pager keeps the choice
    nxt = re.search(r'<a class="next" rel="next" href="([^"]+)"', near.get_data(as_text=True))
    assert nxt is not None and "collapse=near" in html.unescape(nxt.group(1))
    bad = client.get("/", query_string={"q": A, "collapse": "sometimes"})
    assert bad.status_code == 400 and "collapse must be one of" in bad.get_data(as_text=True)


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def edge_store(
    tmp_path_factory: pytest.TempPathFactory, points: list[ClipPoint], qa: np.ndarray
) -> Path:
    path = tmp_path_factory.mktemp("collapse") / "store"
    store = QdrantEdgeStore(path)
    store.ensure_collection(qa.shape[0])
    store.upsert(points)
    store.close()
    return path


def test_cli_collapse(
    tiny_model_dir: Path, edge_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--model", str(tiny_model_dir), "--store", str(edge_store), "--min-score", "-1"]
    assert main(["search", A, *args, "-k", "4", "--collapse", "group", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = expected_groups(RANKING)[:4]
    assert out["collapse"] == "group"
    assert [(r["id"], r["collapsed_ids"]) for r in out["results"]] == expected
    assert [r["collapsed"] for r in out["results"]] == [len(f) for _, f in expected]

    assert main(["search", A, *args, "-k", "3", "--collapse", "near"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "(+3 more like this)" in lines[1] and lines[-1].startswith("near-duplicates: cosine >=")

    assert main(["search", A, *args, "-k", "3", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in plain["results"]] == RANKING[:3] and "collapse" not in plain


def test_cli_bad_collapse_is_a_one_line_error(
    tiny_model_dir: Path, edge_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["search", A, "--model", str(tiny_model_dir), "--store", str(edge_store)]
    assert main([*argv, "--collapse", "sometimes"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("clipsearch: error: collapse must be one of none, group, near")
