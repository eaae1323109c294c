"""Search features end to end through the web app: moments, windows, filters, paging,
the score threshold, more-like-this, image queries, window thumbnails and the pages.

The store's vectors are built around the tiny untrained model's own embedding ``q`` of
one query, so every score is known: a window ``a*q + sqrt(1-a²)*u`` (``u`` a unit
vector orthogonal to ``q``) has cosine exactly ``a`` with the query.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from flask.testing import FlaskClient
from PIL import Image

from clipsearch.model import ClipEncoder
from clipsearch.responses import NO_GOOD_MATCH
from clipsearch.store.base import ClipPoint, clip_id
from clipsearch.store.client import QdrantClientStore
from webapp.settings import Settings

from .conftest import make_app, make_settings, unit

QUERY = "a red triangle rising"
MAX_K = 20
UCF_NAME = re.compile(r"_g(?P<group>\d+)_c(?P<clip>\d+)\.")
DEFAULT_K = 5
CLASSES = ("BallBouncing", "BoxSpinning", "TriangleRising")
VIDEO_S = 5.0


@dataclass(frozen=True)
class Spec:
    """One indexed clip: its cosine with the query per window, and its payload."""

    path: str
    cls: str
    scores: tuple[float, ...]
    window_times: list[list[float]]
    duration_s: float
    split_1: str | None = "test"
    model: str = "tiny-random"

    @property
    def id(self) -> str:
        return clip_id(self.path)

    @property
    def score(self) -> float:
        """The video's score as the search ranks it (written apart from the library): the
        best mean of three neighbouring windows, an end window counted again for the
        neighbour it lacks."""
        s = self.scores
        padded = (s[0], *s, s[-1])
        return max(sum(padded[i : i + 3]) / 3 for i in range(len(s)))


FOUR_WINDOWS = [[0.0, 1.25], [1.25, 2.5], [2.5, 3.75], [3.75, 5.0]]
# window 2 (2.5-3.75 s) is the query itself; the video scores 0.833 (windows 1-3)
MOMENT = Spec("Moments/m_0001.avi", "TriangleRising", (0.2, 0.8, 1.0, 0.7), FOUR_WINDOWS, 5.0)
# windows 1 and 2 score alike, far above the others: the moment is both, 1.25-3.75 s; the
# video scores 0.805
TWIN = Spec("Moments/m_0002.avi", "BallBouncing", (0.5, 0.96, 0.955, 0.5), FOUR_WINDOWS, 5.0)
# ten clips whose best window scores 0.90, 0.85, ... 0.45, the window i % 3 of clip i,
# and who score 0.80, 0.75, ... 0.35
RANKED = [
    Spec(
        f"{CLASSES[i % 3]}/v_{CLASSES[i % 3]}_g{i + 1:02d}_c01.avi",
        CLASSES[i % 3],
        tuple(
            round(0.9 - 0.05 * i - (0 if j == i % 3 else 0.15 if i % 3 == 1 else 0.3), 3)
            for j in range(3)
        ),
        [[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]],
        2.0 + i,
        split_1="test" if i % 2 == 0 else "train",
        model="other-model" if i in (3, 7) else "tiny-random",
    )
    for i in range(10)
]
SPECS = [MOMENT, TWIN, *RANKED]
# its two (overlapping) windows are the test image's embedding, made orthogonal to q
PHOTO_PATH = "Photos/p_0001.avi"
PHOTO_WINDOWS = [[0.0, 3.0], [2.0, 5.0]]
PHOTO = clip_id(PHOTO_PATH)
ALL_IDS = [s.id for s in sorted(SPECS, key=lambda s: -s.score)] + [PHOTO]
UNKNOWN = clip_id("Nowhere/v_Nowhere_g01_c01.avi")


def png_bytes() -> bytes:
    """A 40x30 PNG: a red square on blue."""
    img = Image.new("RGB", (40, 30), (20, 40, 200))
    img.paste((230, 20, 20), (10, 5, 30, 25))
    buffer = BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def orthogonal(v: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``v`` with its ``q`` component removed, normalised."""
    return unit(v - float(v @ q) * q)


def at_cosine(a: float, q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A unit vector whose cosine with the unit vector ``q`` is ``a``."""
    u = orthogonal(rng.normal(size=q.shape), q)
    return unit(a * q + np.sqrt(max(0.0, 1 - a * a)) * u)


@pytest.fixture(scope="module")
def q(encoder: ClipEncoder) -> np.ndarray:
    return np.asarray(encoder.encode_text([QUERY])[0], dtype=np.float32)


@pytest.fixture(scope="module")
def image_vector(encoder: ClipEncoder) -> np.ndarray:
    pixels = np.array(Image.open(BytesIO(png_bytes())).convert("RGB"))
    return np.asarray(encoder.encode_frames(pixels[None])[0], dtype=np.float32)


@pytest.fixture(scope="module")
def video_seconds() -> float:
    return VIDEO_S


def payload(spec: Spec, source: Path) -> dict[str, Any]:
    data: dict[str, Any] = {
        "path": spec.path,
        "source": str(source),
        "class": spec.cls,
        "label": spec.cls.lower(),
        # UCF101 names carry their group (the search page collapses by it)
        "group": int(m["group"]) if (m := UCF_NAME.search(spec.path)) else None,
        "clip": int(m["clip"]) if m else None,
        "duration_s": spec.duration_s,
        "fps": 10.0,
        "width": 64,
        "height": 48,
        "frame_times": [(s + e) / 2 for s, e in spec.window_times],
        "segment_times": spec.window_times,
        "model": spec.model,
        "ingested_at": "2025-01-01T00:00:00+00:00",
    }
    if spec.split_1:
        data["split_1"] = spec.split_1
    return data


@pytest.fixture(scope="module")
def points(q: np.ndarray, image_vector: np.ndarray, video: Path) -> list[ClipPoint]:
    rng = np.random.default_rng(7)
    points = []
    for spec in SPECS:
        windows = np.stack([q if a == 1.0 else at_cosine(a, q, rng) for a in spec.scores])
        points.append(ClipPoint(spec.id, unit(windows.mean(0)), windows, payload(spec, video)))
    photo_window = orthogonal(image_vector, q)
    photo = Spec(PHOTO_PATH, "Photo", (0.0, 0.0), PHOTO_WINDOWS, VIDEO_S, split_1=None)
    windows = np.stack([photo_window, photo_window])
    points.append(ClipPoint(PHOTO, photo_window, windows, payload(photo, video)))
    return points


@pytest.fixture
def app_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, default_k=DEFAULT_K, max_k=MAX_K)


def search(client: FlaskClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/search", query_string={"q": QUERY, **params})
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [r["id"] for r in body["results"]]


def error_code(response: Any, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    code: str = response.get_json()["error"]["code"]
    return code


# ---------------------------------------------------------------- moments and windows


def test_the_moment_is_the_best_window(client: FlaskClient) -> None:
    body = search(client, k=1)
    (top,) = body["results"]
    assert top["id"] == MOMENT.id
    assert top["score"] == pytest.approx(MOMENT.score, abs=1e-5)
    assert top["moment"] == {
        "start_s": 2.5,
        "end_s": 3.75,
        "score": pytest.approx(1.0, abs=1e-5),
        "segment": 2,
    }
    assert top["video_url"] == f"/media/video/{MOMENT.id}.mp4"
    assert top["play_url"] == f"/media/video/{MOMENT.id}.mp4#t=2.50,3.75"
    windows = top["segments"]
    assert [[s["start_s"], s["end_s"]] for s in windows] == FOUR_WINDOWS
    assert [s["score"] for s in windows] == pytest.approx(list(MOMENT.scores), abs=1e-4)
    assert [s["thumbnail_url"] for s in windows] == [
        f"/media/segment/{MOMENT.id}/{i}.jpg" for i in range(4)
    ]


def test_the_moment_grows_over_neighbours_scoring_almost_as_well(client: FlaskClient) -> None:
    twin = search(client, k=2)["results"][1]
    assert twin["id"] == TWIN.id
    assert twin["score"] == pytest.approx(TWIN.score, abs=1e-4)
    assert twin["moment"]["score"] == pytest.approx(0.96, abs=1e-4)
    assert (twin["moment"]["start_s"], twin["moment"]["end_s"]) == (1.25, 3.75)
    assert twin["moment"]["segment"] == 1
    assert twin["play_url"].endswith("#t=1.25,3.75")


def test_results_rank_by_their_best_three_windows(client: FlaskClient) -> None:
    body = search(client, k=MAX_K)
    assert ids(body) == ALL_IDS
    scores = [r["score"] for r in body["results"]]
    expected = [s.score for s in sorted(SPECS, key=lambda s: -s.score)] + [0.0]
    assert scores == pytest.approx(expected, abs=1e-4)
    for i, spec in enumerate(RANKED):
        result = body["results"][2 + i]
        assert result["id"] == spec.id
        assert result["moment"]["segment"] == i % 3
        start, end = spec.window_times[i % 3]
        assert (result["moment"]["start_s"], result["moment"]["end_s"]) == (start, end)


# ---------------------------------------------------------------- filters


def test_class_filter_repeated_or_comma_list(client: FlaskClient) -> None:
    wanted = {"BoxSpinning", "TriangleRising"}
    repeated = client.get(
        "/api/search",
        query_string=[
            ("q", QUERY),
            ("k", MAX_K),
            ("class", "BoxSpinning"),
            ("class", "TriangleRising"),
        ],
    ).get_json()
    comma = search(client, k=MAX_K, **{"class": "BoxSpinning, TriangleRising"})
    expected = [i for i in ALL_IDS if i in {s.id for s in SPECS if s.cls in wanted}]
    assert ids(repeated) == ids(comma) == expected
    assert repeated["filters"] == comma["filters"] == {"class": ["BoxSpinning", "TriangleRising"]}
    single = search(client, k=MAX_K, **{"class": "BallBouncing"})
    assert {r["class"] for r in single["results"]} == {"BallBouncing"}
    assert len(single["results"]) == 1 + 4  # TWIN and RANKED 0, 3, 6, 9


def test_split_filter(client: FlaskClient) -> None:
    train = search(client, k=MAX_K, split="1:train")
    assert ids(train) == [s.id for s in RANKED if s.split_1 == "train"]
    assert train["filters"] == {"split": "1:train"}
    test = search(client, k=MAX_K, split="1:test")
    assert set(ids(test)) == {s.id for s in SPECS if s.split_1 == "test"}
    assert search(client, split="2:test")["results"] == []  # no clip is in split 2


def test_duration_range(client: FlaskClient) -> None:
    body = search(client, k=MAX_K, min_duration=4, max_duration=7.5)
    assert set(ids(body)) == {s.id for s in SPECS if 4 <= s.duration_s <= 7.5} | {PHOTO}
    assert body["filters"] == {"min_duration": 4.0, "max_duration": 7.5}
    longer = search(client, k=MAX_K, min_duration=9)
    assert set(ids(longer)) == {RANKED[7].id, RANKED[8].id, RANKED[9].id}
    shorter = search(client, k=MAX_K, max_duration=2)
    assert ids(shorter) == [RANKED[0].id]


def test_model_filter(client: FlaskClient) -> None:
    body = search(client, k=MAX_K, model="other-model")
    assert ids(body) == [RANKED[3].id, RANKED[7].id]
    both = search(client, k=MAX_K, model="other-model,tiny-random")
    assert ids(both) == ALL_IDS


def test_filters_combine_and_keep_the_ranking(client: FlaskClient) -> None:
    everything = ids(search(client, k=MAX_K))
    body = search(client, k=MAX_K, split="1:test", max_duration=8, **{"class": "BallBouncing"})
    expected = {
        s.id for s in SPECS if s.cls == "BallBouncing" and s.split_1 == "test" and s.duration_s <= 8
    }
    assert set(ids(body)) == expected and expected == {TWIN.id, RANKED[0].id, RANKED[6].id}
    assert ids(body) == [i for i in everything if i in expected]


def test_post_json_filters_flat_or_nested_match_get(client: FlaskClient) -> None:
    query = {"split": "1:train", "min_duration": 3, "class": ["BoxSpinning", "TriangleRising"]}
    get = search(client, k=MAX_K, **query)
    flat = client.post("/api/search", json={"q": QUERY, "k": MAX_K, **query}).get_json()
    nested = client.post(
        "/api/search", json={"query": QUERY, "limit": MAX_K, "filters": query}
    ).get_json()
    assert ids(get) == ids(flat) == ids(nested)
    assert ids(get) == [s.id for s in (RANKED[1], RANKED[5], RANKED[7])]


# ---------------------------------------------------------------- paging


def test_pages_concatenate_to_one_big_page(client: FlaskClient) -> None:
    pages, offset = [], 0
    while offset is not None:
        body = search(client, k=5, offset=offset)
        assert body["offset"] == offset and body["limit"] == 5
        pages.append(body)
        offset = body["next_offset"]
    assert [len(p["results"]) for p in pages] == [5, 5, 3]
    assert [p["next_offset"] for p in pages] == [5, 10, None]
    assert [i for p in pages for i in ids(p)] == ids(search(client, k=15)) == ALL_IDS


def test_limit_is_an_alias_of_k(client: FlaskClient) -> None:
    by_limit = search(client, limit=4, offset=4)
    assert ids(by_limit) == ALL_IDS[4:8]
    assert by_limit["limit"] == 4 and by_limit["next_offset"] == 8
    assert ids(search(client, k=4, offset=4)) == ids(by_limit)
    post = client.post("/api/search", json={"q": QUERY, "limit": 4, "offset": 4}).get_json()
    assert ids(post) == ALL_IDS[4:8]


def test_exact_last_page_and_past_the_end(client: FlaskClient) -> None:
    last = search(client, k=4, offset=9)
    assert ids(last) == ALL_IDS[9:] and last["next_offset"] is None
    beyond = search(client, k=4, offset=50)
    assert beyond["results"] == [] and beyond["next_offset"] is None
    assert beyond["no_good_match"] is False


def test_default_page_size(client: FlaskClient) -> None:
    body = search(client)
    assert len(body["results"]) == DEFAULT_K and body["limit"] == DEFAULT_K
    assert body["next_offset"] == DEFAULT_K


def test_paging_with_filters(client: FlaskClient) -> None:
    first = search(client, k=2, split="1:test")
    second = search(client, k=2, split="1:test", offset=first["next_offset"])
    assert ids(first) + ids(second) == ids(search(client, k=4, split="1:test"))


# ---------------------------------------------------------------- the score threshold


def test_min_score_hides_low_results(client: FlaskClient) -> None:
    body = search(client, k=MAX_K, min_score=0.74)
    assert ids(body) == ALL_IDS[:4]  # 0.833, 0.805, 0.80, 0.75
    assert body["min_score"] == 0.74 and body["no_good_match"] is False
    assert body["best_score"] is None and body["message"] is None
    assert body["next_offset"] is None


def test_nothing_above_min_score_is_no_good_match(client: FlaskClient) -> None:
    body = search(client, min_score=0.9999, **{"class": "BoxSpinning"})
    assert body["results"] == []
    assert body["no_good_match"] is True
    assert body["best_score"] == pytest.approx(RANKED[1].score, abs=1e-4)
    assert body["message"] == NO_GOOD_MATCH
    assert body["min_score"] == 0.9999
    shown = search(client, min_score="off", **{"class": "BoxSpinning"})
    assert shown["no_good_match"] is False and shown["min_score"] is None
    assert shown["results"][0]["id"] == RANKED[1].id
    assert shown["results"][0]["score"] == pytest.approx(body["best_score"], abs=1e-6)


def test_no_good_match_needs_hits_at_all(client: FlaskClient) -> None:
    body = search(client, min_score=0.5, **{"class": "NoSuchClass"})
    assert body["results"] == [] and body["no_good_match"] is False
    assert body["best_score"] is None and body["message"] is None


@pytest.mark.parametrize("off", ["off", "none", ""])
def test_calibrated_threshold_is_the_default(
    app_settings: Settings, encoder: ClipEncoder, store: QdrantClientStore, off: str
) -> None:
    client = make_app(app_settings, encoder, store, min_score=0.74).test_client()
    default = search(client, k=MAX_K)
    assert default["min_score"] == 0.74 and ids(default) == ALL_IDS[:4]
    shown = search(client, k=MAX_K, min_score=off)
    assert shown["min_score"] is None and ids(shown) == ALL_IDS
    looser = search(client, k=MAX_K, min_score=0.42)
    assert ids(looser) == ALL_IDS[:10]  # 0.833 ... 0.45
    assert client.get("/api/health").get_json()["min_score"] == 0.74
    post = client.post("/api/search", json={"q": QUERY, "k": MAX_K, "min_score": None})
    assert ids(post.get_json()) == ALL_IDS
    # similar clips ignore the text threshold unless asked
    similar = client.get(f"/api/clips/{MOMENT.id}/similar", query_string={"k": MAX_K})
    assert similar.get_json()["min_score"] is None
    assert len(similar.get_json()["results"]) == len(ALL_IDS) - 1


# ---------------------------------------------------------------- more like this


def test_similar_excludes_the_clip_itself(client: FlaskClient) -> None:
    response = client.get(f"/api/clips/{MOMENT.id}/similar", query_string={"k": MAX_K})
    assert response.status_code == 200
    body = response.get_json()
    assert body["kind"] == "clip" and body["query"] == MOMENT.path
    assert MOMENT.id not in ids(body)
    assert set(ids(body)) == set(ALL_IDS) - {MOMENT.id}
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(r["moment"]["segment"] < len(r["segments"]) for r in body["results"])


def test_similar_pages_and_filters(client: FlaskClient) -> None:
    url = f"/api/clips/{TWIN.id}/similar"
    everything = ids(client.get(url, query_string={"k": MAX_K}).get_json())
    page = client.get(url, query_string={"k": 3, "offset": 3}).get_json()
    assert ids(page) == everything[3:6] and page["next_offset"] == 6
    only = client.get(url, query_string={"k": MAX_K, "class": "BallBouncing"}).get_json()
    assert ids(only) == [i for i in everything if i in {s.id for s in RANKED[::3]}]
    assert TWIN.id not in ids(only)


@pytest.mark.parametrize("bad", [UNKNOWN, "not-a-uuid", MOMENT.id.replace("-", "")])
def test_similar_of_an_unknown_clip_is_404(client: FlaskClient, bad: str) -> None:
    assert error_code(client.get(f"/api/clips/{bad}/similar"), 404) == "clip_not_found"


# ---------------------------------------------------------------- image queries


def upload(client: FlaskClient, content: bytes | None, name: str = "red.png", **fields: Any) -> Any:
    data: dict[str, Any] = dict(fields)
    if content is not None:
        data["image"] = (BytesIO(content), name)
    return client.post("/api/search/image", data=data, content_type="multipart/form-data")


def test_image_search_finds_the_clip_holding_that_image(client: FlaskClient) -> None:
    response = upload(client, png_bytes(), k=3)
    assert response.status_code == 200
    body = response.get_json()
    assert body["kind"] == "image" and body["query"] == "red.png"
    assert len(body["results"]) == 3
    top = body["results"][0]
    assert top["id"] == PHOTO and top["class"] == "Photo"
    assert top["score"] > 0.9  # the stored vector is the image's minus its q component
    assert top["moment"] == {
        "start_s": 0.0,
        "end_s": VIDEO_S,
        "score": top["score"],
        "segment": 0,
    }


def test_image_search_takes_the_search_fields(client: FlaskClient) -> None:
    body = upload(client, png_bytes(), k="2", offset="1", **{"class": "BallBouncing"}).get_json()
    everything = upload(client, png_bytes(), k=MAX_K, **{"class": "BallBouncing"}).get_json()
    assert ids(body) == ids(everything)[1:3]
    assert body["filters"] == {"class": ["BallBouncing"]} and body["offset"] == 1
    strict = upload(client, png_bytes(), min_score="0.99", **{"class": "BallBouncing"})
    assert strict.get_json()["no_good_match"] is True
    assert strict.get_json()["best_score"] == everything["results"][0]["score"]


@pytest.mark.parametrize(
    ("content", "name", "code"),
    [
        (None, "red.png", "missing_image"),
        (b"", "", "missing_image"),
        (b"definitely not an image", "fake.png", "invalid_image"),
        (b"", "empty.png", "invalid_image"),
        (png_bytes()[:60], "truncated.png", "invalid_image"),
    ],
)
def test_image_search_refuses_missing_or_invalid_images(
    client: FlaskClient, content: bytes | None, name: str, code: str
) -> None:
    response = upload(client, content, name)
    assert error_code(response, 400) == code
    assert "Traceback" not in response.get_data(as_text=True)


def test_image_search_without_a_vision_tower(
    app_settings: Settings, text_encoder: ClipEncoder, store: QdrantClientStore
) -> None:
    client = make_app(app_settings, text_encoder, store).test_client()
    assert error_code(upload(client, png_bytes()), 400) == "image_search_unavailable"
    assert client.get("/api/health").get_json()["image_queries"] is False
    assert "image-search" not in client.get("/").get_data(as_text=True)


# ---------------------------------------------------------------- window thumbnails


def test_window_thumbnails_are_frames_of_the_video(client: FlaskClient, tmp_path: Path) -> None:
    images = []
    for index in (0, 2):
        response = client.get(f"/media/segment/{MOMENT.id}/{index}.jpg")
        assert response.status_code == 200
        assert response.mimetype == "image/jpeg"
        assert "max-age" in response.headers["Cache-Control"]
        image = Image.open(BytesIO(response.data))
        assert image.format == "JPEG" and image.size == (64, 48)
        images.append(np.asarray(image.convert("L"), dtype=np.int16))
        assert (tmp_path / "media" / "segments" / f"{MOMENT.id}-{index}.jpg").is_file()
    # the bar has moved between the middles of window 0 (0.6 s) and window 2 (3.1 s)
    assert np.abs(images[0] - images[1]).mean() > 5
    again = client.get(f"/media/segment/{MOMENT.id}/2.jpg")
    assert again.status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        f"/media/segment/{MOMENT.id}/4.jpg",
        f"/media/segment/{MOMENT.id}/99.jpg",
        f"/media/segment/{MOMENT.id}/-1.jpg",
        f"/media/segment/{UNKNOWN}/0.jpg",
        f"/media/segment/{RANKED[0].id}/3.jpg",
    ],
)
def test_window_thumbnail_out_of_range_is_404(client: FlaskClient, url: str) -> None:
    assert client.get(url).status_code == 404


# ---------------------------------------------------------------- pages


def page(client: FlaskClient, url: str, status: int = 200, **kw: Any) -> str:
    response = client.get(url, **kw)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def card_ids(text: str) -> list[str]:
    return re.findall(r'<li class="card result" data-id="([0-9a-f-]+)"', text)


def link(text: str, css_class: str) -> dict[str, list[str]] | None:
    """The query of the first ``<a class="css_class" ... href="...">``, or None."""
    found = re.search(rf'<a class="{css_class}"[^>]* href="([^"]+)"', text)
    if found is None:
        return None
    url = urlsplit(html.unescape(found.group(1)))
    assert url.path == "/"
    return parse_qs(url.query, keep_blank_values=True)


def test_search_page_shows_the_moment_and_its_windows(client: FlaskClient) -> None:
    text = page(client, "/", query_string={"q": QUERY, "k": 1})
    assert card_ids(text) == [MOMENT.id]
    assert f'<source src="/media/video/{MOMENT.id}.mp4#t=2.50,3.75" type="video/mp4">' in text
    assert 'data-start="2.5" data-end="3.75"' in text
    assert text.count('class="seg') == 4 and text.count('class="seg win"') == 1
    win = re.search(r'class="seg win"\s+data-start="([0-9.]+)"', text)
    assert win is not None and win.group(1) == "2.5"
    for i in range(4):
        assert f'src="/media/segment/{MOMENT.id}/{i}.jpg"' in text
    assert "moment 2.5–3.8 s" in text
    assert f"/clips/{MOMENT.id}?t=2.5" in text  # "More like this"


def test_search_page_renders_the_filters(client: FlaskClient) -> None:
    text = page(
        client,
        "/",
        query_string=[
            ("q", QUERY),
            ("k", MAX_K),
            ("class", "BallBouncing"),
            ("class", "TriangleRising"),
            ("split", "1:test"),
            ("min_duration", "1"),
            ("max_duration", "8"),
        ],
    )
    assert re.search(r'<details class="filters"\s+open>', text)
    assert "(4 on)" in text
    assert '<option value="BallBouncing" selected>BallBouncing (5)</option>' in text
    assert '<option value="TriangleRising" selected>TriangleRising (4)</option>' in text
    assert '<option value="BoxSpinning" >BoxSpinning (3)</option>' in text
    assert '<option value="Photo" >Photo (1)</option>' in text
    assert '<option value="1:test" selected>split 1 test</option>' in text
    assert (
        'name="min_duration" form="search" min="0" step="0.5" placeholder="min" value="1.0"' in text
    )
    assert (
        'name="max_duration" form="search" min="0" step="0.5" placeholder="max" value="8.0"' in text
    )
    expected = {
        s.id
        for s in SPECS
        if s.cls in ("BallBouncing", "TriangleRising")
        and s.split_1 == "test"
        and 1 <= s.duration_s <= 8
    }
    assert set(card_ids(text)) == expected
    assert 'href="/?q=a+red+triangle+rising">Clear</a>' in text


def test_search_page_filters_that_match_nothing(client: FlaskClient) -> None:
    text = page(client, "/", query_string={"q": QUERY, "split": "3:train"})
    assert "No results for" in text and "No indexed clip passes these filters" in text
    assert card_ids(text) == []


def test_search_page_pager_links(client: FlaskClient) -> None:
    first = page(
        client, "/", query_string={"q": QUERY, "k": 5, "class": "BallBouncing,BoxSpinning"}
    )
    assert len(card_ids(first)) == 5
    assert link(first, "prev") is None
    following = link(first, "next")
    assert following == {
        "q": [QUERY],
        "k": ["5"],
        "class": ["BallBouncing,BoxSpinning"],
        "offset": ["5"],
    }
    second = page(client, "/", query_string={"q": QUERY, "k": 5, "offset": 5})
    assert link(second, "prev") == {"q": [QUERY], "k": ["5"], "offset": ["0"]}
    assert link(second, "next") == {"q": [QUERY], "k": ["5"], "offset": ["10"]}
    assert "6–10" in second
    last = page(client, "/", query_string={"q": QUERY, "k": 5, "offset": 10})
    assert link(last, "prev") == {"q": [QUERY], "k": ["5"], "offset": ["5"]}
    assert link(last, "next") is None
    assert card_ids(last) == ALL_IDS[10:]
    # the pages show what the API does
    assert card_ids(first) == ids(search(client, k=5, **{"class": "BallBouncing,BoxSpinning"}))
    assert card_ids(second) + card_ids(last) == ALL_IDS[5:]


def test_search_page_no_good_match_notice(client: FlaskClient) -> None:
    text = page(
        client,
        "/",
        query_string={"q": QUERY, "min_score": "0.9999", "class": "BoxSpinning", "k": 3},
    )
    assert f"No good match for “{QUERY}”" in text
    assert f"The best clip scores {RANKED[1].score:.3f}" in text  # 0.750
    assert "threshold of 1.000" in text
    assert card_ids(text) == []
    anyway = link(text, "anyway")
    assert anyway == {"q": [QUERY], "class": ["BoxSpinning"], "k": ["3"], "min_score": ["off"]}
    shown = page(client, "/", query_string={k: v[0] for k, v in anyway.items()})
    assert card_ids(shown) == [s.id for s in RANKED if s.cls == "BoxSpinning"]


def test_image_search_page(client: FlaskClient) -> None:
    response = client.post(
        "/search/image",
        data={"image": (BytesIO(png_bytes()), "red.png"), "k": "4"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Clips like <strong>red.png</strong>" in text
    assert card_ids(text)[0] == PHOTO and len(card_ids(text)) == 4
    assert 'class="pager"' not in text


def test_image_search_page_error(client: FlaskClient) -> None:
    response = client.post(
        "/search/image",
        data={"image": (BytesIO(b"nope"), "nope.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert 'role="alert"' in text and "nope.png" in text and card_ids(text) == []


def test_image_search_page_no_good_match_has_no_text_link(client: FlaskClient) -> None:
    response = client.post(
        "/search/image",
        data={
            "image": (BytesIO(png_bytes()), "red.png"),
            "min_score": "0.99",
            "class": "BallBouncing",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "No good match for “red.png”" in text
    assert link(text, "anyway") is None  # a link cannot send the upload again


def test_clip_page_plays_from_t_and_lists_similar_clips(client: FlaskClient) -> None:
    text, similar_part = page(client, f"/clips/{MOMENT.id}", query_string={"t": "2.5"}).split(
        "Similar clips"
    )
    assert f'<article class="clip-page" data-id="{MOMENT.id}">' in text
    assert 'data-start="2.5"' in text
    assert f'<source src="/media/video/{MOMENT.id}.mp4#t=2.50" type="video/mp4">' in text
    assert text.count('class="seg') == 4
    here = re.findall(r'class="seg( here)?" data-start="([0-9.]+)"', text)
    assert [start for mark, start in here if mark] == ["2.5"]  # one window marked
    similar = card_ids(similar_part)
    assert len(similar) == 8 and MOMENT.id not in similar
    api = client.get(f"/api/clips/{MOMENT.id}/similar", query_string={"k": 8}).get_json()
    assert similar == ids(api)
    assert "TriangleRising" in text and MOMENT.path in text and card_ids(text) == []


@pytest.mark.parametrize(
    ("t", "marked"), [("0", "0.0"), ("2.2", "0.0"), ("2.5", "2.0"), ("2.8", "2.0"), ("5", "2.0")]
)
def test_clip_page_marks_the_one_window_showing_at_t(
    client: FlaskClient, t: str, marked: str
) -> None:
    """Overlapping windows (0-3 s, 2-5 s): t belongs to the window with the nearest centre."""
    text = page(client, f"/clips/{PHOTO}", query_string={"t": t}).split("Similar clips")[0]
    here = re.findall(r'class="seg( here)?" data-start="([0-9.]+)"', text)
    assert len(here) == 2
    assert [start for mark, start in here if mark] == [marked]


@pytest.mark.parametrize("t", ["7", "-1", "nan", "soon", "inf", "1e300"])
def test_clip_page_with_t_outside_the_clip(client: FlaskClient, t: str) -> None:
    text = page(client, f"/clips/{PHOTO}", query_string={"t": t})
    assert ' here"' not in text
    assert "#t=" not in text.split("Similar clips")[0]  # played from the start


def test_clip_page_without_t(client: FlaskClient) -> None:
    text = page(client, f"/clips/{TWIN.id}")
    assert f'<source src="/media/video/{TWIN.id}.mp4" type="video/mp4">' in text
    assert "data-start" not in text.split('class="strip wide"')[0].split("<video")[1]
    assert ' here"' not in text


def test_clip_page_with_a_small_max_k(
    app_settings: Settings, encoder: ClipEncoder, store: QdrantClientStore
) -> None:
    settings = replace(app_settings, default_k=3, max_k=3)
    client = make_app(settings, encoder, store).test_client()
    text = page(client, f"/clips/{MOMENT.id}")
    assert len(card_ids(text)) == 3


def test_unknown_clip_page_is_404(client: FlaskClient) -> None:
    text = page(client, f"/clips/{UNKNOWN}", status=404)
    assert "clip not found" in text
