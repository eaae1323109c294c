"""HTML pages: search (text or image, with filters and pages) and a clip's own page.

The search page collapses near-duplicates by group unless ``?collapse=`` says otherwise
(a UCF101 page is otherwise a few scenes, each several times); a result that others were
folded into links to "N more like this": the same search with ``collapse=none``, from
that result's place in the full ranking. The image form does not collapse (its results
page cannot link back to a POST).
"""

from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask.typing import ResponseReturnValue

from clipsearch import telemetry
from clipsearch.errors import ClipSearchError, InvalidInput, StoreError
from clipsearch.responses import NO_GOOD_MATCH
from clipsearch.search import SearchResponse
from webapp import metrics, requestlog
from webapp.clips import detail_dict, find_clip, response_dict
from webapp.errors import RETRY_AFTER_S, ErrorInfo, describe
from webapp.images import read_upload
from webapp.query import SearchParams, from_args
from webapp.services import default_k, get_search

log = logging.getLogger(__name__)

bp = Blueprint("pages", __name__)

EXAMPLE_QUERIES = ("a ball bouncing", "a box spinning", "a red triangle rising")
SIMILAR_K = 8
PAGE_COLLAPSE = "group"  # the search page's default (the API's is "none")
COLLAPSE_CHOICES = (
    ("group", "one per source video"),
    ("near", "one per look-alike set"),
    ("none", "show all"),
)


def footer_info() -> dict[str, Any]:
    """Model id and clip count for the footer (the count is None if the store is down)."""
    service = get_search()
    try:
        clips: int | None = service.store.count()
    except StoreError as exc:
        log.warning("footer: %s", exc)
        clips = None
    return {"model": service.model_id, "clips": clips}


def class_options() -> list[tuple[str, int]]:
    """(class, clip count) for the filter menu; empty if the store cannot say."""
    try:
        counts = get_search().store.facet("class", limit=200)
    except ClipSearchError as exc:
        log.warning("class filter: %s", exc)
        return []
    return sorted(counts.items())


def _page_links(params: SearchParams, response: SearchResponse) -> dict[str, str | None]:
    """URLs of the previous and next result pages (same query and filters)."""
    args: dict[str, Any] = request.args.to_dict(flat=False)

    def link(offset: int) -> str:
        return url_for("pages.index", **{**args, "offset": str(offset)})

    step = int(str(params.k)) if str(params.k).isdigit() else default_k()
    prev = link(max(0, response.offset - step)) if response.offset > 0 else None
    following = link(response.next_offset) if response.next_offset is not None else None
    # "no good match": the same search (filters kept) without the threshold
    args.pop("offset", None)
    anyway = url_for("pages.index", **{**args, "min_score": "off"})
    return {"prev": prev, "next": following, "anyway": anyway}


def _more_links(response: SearchResponse) -> dict[str, str]:
    """For each result others were folded into: the same search without collapsing,
    from that result's place in the full ranking (its copies follow it)."""
    args: dict[str, Any] = request.args.to_dict(flat=False)
    args.pop("offset", None)
    limit = get_search().limits.max_offset
    return {
        r.id: url_for(
            "pages.index", **{**args, "collapse": "none", "offset": str(min(r.rank or 0, limit))}
        )
        for r in response.results
        if r.folded
    }


def _render(
    *,
    query: str,
    searched: bool,
    params: SearchParams | None,
    response: SearchResponse | None,
    error: ErrorInfo | None,
    kind: str = "text",
    collapse: object = PAGE_COLLAPSE,
) -> ResponseReturnValue:
    given = params.given if params else {}
    # the store is asked for these first: its time is not the page's rendering
    classes, footer = class_options(), footer_info()
    if response is not None:
        metrics.answered(response)
    with telemetry.timed("render") if response is not None else nullcontext():
        body = response_dict(response, len(response.results), given) if response else None
        if body is not None and response is not None and kind == "text":
            more = _more_links(response)
            for r in body["results"]:
                if r["id"] in more:
                    r["more_url"] = more[r["id"]]
        html = render_template(
            "index.html",
            query=query,
            kind=kind,
            searched=searched,
            response=body,
            pages=_page_links(params, response) if response and params and kind == "text" else {},
            error=error,
            no_good_match=NO_GOOD_MATCH,
            examples=EXAMPLE_QUERIES,
            classes=classes,
            given=given,
            collapse=collapse,
            collapse_choices=COLLAPSE_CHOICES,
            image_search=get_search().image_queries,
            footer=footer,
        )
    if error is None:
        return html, 200
    headers = {"Retry-After": str(RETRY_AFTER_S)} if error.code == StoreError.code else {}
    return html, error.status, headers


@bp.get("/")
def index() -> ResponseReturnValue:
    """Search box and filters; with ``?q=`` the matching videos, or why there are none."""
    query = request.args.get("q", "").strip() or None  # a blank box is the start page
    requestlog.searched_for(query)
    params: SearchParams | None = None
    response: SearchResponse | None = None
    error: ErrorInfo | None = None
    collapse: object = request.args.get("collapse") or PAGE_COLLAPSE
    try:
        params = from_args(request.args, default_k())
        if query is not None:
            response = get_search().search(
                query,
                params.k,
                filter=params.filter,
                offset=params.offset,
                min_score=params.min_score,
                then=params.then,
                collapse=collapse,
            )
    except (InvalidInput, StoreError) as exc:
        if isinstance(exc, StoreError):
            metrics.store_failed(exc)
        error = describe(exc)
    return _render(
        query=query or "",
        searched=query is not None,
        params=params,
        response=response,
        error=error,
        collapse=collapse,
    )


@bp.post("/search/image")
def image_search() -> ResponseReturnValue:
    """Results for an uploaded image (the search page's second form)."""
    params: SearchParams | None = None
    response: SearchResponse | None = None
    error: ErrorInfo | None = None
    name = "image"
    try:
        params = from_args(request.form, default_k())
        image, name = read_upload(request.files.get("image"))
        threshold = None if params.min_score == "default" else params.min_score
        response = get_search().search_image(
            image,
            params.k,
            filter=params.filter,
            min_score=threshold,
            name=name,
            collapse=params.collapse,
        )
    except (InvalidInput, StoreError) as exc:
        if isinstance(exc, StoreError):
            metrics.store_failed(exc)
        error = describe(exc)
    return _render(
        query="",
        searched=True,
        params=params,
        response=response,
        error=error,
        kind="image",
    )


@bp.get("/clips/<clip_id>")
def clip(clip_id: str) -> ResponseReturnValue:
    """One video: the player (from ``?t=`` seconds), its windows and similar videos."""
    hit = find_clip(clip_id)
    detail = detail_dict(hit)
    start = request.args.get("t", type=float)
    end = detail.get("duration_s")
    if start is not None and not 0 <= start <= (end if isinstance(end, int | float) else math.inf):
        start = None  # negative, NaN, infinite or past the end
    similar: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    k = min(SIMILAR_K, get_search().limits.max_k)
    try:
        response = get_search().more_like(hit.id, k)
        similar = response_dict(response, k, {})
    except StoreError as exc:
        error = describe(exc)
    return render_template(
        "clip.html",
        clip=detail,
        start=start,
        here=_window_at(detail["segments"], start),
        similar=similar,
        error=error,
        footer=footer_info(),
    )


def _window_at(windows: list[dict[str, Any]], t: float | None) -> int | None:
    """Index of the one window showing at ``t``: of those spanning it (windows overlap),
    the one whose centre is nearest (the later one on a tie); None when none spans ``t``."""
    if t is None:
        return None
    last = len(windows) - 1
    spanning = [
        i
        for i, s in enumerate(windows)
        if s["start_s"] <= t < s["end_s"] or (i == last and t == s["end_s"])
    ]
    if not spanning:
        return None
    return min(
        spanning,
        key=lambda i: (abs((windows[i]["start_s"] + windows[i]["end_s"]) / 2 - t), -i),
    )
