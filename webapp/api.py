"""JSON API under ``/api``: text, image and more-like-this search, clips, health, OpenAPI."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from clipsearch import telemetry
from clipsearch.errors import InvalidInput, StoreError
from webapp import metrics, requestlog
from webapp.clips import detail_dict, find_clip, response_dict
from webapp.errors import RETRY_AFTER_S
from webapp.images import read_upload
from webapp.query import SearchParams, from_args, from_mapping
from webapp.services import default_k, get_search, get_services

bp = Blueprint("api", __name__, url_prefix="/api")

# JSON bodies stay small; only image uploads may use the app's larger request limit.
MAX_JSON_BYTES = 64 * 1024


def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise InvalidInput(
            "request body must be JSON (Content-Type: application/json)",
            code="invalid_content_type",
        )
    data = _read_body(MAX_JSON_BYTES)
    if data is None:
        raise InvalidInput(
            f"JSON body over {MAX_JSON_BYTES // 1024} KB", code="payload_too_large", status=413
        )
    try:
        body: Any = current_app.json.loads(data)
    except ValueError:
        raise InvalidInput("request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object", code="invalid_json")
    return body


def _read_body(limit: int) -> bytes | None:
    """The request body, or None when it is over ``limit`` bytes: read, not taken from
    Content-Length alone, since a chunked body says no length beforehand."""
    if (request.content_length or 0) > limit:
        return None
    data = bytearray()
    try:
        while len(data) <= limit:
            chunk = request.stream.read(limit + 1 - len(data))
            if not chunk:
                return bytes(data)
            data += chunk
    except RequestEntityTooLarge:  # over the app's MAX_CONTENT_LENGTH
        pass
    return None


def _params() -> SearchParams:
    return from_args(request.args, default_k())


def _limit(params: SearchParams) -> int:
    try:
        return int(params.k)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return default_k()


def _explicit(min_score: object) -> object:
    """The threshold asked for, or None: the calibrated default is for text queries only."""
    return None if min_score == "default" else min_score


def _respond(response: Any, params: SearchParams) -> ResponseReturnValue:
    metrics.answered(response)
    with telemetry.timed("render"):
        return jsonify(response_dict(response, _limit(params), params.given))


@bp.route("/search", methods=["GET", "POST"])
def search() -> ResponseReturnValue:
    """Videos for a text query ``q`` (query string on GET, JSON body on POST); "A then B"
    or ``then`` steps make it a sequence query; ``collapse`` (default ``none``) folds
    near-duplicate results."""
    if request.method == "POST":
        body = _json_body()
        if "q" not in body and "query" not in body:
            raise InvalidInput('missing query: send {"q": "..."}', code="missing_query")
        query = body["q"] if "q" in body else body["query"]
        params = from_mapping(body, default_k())
    else:
        if "q" not in request.args and "query" not in request.args:
            raise InvalidInput("missing query: pass ?q=...", code="missing_query")
        query = request.args.get("q", request.args.get("query"))
        params = _params()
    requestlog.searched_for(query)
    response = get_search().search(
        query,
        params.k,
        filter=params.filter,
        offset=params.offset,
        min_score=params.min_score,
        then=params.then,
        collapse=params.collapse,
    )
    return _respond(response, params)


@bp.post("/search/image")
def search_image() -> ResponseReturnValue:
    """Videos for an uploaded image (multipart field ``image``); other fields as on GET."""
    image, name = read_upload(request.files.get("image"))
    params = from_args(request.form, default_k())
    response = get_search().search_image(
        image,
        params.k,
        filter=params.filter,
        offset=params.offset,
        min_score=_explicit(params.min_score),
        name=name,
        collapse=params.collapse,
    )
    return _respond(response, params)


@bp.get("/clips/<clip_id>/similar")
def similar(clip_id: str) -> ResponseReturnValue:
    """More like this: videos close to an indexed clip (the clip itself left out)."""
    hit = find_clip(clip_id)
    params = _params()
    response = get_search().more_like(
        hit.id,
        params.k,
        filter=params.filter,
        offset=params.offset,
        min_score=_explicit(params.min_score),
        collapse=params.collapse,
    )
    return _respond(response, params)


@bp.get("/health")
def health() -> ResponseReturnValue:
    """Liveness plus what is being served; 503 when the store does not answer."""
    service = get_search()
    try:
        info = service.health()
    except StoreError as exc:
        body = jsonify(status="degraded", model=service.model_id, **exc.to_dict())
        return body, exc.status, {"Retry-After": str(RETRY_AFTER_S)}
    return jsonify(status="ok", alias=get_services().live.stats(), **info)


@bp.get("/clips/<clip_id>")
def clip(clip_id: str) -> ResponseReturnValue:
    """One clip's payload (without filesystem paths), media URLs and windows."""
    return jsonify(detail_dict(find_clip(clip_id)))


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of this API (``webapp/openapi.json``)."""
    text = resources.files("webapp").joinpath("openapi.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """This API's OpenAPI document."""
    return jsonify(openapi_document())
