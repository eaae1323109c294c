"""HTML pages: the search page."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from clipsearch.errors import InvalidInput, StoreError
from webapp.clips import result_dict
from webapp.errors import ErrorInfo, describe
from webapp.services import default_k, get_search

log = logging.getLogger(__name__)

bp = Blueprint("pages", __name__)

EXAMPLE_QUERIES = ("a ball bouncing", "a box spinning", "a red triangle rising")


def footer_info() -> dict[str, Any]:
    """Model id and clip count for the footer (the count is None if the store is down)."""
    service = get_search()
    try:
        clips: int | None = service.store.count()
    except StoreError as exc:
        log.warning("footer: %s", exc)
        clips = None
    return {"model": service.model_id, "clips": clips}


@bp.get("/")
def index() -> ResponseReturnValue:
    """Search box; with ``?q=`` a grid of matching clips, or the reason there is none."""
    query = request.args.get("q", "").strip() or None  # a blank box is the start page
    results: list[dict[str, Any]] = []
    error: ErrorInfo | None = None
    took_ms: float | None = None
    if query is not None:
        try:
            response = get_search().search(query, request.args.get("k", default_k()))
        except (InvalidInput, StoreError) as exc:
            error = describe(exc)
        else:
            results = [result_dict(hit) for hit in response.hits]
            took_ms = response.took_ms
    html = render_template(
        "index.html",
        query=query or "",
        searched=query is not None,
        results=results,
        took_ms=took_ms,
        error=error,
        examples=EXAMPLE_QUERIES,
        footer=footer_info(),
    )
    return html, error.status if error else 200
