"""The web app: JSON API, search page, media routes, errors and headers.

The app gets a real ``SearchService``: the tiny untrained CLIP text tower and an
in-memory Qdrant store whose points' vectors are that model's own embeddings of
distinct phrases, so searching a phrase returns its own point first.
"""

from __future__ import annotations

import dataclasses
import json
import re
from io import BytesIO
from pathlib import Path
from typing import Any

import av
import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from clipsearch import text_runtime
from clipsearch.batcher import DEFAULT_MAX_BATCH
from clipsearch.model import ClipEncoder
from clipsearch.store.base import ClipPoint, clip_id
from clipsearch.store.client import QdrantClientStore
from clipsearch.store.edge import QdrantEdgeStore
from clipsearch.store.factory import StoreSettings
from webapp import create_app
from webapp.settings import ConfigError, Settings

from .conftest import make_app, make_settings, make_store

# phrase -> (class, relative path); the point's vector is the embedding of the phrase.
CLIPS = {
    "ball bouncing": ("BallBouncing", "BallBouncing/v_BallBouncing_g01_c01.avi"),
    "box spinning": ("BoxSpinning", "BoxSpinning/v_BoxSpinning_g01_c01.avi"),
    "a yellow triangle rising": ("TriangleRising", "TriangleRising/v_TriangleRising_g02_c01.avi"),
    "a large blue box spinning slowly": ("BoxSpinning", "BoxSpinning/v_BoxSpinning_g03_c02.avi"),
}
MISSING_SOURCE = "a small red ball bouncing fast"  # indexed, but its video file is gone
GHOST_PATH = "Ghost/v_Ghost_g01_c01.avi"
UNKNOWN_ID = clip_id("Nowhere/v_Nowhere_g01_c01.avi")
MAX_K = 10
UCF_NAME = re.compile(r"_g(?P<group>\d+)_c(?P<clip>\d+)\.")
MAX_QUERY_CHARS = 200
RESULT_KEYS = {
    "id",
    "path",
    "class",
    "label",
    "score",
    "video_url",
    "thumbnail_url",
    "play_url",
    "duration_s",
    "width",
    "height",
    "start_s",
    "end_s",
    "moment",
    "segments",
}


@pytest.fixture(scope="module")
def encoder(text_encoder: ClipEncoder) -> ClipEncoder:
    return text_encoder  # no vision tower: health reports no image queries


def payload(rel_path: str, cls: str, source: Path) -> dict[str, Any]:
    return {
        "path": rel_path,
        "source": str(source),
        "class": cls,
        "label": cls.lower(),
        # UCF101 names carry their group (the search page collapses by it)
        "group": int(m["group"]) if (m := UCF_NAME.search(rel_path)) else None,
        "clip": int(m["clip"]) if m else None,
        "split_1": "test",
        "duration_s": 1.0,
        "fps": 10.0,
        "width": 64,
        "height": 48,
        "frame_times": [0.25, 0.75],
        "model": "tiny-random",
        "ingested_at": "2025-01-01T00:00:00Z",
    }


@pytest.fixture(scope="module")
def points(encoder: ClipEncoder, video: Path) -> list[ClipPoint]:
    vectors = encoder.encode_text([*CLIPS, MISSING_SOURCE])
    clips = [
        ClipPoint(clip_id(rel), vec, vec[None, :], payload(rel, cls, video))
        for (cls, rel), vec in zip(CLIPS.values(), vectors[:-1], strict=True)
    ]
    ghost = payload(GHOST_PATH, "Ghost", video.parent / "deleted.avi")
    return [*clips, ClipPoint(clip_id(GHOST_PATH), vectors[-1], vectors[-1][None, :], ghost)]


@pytest.fixture
def app_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, default_k=3, max_k=MAX_K, max_query_chars=MAX_QUERY_CHARS)


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, str]:
    """The response is the API's error shape, exactly ``{"error": {"code", "message"}}``."""
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return dict(body["error"])


# ---------------------------------------------------------------- search API


def test_search_get_returns_ranked_results(client: FlaskClient) -> None:
    response = client.get("/api/search", query_string={"q": "ball bouncing", "k": 4})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {
        "query",
        "kind",
        "took_ms",
        "offset",
        "limit",
        "next_offset",
        "filters",
        "min_score",
        "no_good_match",
        "best_score",
        "message",
        "results",
    }
    assert body["query"] == "ball bouncing" and body["kind"] == "text"
    assert (body["offset"], body["limit"], body["next_offset"]) == (0, 4, 4)
    assert body["no_good_match"] is False and body["min_score"] is None
    assert body["took_ms"] >= 0
    results = body["results"]
    assert len(results) == 4
    assert all(set(r) == RESULT_KEYS for r in results)
    top = results[0]
    expected_id = clip_id(CLIPS["ball bouncing"][1])
    assert top["id"] == expected_id
    assert top["class"] == "BallBouncing"
    assert top["path"] == CLIPS["ball bouncing"][1]
    assert top["score"] == pytest.approx(1.0, abs=1e-4)
    assert top["duration_s"] == 1.0
    assert top["video_url"] == f"/media/video/{expected_id}.mp4"
    assert top["thumbnail_url"] == f"/media/poster/{expected_id}.jpg"
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert "source" not in response.get_data(as_text=True)


@pytest.mark.parametrize("phrase", list(CLIPS))
def test_each_phrase_finds_its_own_clip_first(client: FlaskClient, phrase: str) -> None:
    results = client.get("/api/search", query_string={"q": phrase}).get_json()["results"]
    assert results[0]["id"] == clip_id(CLIPS[phrase][1])


@pytest.mark.parametrize("key", ["q", "query"])
def test_search_post_json(client: FlaskClient, key: str) -> None:
    response = client.post("/api/search", json={key: "  box   spinning ", "k": 2})
    assert response.status_code == 200
    body = response.get_json()
    assert body["query"] == "box spinning"
    assert [r["id"] for r in body["results"]][:1] == [clip_id(CLIPS["box spinning"][1])]
    assert len(body["results"]) == 2


def test_k_defaults_and_bounds(client: FlaskClient) -> None:
    default = client.get("/api/search?q=box").get_json()["results"]
    assert len(default) == 3  # settings.default_k
    everything = client.get(f"/api/search?q=box&k={MAX_K}").get_json()["results"]
    assert len(everything) == len(CLIPS) + 1  # fewer points than k: all of them
    assert len(client.get("/api/search?q=box&k=1").get_json()["results"]) == 1
    assert len(client.post("/api/search", json={"q": "box", "k": "2"}).get_json()["results"]) == 2


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "missing_query"),
        ({"q": ""}, "empty_query"),
        ({"q": "   \t  "}, "empty_query"),
        ({"q": "x" * (MAX_QUERY_CHARS + 1)}, "query_too_long"),
        ({"q": "ball", "k": "abc"}, "invalid_k"),
        ({"q": "ball", "k": ""}, "invalid_k"),
        ({"q": "ball", "k": "1.5"}, "invalid_k"),
        ({"q": "ball", "k": "0"}, "invalid_k"),
        ({"q": "ball", "k": "-3"}, "invalid_k"),
        ({"q": "ball", "k": str(MAX_K + 1)}, "invalid_k"),
    ],
)
def test_search_get_rejects_bad_input(
    client: FlaskClient, params: dict[str, str], code: str
) -> None:
    assert_error(client.get("/api/search", query_string=params), 400, code)


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        ('{"q": "ball"', "application/json", "invalid_json"),
        ("\xff\xfe not json", "application/json", "invalid_json"),
        ("", "application/json", "invalid_json"),
        ('["ball"]', "application/json", "invalid_json"),
        ('"ball"', "application/json", "invalid_json"),
        ("null", "application/json", "invalid_json"),
        ('{"q": "ball"}', "text/plain", "invalid_content_type"),
        ("q=ball", "application/x-www-form-urlencoded", "invalid_content_type"),
        ('{"k": 3}', "application/json", "missing_query"),
        ('{"q": 42}', "application/json", "invalid_query"),
        ('{"q": null}', "application/json", "invalid_query"),
        ('{"q": "  "}', "application/json", "empty_query"),
        ('{"q": "ball", "k": 0}', "application/json", "invalid_k"),
        ('{"q": "ball", "k": 2.5}', "application/json", "invalid_k"),
        ('{"q": "ball", "k": true}', "application/json", "invalid_k"),
        ('{"q": "ball", "k": 1000}', "application/json", "invalid_k"),
    ],
)
def test_search_post_rejects_bad_input(
    client: FlaskClient, body: str, content_type: str, code: str
) -> None:
    response = client.post("/api/search", data=body, content_type=content_type)
    assert_error(response, 400, code)


def test_search_post_refuses_huge_body(client: FlaskClient) -> None:
    response = client.post("/api/search", json={"q": "x" * 100_000})
    assert_error(response, 413)


# ---------------------------------------------------------------- errors


def test_api_error_shape_is_pinned(client: FlaskClient) -> None:
    response = client.get("/api/no-such-route")
    assert response.status_code == 404
    assert response.get_json() == {
        "error": {"code": "not_found", "message": response.get_json()["error"]["message"]}
    }
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/api/search"), ("POST", "/api/health")])
def test_api_wrong_method_is_json_405(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method)
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_html_404_is_a_page(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "<html" in response.get_data(as_text=True)
    assert response.get_json(silent=True) is None


def test_unexpected_errors_are_500_without_details(app: Flask) -> None:
    def boom() -> str:
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/boom", "api_boom", boom)
    app.add_url_rule("/boom", "boom", boom)
    client = app.test_client()
    api = client.get("/api/boom")
    assert assert_error(api, 500, "internal_error")["message"] == "internal server error"
    page = client.get("/boom")
    assert page.status_code == 500
    assert page.mimetype == "text/html"
    for response in (api, page):
        text = response.get_data(as_text=True)
        assert "secret internals" not in text
        assert "Traceback" not in text


# ---------------------------------------------------------------- health and clips


def test_health(client: FlaskClient) -> None:
    client.get("/api/search?q=ball+bouncing")
    client.get("/api/search?q=ball++bouncing")  # the same query once whitespace is collapsed
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body.pop("query_cache") == {
        "size": 1,
        "capacity": 4096,
        "hits": 1,
        "misses": 1,
        "hit_rate": 0.5,
    }
    batches = body.pop("query_batches")  # the one miss went through the micro-batcher
    assert (
        batches["queries"] == 1
        and batches["batches"] == 1
        and batches["max_batch"] == DEFAULT_MAX_BATCH
    )
    assert body == {
        "status": "ok",
        "model": "tiny-random",
        "store": "qdrant-local",
        "clips": len(CLIPS) + 1,
        "store_model": "tiny-random",
        "min_score": None,
        "image_queries": False,
        "text_dtype": "fp32",
        "store_cache": None,  # a qdrant-client store: other processes may write to it
        "alias": None,  # the store is not named by an alias
    }


def test_health_is_503_when_the_store_fails(
    tmp_path: Path, app_settings: Settings, encoder: ClipEncoder
) -> None:
    edge = QdrantEdgeStore(tmp_path / "store")
    edge.ensure_collection(encoder.dim)
    edge.close()  # every later call raises StoreError
    client = make_app(app_settings, encoder, edge).test_client()
    response = client.get("/api/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["error"]["code"] == "store_unavailable"
    assert_error(client.get("/api/search?q=ball"), 503, "store_unavailable")
    page = client.get("/?q=ball")
    assert page.status_code == 503
    assert "store unavailable" in page.get_data(as_text=True)


def test_clip_details(client: FlaskClient) -> None:
    cid = clip_id(CLIPS["box spinning"][1])
    response = client.get(f"/api/clips/{cid}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == cid
    assert body["path"] == CLIPS["box spinning"][1]
    assert body["class"] == "BoxSpinning"
    assert body["frame_times"] == [0.25, 0.75]
    assert body["split_1"] == "test"
    assert body["video_url"] == f"/media/video/{cid}.mp4"
    assert body["thumbnail_url"] == f"/media/poster/{cid}.jpg"
    assert "source" not in body


@pytest.mark.parametrize("bad_id", [UNKNOWN_ID, "not-a-uuid", UNKNOWN_ID.upper(), "0" * 40])
def test_unknown_clip_is_json_404(client: FlaskClient, bad_id: str) -> None:
    assert_error(client.get(f"/api/clips/{bad_id}"), 404, "clip_not_found")


# ---------------------------------------------------------------- pages


def test_search_page_renders_results(client: FlaskClient) -> None:
    response = client.get("/?q=ball+bouncing")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    cid = clip_id(CLIPS["ball bouncing"][1])
    assert 'value="ball bouncing"' in html
    assert html.count("<video") == 3  # default_k
    assert 'preload="none"' in html
    assert f'poster="/media/poster/{cid}.jpg"' in html
    assert f'<source src="/media/video/{cid}.mp4#t=0.00,1.00" type="video/mp4">' in html
    first_poster = html.split('poster="', 1)[1].split('"', 1)[0]
    assert first_poster == f"/media/poster/{cid}.jpg"
    assert "BallBouncing" in html
    assert CLIPS["ball bouncing"][1] in html
    assert "tiny-random" in html
    assert f"{len(CLIPS) + 1} clips" in html


def test_search_page_escapes_the_query(client: FlaskClient) -> None:
    response = client.get("/", query_string={"q": '<script>alert("x")</script>'})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;" in html


def test_start_page(client: FlaskClient) -> None:
    for url in ("/", "/?q=", "/?q=+++"):
        response = client.get(url)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert 'name="q"' in html
        assert "<video" not in html
        assert "a ball bouncing" in html


def test_search_page_empty_state(app_settings: Settings, encoder: ClipEncoder) -> None:
    with make_store(encoder.dim, []) as empty:
        client = make_app(app_settings, encoder, empty).test_client()
        response = client.get("/?q=ball+bouncing")
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "No results" in html
        assert "a ball bouncing" in html
        assert "<video" not in html
        assert "0 clips" in html


@pytest.mark.parametrize(
    "params", [{"q": "x" * (MAX_QUERY_CHARS + 1)}, {"q": "ball", "k": "0"}, {"q": "b", "k": "x"}]
)
def test_search_page_error_state(client: FlaskClient, params: dict[str, str]) -> None:
    response = client.get("/", query_string=params)
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert 'role="alert"' in html
    assert "<video" not in html


@pytest.mark.parametrize("path", ["/", "/?q=ball", "/api/search?q=ball", "/nope", "/api/nope"])
def test_security_headers(client: FlaskClient, path: str) -> None:
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "media-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
    ):
        assert directive in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"]


def test_static_files_are_served(client: FlaskClient) -> None:
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/app.js").status_code == 200


# ---------------------------------------------------------------- media


def test_poster_is_built_lazily(app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    cid = clip_id(CLIPS["ball bouncing"][1])
    response = client.get(f"/media/poster/{cid}.jpg")
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert "max-age" in response.headers["Cache-Control"]
    image = Image.open(BytesIO(response.data))
    assert image.format == "JPEG"
    assert image.size == (64, 48)
    assert (tmp_path / "media" / "posters" / f"{cid}.jpg").is_file()


def test_poster_written_at_ingest_is_served(client: FlaskClient, tmp_path: Path) -> None:
    cid = clip_id(CLIPS["box spinning"][1])
    poster = tmp_path / "media" / "posters" / f"{cid}.jpg"
    poster.parent.mkdir(parents=True)
    Image.new("RGB", (32, 24), (200, 10, 10)).save(poster, format="JPEG")
    response = client.get(f"/media/poster/{cid}.jpg")
    assert response.status_code == 200
    assert response.data == poster.read_bytes()


def test_video_preview_supports_ranges(client: FlaskClient, tmp_path: Path) -> None:
    cid = clip_id(CLIPS["ball bouncing"][1])
    url = f"/media/video/{cid}.mp4"
    full = client.get(url)
    assert full.status_code == 200
    assert full.mimetype == "video/mp4"
    assert full.headers["Accept-Ranges"] == "bytes"
    assert full.data[4:8] == b"ftyp"
    assert (tmp_path / "media" / "previews" / f"{cid}.mp4").is_file()
    with av.open(BytesIO(full.data)) as container:
        assert container.streams.video[0].codec_context.name == "h264"

    part = client.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.data == full.data[:100]
    assert part.headers["Content-Range"] == f"bytes 0-99/{len(full.data)}"

    etag = full.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304

    # RFC 9110: what is not one byte range is ignored; a suffix longer than the file is all
    # of it; a failed precondition sends no body
    for ignored in ("bytes=0-99,200-299", "items=0-10", "bytes=abc"):
        response = client.get(url, headers={"Range": ignored})
        assert (response.status_code, response.data) == (200, full.data), ignored
    everything = client.get(url, headers={"Range": f"bytes=-{10 * len(full.data)}"})
    assert (everything.status_code, everything.data) == (206, full.data)
    assert client.get(url, headers={"Range": f"bytes={len(full.data)}-"}).status_code == 416
    failed = client.get(url, headers={"If-Match": '"another"'})
    assert (failed.status_code, failed.data) == (412, b"")


@pytest.mark.parametrize("kind", ["poster/{}.jpg", "video/{}.mp4"])
@pytest.mark.parametrize("bad_id", [UNKNOWN_ID, "not-a-uuid", "..", "%2e%2e%2fetc%2fpasswd"])
def test_media_of_unknown_clips_is_404(client: FlaskClient, kind: str, bad_id: str) -> None:
    response = client.get("/media/" + kind.format(bad_id))
    assert response.status_code == 404
    assert response.mimetype == "text/html"


@pytest.mark.parametrize("kind", ["poster/{}.jpg", "video/{}.mp4"])
def test_media_with_missing_source_is_404(client: FlaskClient, kind: str) -> None:
    response = client.get("/media/" + kind.format(clip_id(GHOST_PATH)))
    assert response.status_code == 404


def test_undecodable_video_is_422_without_its_path(
    tmp_path: Path, app_settings: Settings, encoder: ClipEncoder
) -> None:
    broken = tmp_path / "secret-dir" / "broken.avi"
    broken.parent.mkdir()
    broken.write_bytes(b"RIFF not really a video" * 10)
    vector = encoder.encode_text(["ball bouncing"])[0]
    cid = clip_id("Broken/v_Broken_g01_c01.avi")
    point = ClipPoint(cid, vector, vector[None, :], payload("b.avi", "B", broken))
    with make_store(encoder.dim, [point]) as one:
        client = make_app(app_settings, encoder, one).test_client()
        for url in (f"/media/poster/{cid}.jpg", f"/media/video/{cid}.mp4"):
            response = client.get(url)
            assert response.status_code == 422
            assert "secret-dir" not in response.get_data(as_text=True)


# ---------------------------------------------------------------- settings


def test_settings_from_env() -> None:
    settings = Settings.from_env(
        {
            "CLIPSEARCH_MODEL": "models/demo",
            "CLIPSEARCH_STORE": "var/other",
            "QDRANT_URL": "http://qdrant:6333",
            "CLIPSEARCH_COLLECTION": "ucf",
            "QDRANT_API_KEY": "k3y",
            "CLIPSEARCH_MEDIA_DIR": "/srv/media",
            "CLIPSEARCH_MAX_K": "50",
        }
    )
    assert settings.model == "models/demo"
    assert settings.store == StoreSettings(
        path="var/other", url="http://qdrant:6333", collection="ucf", api_key="k3y"
    )
    assert settings.media_dir == "/srv/media"
    assert (settings.default_k, settings.max_k, settings.torch_threads) == (12, 50, None)
    prefixed = Settings.from_env(
        {"CLIPSEARCH_MODEL": "m", "CLIPSEARCH_QDRANT_URL": "http://a:6333", "QDRANT_URL": "x"}
    )
    assert prefixed.store.url == "http://a:6333"
    assert Settings.from_env({"CLIPSEARCH_MODEL": "m"}).store == StoreSettings()


@pytest.mark.parametrize(
    "environ",
    [{}, {"CLIPSEARCH_MODEL": "  "}, {"CLIPSEARCH_MODEL": "m", "CLIPSEARCH_MAX_K": "many"}],
)
def test_settings_from_env_rejects_bad_values(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(environ)


def test_create_app_from_environment(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIPSEARCH_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("CLIPSEARCH_QDRANT_URL", ":memory:")
    monkeypatch.setenv("CLIPSEARCH_MEDIA_DIR", str(tmp_path))
    monkeypatch.setenv("CLIPSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    app = create_app()
    health = app.test_client().get("/api/health").get_json()
    assert health.pop("query_cache")["capacity"] == 4096
    assert health.pop("query_batches")["max_batch"] == DEFAULT_MAX_BATCH
    # the default, auto: the text runtime measured fastest here, recorded in the cache
    (record,) = (tmp_path / "cache" / "onnx").glob("*/text-auto-*.json")
    choice = json.loads(record.read_text())["choice"]
    assert choice in text_runtime.candidates()
    assert health == {
        "status": "ok",
        "model": "tiny-random",
        "store": "qdrant-local",
        "clips": 0,
        "store_model": None,
        "min_score": None,
        "image_queries": True,
        "text_dtype": choice,
        "store_cache": None,
        "alias": None,
    }
    assert list((tmp_path / "cache" / "onnx").glob("*/text-int8.onnx"))


def test_image_queries_run_the_vision_tower_as_configured(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings(model="m").vision_dtype == "auto"  # as `clipsearch ingest`
    with pytest.raises(ConfigError, match="vision_dtype must be one of"):
        Settings(model="m", vision_dtype="fp16")
    monkeypatch.setenv("CLIPSEARCH_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("CLIPSEARCH_QDRANT_URL", ":memory:")
    monkeypatch.setenv("CLIPSEARCH_MEDIA_DIR", str(tmp_path))
    monkeypatch.setenv("CLIPSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CLIPSEARCH_VISION_DTYPE", "int8")
    app = create_app()
    assert app.extensions["clipsearch"].live.current.encoder.vision_dtype == "int8"
    assert list((tmp_path / "cache" / "onnx").glob("*/vision-int8.onnx"))


def test_relative_media_dir_is_relative_to_the_working_directory(
    tmp_path: Path,
    app_settings: Settings,
    encoder: ClipEncoder,
    store: QdrantClientStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `clipsearch serve` passes "var/media": it must mean ./var/media, not webapp/var/media
    monkeypatch.chdir(tmp_path)
    settings = dataclasses.replace(app_settings, media_dir="var/media")
    client = make_app(settings, encoder, store).test_client()
    cid = clip_id(CLIPS["box spinning"][1])
    poster = tmp_path / "var" / "media" / "posters" / f"{cid}.jpg"
    poster.parent.mkdir(parents=True)
    Image.new("RGB", (32, 24), (10, 200, 10)).save(poster, format="JPEG")
    response = client.get(f"/media/poster/{cid}.jpg")
    assert response.status_code == 200 and response.data == poster.read_bytes()
    assert client.get(f"/media/video/{cid}.mp4").status_code == 200


def test_responses_are_encoded_by_orjson(app: Flask) -> None:
    """``jsonify`` passes compact separators (or, in debug mode, an indent of 2): orjson
    takes both, so numpy values encode and no response falls back to the slow encoder."""
    import numpy as np
    from flask import jsonify

    with app.app_context():
        body = {"scores": np.array([0.5, 0.25], np.float32), "n": np.int64(2), "q": "é"}
        assert jsonify(body).get_data(as_text=True) == '{"scores":[0.5,0.25],"n":2,"q":"é"}\n'
        app.json.compact = False  # type: ignore[attr-defined]
        assert jsonify({"a": [1]}).get_data(as_text=True) == '{\n  "a": [\n    1\n  ]\n}\n'
        assert app.json.dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a": 2, "b": 1}'
