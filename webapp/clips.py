"""Looking clips up by id and turning hits into what the API and the pages show."""

from __future__ import annotations

import uuid
from typing import Any

from flask import url_for

from clipsearch.errors import NotFound
from clipsearch.search import Result, SearchResponse, stored_windows
from clipsearch.segments import Moment
from clipsearch.store.base import Hit
from webapp.services import get_search

# Payload keys the API shows for one clip ("source", a filesystem path, is never shown).
DETAIL_KEYS = (
    "path",
    "class",
    "label",
    "group",
    "clip",
    "split_1",
    "split_2",
    "split_3",
    "duration_s",
    "fps",
    "width",
    "height",
    "frame_times",
    "segment_times",
    "model",
    "ingested_at",
)


def canonical_clip_id(raw: str) -> str | None:
    """The canonical (lower-case, hyphenated) form of a hyphenated UUID string in either
    case, else None."""
    try:
        parsed = str(uuid.UUID(raw))
    except ValueError:
        return None
    return parsed if parsed == raw.lower() else None


def find_clip(raw_id: str) -> Hit:
    """The indexed clip with this id; ``NotFound`` for unknown or malformed ids."""
    clip_id = canonical_clip_id(raw_id)
    hit = get_search().clip(clip_id) if clip_id is not None else None
    if hit is None:
        raise NotFound(f"no clip with id {raw_id!r}", code="clip_not_found")
    return hit


# Clip ids are canonical UUIDs, so a URL built for this one becomes any clip's by replacing it.
_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


class MediaLinks:
    """The media URLs of many clips from three ``url_for`` calls (a response lists dozens
    of clips and segments, and building each URL through the router costs more than
    finding the clip)."""

    def __init__(self) -> None:
        self.video = url_for("media.video", clip_id=_PLACEHOLDER)
        self.poster = url_for("media.poster", clip_id=_PLACEHOLDER)
        self.segment = url_for("media.segment", clip_id=_PLACEHOLDER, index=0)[: -len("0.jpg")]

    def clip(self, clip_id: str) -> dict[str, str]:
        """Absolute-path URLs of a clip's preview video and poster."""
        return {
            "video_url": self.video.replace(_PLACEHOLDER, clip_id),
            "thumbnail_url": self.poster.replace(_PLACEHOLDER, clip_id),
        }

    def segments(self, clip_id: str, n: int) -> list[str]:
        """The thumbnail URLs of a clip's ``n`` segments."""
        head = self.segment.replace(_PLACEHOLDER, clip_id)
        return [f"{head}{i}.jpg" for i in range(n)]


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
    result: Result, links: MediaLinks | None = None, *, collapsed: bool = False
) -> dict[str, Any]:
    """One search result as the API returns it: the video, its moment, its segments.

    A sequence query's result adds ``moments`` (one per step, in order; ``moment`` is the
    first) and plays from the first moment's start to the last one's end. A result of a
    ``collapsed`` query adds ``collapsed`` (how many results were folded into it) and
    ``collapsed_ids`` (the first ``MAX_COLLAPSED_IDS`` of them, best first).
    """
    payload, moment = result.payload, result.moment
    links = links or MediaLinks()
    urls = links.clip(result.id)
    thumbnails = links.segments(result.id, len(result.windows))
    until = result.moments[-1].end_s if result.moments else moment.end_s
    out = {
        "id": result.id,
        "path": payload.get("path"),
        "class": payload.get("class"),
        "label": payload.get("label"),
        "score": round(float(result.score), 6),
        **urls,
        "play_url": f"{urls['video_url']}#t={_span(moment.start_s, until)}",
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
                "thumbnail_url": thumbnail,
            }
            for thumbnail, (start, end), score in zip(
                thumbnails, result.windows, result.segment_scores, strict=True
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


NO_GOOD_MATCH = "no good match: every result scores below this model's threshold"


def response_dict(response: SearchResponse, limit: int, given: dict[str, Any]) -> dict[str, Any]:
    """A search response as the API returns it; a collapsed one (``collapse`` other than
    ``none``) adds ``collapse`` and, for ``near``, the ``near_threshold`` used."""
    links = MediaLinks()
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


def detail_dict(hit: Hit) -> dict[str, Any]:
    """One clip's public payload plus its media URLs and segment thumbnails."""
    payload = hit.payload
    links = MediaLinks()
    detail = {
        "id": hit.id,
        **{key: payload.get(key) for key in DETAIL_KEYS},
        **links.clip(hit.id),
    }
    spans = payload.get("segment_times")
    n = len(spans) if isinstance(spans, list) else len(payload.get("frame_times") or [])
    windows = stored_windows(payload, n)
    detail["segments"] = [
        {"start_s": round(s, 3), "end_s": round(e, 3), "thumbnail_url": thumbnail}
        for (s, e), thumbnail in zip(windows, links.segments(hit.id, len(windows)), strict=True)
    ]
    return detail
