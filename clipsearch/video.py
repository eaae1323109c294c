"""Video probing and sparse frame sampling with PyAV.

Sampling follows TSN/CLIP4Clip: the clip is split into ``num_frames`` equal
intervals and, for each interval midpoint ``t``, the frame whose presentation
interval contains ``t`` is returned (the last frame with ``time <= t``).

Design (see :func:`sample_frames`):

- Frames are decoded **in order from the start** with no seeking. Seeking to a
  target and taking the first decoded frame returns the keyframe *before* the
  target, which for single-keyframe clips (UCF101 AVI) yields N copies of
  frame 0.
- The video stream is the file's main one: attached pictures (cover art) are never
  taken for it.
- Only the chosen frames are converted to RGB, with one shared swscale context, and
  as a player shows them (:mod:`clipsearch.display`): turned upright by the display
  matrix, stretched to square pixels, deinterlaced.
- The length of a video is the span of its video stream's timestamps, measured before
  decoding by reading the stream's last packets (a seek to its last keyframe); headers
  are used only where that fails. A late start (a recording whose timestamps begin at
  4000 s) is not length, and audio running on after the picture does not count.
  The first pass picks frames from that length while recording every frame time; at
  end-of-stream the real duration is known and, if it implies different frames (a
  truncated or lying file), a second exact pass decodes again and keeps the right
  frames. Memory stays bounded: each chosen frame is converted to RGB (at ``max_side``)
  when it is chosen, so a pass holds one decoded frame, the small RGB pictures and a
  list of floats, never a long video's decoded frames at full size.
- Times are seconds from the start of the video stream (``stream.start_time``,
  else the first frame), so the first frame of an ordinary file is at 0.0.
  Frames with no pts get ``previous time + 1/fps``. Times never run backwards: a
  timestamp earlier than the one before (files joined with ``cat``, a glitch in a
  recording) and, in formats whose timestamps may break (FFmpeg's ``AVFMT_TS_DISCONT``:
  MPEG-TS, MPEG-PS, Ogg), a leap of more than 10 s either way, go on one frame after the
  time before, as ``ffmpeg`` does.
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
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
from av.stream import Disposition
from av.video.reformatter import Interpolation, VideoReformatter

from clipsearch.display import Geometry, deinterlace_each, display_geometry
from clipsearch.errors import InvalidInput, VideoDecodeError

logger = logging.getLogger(__name__)

__all__ = [
    "AV_ERRORS",
    "DECODER",
    "Continuity",
    "FrameClock",
    "RgbFrames",
    "SampledFrames",
    "StreamTiming",
    "VideoInfo",
    "decode_frames",
    "decoded_as_before",
    "estimate_duration",
    "frame_rate",
    "frame_times",
    "interval_midpoints",
    "open_video",
    "pick_indices",
    "probe",
    "sample_frames",
    "scaled_size",
    "scanned_length",
    "shown_as_decoded",
    "stream_timing",
    "timestamps_break",
]

# Errors PyAV/FFmpeg (or the OS underneath) raise for unreadable input.
AV_ERRORS: tuple[type[BaseException], ...] = (av.error.FFmpegError, OSError, EOFError)
# Opening may also fail with ValueError (e.g. undecodable header metadata).
_OPEN_ERRORS: tuple[type[BaseException], ...] = (*AV_ERRORS, ValueError)
# After this many undecodable packets in a row the rest of the file is given up.
_MAX_BAD_PACKETS = 50
# A frame starting this close after a sample time is the one showing at it (float noise).
_TIME_EPS = 1e-6
# FFmpeg's AVFMT_TS_DISCONT: a format whose timestamps may break (MPEG-TS, MPEG-PS and Ogg:
# broadcast recordings, files joined with cat), where a leap of more than _MAX_LEAP_S
# either way is a break, not a gap in the picture (ffmpeg's -dts_delta_threshold).
_TS_DISCONT = 0x0200
_MAX_LEAP_S = 10.0


@dataclass(frozen=True)
class VideoInfo:
    """Facts about a video read without decoding it all: its length (measured from the
    video stream's timestamps where it can be), frame rate, displayed size (turned upright,
    square pixels), frame count (from headers, else packets) and codec."""

    duration_s: float
    fps: float
    width: int
    height: int
    n_frames: int
    codec: str


@dataclass(frozen=True)
class SampledFrames:
    """Frames sampled from a clip.

    ``frames`` is (N, H, W, 3) uint8 RGB as a player shows them (upright, square
    pixels, deinterlaced), at that size unless ``max_side`` was given; ``timestamps``
    (N,) float64 are the real presentation times (seconds from the stream start) of
    the returned frames; ``width`` and ``height`` are the video's full *displayed*
    size; ``duration_s`` is the decoded duration (last frame time + its duration).
    """

    frames: np.ndarray
    timestamps: np.ndarray
    duration_s: float
    fps: float
    width: int
    height: int


def interval_midpoints(duration_s: float, num_frames: int) -> np.ndarray:
    """Midpoints ``(i + 0.5) * duration / num_frames`` of ``num_frames`` equal intervals."""
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
    span_s: float | None,
    n_frames: int | None,
    fps: float | None,
    container_duration_s: float | None = None,
) -> float | None:
    """Best guess of a video stream's length, or None when nothing usable is known.

    Prefers the measured span of its timestamps, then the stream's own duration header,
    then ``frames / fps``, and last the container's duration (which counts audio running
    on after the picture, and in some formats a late start); non-positive or non-finite
    values are ignored.
    """
    for value in (span_s, stream_duration_s):
        if value is not None and math.isfinite(value) and value > 0:
            return float(value)
    if n_frames and fps and n_frames > 0 and fps > 0:
        return n_frames / fps
    if container_duration_s is not None and math.isfinite(container_duration_s):
        return float(container_duration_s) if container_duration_s > 0 else None
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
    """Open ``path`` and return (container, its main video stream); typed errors only."""
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
    stream = _main_video_stream(container)
    if stream is None:
        pictures = len(container.streams.video)
        container.close()
        raise VideoDecodeError(
            p, "no video stream (only an attached picture)" if pictures else "no video stream"
        )
    problem = _not_a_clip(
        container.format.name, stream.codec_context.width, stream.codec_context.height
    )
    if problem:
        container.close()
        raise VideoDecodeError(p, problem)
    return container, stream


# Video streams that are pictures, not video: cover art and other stills attached to a file.
_NOT_VIDEO = Disposition.attached_pic | Disposition.still_image


def _main_video_stream(
    container: av.container.InputContainer,
) -> av.video.stream.VideoStream | None:
    """The stream FFmpeg would play (``av_find_best_stream``), never an attached picture,
    nor a still or thumbnail track that a muxer marked default beside the video (MP4 and
    MOV mark the first track of each kind): a stream with over twice its frames wins."""
    videos = [s for s in container.streams.video if not s.disposition & _NOT_VIDEO]
    if not videos:
        return None
    best = _ffmpeg_pick(container, videos)
    most = max(videos, key=_frame_count)
    return most if _frame_count(most) > 2 * _frame_count(best) else best


def _ffmpeg_pick(
    container: av.container.InputContainer, videos: list[av.video.stream.VideoStream]
) -> av.video.stream.VideoStream:
    """FFmpeg's best video stream among ``videos`` (those that are not pictures), else
    the first of them: what decoder 2 took for the video."""
    best = container.streams.best("video")
    return best if best in videos else videos[0]


def _frame_count(stream: av.video.stream.VideoStream) -> int:
    """Frames of ``stream`` by its headers (its frame count, else length x rate); 0 unknown."""
    if stream.frames:
        return int(stream.frames)
    length = _seconds(stream.duration, stream.time_base)
    return round(length * frame_rate(stream)) if length is not None and length > 0 else 0


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


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    return float(value * time_base) if value is not None and time_base is not None else None


def _origin(stream: av.video.stream.VideoStream) -> float | None:
    return _seconds(stream.start_time, stream.time_base)


# Far enough past the end of any stream, in its time base (a seek there lands on the last
# keyframe), and how many packets after it are read before giving up.
_FAR_TS = 2**62
_TAIL_PACKETS = 20_000


def _measure_span(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> float | None:
    """Seconds from the stream's first timestamp to the end of its last packet, read by
    seeking to its last keyframe and demuxing from there (the container is left there).
    None when the file cannot seek (no index) or has no timestamps."""
    origin, tb = _origin(stream), stream.time_base
    if origin is None or tb is None:
        return None
    end: float | None = None
    try:
        container.seek(_FAR_TS, backward=True, any_frame=False, stream=stream)
        for n, packet in enumerate(container.demux(stream)):
            if n >= _TAIL_PACKETS:
                return None
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None or packet.size == 0:
                continue
            t = float((ts + (packet.duration or 0)) * tb)
            end = t if end is None else max(end, t)
    except _OPEN_ERRORS as exc:
        logger.debug("%s: cannot measure the stream's span (%s)", container.name, exc)
        return None
    return end - origin if end is not None and end > origin else None


@dataclass(frozen=True)
class StreamTiming:
    """What is known of a video stream's length before decoding it."""

    header_s: float | None  # the stream's own duration header
    span_s: float | None  # first timestamp to the end of the last packet, measured
    n_frames: int  # frame count from the headers (0: unknown)
    fps: float
    container_s: float | None  # the container's duration (audio and start offsets count)
    may_break: bool = False  # timestamps may break (MPEG-TS, -PS, Ogg): the span may be wrong

    @property
    def length_s(self) -> float | None:
        """The best estimate of the video's length (see :func:`estimate_duration`)."""
        return estimate_duration(
            self.header_s, self.span_s, self.n_frames, self.fps, self.container_s
        )


def stream_timing(path: str | Path) -> StreamTiming:
    """The length facts of ``path``'s video stream, reading only headers and its last packets."""
    container, stream = open_video(path)
    try:
        fps = frame_rate(stream)
        header = _seconds(stream.duration, stream.time_base)
        container_s = container.duration / av.time_base if container.duration is not None else None
        return StreamTiming(
            header_s=header if header is not None and header > 0 else None,
            span_s=_measure_span(container, stream),
            n_frames=int(stream.frames or 0),
            fps=fps,
            container_s=container_s,
            may_break=timestamps_break(container),
        )
    finally:
        container.close()


def scanned_length(path: str | Path, stop_after_s: float | None = None) -> float | None:
    """The length of ``path``'s video stream from every packet's timestamps (demuxing
    only), breaks closed up as :class:`FrameClock` closes them; the scan stops once it
    is past ``stop_after_s``."""
    container, stream = open_video(path)
    try:
        return _scan_packets(container, stream, frame_rate(stream), stop_after_s)[1]
    finally:
        container.close()


def probe(path: str | Path) -> VideoInfo:
    """Length, frame rate, displayed size, frame count and codec, without decoding it all.

    The length is measured from the video stream's timestamps (its last packets), else
    read from headers; without a frame count in the headers the packets are counted
    (demux only). One frame is decoded for the display matrix of the displayed size.
    :func:`sample_frames` reports the duration it actually decoded.
    """
    timing = stream_timing(path)
    container, stream = open_video(path)
    try:
        width, height = stream.codec_context.width, stream.codec_context.height
        n_frames, duration = timing.n_frames, timing.length_s
        if duration is None or n_frames <= 0:
            n_frames, scanned = _scan_packets(container, stream, timing.fps)
            duration = duration or scanned
            container.seek(0)
        # any frame carries the display matrix
        geometry = display_geometry(stream, _first_frame(path, container, stream))
        codec = stream.codec_context.name
    except AV_ERRORS as exc:
        raise VideoDecodeError(path, f"cannot read stream ({exc})") from exc
    finally:
        container.close()
    if duration is None or duration <= 0 or width <= 0 or height <= 0:
        raise VideoDecodeError(path, "no usable video stream information")
    width, height = geometry.display_size(width, height)
    return VideoInfo(
        duration_s=float(duration),
        fps=timing.fps,
        width=int(width),
        height=int(height),
        n_frames=int(n_frames) if n_frames > 0 else max(1, round(duration * timing.fps)),
        codec=str(codec),
    )


# What the frames of this module are: 2 = as a player shows them (the main video stream,
# turned upright, square pixels, deinterlaced); 3 = also on a clock that never runs
# backwards, from a main stream that is never a still stored first. Stored with the vectors
# made from them, so a store knows which videos were embedded from frames of an earlier kind.
DECODER = 3


def shown_as_decoded(path: str | Path) -> bool:
    """True when a player shows ``path``'s first video stream as it decodes (no turn, square
    pixels, progressive): the frames earlier versions, which did none of that, embedded."""
    container, stream = open_video(path)
    try:
        if stream.index != container.streams.video[0].index:
            return False
        frame = _first_frame(path, container, stream)
        return display_geometry(stream, frame).is_identity and not (
            frame is not None and frame.interlaced_frame
        )
    except AV_ERRORS as exc:
        raise VideoDecodeError(path, f"cannot read stream ({exc})") from exc
    finally:
        container.close()


def decoded_as_before(path: str | Path) -> bool:
    """True when decoder 2 took the frames this one takes from ``path``: the stream FFmpeg
    picks is the main one and, in a format whose timestamps may break, its decode
    timestamps never do (demuxing only)."""
    container, stream = open_video(path)
    try:
        videos = [s for s in container.streams.video if not s.disposition & _NOT_VIDEO]
        if stream.index != _ffmpeg_pick(container, videos).index:
            return False
        if not timestamps_break(container):
            return True  # elsewhere a break is rare enough not to read every file for it
        joins = Continuity(leaps=True)
        tb = stream.time_base
        for packet in container.demux(stream):
            if packet.size and packet.dts is not None and tb is not None:
                joins.see(float(packet.dts * tb), float((packet.duration or 0) * tb))
                if joins.shift:
                    return False
        return True
    except AV_ERRORS as exc:
        raise VideoDecodeError(path, f"cannot read stream ({exc})") from exc
    finally:
        container.close()


def _first_frame(
    path: str | Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> av.VideoFrame | None:
    """The first decodable frame (None when there is none; the container is left after it)."""
    return next(iter(decode_frames(path, container, stream)), None)


def _scan_packets(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    fps: float,
    stop_after_s: float | None = None,
) -> tuple[int, float | None]:
    """Count video packets and find the end time, demuxing only (up to ``stop_after_s``
    past the first timestamp); breaks in the decode timestamps are closed up as
    :class:`FrameClock` closes them."""
    tb = float(stream.time_base) if stream.time_base is not None else None
    origin = _origin(stream)
    joins = Continuity(leaps=timestamps_break(container))
    count = 0
    end: float | None = None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            count += 1
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None or tb is None:
                continue
            step = packet.duration * tb if packet.duration else 1.0 / fps
            if packet.dts is not None:
                joins.see(packet.dts * tb, step)
            t = joins.shift + ts * tb + step
            end = t if end is None else max(end, t)
            if stop_after_s is not None and origin is not None and end - origin > stop_after_s:
                break
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


def timestamps_break(container: av.container.InputContainer) -> bool:
    """Whether ``container``'s format lets timestamps break (MPEG-TS, MPEG-PS, Ogg)."""
    return bool(container.format.flags & _TS_DISCONT)


class Continuity:
    """Closes breaks in a run of timestamps (seconds): one earlier than the one before
    and, with ``leaps``, one more than ``_MAX_LEAP_S`` later start a new run one step
    after the last time. ``shift`` is what to add to the raw times of the current run."""

    def __init__(self, *, leaps: bool):
        self.leaps = leaps
        self.shift = 0.0
        self.raw: float | None = None  # the last raw time seen
        self.step = 0.0  # how long the last time lasts

    def see(self, raw: float, step: float) -> float:
        """``raw`` closed up to the times before it; ``step``: how long it lasts."""
        if self.raw is not None:
            leap = raw - self.raw
            if leap < 0 or (self.leaps and leap > _MAX_LEAP_S):
                self.shift = self.raw + self.shift + self.step - raw
        self.raw, self.step = raw, step
        return raw + self.shift


class FrameClock:
    """Turns decoded frames into seconds from the stream start (pts None -> +1/fps); the
    times never run backwards, nor leap where ``leaps`` (see :class:`Continuity`)."""

    def __init__(self, stream: av.video.stream.VideoStream, fps: float, *, leaps: bool = False):
        # pts * num / den in integers, then one correctly rounded division: the same float
        # as the exact Fraction's (35 * 1/25 == 1.4), without a Fraction per frame
        tb = stream.time_base
        self.tb = (tb.numerator, tb.denominator) if tb is not None else None
        self.origin = _origin(stream)
        self.step = 1.0 / fps
        self.last: float | None = None
        self.last_step = self.step
        self.joins = Continuity(leaps=leaps)

    def __call__(self, frame: av.VideoFrame) -> float:
        tb = self.tb
        if frame.pts is not None and tb is not None:
            t = frame.pts * tb[0] / tb[1]
            if self.origin is None:
                self.origin = t
            t -= self.origin
        else:
            t = 0.0 if self.last is None else self.last + self.step - self.joins.shift
        step = frame.duration * tb[0] / tb[1] if frame.duration and tb is not None else None
        t = self.joins.see(t, step if step is not None else self.last_step)
        if step is not None:
            self.last_step = step
        elif self.last is not None and t > self.last:
            self.last_step = t - self.last
        self.joins.step = self.last_step
        self.last = t
        return t

    def end(self) -> float:
        """Time at which the last seen frame stops being displayed."""
        return (self.last or 0.0) + self.last_step


def frame_times(path: str | Path) -> np.ndarray:
    """Presentation time (seconds from the stream start) of every decodable frame."""
    container, stream = open_video(path)
    try:
        clock = FrameClock(stream, frame_rate(stream), leaps=timestamps_break(container))
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
    """Sample ``num_frames`` frames at interval midpoints, decoding in order.

    Returns the frame showing at each midpoint with its real timestamp. ``times``
    replaces the midpoints: given the duration, it returns the sorted sample times
    (``clipsearch.windows.LayoutTimes`` samples a video's moments). If
    ``num_frames`` exceeds the number of frames in the clip, frames repeat
    (each midpoint still gets the frame showing at that time). ``max_side``
    shrinks the returned frames (aspect ratio kept, never upscaled). A video whose
    length (the span of its timestamps, else its headers) is over ``max_duration_s``
    is refused before any decoding.

    Raises :class:`VideoDecodeError` for a missing, empty, non-video, too long or
    undecodable file; a truncated file is sampled over its decodable part.
    """
    if num_frames < 1:
        raise InvalidInput(f"num_frames must be >= 1, got {num_frames}")
    started = time.perf_counter()

    def targets_for(duration_s: float) -> list[float]:
        if times is None:
            return interval_midpoints(duration_s, num_frames).tolist()
        return [float(t) for t in times(duration_s)]

    timing = stream_timing(path)
    estimate = timing.length_s

    def too_long(length: float | None) -> bool:
        return max_duration_s is not None and length is not None and length > max_duration_s

    over = ""
    if too_long(estimate) and timing.may_break:  # its last timestamp may lie: read them all
        estimate = scanned_length(path, stop_after_s=max_duration_s) or estimate
        over = "over "  # the scan stops at the limit
    if too_long(estimate):
        raise VideoDecodeError(
            path, f"longer than the {max_duration_s:g}-s limit ({over}{estimate:.0f} s)"
        )
    container, stream = open_video(path)
    try:
        width, height = stream.codec_context.width, stream.codec_context.height
        first = targets_for(estimate) if estimate else []
        chosen, decoded_times, duration, geometry = _first_pass(
            path, container, stream, timing.fps, first, max_side
        )
    except AV_ERRORS as exc:
        raise VideoDecodeError(path, f"decoding failed ({exc})") from exc
    finally:
        container.close()
    if not decoded_times:
        raise VideoDecodeError(path, "no decodable video frames")

    wanted = pick_indices(decoded_times, targets_for(duration))
    _warn_if_short(path, timing, duration)
    if chosen is None or chosen.indices != wanted:
        logger.debug("%s: the estimated length picked other frames; exact second pass", path)
        chosen = _frames_by_index(path, wanted, RgbFrames(len(wanted), max_side, geometry))
    if len(decoded_times) < 2 and len(wanted) > 1:
        logger.debug("%s: single-frame video; repeating it", path)

    display_width, display_height = geometry.display_size(
        width or chosen.source_size[0], height or chosen.source_size[1]
    )
    result = SampledFrames(
        frames=chosen.pictures(),
        timestamps=np.asarray([decoded_times[i] for i in wanted], dtype=np.float64),
        duration_s=float(duration),
        fps=timing.fps,
        width=int(display_width),
        height=int(display_height),
    )
    logger.debug(
        "sampled %d frames from %s in %.1f ms",
        len(wanted),
        path,
        (time.perf_counter() - started) * 1e3,
    )
    return result


def _warn_if_short(path: str | Path, timing: StreamTiming, decoded_s: float) -> None:
    """Log when the frames decoded span much less (or more) than the stream's packets, or
    where those could not be measured its duration header: a truncated or corrupt file.
    (Headers alone are often estimates: an MPEG program stream's comes from its bitrate.)"""
    expected, what = (
        (timing.span_s, "packets span") if timing.span_s else (timing.header_s, "headers say")
    )
    if expected is not None and abs(decoded_s - expected) > max(0.5, 0.1 * expected):
        logger.warning(
            "%s: %s %.3f s but %.3f s decoded (truncated file or wrong header)",
            path,
            what,
            expected,
            decoded_s,
        )


def _first_pass(
    path: str | Path,
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    fps: float,
    targets: list[float],
    max_side: int | None,
) -> tuple[RgbFrames | None, list[float], float, Geometry]:
    """Decode everything once, converting the frames that ``targets`` (the sample times
    for the estimated length; empty when there is none) select as they are chosen.

    Returns (the chosen frames, or None when there were no targets; every frame's time;
    the decoded duration; the display geometry of the first frame).
    """
    clock = FrameClock(stream, fps, leaps=timestamps_break(container))
    times: list[float] = []
    chosen: RgbFrames | None = None
    prev: tuple[int, av.VideoFrame] | None = None
    geometry = Geometry()
    j = 0
    for k, frame in enumerate(decode_frames(path, container, stream)):
        if k == 0:
            geometry = display_geometry(stream, frame)
            chosen = RgbFrames(len(targets), max_side, geometry) if targets else None
        t = clock(frame)
        times.append(t)
        while j < len(targets) and targets[j] < t - _TIME_EPS:
            assert chosen is not None
            chosen.add(*(prev if prev is not None else (k, frame)))
            j += 1
        prev = (k, frame)
    if prev is not None and chosen is not None:
        for _ in range(len(targets) - j):
            chosen.add(*prev)
    return chosen, times, clock.end(), geometry


def _frames_by_index(path: str | Path, wanted: list[int], out: RgbFrames) -> RgbFrames:
    """Second, exact pass: decode from the start and keep frames by decode index."""
    last = max(wanted)
    position = 0
    container, stream = open_video(path)
    try:
        for k, frame in enumerate(decode_frames(path, container, stream)):
            while position < len(wanted) and wanted[position] == k:
                out.add(k, frame)
                position += 1
            if k >= last:
                break
    except AV_ERRORS as exc:
        raise VideoDecodeError(path, f"decoding failed ({exc})") from exc
    finally:
        container.close()
    if position < len(wanted):  # decoding is deterministic: the file changed under us
        raise VideoDecodeError(path, f"frames {wanted[position:][:5]} vanished on re-decode")
    return out


class RgbFrames:
    """A fixed number of frames converted to RGB one at a time, as a player shows them:
    interlaced ones deinterlaced, stretched to square pixels and turned by ``geometry``,
    the longer side at most ``max_side``; all at the size of the first one (a mid-stream
    resolution change is resized). One swscale context serves them all (much cheaper than
    one per frame), and a frame added again in a row is converted once."""

    def __init__(self, count: int, max_side: int | None, geometry: Geometry):
        self.count = count
        self.max_side = max_side
        self.geometry = geometry
        self.indices: list[int] = []
        self.source_size = (0, 0)
        self._reformatter = VideoReformatter()
        self._size: tuple[int, int] | None = None
        self._out: np.ndarray | None = None

    def add(self, index: int, frame: av.VideoFrame) -> None:
        if len(self.indices) >= self.count:
            raise ValueError(f"more than the {self.count} frames expected")
        if self._out is not None and self.indices[-1] == index:
            self._out[len(self.indices)] = self._out[len(self.indices) - 1]
        else:
            picture = self._convert(frame)
            if self._out is None:
                self._out = np.empty((self.count, *picture.shape), dtype=np.uint8)
            self._out[len(self.indices)] = picture
        self.indices.append(index)

    def _convert(self, frame: av.VideoFrame) -> np.ndarray:
        if self._size is None:
            self.source_size = (frame.width, frame.height)
            square = self.geometry.square_size(frame.width, frame.height)
            self._size = scaled_size(*square, self.max_side)
        if frame.interlaced_frame:
            frame = deinterlace_each([frame])[0]
        rgb = self._reformatter.reformat(
            frame, *self._size, format="rgb24", interpolation=Interpolation.AREA
        )
        return self.geometry.apply(rgb.to_ndarray())

    def pictures(self) -> np.ndarray:
        """(count, H, W, 3) uint8 RGB, in the order added."""
        if self._out is None or len(self.indices) != self.count:
            raise ValueError(f"{len(self.indices)} of {self.count} frames added")
        return self._out
