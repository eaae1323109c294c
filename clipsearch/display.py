"""What a player shows: decoded pictures turned upright, stretched to square pixels and
deinterlaced.

A decoded frame is rarely the picture a viewer sees:

- **Rotation.** Phones record the sensor's landscape frame and store how to turn it for
  display: a display matrix (side data every decoded frame carries) or, in older files, a
  ``rotate`` tag in the stream's metadata. :func:`display_geometry` reads either and turns
  it into the same operations FFmpeg's own command line applies (``transpose``, ``hflip``,
  ``vflip``), so a portrait video comes out portrait.
- **Sample aspect ratio.** DV and HDV camcorders, DVD rips and broadcast recordings store
  non-square pixels (720x576 at 16:15 shows 768x576). :class:`Geometry` scales the width by
  the sample aspect ratio before anything else, so a circle stays round.
- **Interlacing.** Fields of an interlaced frame were captured 1/50 s apart and show combs
  on anything that moves. :class:`Deinterlacer` runs such frames through an FFmpeg filter
  graph: ``bwdif`` (temporal) for a whole stream played in order, ``estdif`` (spatial)
  for frames picked here and there.

Everything downstream - the model's input, posters, thumbnails, previews and the width and
height stored with a video - uses these, so it never sees a sideways or squeezed picture.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.error
import numpy as np
from av.sidedata.sidedata import Type as SideDataType

logger = logging.getLogger(__name__)

__all__ = ["Deinterlacer", "Geometry", "deinterlace_each", "display_geometry"]

# Picture operations, named as FFmpeg's transpose/flip filters name them.
CLOCK = "clock"  # turn 90 degrees clockwise
CCLOCK = "cclock"  # turn 90 degrees counter-clockwise
TRANSPOSE = "transpose"  # FFmpeg's cclock_flip: mirror along the main diagonal
ANTITRANSPOSE = "antitranspose"  # FFmpeg's clock_flip: mirror along the other diagonal
HFLIP = "hflip"
VFLIP = "vflip"
_SWAPS_SIDES = frozenset({CLOCK, CCLOCK, TRANSPOSE, ANTITRANSPOSE})

# The legacy ``rotate`` tag: degrees clockwise.
_TAG_OPS: dict[int, tuple[str, ...]] = {0: (), 90: (CLOCK,), 180: (HFLIP, VFLIP), 270: (CCLOCK,)}
# Sample aspect ratios outside this range are broken headers, not pictures.
MIN_SAR, MAX_SAR = Fraction(1, 4), Fraction(4)


@dataclass(frozen=True)
class Geometry:
    """How a stream's decoded pictures become the displayed one: the width is scaled by
    ``sar`` (square pixels), then ``ops`` turn and mirror the picture, in order."""

    sar: Fraction = Fraction(1)
    ops: tuple[str, ...] = ()

    @property
    def swaps_sides(self) -> bool:
        """True when the displayed picture is the stored one on its side (90 or 270 deg)."""
        return any(op in _SWAPS_SIDES for op in self.ops)

    @property
    def is_identity(self) -> bool:
        return self.sar == 1 and not self.ops

    def square_size(self, width: int, height: int) -> tuple[int, int]:
        """The stored picture's size in square pixels, before it is turned."""
        return max(1, round(width * self.sar)), height

    def display_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) a player shows for stored pictures of ``width`` x ``height``."""
        w, h = self.square_size(width, height)
        return (h, w) if self.swaps_sides else (w, h)

    def apply(self, picture: np.ndarray) -> np.ndarray:
        """Turn and mirror an (H, W, C) picture already scaled to square pixels."""
        for op in self.ops:
            picture = _OPERATIONS[op](picture)
        return np.ascontiguousarray(picture)


_OPERATIONS = {
    CLOCK: lambda a: np.rot90(a, -1),
    CCLOCK: lambda a: np.rot90(a, 1),
    TRANSPOSE: lambda a: a.swapaxes(0, 1),
    ANTITRANSPOSE: lambda a: np.rot90(a, -1)[::-1],
    HFLIP: lambda a: a[:, ::-1],
    VFLIP: lambda a: a[::-1],
}


def display_geometry(stream: Any, frame: av.VideoFrame | None = None) -> Geometry:
    """The geometry of ``stream``: its sample aspect ratio, and the display matrix of
    ``frame`` (a decoded frame of it), else the stream's ``rotate`` tag."""
    matrix = _display_matrix(frame) if frame is not None else None
    ops = _matrix_ops(matrix) if matrix is not None else _tag_ops(stream)
    return Geometry(sar=_sample_aspect_ratio(stream), ops=ops)


def _sample_aspect_ratio(stream: Any) -> Fraction:
    try:
        sar = stream.sample_aspect_ratio
    except (AttributeError, ValueError, ZeroDivisionError):
        return Fraction(1)
    if not sar or not MIN_SAR <= Fraction(sar) <= MAX_SAR:
        return Fraction(1)
    return Fraction(sar)


def _display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    side_data: Any = frame.side_data
    if SideDataType.DISPLAYMATRIX not in side_data:
        return None
    raw = bytes(side_data[SideDataType.DISPLAYMATRIX])
    return struct.unpack("=9i", raw[:36]) if len(raw) >= 36 else None


def _tag_ops(stream: Any) -> tuple[str, ...]:
    metadata = getattr(stream, "metadata", None) or {}
    tag = next((v for k, v in metadata.items() if k.lower() == "rotate"), None)
    if tag is None:
        return ()
    try:
        degrees = round(float(tag)) % 360
    except ValueError:
        return ()
    ops = _TAG_OPS.get(degrees)
    if ops is None:
        logger.debug("rotate tag %r is not a multiple of 90 degrees: shown as stored", tag)
    return ops or ()


def _matrix_ops(m: Sequence[int]) -> tuple[str, ...]:
    """What FFmpeg's command line does with a display matrix (fftools' get_rotation and
    its transpose/flip choice), as operations on the decoded picture."""
    a, b, c, d = (v / 65536.0 for v in (m[0], m[1], m[3], m[4]))
    scale_x, scale_y = math.hypot(a, c), math.hypot(b, d)
    if scale_x == 0 or scale_y == 0:
        return ()
    counter_clockwise = -math.degrees(math.atan2(b / scale_y, a / scale_x))
    theta = -round(counter_clockwise)  # clockwise
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 1:
        return (TRANSPOSE,) if m[3] > 0 else (CLOCK,)
    if abs(theta - 180) < 1:
        return tuple(op for op, on in ((HFLIP, m[0] < 0), (VFLIP, m[4] < 0)) if on)
    if abs(theta - 270) < 1:
        return (ANTITRANSPOSE,) if m[3] < 0 else (CCLOCK,)
    if abs(theta) < 1 or abs(theta - 360) < 1:
        return (VFLIP,) if m[4] < 0 else ()
    logger.debug("display matrix turns by %.0f degrees: shown as stored", theta)
    return ()


# --------------------------------------------------------------------------- deinterlacing

# Temporal (uses the fields of the frames around): for a whole stream decoded in order.
TEMPORAL = "bwdif=mode=send_frame:parity=auto:deint=interlaced"
# Spatial (each frame on its own): for frames sampled from anywhere in a stream.
SPATIAL = "estdif=mode=frame:parity=auto:deint=interlaced"


class Deinterlacer:
    """Runs frames flagged interlaced through an FFmpeg deinterlacing filter graph.

    Progressive frames pass unchanged until the first interlaced one; from then on every
    frame goes through the graph (``deint=interlaced`` leaves progressive ones as they
    are), so frames come out in order, each once, with their own timestamps. Call
    :meth:`flush` at the end of the stream for the frames the filter still holds. If the
    graph fails (a stream changing size mid-way), frames pass unchanged from then on.
    """

    def __init__(self, spec: str = TEMPORAL):
        self.spec = spec
        self._graph: av.filter.Graph | None = None
        self._time_base: Fraction | None = None
        self._failed = False

    @property
    def active(self) -> bool:
        return self._graph is not None

    def push(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        """The frames ready after ``frame`` (none, while the filter looks ahead)."""
        if self._failed or (self._graph is None and not frame.interlaced_frame):
            return [frame]
        try:
            if self._graph is None:
                self._graph = self._build(frame)
            self._graph.push(frame)
            return self._pull()
        except (av.error.FFmpegError, ValueError) as exc:
            logger.warning("deinterlacing stopped (%s): frames pass as decoded", exc)
            self._failed, self._graph = True, None
            return [frame]

    def flush(self) -> list[av.VideoFrame]:
        """The frames the filter still holds, at the end of the stream."""
        if self._graph is None:
            return []
        try:
            self._graph.push(None)
            return self._pull()
        except (av.error.FFmpegError, ValueError) as exc:
            logger.warning("deinterlacing could not finish (%s)", exc)
            return []
        finally:
            self._graph = None

    def _build(self, frame: av.VideoFrame) -> av.filter.Graph:
        self._time_base = frame.time_base or Fraction(1, 90000)
        graph = av.filter.Graph()
        source = graph.add_buffer(
            width=frame.width,
            height=frame.height,
            format=frame.format,
            time_base=self._time_base,
        )
        name, _, args = self.spec.partition("=")
        filt = graph.add(name, args)
        sink = graph.add("buffersink")
        source.link_to(filt)
        filt.link_to(sink)
        graph.configure()
        return graph

    def _pull(self) -> list[av.VideoFrame]:
        assert self._graph is not None
        out: list[av.VideoFrame] = []
        while True:
            try:
                frame = self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return out
            if not isinstance(frame, av.VideoFrame):  # pragma: no cover - video graph
                continue
            out.append(self._in_input_time_base(frame))

    def _in_input_time_base(self, frame: av.VideoFrame) -> av.VideoFrame:
        """The filters halve the time base (for field rates): put times back in the
        stream's, which the frame clock counts in."""
        tb = self._time_base
        if tb is not None and frame.time_base is not None and frame.time_base != tb:
            if frame.pts is not None:
                frame.pts = round(frame.pts * frame.time_base / tb)
            if frame.duration:
                frame.duration = round(frame.duration * frame.time_base / tb)
            frame.time_base = tb
        return frame


def deinterlace_each(frames: Sequence[av.VideoFrame]) -> list[av.VideoFrame]:
    """Each interlaced frame of ``frames`` deinterlaced on its own (spatially), the others
    as they are; one frame out for each frame in, in order."""
    if not any(f.interlaced_frame for f in frames):
        return list(frames)
    out: list[av.VideoFrame] = []
    for frame in frames:
        if not frame.interlaced_frame:
            out.append(frame)
            continue
        deinterlacer = Deinterlacer(SPATIAL)
        done = deinterlacer.push(frame) + deinterlacer.flush()
        out.append(done[0] if len(done) == 1 else frame)
    return out
