"""Video probing and sparse frame sampling with PyAV.

Sampling follows TSN/CLIP4Clip: the clip is split into ``num_frames`` equal
segments and, for each segment midpoint ``t``, the frame whose presentation
interval contains ``t`` is returned (the last frame with ``time <= t``).

Design (see :func:`sample_frames`):

- Frames are decoded **in order from the start** with no seeking. Seeking to a
  target and taking the first decoded frame returns the keyframe *before* the
  target, which for single-keyframe clips (UCF101 AVI) yields N copies of
  frame 0.
- Only the chosen frames are converted to RGB, with one shared swscale context.
- Container metadata (duration, frame count) is only an *estimate*. The first
  pass picks frames from the estimate while recording every frame time; at
  end-of-stream the real duration is known and, if the estimate chose
  different frames than the real duration implies (the container lied: AVI
  headers, truncated files), a second exact pass decodes again and keeps the
  right frames. Memory stays bounded: one previous frame, the chosen frames
  and a list of floats.
- Times are seconds from the start of the video stream (``stream.start_time``,
  else the first frame), so the first frame of an ordinary file is at 0.0.
  Frames with no pts get ``previous time + 1/fps``.
- A truncated file that still yields frames is sampled over its decodable part
  (``duration_s`` is then the decodable duration) with a warning in the log;
  a file with no decodable video frame raises :class:`VideoDecodeError`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from clipsearch.errors import InvalidInput, VideoDecodeError

logger = logging.getLogger(__name__)

__all__ = [
    "AV_ERRORS",
    "FrameClock",
    "SampledFrames",
    "VideoInfo",
    "decode_frames",
    "estimate_duration",
    "frame_rate",
    "frame_times",
    "frames_to_rgb",
    "open_video",
    "pick_indices",
    "probe",
    "sample_frames",
    "scaled_size",
    "segment_midpoints",
]

# Errors PyAV/FFmpeg (or the OS underneath) raise for unreadable input.
AV_ERRORS: tuple[type[BaseException], ...] = (av.error.FFmpegError, OSError, EOFError)
# Opening may also fail with ValueError (e.g. undecodable header metadata).
_OPEN_ERRORS: tuple[type[BaseException], ...] = (*AV_ERRORS, ValueError)
# After this many undecodable packets in a row the rest of the file is given up.
_MAX_BAD_PACKETS = 50
# A frame starting this close after a sample time is the one showing at it (float noise).
_TIME_EPS = 1e-6


@dataclass(frozen=True)
class VideoInfo:
    """Container-level facts about a video (estimates; headers can be wrong)."""

    duration_s: float
    fps: float
    width: int
    height: int
    n_frames: int
    codec: str


@dataclass(frozen=True)
class SampledFrames:
    """Frames sampled from a clip.

    ``frames`` is (N, H, W, 3) uint8 RGB, at native size unless ``max_side``
    was given; ``timestamps`` (N,) float64 are the real presentation times
    (seconds from the stream start) of the returned frames; ``width`` and
    ``height`` are the *native* video size; ``duration_s`` is the decoded
    duration (last frame time + its duration).
    """

    frames: np.ndarray
    timestamps: np.ndarray
    duration_s: float
    fps: float
    width: int
    height: int


def segment_midpoints(duration_s: float, num_frames: int) -> np.ndarray:
    """Midpoints ``(i + 0.5) * duration / num_frames`` of ``num_frames`` equal segments."""
    if num_frames < 1:
        raise InvalidInput(f"num_frames must be >= 1, got {num_frames}")
    return (np.arange(num_frames, dtype=np.float64) + 0.5) * (float(duration_s) / num_frames)


def pick_indices(times: Sequence[float], targets: Sequence[float]) -> list[int]:
    """For each sorted target, the index of the last frame with ``time <= target``.

    Works on frames in decode (presentation) order: a target is resolved by the
    frame preceding the first frame later than it, the same rule the streaming
    pass applies. Targets before the first frame map to frame 0; targets after
    the last frame map to the last frame. ``times`` must be non-empty.
    """
    out: list[int] = []
    j = 0
    n = len(targets)
    for k, t in enumerate(times):
        while j < n and targets[j] < t - _TIME_EPS:
            out.append(max(k - 1, 0))
            j += 1
        if j == n:
            break
    out.extend([len(times) - 1] * (n - j))
    return out


def estimate_duration(
    stream_duration_s: float | None,
    container_duration_s: float | None,
    n_frames: int | None,
    fps: float | None,
) -> float | None:
    """Best metadata guess of the duration, or None when nothing usable is known.

    Prefers the stream duration, then the container duration, then
    ``frames / fps``; non-positive or non-finite values are ignored.
    """
    for value in (stream_duration_s, container_duration_s):
        if value is not None and math.isfinite(value) and value > 0:
            return float(value)
    if n_frames and fps and n_frames > 0 and fps > 0:
        return n_frames / fps
    return None


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) shrunk so the longer side is at most ``max_side``; never upscaled."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    if max_side < 1:
        raise InvalidInput(f"max_side must be >= 1, got {max_side}")
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def open_video(path: str | Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open ``path`` and return (container, first video stream); typed errors only."""
    p = Path(path)
    if not p.exists():
        raise VideoDecodeError(p, "file not found")
    if not p.is_file():
        raise VideoDecodeError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise VideoDecodeError(p, "empty file")
    try:
        container = av.open(str(p), mode="r")
    except _OPEN_ERRORS as exc:
        raise VideoDecodeError(p, f"not a readable media file ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(p, "no video stream")
    stream = container.streams.video[0]
    problem = _not_a_clip(
        container.format.name, stream.codec_context.width, stream.codec_context.height
    )
    if problem:
        container.close()
        raise VideoDecodeError(p, problem)
    return container, stream


# Frame sizes a clip may have: smaller is not a picture anyone can search, larger (or
# thinner) is a broken or hostile header whose frames would not fit in memory.
MIN_SIDE = 16
MAX_SIDE = 8192
MAX_ASPECT = 10.0


def _not_a_clip(format_name: str, width: int, height: int) -> str | None:
    """Why a file that opened as media is not a video clip, or None."""
    names = set(format_name.split(","))
    if any(n == "image2" or n.endswith("_pipe") for n in names):
        return f"a still image ({format_name}), not a video"
    if width > 0 and height > 0:
        small, large = min(width, height), max(width, height)
        if small < MIN_SIDE or large > MAX_SIDE or large / small > MAX_ASPECT:
            return (
                f"absurd frame size {width}x{height} (sides {MIN_SIDE}-{MAX_SIDE} px, "
                f"aspect at most {MAX_ASPECT:g}:1)"
            )
    return None


def frame_rate(stream: av.video.stream.VideoStream) -> float:
    """Average frame rate, falling back to the guessed/base rate, then 25."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return float(rate)
    return 25.0


def _metadata_duration(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, fps: float
) -> float | None:
    stream_s = (
        float(stream.duration * stream.time_base)
        if stream.duration is not None and stream.time_base is not None
        else None
    )
    container_s = container.duration / av.time_base if container.duration is not None else None
    return estimate_duration(stream_s, container_s, stream.frames, fps)


def _origin(stream: av.video.stream.VideoStream) -> float | None:
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return None


def probe(path: str | Path) -> VideoInfo:
    """Read duration, fps, size and frame count from the headers, without decoding.

    When the headers give no duration or frame count, the packets are scanned
    (demux only, no decoding). Values are estimates: headers can be wrong, and
    :func:`sample_frames` reports the duration it actually decoded.
    """
    container, stream = open_video(path)
    try:
        fps = frame_rate(stream)
        width, height = stream.codec_context.width, stream.codec_context.height
        duration = _metadata_duration(container, stream, fps)
        n_frames = stream.frames or 0
        if duration is None or n_frames <= 0:
            n_frames, scanned = _scan_packets(container, stream, fps)
            if duration is None:
                duration = scanned
        codec = stream.codec_context.name
    except AV_ERRORS as exc:
        raise VideoDecodeError(path, f"cannot read stream ({exc})") from exc
    finally:
        container.close()
    if duration is None or duration <= 0 or width <= 0 or height <= 0:
        raise VideoDecodeError(path, "no usable video stream information")
    return VideoInfo(
        duration_s=float(duration),
        fps=fps,
        width=int(width),
        height=int(height),
        n_frames=int(n_frames) if n_frames > 0 else max(1, round(duration * fps)),
        codec=str(codec),
    )


def _scan_packets(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, fps: float
) -> tuple[int, float | None]:
    """Count video packets and find the end time, demuxing only."""
    tb = float(stream.time_base) if stream.time_base is not None else None
    origin = _origin(stream)
    count = 0
    end: float | None = None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            count += 1
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is not None and tb is not None:
                t = ts * tb + (packet.duration * tb if packet.duration else 1.0 / fps)
                end = t if end is None else max(end, t)
    except AV_ERRORS as exc:
        logger.warning("packet scan of %s stopped early: %s", container.name, exc)
    if end is not None and origin is not None:
        end -= origin
    if end is None and count:
        end = count / fps
    return count, end


def decode_frames(
    path: str | Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> Iterator[av.VideoFrame]:
    """Decode video frames in order; skip corrupt packets, stop when the file ends/breaks."""
    bad = 0
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except AV_ERRORS as exc:
            logger.warning("%s: demuxing stopped early (%s); using frames so far", path, exc)
            return
        try:
            frames = packet.decode()
        except AV_ERRORS as exc:
            bad += 1
            logger.debug("%s: skipped undecodable packet (%s)", path, exc)
            if bad >= _MAX_BAD_PACKETS:
                logger.warning("%s: too many corrupt packets; using frames so far", path)
                return
            continue
        bad = 0
        yield from frames


class FrameClock:
    """Turns decoded frames into seconds from the stream start (pts None -> +1/fps)."""

    def __init__(self, stream: av.video.stream.VideoStream, fps: float):
        self.tb = stream.time_base  # a Fraction: pts * tb is exact (35 * 1/25 == 1.4)
        self.origin = _origin(stream)
        self.step = 1.0 / fps
        self.last: float | None = None
        self.last_step = self.step

    def __call__(self, frame: av.VideoFrame) -> float:
        if frame.pts is not None and self.tb is not None:
            t = float(frame.pts * self.tb)
            if self.origin is None:
                self.origin = t
            t -= self.origin
        else:
            t = 0.0 if self.last is None else self.last + self.step
        if frame.duration and self.tb is not None:
            self.last_step = float(frame.duration * self.tb)
        elif self.last is not None and t > self.last:
            self.last_step = t - self.last
        self.last = t
        return t

    def end(self) -> float:
        """Time at which the last seen frame stops being displayed."""
        return (self.last or 0.0) + self.last_step


def frame_times(path: str | Path) -> np.ndarray:
    """Presentation time (seconds from the stream start) of every decodable frame."""
    container, stream = open_video(path)
    try:
        clock = FrameClock(stream, frame_rate(stream))
        return np.asarray(
            [clock(f) for f in decode_frames(path, container, stream)], dtype=np.float64
        )
    finally:
        container.close()


def sample_frames(
    path: str | Path,
    num_frames: int = 8,
    *,
    max_side: int | None = None,
    times: Callable[[float], np.ndarray] | None = None,
    max_duration_s: float | None = None,
) -> SampledFrames:
    """Sample ``num_frames`` frames at segment midpoints, decoding in order.

    Returns the frame showing at each midpoint with its real timestamp. ``times``
    replaces the midpoints: given the duration, it returns the sorted sample times
    (``clipsearch.segments.LayoutTimes`` samples a video's moments). If
    ``num_frames`` exceeds the number of frames in the clip, frames repeat
    (each midpoint still gets the frame showing at that time). ``max_side``
    shrinks the returned frames (aspect ratio kept, never upscaled). A video whose
    headers say it is longer than ``max_duration_s`` is refused before any decoding.

    Raises :class:`VideoDecodeError` for a missing, empty, non-video, too long or
    undecodable file; a truncated file is sampled over its decodable part.
    """
    if num_frames < 1:
        raise InvalidInput(f"num_frames must be >= 1, got {num_frames}")
    started = time.perf_counter()

    def targets_for(duration_s: float) -> list[float]:
        if times is None:
            return segment_midpoints(duration_s, num_frames).tolist()
        return [float(t) for t in times(duration_s)]

    container, stream = open_video(path)
    try:
        fps = frame_rate(stream)
        width, height = stream.codec_context.width, stream.codec_context.height
        estimate = _metadata_duration(container, stream, fps)
        if max_duration_s is not None and estimate is not None and estimate > max_duration_s:
            raise VideoDecodeError(
                path, f"longer than the {max_duration_s:g}-s limit ({estimate:.0f} s)"
            )
        first = targets_for(estimate) if estimate else []
        chosen, decoded_times, duration = _first_pass(path, container, stream, fps, first)
    except AV_ERRORS as exc:
        raise VideoDecodeError(path, f"decoding failed ({exc})") from exc
    finally:
        container.close()
    if not decoded_times:
        raise VideoDecodeError(path, "no decodable video frames")

    wanted = pick_indices(decoded_times, targets_for(duration))
    if estimate is not None and abs(duration - estimate) > max(0.5, 0.1 * estimate):
        logger.warning(
            "%s: headers say %.3f s but %.3f s decoded (truncated file or wrong header)",
            path,
            estimate,
            duration,
        )
    if chosen is None or [i for i, _ in chosen] != wanted:
        logger.debug("%s: metadata picked other frames; exact second pass", path)
        chosen = _frames_by_index(path, wanted)
    if len(decoded_times) < 2 and len(wanted) > 1:
        logger.debug("%s: single-frame video; repeating it", path)

    frames = frames_to_rgb([f for _, f in chosen], max_side)
    result = SampledFrames(
        frames=frames,
        timestamps=np.asarray([decoded_times[i] for i in wanted], dtype=np.float64),
        duration_s=float(duration),
        fps=fps,
        width=int(width or frames.shape[2]),
        height=int(height or frames.shape[1]),
    )
    logger.debug(
        "sampled %d frames from %s in %.1f ms",
        len(wanted),
        path,
        (time.perf_counter() - started) * 1e3,
    )
    return result


def _first_pass(
    path: str | Path,
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    fps: float,
    targets: list[float],
) -> tuple[list[tuple[int, av.VideoFrame]] | None, list[float], float]:
    """Decode everything once, keeping the frames that ``targets`` (the sample times
    for the metadata's duration estimate; empty when there is none) select.

    Returns (chosen (index, frame) pairs or None when there were no targets,
    every frame's time, decoded duration).
    """
    clock = FrameClock(stream, fps)
    times: list[float] = []
    chosen: list[tuple[int, av.VideoFrame]] = []
    prev: tuple[int, av.VideoFrame] | None = None
    j = 0
    for k, frame in enumerate(decode_frames(path, container, stream)):
        t = clock(frame)
        times.append(t)
        while j < len(targets) and targets[j] < t - _TIME_EPS:
            chosen.append(prev if prev is not None else (k, frame))
            j += 1
        prev = (k, frame)
    if prev is not None:
        chosen.extend([prev] * (len(targets) - j))
    return (chosen if targets else None), times, clock.end()


def _frames_by_index(path: str | Path, wanted: list[int]) -> list[tuple[int, av.VideoFrame]]:
    """Second, exact pass: decode from the start and keep frames by decode index."""
    need = set(wanted)
    last = max(wanted)
    found: dict[int, av.VideoFrame] = {}
    container, stream = open_video(path)
    try:
        for k, frame in enumerate(decode_frames(path, container, stream)):
            if k in need:
                found[k] = frame
            if k >= last:
                break
    except AV_ERRORS as exc:
        raise VideoDecodeError(path, f"decoding failed ({exc})") from exc
    finally:
        container.close()
    missing = need.difference(found)
    if missing:  # decoding is deterministic, so this means the file changed under us
        raise VideoDecodeError(path, f"frames {sorted(missing)[:5]} vanished on re-decode")
    return [(i, found[i]) for i in wanted]


def frames_to_rgb(frames: Sequence[av.VideoFrame], max_side: int | None = None) -> np.ndarray:
    """Convert frames to one (N, H, W, 3) uint8 RGB array, sized from the first frame.

    A single swscale context is shared (much cheaper than one per frame);
    frames of a different size (mid-stream resolution change) are resized.
    """
    if not frames:
        raise ValueError("no frames to convert")
    width, height = scaled_size(frames[0].width, frames[0].height, max_side)
    reformatter = VideoReformatter()
    out = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    converted: dict[int, np.ndarray] = {}
    for i, frame in enumerate(frames):
        key = id(frame)
        if key not in converted:
            rgb = reformatter.reformat(
                frame, width, height, format="rgb24", interpolation=Interpolation.AREA
            )
            converted[key] = rgb.to_ndarray()
        out[i] = converted[key]
    return out
