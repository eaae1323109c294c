"""Looking clips up by id and turning hits into what the API and the pages show."""

from __future__ import annotations

import uuid
from typing import Any

from flask import url_for

from clipsearch.errors import NotFound
from clipsearch.responses import response_dict as _response_dict
from clipsearch.search import SearchResponse, stored_windows
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
    of clips and windows, and building each URL through the router costs more than
    finding the clip)."""

    def __init__(self) -> None:
        self.video = url_for("media.video", clip_id=_PLACEHOLDER)
        self.poster = url_for("media.poster", clip_id=_PLACEHOLDER)
        self.window = url_for("media.window", clip_id=_PLACEHOLDER, index=0)[: -len("0.jpg")]

    def clip(self, clip_id: str) -> dict[str, str]:
        """Absolute-path URLs of a clip's preview video and poster."""
        return {
            "video_url": self.video.replace(_PLACEHOLDER, clip_id),
            "thumbnail_url": self.poster.replace(_PLACEHOLDER, clip_id),
        }

    def windows(self, clip_id: str, n: int) -> list[str]:
        """The thumbnail URLs of a clip's ``n`` windows."""
        head = self.window.replace(_PLACEHOLDER, clip_id)
        return [f"{head}{i}.jpg" for i in range(n)]


def response_dict(response: SearchResponse, limit: int, given: dict[str, Any]) -> dict[str, Any]:
    """A search response as the API returns it, with this app's media URLs."""
    return _response_dict(response, limit, given, MediaLinks())


def detail_dict(hit: Hit) -> dict[str, Any]:
    """One clip's public payload plus its media URLs and window thumbnails."""
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
        for (s, e), thumbnail in zip(windows, links.windows(hit.id, len(windows)), strict=True)
    ]
    return detail
