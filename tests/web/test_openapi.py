"""The OpenAPI document (``webapp/openapi.json``) and the live API agree.

The document is checked by ``openapi-spec-validator``; then every ``/api`` operation is
called through the Flask test client in many cases (successes and every documented
error) and each response body is validated, with JSON Schema 2020-12, against the
schema the document gives for that path, method and status. Response objects use
``additionalProperties: false``, so a field added to or dropped from the API without
the document fails here. The app is real: the tiny untrained CLIP (both towers) and an
in-memory Qdrant store; a closed Qdrant Edge store stands in for a store outage.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate as validate_spec
from PIL import Image
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import webapp.api
from clipsearch.filters import FILTER_KEYS
from clipsearch.model import ClipEncoder
from clipsearch.store.base import ClipPoint, clip_id
from clipsearch.store.client import QdrantClientStore
from clipsearch.store.edge import QdrantEdgeStore
from webapp.settings import Settings

from .conftest import make_app, make_settings, make_store, unit

ROOT = Path(__file__).resolve().parents[2]
DOC_PATH = ROOT / "webapp" / "openapi.json"
DOC: dict[str, Any] = json.loads(DOC_PATH.read_text(encoding="utf-8"))
DOC_URI = "urn:clipsearch:openapi"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
MAX_K = 10

# phrase -> (relative path, class); each point's windows are built around its phrase
PHRASES = {
    "ball bouncing": ("BallBouncing/v_BallBouncing_g01_c01.avi", "BallBouncing"),
    "box spinning": ("BoxSpinning/v_BoxSpinning_g01_c01.avi", "BoxSpinning"),
    "a yellow triangle rising": ("TriangleRising/v_TriangleRising_g08_c01.avi", "TriangleRising"),
}
# indexed without class, label, group or splits: the nullable fields come back as null
LOOSE_PATH = "loose/holiday.mp4"
KNOWN = clip_id(PHRASES["ball bouncing"][0])
LOOSE = clip_id(LOOSE_PATH)
UNKNOWN = clip_id("Nowhere/v_Nowhere_g01_c01.avi")


# ---------------------------------------------------------------- helpers


def png_bytes(
    size: tuple[int, int] = (40, 30), color: tuple[int, int, int] = (250, 30, 30)
) -> bytes:
    buffer = BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def escape(token: str) -> str:
    """A JSON-pointer token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def flask_to_openapi(rule: str) -> str:
    """``/api/clips/<clip_id>`` -> ``/api/clips/{clip_id}`` (converters dropped)."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def resolve(node: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A local ``$ref`` followed (once): the target and its JSON pointer."""
    ref = node.get("$ref")
    if ref is None:
        return node, None
    assert ref.startswith("#/"), ref
    target: Any = DOC
    for token in ref[2:].split("/"):
        target = target[token.replace("~1", "/").replace("~0", "~")]
    return target, ref[1:]


REGISTRY: Registry = Registry().with_resource(
    DOC_URI, Resource.from_contents(DOC, default_specification=DRAFT202012)
)


def response_validator(path: str, method: str, status: int) -> tuple[Draft202012Validator, str]:
    """A validator for the documented JSON body of ``method path`` answering ``status``,
    and the body's documented media type; fails when the status is not documented."""
    responses = DOC["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path}: status {status} not documented"
    response, pointer = resolve(responses[str(status)])
    if pointer is None:
        pointer = f"/paths/{escape(path)}/{method}/responses/{status}"
    (media_type,) = response["content"]
    schema_pointer = f"{pointer}/content/{escape(media_type)}/schema"
    validator = Draft202012Validator(
        {"$ref": f"{DOC_URI}#{schema_pointer}"},
        registry=REGISTRY,
        format_checker=FormatChecker(),
    )
    return validator, media_type


def assert_matches_doc(path: str, method: str, response: Any) -> Any:
    """The response's status is documented for the operation and its body fits the schema."""
    validator, media_type = response_validator(path, method, response.status_code)
    assert response.mimetype == media_type
    body = response.get_json()
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}" for e in errors
    )
    return body


# ---------------------------------------------------------------- the document itself


def test_document_is_valid_openapi_3_1() -> None:
    assert DOC["openapi"].startswith("3.1.")
    validate_spec(DOC)  # raises OpenAPIValidationError with the first problem


def test_document_schemas_are_valid_json_schema() -> None:
    for schema in DOC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_response_objects_are_closed() -> None:
    """``additionalProperties: false`` on every object schema the API answers with."""
    for name in (
        "SearchResponse",
        "Result",
        "Moment",
        "Segment",
        "ScoredSegment",
        "Filters",
        "ClipDetail",
        "Health",
        "HealthDegraded",
        "Error",
        "ErrorDetail",
    ):
        schema = DOC["components"]["schemas"][name]
        assert schema["type"] == "object" and schema["additionalProperties"] is False, name


def test_every_operation_documents_its_errors_with_the_error_schema() -> None:
    error_ref = {"$ref": "#/components/schemas/Error"}
    for path, method, operation in operations():
        responses = operation["responses"]
        assert "200" in responses, (method, path)
        assert "500" in responses, (method, path)
        for status, response in responses.items():
            if not status.startswith(("4", "5")) or path == "/api/health":
                continue
            body, _ = resolve(response)
            assert body["content"]["application/json"]["schema"] == error_ref, (
                method,
                path,
                status,
            )


def test_search_parameters_are_the_ones_the_app_reads() -> None:
    accepted = {"q", "query", "k", "limit", "offset", "min_score", "collapse", *FILTER_KEYS}
    get = DOC["paths"]["/api/search"]["get"]
    names = {resolve(p)[0]["name"] for p in get["parameters"]}
    assert names == accepted | {"then"}  # sequence steps: text queries only
    body = DOC["components"]["schemas"]["SearchRequest"]["properties"]
    assert set(body) == accepted | {"filters", "then"}
    form = DOC["components"]["schemas"]["ImageSearchForm"]["properties"]
    assert set(form) == accepted - {"q", "query"} | {"image"}
    similar = DOC["paths"]["/api/clips/{clip_id}/similar"]["get"]
    assert {resolve(p)[0]["name"] for p in similar["parameters"]} == accepted - {"q", "query"}


def test_document_ships_with_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "openapi.json" in pyproject["tool"]["setuptools"]["package-data"]["webapp"]


# ---------------------------------------------------------------- the app


@pytest.fixture(scope="module")
def video_seconds() -> float:
    return 3.0


@pytest.fixture(scope="module")
def points(encoder: ClipEncoder, video: Path) -> list[ClipPoint]:
    """Three labelled clips of three 1 s windows each, plus one loose clip."""
    rng = np.random.default_rng(0)
    vectors = encoder.encode_text([*PHRASES, "a holiday"])
    points = []
    for i, (rel, cls) in enumerate(PHRASES.values()):
        windows = np.stack([unit(vectors[i] + 0.3 * rng.normal(size=encoder.dim)) for _ in "abc"])
        windows[1] = vectors[i]  # the middle second is the phrase itself
        payload = {
            "path": rel,
            "source": str(video),
            "class": cls,
            "label": cls.lower(),
            "group": 1 + i,
            "clip": 1,
            "split_1": "test" if i < 2 else "train",
            "split_2": "train",
            "split_3": "test",
            "duration_s": 3.0,
            "fps": 10.0,
            "width": 64,
            "height": 48,
            "frame_times": [0.5, 1.5, 2.5],
            "segment_times": [[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]],
            "model": "tiny-random",
            "ingested_at": "2025-01-01T00:00:00+00:00",
        }
        points.append(ClipPoint(clip_id(rel), unit(windows.mean(0)), windows, payload))
    loose = {"path": LOOSE_PATH, "source": str(video), "model": "tiny-random"}
    points.append(ClipPoint(LOOSE, vectors[-1], vectors[-1][None, :], loose))
    return points


class BrokenStore:
    """A store failing in an unexpected way (not a ``StoreError``): the API answers 500."""

    kind = "qdrant-local"

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"secret internals ({name})")


def settings_in(tmp_path: Path, api_key: str | None = None) -> Settings:
    return make_settings(tmp_path, default_k=3, max_k=MAX_K, max_query_chars=200, api_key=api_key)


@pytest.fixture(scope="module")
def clients(
    tmp_path_factory: pytest.TempPathFactory, encoder: ClipEncoder, store: QdrantClientStore
) -> dict[str, FlaskClient]:
    """``ok``: the working app; ``down``: its store refuses; ``broken``: it fails oddly;
    ``locked``: it wants an API key."""
    tmp_path = tmp_path_factory.mktemp("apps")
    closed = QdrantEdgeStore(tmp_path / "closed-store")
    closed.ensure_collection(encoder.dim)
    closed.close()  # every later call raises StoreError
    settings = settings_in(tmp_path)
    return {
        "ok": make_app(settings, encoder, store).test_client(),
        "down": make_app(settings, encoder, closed).test_client(),
        "broken": make_app(settings, encoder, BrokenStore()).test_client(),
        # the server has an API key and these requests carry none
        "locked": make_app(settings_in(tmp_path, "the-key"), encoder, store).test_client(),
    }


@dataclass(frozen=True)
class Case:
    """One request: the documented operation it exercises and the status it must get."""

    id: str
    method: str
    path: str  # the OpenAPI path template
    status: int
    url: str | None = None  # the concrete URL (default: ``path``)
    kwargs: dict[str, Any] = field(default_factory=dict)
    app: str = "ok"
    code: str | None = None  # the error code, for 4xx/5xx
    check: Callable[[Any], None] | None = None

    def open(self, clients: dict[str, FlaskClient]) -> Any:
        kwargs = dict(self.kwargs)
        if "data" in kwargs and callable(kwargs["data"]):
            kwargs["data"] = kwargs["data"]()  # fresh file objects for every request
        return clients[self.app].open(self.url or self.path, method=self.method, **kwargs)


def _no_good_match(body: dict[str, Any]) -> None:
    assert body["results"] == [] and body["no_good_match"] is True
    assert isinstance(body["best_score"], float) and isinstance(body["message"], str)


def _last_page(body: dict[str, Any]) -> None:
    assert body["next_offset"] is None and body["results"]


def _has_next(body: dict[str, Any]) -> None:
    assert isinstance(body["next_offset"], int)


def _filters_echoed(body: dict[str, Any]) -> None:
    assert body["filters"] == {
        "class": ["BallBouncing", "BoxSpinning"],
        "model": ["tiny-random"],
        "split": "1:test",
        "min_duration": 0.5,
        "max_duration": 10.0,
    }
    assert body["min_score"] is None
    assert {r["class"] for r in body["results"]} <= {"BallBouncing", "BoxSpinning"}


def _loose_nulls(body: dict[str, Any]) -> None:
    assert body["class"] is None and body["group"] is None and body["split_1"] is None
    assert body["segment_times"] is None and body["frame_times"] is None


def _known_id(body: dict[str, Any]) -> None:
    assert body["id"] == KNOWN


def _image_results(body: dict[str, Any]) -> None:
    assert body["kind"] == "image" and body["query"] == "red.png" and body["results"]


def _not_itself(body: dict[str, Any]) -> None:
    assert body["kind"] == "clip" and KNOWN not in {r["id"] for r in body["results"]}


def _degraded(body: dict[str, Any]) -> None:
    assert body["status"] == "degraded" and body["error"]["code"] == "store_unavailable"


def _sequence(*steps: str) -> Callable[[dict[str, Any]], None]:
    def check(body: dict[str, Any]) -> None:
        assert body["steps"] == list(steps) and body["query"] == " then ".join(steps)
        assert body["results"]
        for r in body["results"]:
            assert [m["step"] for m in r["moments"]] == list(steps)
            starts = [m["start_s"] for m in r["moments"]]
            assert starts == sorted(starts) and len(set(starts)) == len(starts)
            assert r["moment"] == {k: v for k, v in r["moments"][0].items() if k != "step"}

    return check


def _single_step(body: dict[str, Any]) -> None:
    assert "steps" not in body and all("moments" not in r for r in body["results"])


def _collapsed(mode: str) -> Callable[[dict[str, Any]], None]:
    def check(body: dict[str, Any]) -> None:
        assert body["collapse"] == mode and body["results"]
        assert ("near_threshold" in body) == (mode == "near")
        for r in body["results"]:
            assert r["collapsed"] == len(r["collapsed_ids"])

    return check


def _not_collapsed(body: dict[str, Any]) -> None:
    assert "collapse" not in body and "near_threshold" not in body
    assert all("collapsed" not in r and "collapsed_ids" not in r for r in body["results"])


def _document(body: dict[str, Any]) -> None:
    assert body == DOC


def _image(name: str = "red.png", content: bytes | None = None, **fields: Any) -> Callable[[], Any]:
    def data() -> dict[str, Any]:
        return {"image": (BytesIO(png_bytes() if content is None else content), name), **fields}

    return data


IMAGE = "/api/search/image"
SEARCH = "/api/search"
CLIP = "/api/clips/{clip_id}"
SIMILAR = "/api/clips/{clip_id}/similar"
HEALTH = "/api/health"
OPENAPI = "/api/openapi.json"
MULTIPART = "multipart/form-data"
FULL_FILTERS: dict[str, Any] = {
    "class": ["BallBouncing", "BoxSpinning"],
    "split": "1:test",
    "min_duration": "0.5",
    "max_duration": "10",
    "model": "tiny-random",
    "min_score": "off",
}


def _get(id: str, path: str, status: int, query: Any = None, **kw: Any) -> Case:
    url = path.replace("{clip_id}", kw.pop("clip", KNOWN))
    return Case(id, "GET", path, status, url, {"query_string": query or {}}, **kw)


def _post_json(id: str, status: int, body: Any, **kw: Any) -> Case:
    return Case(id, "POST", SEARCH, status, None, {"json": body}, **kw)


def _post_raw(id: str, status: int, data: Any, content_type: str, **kw: Any) -> Case:
    return Case(
        id, "POST", SEARCH, status, None, {"data": data, "content_type": content_type}, **kw
    )


def _post_image(id: str, status: int, data: Any, **kw: Any) -> Case:
    kwargs = {"data": data, "content_type": kw.pop("content_type", MULTIPART)}
    return Case(id, "POST", IMAGE, status, None, kwargs, **kw)


CASES = [
    # GET /api/search
    _get("get-ok", SEARCH, 200, {"q": "ball bouncing"}, check=_has_next),
    _get("get-single-step", SEARCH, 200, {"q": "ball bouncing"}, check=_single_step),
    _get(
        "get-sequence",
        SEARCH,
        200,
        {"q": "ball bouncing then box spinning"},
        check=_sequence("ball bouncing", "box spinning"),
    ),
    _get(
        "get-then",
        SEARCH,
        200,
        {"q": "ball bouncing", "then": ["box spinning", "ball"], "k": 5, "min_score": "off"},
        check=_sequence("ball bouncing", "box spinning", "ball"),
    ),
    _get(
        "get-collapse-group",
        SEARCH,
        200,
        {"q": "ball", "collapse": "group"},
        check=_collapsed("group"),
    ),
    _get(
        "get-collapse-near",
        SEARCH,
        200,
        {"q": "ball", "collapse": "near"},
        check=_collapsed("near"),
    ),
    _get("get-collapse-none", SEARCH, 200, {"q": "ball", "collapse": "none"}, check=_not_collapsed),
    _get(
        "get-collapse-sequence",
        SEARCH,
        200,
        {"q": "ball bouncing then box spinning", "collapse": "near", "min_score": "off"},
        check=_collapsed("near"),
    ),
    _get("get-collapse-bad", SEARCH, 400, {"q": "b", "collapse": "all"}, code="invalid_collapse"),
    _get("get-empty-step", SEARCH, 400, {"q": "then box spinning"}, code="empty_step"),
    _get("get-empty-then", SEARCH, 400, {"q": "ball", "then": " "}, code="empty_step"),
    _get("get-locked", SEARCH, 401, {"q": "ball"}, app="locked", code="unauthorized"),
    _post_json("post-locked", 401, {"q": "ball"}, app="locked", code="unauthorized"),
    _get("get-alias", SEARCH, 200, {"query": "box spinning", "limit": 2}),
    _get("get-filters", SEARCH, 200, {"q": "ball", "k": 5, **FULL_FILTERS}, check=_filters_echoed),
    _get("get-comma-classes", SEARCH, 200, {"q": "ball", "class": "BallBouncing,BoxSpinning"}),
    _get("get-last-page", SEARCH, 200, {"q": "ball", "k": 3, "offset": 2}, check=_last_page),
    _get("get-empty", SEARCH, 200, {"q": "ball", "class": "NoSuchClass"}),
    _get(
        "get-no-good-match", SEARCH, 200, {"q": "zebra", "min_score": 0.999}, check=_no_good_match
    ),
    _get("get-missing-q", SEARCH, 400, {"k": 2}, code="missing_query"),
    _get("get-empty-q", SEARCH, 400, {"q": "  "}, code="empty_query"),
    _get("get-invisible-q", SEARCH, 400, {"q": "\u200b\x00\u200b"}, code="empty_query"),
    _get("get-long-q", SEARCH, 400, {"q": "x" * 201}, code="query_too_long"),
    _get("get-k-text", SEARCH, 400, {"q": "ball", "k": "abc"}, code="invalid_k"),
    _get("get-k-zero", SEARCH, 400, {"q": "ball", "k": 0}, code="invalid_k"),
    _get("get-k-underscore", SEARCH, 400, {"q": "ball", "k": "1_0"}, code="invalid_k"),
    _get("get-k-5000-digits", SEARCH, 400, {"q": "ball", "k": "9" * 5000}, code="invalid_k"),
    _get("get-k-other-digits", SEARCH, 400, {"q": "ball", "k": "\u0665"}, code="invalid_k"),
    _get("get-k-big", SEARCH, 400, {"q": "ball", "limit": MAX_K + 1}, code="invalid_k"),
    _get("get-offset-neg", SEARCH, 400, {"q": "ball", "offset": -1}, code="invalid_offset"),
    _get("get-offset-text", SEARCH, 400, {"q": "ball", "offset": "x"}, code="invalid_offset"),
    _get("get-offset-big", SEARCH, 400, {"q": "ball", "offset": 5000}, code="invalid_offset"),
    _get("get-split", SEARCH, 400, {"q": "ball", "split": "4:test"}, code="invalid_filter"),
    _get("get-split-side", SEARCH, 400, {"q": "ball", "split": "1:val"}, code="invalid_filter"),
    _get("get-duration", SEARCH, 400, {"q": "b", "min_duration": "long"}, code="invalid_filter"),
    _get("get-duration-neg", SEARCH, 400, {"q": "b", "max_duration": -1}, code="invalid_filter"),
    _get(
        "get-duration-order",
        SEARCH,
        400,
        {"q": "b", "min_duration": 5, "max_duration": 1},
        code="invalid_filter",
    ),
    _get("get-min-score-big", SEARCH, 400, {"q": "b", "min_score": 2}, code="invalid_min_score"),
    _get("get-min-score-text", SEARCH, 400, {"q": "b", "min_score": "x"}, code="invalid_min_score"),
    _get("get-down", SEARCH, 503, {"q": "ball"}, app="down", code="store_unavailable"),
    _get("get-broken", SEARCH, 500, {"q": "ball"}, app="broken", code="internal_error"),
    # POST /api/search
    _post_json("post-ok", 200, {"q": "box spinning", "k": 2}, check=_has_next),
    _post_json(
        "post-then",
        200,
        {"q": "box spinning", "then": ["ball bouncing"], "class": "BoxSpinning"},
        check=_sequence("box spinning", "ball bouncing"),
    ),
    _post_json("post-then-string", 200, {"q": "box spinning", "then": "ball"}),
    _post_json("post-collapse", 200, {"q": "box", "collapse": "group"}, check=_collapsed("group")),
    _post_json("post-collapse-null", 200, {"q": "box", "collapse": None}, check=_not_collapsed),
    _post_json("post-collapse-bad", 400, {"q": "b", "collapse": 3}, code="invalid_collapse"),
    _post_json("post-empty-step", 400, {"q": "box spinning, then"}, code="empty_step"),
    _post_json("post-then-number", 400, {"q": "ball", "then": [1]}, code="invalid_query"),
    _post_json("post-steps", 400, {"q": "a", "then": ["b"] * 4}, code="too_many_steps"),
    _post_json("post-filters-object", 200, {"query": "ball", "filters": FULL_FILTERS, "limit": 5}),
    _post_json("post-flat-filters", 200, {"q": "ball", **FULL_FILTERS}, check=_filters_echoed),
    _post_json("post-min-score-null", 200, {"q": "ball", "min_score": None, "offset": 1}),
    _post_json("post-no-good-match", 200, {"q": "zebra", "min_score": 0.999}, check=_no_good_match),
    _post_json("post-missing-q", 400, {"k": 3}, code="missing_query"),
    _post_json("post-q-number", 400, {"q": 42}, code="invalid_query"),
    _post_json("post-k-bool", 400, {"q": "ball", "k": True}, code="invalid_k"),
    _post_json("post-k-float", 400, {"q": "ball", "k": 2.5}, code="invalid_k"),
    _post_json("post-offset", 400, {"q": "ball", "offset": -2}, code="invalid_offset"),
    _post_json("post-offset-false", 400, {"q": "ball", "offset": False}, code="invalid_offset"),
    _post_json("post-offset-list", 400, {"q": "ball", "offset": []}, code="invalid_offset"),
    _post_json("post-filters-list", 400, {"q": "b", "filters": []}, code="invalid_filter"),
    _post_json("post-class-number", 400, {"q": "b", "class": [1]}, code="invalid_filter"),
    _post_json("post-split-number", 400, {"q": "b", "split": 1}, code="invalid_filter"),
    _post_json("post-min-score", 400, {"q": "b", "min_score": [0.5]}, code="invalid_min_score"),
    _post_raw("post-bad-json", 400, '{"q": "ball"', "application/json", code="invalid_json"),
    _post_raw("post-not-object", 400, '["ball"]', "application/json", code="invalid_json"),
    _post_raw("post-text-plain", 400, '{"q": "b"}', "text/plain", code="invalid_content_type"),
    _post_raw(
        "post-form",
        400,
        "q=ball",
        "application/x-www-form-urlencoded",
        code="invalid_content_type",
    ),
    _post_json("post-huge", 413, {"q": "x" * 100_000}, code="payload_too_large"),
    _post_json("post-down", 503, {"q": "ball"}, app="down", code="store_unavailable"),
    _post_json("post-broken", 500, {"q": "ball"}, app="broken", code="internal_error"),
    # POST /api/search/image
    _post_image("image-ok", 200, _image(), check=_image_results),
    _post_image("image-locked", 401, _image(), app="locked", code="unauthorized"),
    _post_image("image-fields", 200, _image(k="2", offset="1", **FULL_FILTERS)),
    _post_image("image-collapse", 200, _image(collapse="near"), check=_collapsed("near")),
    _post_image("image-bad-collapse", 400, _image(collapse="x"), code="invalid_collapse"),
    _post_image("image-no-good-match", 200, _image(min_score="0.999"), check=_no_good_match),
    _post_image("image-missing", 400, lambda: {"k": "2"}, code="missing_image"),
    _post_image("image-no-name", 400, _image(name=""), code="missing_image"),
    _post_image("image-invalid", 400, _image(content=b"not an image"), code="invalid_image"),
    _post_image("image-empty-file", 400, _image(content=b""), code="invalid_image"),
    _post_image(
        "image-as-json",
        400,
        '{"image": "x"}',
        content_type="application/json",
        code="missing_image",
    ),
    _post_image("image-bad-k", 400, _image(k="0"), code="invalid_k"),
    _post_image("image-bad-split", 400, _image(split="x"), code="invalid_filter"),
    _post_image(
        "image-huge",
        413,
        _image(content=b"\0" * (9 * 1024 * 1024)),
        code="request_entity_too_large",
    ),
    _post_image("image-down", 503, _image(), app="down", code="store_unavailable"),
    _post_image("image-broken", 500, _image(), app="broken", code="internal_error"),
    # GET /api/clips/{clip_id}
    _get("clip-ok", CLIP, 200),
    _get("clip-locked", CLIP, 401, app="locked", code="unauthorized"),
    _get("clip-loose", CLIP, 200, clip=LOOSE, check=_loose_nulls),
    _get("clip-unknown", CLIP, 404, clip=UNKNOWN, code="clip_not_found"),
    _get("clip-not-uuid", CLIP, 404, clip="not-a-uuid", code="clip_not_found"),
    _get("clip-upper-case", CLIP, 200, clip=KNOWN.upper(), check=_known_id),
    _get("clip-no-hyphens", CLIP, 404, clip=KNOWN.replace("-", ""), code="clip_not_found"),
    _get("clip-down", CLIP, 503, app="down", code="store_unavailable"),
    _get("clip-broken", CLIP, 500, app="broken", code="internal_error"),
    # GET /api/clips/{clip_id}/similar
    _get("similar-ok", SIMILAR, 200, check=_not_itself),
    _get("similar-locked", SIMILAR, 401, app="locked", code="unauthorized"),
    _get(
        "similar-page", SIMILAR, 200, {"k": 1, "offset": 1, "class": "BoxSpinning,TriangleRising"}
    ),
    _get("similar-threshold", SIMILAR, 200, {"min_score": 0.9999}, check=_no_good_match),
    _get("similar-collapse", SIMILAR, 200, {"collapse": "group"}, check=_collapsed("group")),
    _get("similar-bad-collapse", SIMILAR, 400, {"collapse": "G"}, code="invalid_collapse"),
    _get("similar-bad-k", SIMILAR, 400, {"k": "many"}, code="invalid_k"),
    _get("similar-bad-filter", SIMILAR, 400, {"split": "9:test"}, code="invalid_filter"),
    _get("similar-unknown", SIMILAR, 404, clip=UNKNOWN, code="clip_not_found"),
    _get("similar-down", SIMILAR, 503, app="down", code="store_unavailable"),
    _get("similar-broken", SIMILAR, 500, app="broken", code="internal_error"),
    # GET /api/health
    _get("health-ok", HEALTH, 200),
    _get("health-down", HEALTH, 503, app="down", check=_degraded),
    _get("health-broken", HEALTH, 500, app="broken", code="internal_error"),
    # GET /api/openapi.json
    _get("openapi-ok", OPENAPI, 200, check=_document),
    _get("openapi-broken", OPENAPI, 500, app="broken", code="internal_error"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_response_matches_the_document(
    case: Case, clients: dict[str, FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    if case.app == "broken" and case.path == OPENAPI:

        def no_document() -> dict[str, Any]:
            raise FileNotFoundError("secret internals: webapp/openapi.json")

        monkeypatch.setattr(webapp.api, "openapi_document", no_document)
    response = case.open(clients)
    assert response.status_code == case.status, response.get_data(as_text=True)[:500]
    body = assert_matches_doc(case.path, case.method.lower(), response)
    if case.code is not None:
        assert body["error"]["code"] == case.code
    if response.status_code >= 500:
        assert "secret internals" not in response.get_data(as_text=True)
    if case.check is not None:
        case.check(body)


def test_cases_cover_every_documented_response() -> None:
    documented = {
        (path, method.upper(), int(status))
        for path, method, operation in operations()
        for status in operation["responses"]
    }
    exercised = {(c.path, c.method, c.status) for c in CASES}
    assert documented - exercised == set()
    assert exercised - documented == set()


def test_health_with_a_model_mismatch_has_a_warning(
    tmp_path: Path, encoder: ClipEncoder, store: QdrantClientStore
) -> None:
    vector = encoder.encode_text(["ball"])[0]
    point = ClipPoint(KNOWN, vector, vector[None, :], {"path": "a.avi", "model": "another"})
    with make_store(encoder.dim, [point]) as other:
        response = make_app(settings_in(tmp_path), encoder, other).test_client().get(HEALTH)
        body = assert_matches_doc(HEALTH, "get", response)
    assert "another" in body["warning"] and body["store_model"] == "another"


def test_every_api_route_is_documented_and_vice_versa(clients: dict[str, FlaskClient]) -> None:
    app = clients["ok"].application
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule == "/api" or rule.rule.startswith("/api/"):
            for method in rule.methods or ():
                if method not in ("HEAD", "OPTIONS"):
                    routes.add((flask_to_openapi(rule.rule), method.lower()))
    documented = {(path, method) for path, method, _ in operations()}
    assert routes == documented
    assert all(path.startswith("/api/") for path in DOC["paths"])


def test_served_document_is_the_file(clients: dict[str, FlaskClient]) -> None:
    response = clients["ok"].get(OPENAPI)
    assert response.status_code == 200
    assert response.get_json() == DOC


def test_validation_catches_drift() -> None:
    """The schemas are strict enough to notice an extra or a mistyped field."""
    validator, _ = response_validator(SEARCH, "get", 200)
    good = {
        "query": "q",
        "kind": "text",
        "took_ms": 1.0,
        "offset": 0,
        "limit": 1,
        "next_offset": None,
        "filters": {},
        "min_score": None,
        "no_good_match": False,
        "best_score": None,
        "message": None,
        "results": [],
    }
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "extra": 1})
    assert not validator.is_valid({**good, "next_offset": "1"})
    assert not validator.is_valid({**good, "kind": "audio"})
    assert not validator.is_valid({k: v for k, v in good.items() if k != "message"})
    assert validator.is_valid({**good, "steps": ["a ball", "a box"]})
    assert not validator.is_valid({**good, "steps": "a ball then a box"})
    assert not validator.is_valid({**good, "steps": ["a ball"]})
    assert validator.is_valid({**good, "collapse": "near", "near_threshold": 0.93})
    assert validator.is_valid({**good, "collapse": "group"})
    assert not validator.is_valid({**good, "collapse": "sometimes"})
    assert not validator.is_valid({**good, "near_threshold": 2})
    error, _ = response_validator(SEARCH, "get", 400)
    assert error.is_valid({"error": {"code": "invalid_k", "message": "k must be ..."}})
    assert not error.is_valid({"error": {"code": "invalid_k"}})
    assert not error.is_valid({"error": {"code": "x", "message": "m"}, "detail": "?"})


@pytest.mark.parametrize("size", [100_000, 9_000_000])
def test_a_chunked_json_body_is_held_to_the_same_limit(
    clients: dict[str, FlaskClient], size: int
) -> None:
    """A body sent in chunks says no length beforehand; it is refused as one that does."""
    body = json.dumps({"q": "x" * size}).encode()
    response = clients["ok"].post(
        SEARCH,
        input_stream=BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # as Gunicorn says of chunked
    )
    assert response.status_code == 413
    assert assert_matches_doc(SEARCH, "post", response)["error"]["code"] == "payload_too_large"
