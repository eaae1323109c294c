"""Property-based tests over every route: no input gets a 5xx, and every API error has the
one error shape. Hypothesis generates the query strings, bodies, uploads, ids and methods;
the app is the real one on a real (in-memory Qdrant) store and the tiny CLIP."""

from __future__ import annotations

import json
from io import BytesIO
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipsearch.model import ClipEncoder
from clipsearch.store.base import ClipPoint, clip_id
from clipsearch.store.client import QdrantClientStore

from .conftest import make_app, make_settings

EXAMPLES = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PHRASES = ["ball bouncing", "box spinning", "a yellow triangle rising"]
SEARCH_PARAMS = ["q", "query", "k", "limit", "offset", "class", "split", "min_duration"]
SEARCH_PARAMS += ["max_duration", "model", "min_score", "collapse"]

# text without lone surrogates (which no client can put on the wire as UTF-8)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)
NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "0", "-1", "1e400", "nan", "inf", "0x10", "1_000", "١٢"]),
)
VALUE = st.one_of(TEXT, NUMBERS, st.sampled_from(["1:test", "2:train", "4:test", "test"]))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def points(encoder: ClipEncoder) -> list[ClipPoint]:
    vectors = encoder.encode_text(PHRASES)
    return [
        ClipPoint(
            clip_id(f"C{i}/v_C{i}_g01_c01.avi"),
            v,
            v[None, :],
            {
                "path": f"C{i}/v_C{i}_g01_c01.avi",
                "source": "/nonexistent.avi",
                "class": f"C{i}",
                "duration_s": 1.0,
                "segment_times": [[0.0, 1.0]],
                "model": encoder.model_id,
            },
        )
        for i, v in enumerate(vectors)
    ]


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, encoder: ClipEncoder, store: QdrantClientStore
) -> FlaskClient:
    app_settings = make_settings(tmp_path_factory.mktemp("app"), max_query_chars=200, max_k=50)
    return make_app(app_settings, encoder, store).test_client()


def _check(path: str, response: Any) -> None:
    assert response.status_code < 500, (path, response.status_code, response.data[:300])
    if path.startswith("/api") and response.status_code >= 400:
        body = response.get_json(silent=True)
        assert isinstance(body, dict) and set(body) == {"error"}, (path, response.data[:300])
        error = body["error"]
        assert set(error) == {"code", "message"}, error
        assert isinstance(error["code"], str) and isinstance(error["message"], str)


def _pairs(params: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, values in params.items() for v in values]


@EXAMPLES
@given(
    params=st.dictionaries(
        st.sampled_from(SEARCH_PARAMS) | TEXT, st.lists(VALUE, min_size=1, max_size=3), max_size=6
    )
)
def test_get_search_never_fails(client: FlaskClient, params: dict[str, list[str]]) -> None:
    for path in ("/api/search", "/search"):
        _check(path, client.get(path, query_string=_pairs(params)))


@EXAMPLES
@given(body=JSON, raw=st.binary(max_size=200), kind=st.sampled_from(["json", "raw", "form"]))
def test_post_search_never_fails(client: FlaskClient, body: Any, raw: bytes, kind: str) -> None:
    if kind == "json":
        response = client.post(
            "/api/search", data=json.dumps(body), content_type="application/json"
        )
    elif kind == "raw":
        response = client.post("/api/search", data=raw, content_type="application/json")
    else:
        response = client.post("/api/search", data={"q": str(body)[:100]})
    _check("/api/search", response)


@EXAMPLES
@given(
    data=st.binary(max_size=2000),
    field=st.sampled_from(["image", "file", "x"]),
    name=TEXT,
    extra=st.dictionaries(st.sampled_from(["k", "limit", "offset", "class"]), VALUE, max_size=3),
)
def test_image_upload_never_fails(
    client: FlaskClient, data: bytes, field: str, name: str, extra: dict[str, str]
) -> None:
    for path in ("/api/search/image", "/search/image"):
        form: dict[str, Any] = {field: (BytesIO(data), name or "x.png"), **extra}
        _check(path, client.post(path, data=form, content_type="multipart/form-data"))


IDS = st.one_of(
    TEXT.filter(lambda s: "/" not in s and s not in ("", ".", "..")),
    st.just(clip_id("C0/v_C0_g01_c01.avi")),
    st.uuids().map(str),
)


@EXAMPLES
@given(
    clip=IDS,
    index=st.integers(-5, 10**12),
    params=st.dictionaries(st.sampled_from(SEARCH_PARAMS), VALUE, max_size=4),
)
def test_clip_and_media_routes_never_fail(
    client: FlaskClient, clip: str, index: int, params: dict[str, str]
) -> None:
    from urllib.parse import quote

    c = quote(clip, safe="")
    for path in (
        f"/api/clips/{c}",
        f"/api/clips/{c}/similar",
        f"/clips/{c}",
        f"/media/poster/{c}.jpg",
        f"/media/segment/{c}/{max(index, 0)}.jpg",
        f"/media/video/{c}.mp4",
    ):
        _check(path, client.get(path, query_string=params))


@EXAMPLES
@given(
    method=st.sampled_from(["PUT", "DELETE", "PATCH", "POST", "OPTIONS", "GET"]),
    path=st.sampled_from(
        [
            "/api/search",
            "/api/search/image",
            "/api/health",
            "/api/openapi.json",
            "/api/clips/x",
            "/api/nope",
            "/",
            "/search",
            "/api",
            "/api/",
        ]
    ),
)
def test_methods_and_unknown_paths(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method)
    _check(path, response)
    if path.startswith("/api") and method in ("PUT", "DELETE", "PATCH"):
        assert response.status_code in (404, 405)


def test_oversized_bodies_are_413_in_the_error_shape(client: FlaskClient) -> None:
    big = json.dumps({"q": "x" * (70 * 1024)})
    response = client.post("/api/search", data=big, content_type="application/json")
    assert response.status_code == 413
    _check("/api/search", response)
    image = {"image": (BytesIO(b"\0" * (9 * 1024 * 1024)), "big.png")}
    response = client.post("/api/search/image", data=image, content_type="multipart/form-data")
    assert response.status_code == 413
    _check("/api/search/image", response)
