"""Posters and browser-playable previews of indexed clips, built lazily and cached.

Only clips in the index are served: the URL carries a point id, the file comes
from that point's payload, never from the URL. Files are sent with
``conditional=True`` so browsers get byte ranges (206) for seeking.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, Response, request, send_file
from flask.typing import ResponseReturnValue

from clipsearch import media
from clipsearch.errors import NotFound, VideoDecodeError
from clipsearch.filenames import payload_source
from clipsearch.search import stored_windows
from webapp.clips import find_clip
from webapp.services import get_media_dir

log = logging.getLogger(__name__)

bp = Blueprint("media", __name__, url_prefix="/media")

# Files are revalidated with their ETag after this; a re-ingested clip keeps its id.
MAX_AGE_S = 3600

Builder = Callable[[Path, Path, str], Path]


def _cached_file(
    clip_id: str, folder: str, suffix: str, build: Builder, *, variant: int | None = None
) -> Path:
    """The cache file of an indexed clip, built from its source video when missing or stale.

    ``variant`` picks one of several files per clip (a window's thumbnail).
    """
    hit = find_clip(clip_id)
    if variant is not None:
        build = _window_builder(hit.payload, variant)
    cache_dir = get_media_dir() / folder
    key = hit.id if variant is None else f"{hit.id}-{variant}"
    cached = cache_dir / f"{key}{suffix}"
    if cached.is_symlink() or (cached.exists() and not cached.is_file()):
        # only files this app wrote are sent: a planted link could point anywhere
        log.warning("clip %s: %s is not a regular file; not serving it", hit.id, cached)
        raise NotFound(f"the media of clip {hit.id} is not available", code="media_not_found")
    source = payload_source(hit.payload)
    if source is None or not source.is_file():
        if cached.is_file():  # the source moved away; what was built from it is still right
            return cached
        log.warning("clip %s: source video %r is missing", hit.id, hit.payload.get("source"))
        raise NotFound(f"the video of clip {hit.id} is not available", code="media_not_found")
    try:
        return build(source, cache_dir, key)
    except VideoDecodeError as exc:  # its message names the file: log it, do not show it
        log.warning("clip %s: %s", hit.id, exc)
        raise VideoDecodeError(hit.id, "the video cannot be decoded") from exc


def _send(path: Path, mimetype: str) -> Response:
    """``path`` with byte ranges and validators, as RFC 9110 has them where Werkzeug
    answers 416: a Range it cannot serve as one byte range (another unit, bad syntax,
    several ranges) is ignored, and a suffix longer than the file is the whole file; a
    failed precondition (412) carries no body."""
    header = request.headers.get("Range")
    if header is not None:
        wanted = request.range
        if wanted is None or wanted.units != "bytes" or len(wanted.ranges) != 1:
            request.environ.pop("HTTP_RANGE", None)
        elif wanted.ranges[0][0] < 0 and -wanted.ranges[0][0] > path.stat().st_size:
            request.environ["HTTP_RANGE"] = "bytes=0-"
    response = send_file(path, mimetype=mimetype, conditional=True, max_age=MAX_AGE_S)
    if response.status_code == 412:
        response.close()  # the file send_file opened
        response.response, response.content_length = [], 0
    return response


@bp.get("/poster/<clip_id>.jpg")
def poster(clip_id: str) -> ResponseReturnValue:
    """JPEG poster (written at ingest, or now from a frame of the video)."""
    return _send(_cached_file(clip_id, media.POSTERS, ".jpg", media.ensure_poster), "image/jpeg")


def _window_builder(payload: dict[str, object], index: int) -> Builder:
    spans = payload.get("segment_times")
    count = len(spans) if isinstance(spans, list) else len(payload.get("frame_times") or [])  # type: ignore[arg-type]
    if not 0 <= index < count:
        raise NotFound(f"the clip has no segment {index}", code="segment_not_found")
    start, end = stored_windows(dict(payload), count)[index]

    def build(src: Path, cache_dir: Path, key: str) -> Path:
        return media.ensure_frame(src, cache_dir, key, (start + end) / 2)

    return build


@bp.get("/segment/<clip_id>/<int:index>.jpg")
def window(clip_id: str, index: int) -> ResponseReturnValue:
    """JPEG thumbnail of one window (the frame at its middle), made on first request."""
    path = _cached_file(clip_id, media.WINDOW_THUMBS, ".jpg", media.ensure_poster, variant=index)
    return _send(path, "image/jpeg")


@bp.get("/video/<clip_id>.mp4")
def video(clip_id: str) -> ResponseReturnValue:
    """H.264 MP4 preview (transcoded on first request), with HTTP Range support."""
    return _send(_cached_file(clip_id, media.PREVIEWS, ".mp4", media.ensure_preview), "video/mp4")
