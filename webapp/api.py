"""JSON API under ``/api``: search, health and clip details."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest

from clipsearch.errors import InvalidInput, StoreError
from webapp.clips import detail_dict, find_clip, result_dict
from webapp.services import default_k, get_search

bp = Blueprint("api", __name__, url_prefix="/api")


def _query_from_args() -> tuple[object, object]:
    if "q" not in request.args and "query" not in request.args:
        raise InvalidInput("missing query: pass ?q=...", code="missing_query")
    query = request.args.get("q", request.args.get("query"))
    return query, request.args.get("k", default_k())


def _query_from_json() -> tuple[object, object]:
    if not request.is_json:
        raise InvalidInput(
            "request body must be JSON (Content-Type: application/json)",
            code="invalid_content_type",
        )
    try:
        body: Any = request.get_json()
    except BadRequest:
        raise InvalidInput("request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object", code="invalid_json")
    if "q" not in body and "query" not in body:
        raise InvalidInput('missing query: send {"q": "..."}', code="missing_query")
    query = body["q"] if "q" in body else body["query"]
    return query, body.get("k", default_k())


@bp.route("/search", methods=["GET", "POST"])
def search() -> ResponseReturnValue:
    """Top-k clips for ``q`` (query string on GET, JSON body on POST)."""
    query, k = _query_from_json() if request.method == "POST" else _query_from_args()
    response = get_search().search(query, k)
    return jsonify(
        query=response.query,
        took_ms=round(response.took_ms, 2),
        results=[result_dict(hit) for hit in response.hits],
    )


@bp.get("/health")
def health() -> ResponseReturnValue:
    """Liveness plus what is being served; 503 when the store does not answer."""
    service = get_search()
    try:
        info = service.health()
    except StoreError as exc:
        return jsonify(status="degraded", model=service.model_id, **exc.to_dict()), exc.status
    return jsonify(status="ok", **info)


@bp.get("/clips/<clip_id>")
def clip(clip_id: str) -> ResponseReturnValue:
    """One clip's payload (without filesystem paths) and media URLs."""
    return jsonify(detail_dict(find_clip(clip_id)))
