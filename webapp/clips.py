"""Looking clips up by id and turning hits into what the API and the pages show."""

from __future__ import annotations

import uuid
from typing import Any

from flask import url_for

from clipsearch.errors import NotFound
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
    "model",
    "ingested_at",
)


def canonical_clip_id(raw: str) -> str | None:
    """``raw`` if it is a canonical (lower-case, hyphenated) UUID string, else None."""
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


def media_urls(clip_id: str) -> dict[str, str]:
    """Absolute-path URLs of a clip's preview video and poster."""
    return {
        "video_url": url_for("media.video", clip_id=clip_id),
        "thumbnail_url": url_for("media.poster", clip_id=clip_id),
    }


def result_dict(hit: Hit) -> dict[str, Any]:
    """One search result as the API returns it."""
    payload = hit.payload
    return {
        "id": hit.id,
        "path": payload.get("path"),
        "class": payload.get("class"),
        "label": payload.get("label"),
        "score": round(float(hit.score), 6),
        **media_urls(hit.id),
        "duration_s": payload.get("duration_s"),
    }


def detail_dict(hit: Hit) -> dict[str, Any]:
    """One clip's public payload plus its media URLs."""
    payload = hit.payload
    return {
        "id": hit.id,
        **{key: payload.get(key) for key in DETAIL_KEYS},
        **media_urls(hit.id),
    }
