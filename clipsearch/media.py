"""Browser-playable previews (H.264 MP4) and JPEG posters, with an on-disk cache.

UCF101's AVI files (MPEG-4 Part 2) do not play in browsers, so the web app
serves a transcoded preview instead. Previews keep the source timestamps
(seconds from the stream start, as reported by :func:`clipsearch.video.sample_frames`),
so seeking a preview to ``t`` shows the source frame at ``t``.

Every file is written to a unique temporary name in the destination folder
and moved into place with :func:`os.replace`, so readers never see a
half-written file and concurrent builders of the same file are harmless (the
last rename wins; both results are equivalent).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter
from PIL import Image

from clipsearch.display import TEMPORAL, Deinterlacer, Geometry, display_geometry
from clipsearch.errors import ClipSearchError, InvalidInput, VideoDecodeError
from clipsearch.video import (
    AV_ERRORS,
    FrameClock,
    decode_frames,
    frame_rate,
    open_video,
    sample_frames,
    scaled_size,
    timestamps_break,
)

logger = logging.getLogger(__name__)

__all__ = [
    "POSTERS",
    "PREVIEWS",
    "WINDOW_THUMBS",
    "cached_media",
    "ensure_frame",
    "ensure_poster",
    "ensure_preview",
    "forget_media",
    "make_preview",
    "move_media",
    "poster_path",
    "preview_path",
    "validate_key",
    "write_poster",
]

_KEY_RE = re.compile(r"[0-9A-Za-z_-]{1,128}")
# Output time base for previews: fine enough for any real frame rate / VFR timing.
_OUT_TIME_BASE = Fraction(1, 90000)


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe cache file stem ([0-9A-Za-z_-], 1-128 chars)."""
    if not isinstance(key, str) or _KEY_RE.fullmatch(key) is None:
        raise InvalidInput(f"invalid clip key {key!r}: use only letters, digits, '_' and '-'")
    return key


@contextmanager
def _atomic_target(dest: Path) -> Iterator[Path]:
    """Yield a unique temporary path next to ``dest``; on success move it onto ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_poster(frame: np.ndarray, dest: Path, *, max_side: int = 320, quality: int = 85) -> Path:
    """Write an RGB frame (H, W, 3) uint8 as a JPEG whose longer side is <= ``max_side``."""
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or arr.size == 0:
        raise InvalidInput(f"poster frame must be (H, W, 3) uint8, got {arr.shape} {arr.dtype}")
    if not 1 <= quality <= 100:
        raise InvalidInput(f"JPEG quality must be in 1..100, got {quality}")
    dest = Path(dest)
    image = Image.fromarray(arr)
    width, height = scaled_size(image.width, image.height, max_side)
    if (width, height) != image.size:
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    with _atomic_target(dest) as tmp:
        image.save(tmp, format="JPEG", quality=quality, optimize=True)
    return dest


def _even_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Size shrunk to ``max_side`` (never upscaled) and rounded down to even numbers (>= 2)."""
    w, h = scaled_size(width, height, max_side)
    return max(2, w - w % 2), max(2, h - h % 2)


def make_preview(src: Path, dest: Path, *, max_side: int = 480, crf: int = 28) -> Path:
    """Transcode ``src`` to a browser-playable H.264/yuv420p MP4 at ``dest`` (no audio).

    The pictures are those a player shows (deinterlaced, square pixels, turned upright:
    the preview carries no display matrix of its own). Frame times are those of the
    source (from the stream start), the frame rate is kept, and ``movflags=+faststart``
    puts the index first so playback and seeking start before the whole file has
    arrived. Raises
    :class:`VideoDecodeError` when the source has no decodable video frames.
    """
    src, dest = Path(src), Path(dest)
    if not 0 <= crf <= 51:
        raise InvalidInput(f"crf must be in 0..51, got {crf}")
    started = time.perf_counter()
    container, stream = open_video(src)
    try:
        with _atomic_target(dest) as tmp:
            n_frames = _transcode(src, container, stream, tmp, max_side, crf)
    except AV_ERRORS as exc:  # decode errors are absorbed by decode_frames: this is the output
        raise ClipSearchError(
            f"cannot write preview {dest}: {exc}", code="media_write_error"
        ) from exc
    finally:
        container.close()
    logger.info(
        "preview %s -> %s: %d frames in %.0f ms",
        src,
        dest,
        n_frames,
        (time.perf_counter() - started) * 1e3,
    )
    return dest


def _transcode(
    src: Path,
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    tmp: Path,
    max_side: int,
    crf: int,
) -> int:
    """Decode ``stream`` and encode every frame, as a player shows it (deinterlaced,
    square pixels, upright), into an MP4 at ``tmp``; return the frame count."""
    fps = frame_rate(stream)
    clock = FrameClock(stream, fps, leaps=timestamps_break(container))
    deinterlacer = Deinterlacer(TEMPORAL)
    reformatter = VideoReformatter()
    encoder: av.video.stream.VideoStream | None = None
    geometry = Geometry()
    last_pts = -1
    n_frames = 0
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:

        def write(frame: av.VideoFrame) -> None:
            nonlocal encoder, last_pts, n_frames
            t = clock(frame)
            if encoder is None:
                width, height = _even_size(
                    *geometry.display_size(frame.width, frame.height), max_side
                )
                encoder = _add_h264_stream(out, fps, width, height, crf)
            pts = max(round(t / _OUT_TIME_BASE), last_pts + 1)  # strictly increasing
            last_pts = pts
            yuv = _displayed(frame, geometry, encoder.width, encoder.height, reformatter)
            yuv.pts = pts
            yuv.time_base = _OUT_TIME_BASE
            out.mux(encoder.encode(yuv))
            n_frames += 1

        for k, frame in enumerate(decode_frames(src, container, stream)):
            if k == 0:
                geometry = display_geometry(stream, frame)
            for ready in deinterlacer.push(frame):
                write(ready)
        for ready in deinterlacer.flush():
            write(ready)
        if encoder is None:
            raise VideoDecodeError(src, "no decodable video frames")
        out.mux(encoder.encode(None))
    return n_frames


def _displayed(
    frame: av.VideoFrame,
    geometry: Geometry,
    width: int,
    height: int,
    reformatter: VideoReformatter,
) -> av.VideoFrame:
    """``frame`` as shown (square pixels, upright) at ``width`` x ``height``, in yuv420p."""
    if not geometry.ops:
        return reformatter.reformat(
            frame, width, height, format="yuv420p", interpolation=Interpolation.AREA
        )
    stored_w, stored_h = (height, width) if geometry.swaps_sides else (width, height)
    rgb = reformatter.reformat(
        frame, stored_w, stored_h, format="rgb24", interpolation=Interpolation.AREA
    )
    turned = av.VideoFrame.from_ndarray(geometry.apply(rgb.to_ndarray()), format="rgb24")
    return turned.reformat(width, height, format="yuv420p")


def _add_h264_stream(
    out: av.container.OutputContainer, fps: float, width: int, height: int, crf: int
) -> av.video.stream.VideoStream:
    rate = Fraction(fps).limit_denominator(1001)
    stream = out.add_stream(
        "libx264",
        rate=rate,
        options={"preset": "veryfast", "crf": str(crf)},
    )
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p"
    stream.time_base = _OUT_TIME_BASE
    stream.codec_context.time_base = _OUT_TIME_BASE
    stream.gop_size = max(1, round(2 * fps))  # a keyframe every ~2 s keeps seeking cheap
    return stream


# One lock per cache file, so threads of one process do not build the same file twice.
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def _fresh(cached: Path, src: Path) -> bool:
    try:
        return cached.stat().st_mtime >= src.stat().st_mtime
    except FileNotFoundError:
        return False


def _ensure(src: Path, cached: Path, build: Callable[[], object]) -> Path:
    src = Path(src)
    if not src.is_file():
        raise VideoDecodeError(src, "file not found")
    if _fresh(cached, src):
        return cached
    with _lock_for(cached):
        if not _fresh(cached, src):  # another thread may have built it meanwhile
            build()
    return cached


# The media cache of a store: ``<media dir>/posters/<id>.jpg`` (written at ingest, else on
# first view), ``previews/<id>.mp4`` and ``segments/<id>-<n>.jpg`` (made on first view).
POSTERS = "posters"
PREVIEWS = "previews"
WINDOW_THUMBS = "segments"


def cached_media(media_dir: Path, clip_id: str) -> list[Path]:
    """The files cached for a clip (those that exist)."""
    key = validate_key(clip_id)
    media_dir = Path(media_dir)
    files = [media_dir / POSTERS / f"{key}.jpg", media_dir / PREVIEWS / f"{key}.mp4"]
    thumbnails = sorted((media_dir / WINDOW_THUMBS).glob(f"{key}-*.jpg"))
    return [f for f in [*files, *thumbnails] if f.is_file() and not f.is_symlink()]


def forget_media(media_dir: Path, clip_id: str) -> None:
    """Delete what is cached for a clip (a clip removed from the index)."""
    for cached in cached_media(media_dir, clip_id):
        cached.unlink(missing_ok=True)


def move_media(media_dir: Path, old_id: str, new_id: str) -> None:
    """Give a moved clip's cached files its new id."""
    new_key = validate_key(new_id)
    for cached in cached_media(media_dir, old_id):
        os.replace(cached, cached.with_name(cached.name.replace(old_id, new_key, 1)))


def preview_path(cache_dir: Path, key: str) -> Path:
    """Where the preview of clip ``key`` lives in ``cache_dir``."""
    return Path(cache_dir) / f"{validate_key(key)}.mp4"


def poster_path(cache_dir: Path, key: str) -> Path:
    """Where the poster of clip ``key`` lives in ``cache_dir``."""
    return Path(cache_dir) / f"{validate_key(key)}.jpg"


def ensure_preview(
    src: Path, cache_dir: Path, key: str, *, max_side: int = 480, crf: int = 28
) -> Path:
    """Cached preview ``cache_dir/<key>.mp4``; built when missing or older than ``src``."""
    dest = preview_path(cache_dir, key)
    return _ensure(src, dest, lambda: make_preview(src, dest, max_side=max_side, crf=crf))


def ensure_poster(
    src: Path, cache_dir: Path, key: str, *, max_side: int = 320, quality: int = 85
) -> Path:
    """Cached poster ``cache_dir/<key>.jpg`` (the frame at the clip's midpoint)."""
    dest = poster_path(cache_dir, key)

    def build() -> None:
        frame = sample_frames(src, 1, max_side=max(max_side, 1) * 2).frames[0]
        write_poster(frame, dest, max_side=max_side, quality=quality)

    return _ensure(src, dest, build)


def ensure_frame(
    src: Path, cache_dir: Path, key: str, time_s: float, *, max_side: int = 160, quality: int = 80
) -> Path:
    """Cached thumbnail ``cache_dir/<key>.jpg`` of the frame showing at ``time_s``."""
    if not np.isfinite(time_s) or time_s < 0:
        raise InvalidInput(f"frame time must be a non-negative number, got {time_s}")
    dest = poster_path(cache_dir, key)

    def at_time(duration_s: float) -> np.ndarray:
        return np.asarray([min(float(time_s), duration_s)])

    def build() -> None:
        frame = sample_frames(src, 1, max_side=max(max_side, 1) * 2, times=at_time).frames[0]
        write_poster(frame, dest, max_side=max_side, quality=quality)

    return _ensure(src, dest, build)
