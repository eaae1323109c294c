"""Locked-down media and API: only indexed files are served (no traversal, no planted
links), the optional API key, no secrets in logs or reprs, security headers, no CORS."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from clipsearch.model import ClipEncoder
from clipsearch.store.base import ClipPoint, clip_id
from clipsearch.store.factory import StoreSettings
from webapp.settings import Settings

from .conftest import make_app, make_settings, make_store

KEY = "s3cret-key-for-tests"
QDRANT_KEY = "qdrant-secret-for-tests"
REL = "C0/v_C0_g01_c01.avi"


def _client(tmp_path: Path, encoder: ClipEncoder, *, api_key: str | None = None) -> FlaskClient:
    tmp_path.mkdir(parents=True, exist_ok=True)
    vector = encoder.encode_text(["ball bouncing"])[0]
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    payload: dict[str, Any] = {"path": REL, "source": str(tmp_path / "gone.avi"), "class": "C0"}
    payload["segment_times"] = [[0.0, 1.0]]
    store = make_store(encoder.dim, [ClipPoint(clip_id(REL), vector, vector[None, :], payload)])
    qdrant = StoreSettings(url=":memory:", api_key=QDRANT_KEY)
    settings = make_settings(tmp_path, store=qdrant, api_key=api_key)
    return make_app(settings, encoder, store).test_client()


@pytest.mark.parametrize(
    "path",
    [
        "/media/poster/..%2F..%2Fsecret.txt.jpg",
        "/media/video/%2e%2e%2fsecret.mp4",
        "/media/poster/../../secret.txt",
        "/media/segment/..%2Fsecret/0.jpg",
        f"/media/poster/{clip_id('Nowhere/x.avi')}.jpg",
    ],
)
def test_media_routes_serve_only_indexed_clips(
    tmp_path: Path, text_encoder: ClipEncoder, path: str
) -> None:
    response = _client(tmp_path, text_encoder).get(path)
    assert response.status_code == 404
    assert b"top secret" not in response.data


def test_a_planted_link_in_the_media_cache_is_never_followed(
    tmp_path: Path, text_encoder: ClipEncoder
) -> None:
    client = _client(tmp_path, text_encoder)
    posters = tmp_path / "media" / "posters"
    posters.mkdir(parents=True)
    os.symlink(tmp_path / "secret.txt", posters / f"{clip_id(REL)}.jpg")
    response = client.get(f"/media/poster/{clip_id(REL)}.jpg")
    assert response.status_code == 404 and b"top secret" not in response.data


def test_api_key(tmp_path: Path, text_encoder: ClipEncoder) -> None:
    client = _client(tmp_path, text_encoder, api_key=KEY)
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
        response = client.get("/api/search?q=ball", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert KEY not in response.get_data(as_text=True)
    assert client.get("/api/search?q=ball", headers={"X-API-Key": KEY}).status_code == 200
    ok = client.get("/api/search?q=ball", headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200
    assert client.get("/api/health").status_code == 200  # open for load balancers
    assert client.get("/api/openapi.json").status_code == 200
    no_key = _client(tmp_path / "b", text_encoder)
    assert no_key.get("/api/search?q=ball").status_code == 200  # off unless configured


def test_no_secrets_in_logs_or_reprs(
    tmp_path: Path, text_encoder: ClipEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        client = _client(tmp_path, text_encoder, api_key=KEY)
        client.get("/api/search?q=ball", headers={"X-API-Key": "wrong-" + KEY})
        client.get("/api/search?q=ball", headers={"X-API-Key": KEY})
        client.get("/api/nope")
    text = caplog.text
    assert KEY not in text and QDRANT_KEY not in text
    settings = Settings(
        model="m", store=StoreSettings(url="http://q:6333", api_key=QDRANT_KEY), api_key=KEY
    )
    assert KEY not in repr(settings) and QDRANT_KEY not in repr(settings)


def test_headers_and_no_cors(tmp_path: Path, text_encoder: ClipEncoder) -> None:
    client = _client(tmp_path, text_encoder)
    page = client.get("/", headers={"Origin": "https://evil.example"})
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    for response in (
        client.get("/api/search?q=ball", headers={"Origin": "https://evil.example"}),
        client.options(
            "/api/search",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        ),
    ):
        assert "Access-Control-Allow-Origin" not in response.headers
        assert response.status_code < 500
