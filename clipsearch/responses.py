"""What a search answers, as JSON: one shape for the API (``webapp``) and ``clipsearch search
--json``.

The API adds media URLs through ``links`` (its router builds them); without links the
URL fields are left out, which is how the command line prints the same answer.
"""

from __future__ import annotations

from typing import Any, Protocol

from clipsearch.search import Result, SearchResponse
from clipsearch.windows import Moment


class Links(Protocol):
    """Media URLs of clips: ``clip(id)`` gives ``video_url`` and ``thumbnail_url``,
    ``windows(id, n)`` the thumbnail URLs of its ``n`` windows."""

    def clip(self, clip_id: str) -> dict[str, str]: ...

    def windows(self, clip_id: str, n: int) -> list[str]: ...


NO_GOOD_MATCH = "no good match: every result scores below this model's threshold"


def _span(start_s: float, end_s: float) -> str:
    return f"{start_s:.2f},{end_s:.2f}"


def _moment_dict(moment: Moment) -> dict[str, Any]:
    return {
        "start_s": round(moment.start_s, 3),
        "end_s": round(moment.end_s, 3),
        "score": round(moment.score, 6),
        "segment": moment.index,
    }


# A collapsed result names at most this many of the results folded into it.
MAX_COLLAPSED_IDS = 20


def result_dict(
    result: Result, links: Links | None = None, *, collapsed: bool = False
) -> dict[str, Any]:
    """One search result as the API returns it: the video, its moment, its windows.

    A sequence query's result adds ``moments`` (one per step, in order; ``moment`` is the
    first) and plays from the first moment's start to the last one's end. A result of a
    ``collapsed`` query adds ``collapsed`` (how many results were folded into it) and
    ``collapsed_ids`` (the first ``MAX_COLLAPSED_IDS`` of them, best first).
    """
    payload, moment = result.payload, result.moment
    until = result.moments[-1].end_s if result.moments else moment.end_s
    urls: dict[str, str] = {}
    thumbnails: list[str | None] = [None] * len(result.window_times)
    if links is not None:
        urls = links.clip(result.id)
        urls["play_url"] = f"{urls['video_url']}#t={_span(moment.start_s, until)}"
        thumbnails = list(links.windows(result.id, len(result.window_times)))
    out = {
        "id": result.id,
        "path": payload.get("path"),
        "class": payload.get("class"),
        "label": payload.get("label"),
        "score": round(float(result.score), 6),
        **urls,
        "duration_s": payload.get("duration_s"),
        "width": payload.get("width"),
        "height": payload.get("height"),
        "start_s": round(moment.start_s, 3),
        "end_s": round(moment.end_s, 3),
        "moment": _moment_dict(moment),
        "segments": [
            {
                "start_s": round(start, 3),
                "end_s": round(end, 3),
                "score": round(float(score), 6),
                **({} if thumbnail is None else {"thumbnail_url": thumbnail}),
            }
            for thumbnail, (start, end), score in zip(
                thumbnails, result.window_times, result.window_scores.tolist(), strict=True
            )
        ],
    }
    if result.moments:
        out["moments"] = [
            {**_moment_dict(m), "step": step}
            for m, step in zip(result.moments, result.steps, strict=True)
        ]
    if collapsed:
        out["collapsed"] = len(result.folded)
        out["collapsed_ids"] = list(result.folded[:MAX_COLLAPSED_IDS])
    return out


def response_dict(
    response: SearchResponse, limit: int, given: dict[str, Any], links: Links | None = None
) -> dict[str, Any]:
    """A search response as the API returns it (with ``links``, its media URLs); a
    collapsed one (``collapse`` other than ``none``) adds ``collapse`` and, for ``near``,
    the ``near_threshold`` used."""
    collapsed = response.collapse != "none"
    out = {
        "query": response.query,
        "kind": response.kind,
        "took_ms": round(response.took_ms, 2),
        "offset": response.offset,
        "limit": limit,
        "next_offset": response.next_offset,
        "filters": given,
        "min_score": response.min_score,
        "no_good_match": response.no_good_match,
        "best_score": None if response.best_score is None else round(response.best_score, 6),
        "message": NO_GOOD_MATCH if response.no_good_match else None,
        "results": [result_dict(r, links, collapsed=collapsed) for r in response.results],
    }
    if response.steps:
        out["steps"] = list(response.steps)
    if collapsed:
        out["collapse"] = response.collapse
    if response.collapse == "near":
        near = response.near_threshold
        out["near_threshold"] = None if near is None else round(near, 6)
    return out
