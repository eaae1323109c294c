"""Video files with the quirks real ones have, made with PyAV's own encoders.

The scene is an upright arrow (white shaft, red head at the top) over grey, with a blue
square sliding along the bottom so that consecutive frames differ, and, for the
anamorphic cases, a green disc (a circle in the displayed picture). What is stored in
each file is that scene as the device would store it: turned by a display matrix, squeezed
by a sample aspect ratio, split into two fields taken half a frame apart, ... so each
check can look at what a user sees and ask whether the arrow points up and the disc is
round.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

Scene = Callable[[float], np.ndarray]  # time (s) -> (H, W, 3) uint8 RGB


def arrow_scene(width: int, height: int, *, disc: bool = False) -> Scene:
    """An upright arrow, a sliding blue square and (``disc``) a green disc, at ``t`` s."""
    yy, xx = np.mgrid[0:height, 0:width]

    def draw(t: float) -> np.ndarray:
        img = np.full((height, width, 3), 110, np.uint8)
        cx = width // 2
        shaft = max(2, width // 16)
        img[height * 3 // 10 : height * 9 // 10, cx - shaft : cx + shaft] = 255
        head_h = height // 4
        for i in range(head_h):
            half = int(i * width / 5 / head_h)
            img[height // 20 + i, max(0, cx - half) : cx + half + 1] = (230, 20, 20)
        side = max(4, min(width, height) // 8)
        x = int((t * 0.37 % 1.0) * (width - side))
        img[height - side - 2 : height - 2, x : x + side] = (20, 40, 230)
        if disc:
            r = min(width, height) // 5
            inside = (xx - width // 4) ** 2 + (yy - height // 2) ** 2 <= r * r
            img[inside] = (20, 200, 40)
        return img

    return draw


def bar_scene(width: int, height: int, speed_px_s: float = 200.0) -> Scene:
    """A full-height white bar crossing a grey picture fast: what combs when interlaced."""

    def draw(t: float) -> np.ndarray:
        img = np.full((height, width, 3), 40, np.uint8)
        x = int(20 + t * speed_px_s) % max(1, width - 40)
        img[:, x : x + 40] = 255
        return img

    return draw


def red_centre_y(img: np.ndarray) -> float:
    """Where the arrow's red head is, as a fraction of the height (top: near 0.15)."""
    red = (img[..., 0] > 150) & (img[..., 1] < 110) & (img[..., 2] < 110)
    ys = np.nonzero(red)[0]
    return float(ys.mean() / img.shape[0]) if len(ys) else float("nan")


def red_centre_x(img: np.ndarray) -> float:
    red = (img[..., 0] > 150) & (img[..., 1] < 110) & (img[..., 2] < 110)
    xs = np.nonzero(red)[1]
    return float(xs.mean() / img.shape[1]) if len(xs) else float("nan")


def points_up(img: np.ndarray) -> bool:
    """The arrow's head is in the top third and centred: the picture is upright."""
    return red_centre_y(img) < 0.3 and abs(red_centre_x(img) - 0.5) < 0.1


def disc_aspect(img: np.ndarray) -> float:
    """Width / height of the green disc's bounding box (1.0: round)."""
    green = (img[..., 1] > 140) & (img[..., 0] < 110) & (img[..., 2] < 110)
    ys, xs = np.nonzero(green)
    return float((np.ptp(xs) + 1) / (np.ptp(ys) + 1))


def combing(img: np.ndarray) -> float:
    """How much each row differs from the mean of its neighbours: high for a frame whose
    two fields show a moving thing in two places, low once deinterlaced."""
    g = img.astype(np.float32).mean(axis=2)
    return float(np.abs(g[1:-1] - 0.5 * (g[:-2] + g[2:])).mean())


def write_video(
    path: Path,
    *,
    fmt: str | None = None,
    codec: str = "libx264",
    size: tuple[int, int] = (176, 144),
    fps: int = 25,
    seconds: float = 1.0,
    pix_fmt: str = "yuv420p",
    scene: Scene | None = None,
    rotation: int = 0,
    rotate_tag: int | None = None,
    sar: Fraction | None = None,
    start_s: float = 0.0,
    interlaced: bool = False,
    audio_s: float | None = None,
    cover: bool = False,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    codec_tag: str | None = None,
) -> Path:
    """Encode ``seconds`` of ``scene`` (default: the arrow at ``size``, the *displayed*
    size) as a device would store it.

    ``rotation``: degrees counter-clockwise a player turns the stored picture (a display
    matrix), ``rotate_tag``: the legacy ``rotate`` tag (degrees clockwise); ``sar``: stored
    pixels are this much wider than tall (the stored width is the displayed one / sar);
    ``start_s``: timestamps begin there; ``interlaced``: each frame's two fields are taken
    half a frame apart; ``audio_s``: an AAC track that long; ``cover``: a JPEG cover
    picture as the file's first video stream.
    """
    width, height = size
    draw = scene or arrow_scene(width, height, disc=sar is not None)
    turn = (-rotation // 90) % 4 if rotate_tag is None else (rotate_tag // 90) % 4
    stored_w, stored_h = (height, width) if turn % 2 else (width, height)
    if sar is not None:
        stored_w = int(round(stored_w / sar / 2) * 2)
    with av.open(str(path), "w", format=fmt, options=container_options or {}) as out:
        cover_stream = _add_cover(out, stored_w, stored_h) if cover else None
        stream: Any = out.add_stream(codec, rate=fps, options=options or {})
        stream.width, stream.height, stream.pix_fmt = stored_w, stored_h, pix_fmt
        if codec_tag:
            stream.codec_context.codec_tag = codec_tag
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        if interlaced:
            flags = av.codec.context.Flags
            stream.codec_context.flags |= flags.interlaced_me | flags.interlaced_dct
        if rotation:
            stream.set_display_rotation(rotation)
        if rotate_tag is not None:
            stream.metadata["rotate"] = str(rotate_tag)
        audio: Any = out.add_stream("aac", rate=48000) if audio_s else None
        if cover_stream is not None:
            _mux_cover(out, cover_stream, stored_w, stored_h)
        first = round(start_s * fps)
        for i in range(round(seconds * fps)):
            t = i / fps
            picture = draw(t)
            if interlaced:  # the bottom field half a frame later
                picture[1::2] = draw(t + 0.5 / fps)[1::2]
            picture = np.ascontiguousarray(np.rot90(picture, k=turn))
            if sar is not None:
                picture = np.asarray(Image.fromarray(picture).resize((stored_w, stored_h)))
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = first + i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if audio is not None:
            _mux_silence(out, audio, audio_s or 0.0, start_s)
    return path


def _add_cover(out: Any, width: int, height: int) -> Any:
    cover = out.add_stream("mjpeg", rate=1)
    cover.width, cover.height, cover.pix_fmt = width, height, "yuvj420p"
    return cover


def _mux_cover(out: Any, cover: Any, width: int, height: int) -> None:
    """A solid red still: a picture that must never be taken for the video."""
    picture = np.zeros((height, width, 3), np.uint8)
    picture[:] = (200, 0, 0)
    frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
    frame.pts = 0
    out.mux(cover.encode(frame))
    out.mux(cover.encode(None))


def _mux_silence(out: Any, audio: Any, seconds: float, start_s: float) -> None:
    rate, n = 48000, 1024
    first = round(start_s * rate)
    for pos in range(0, round(seconds * rate), n):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, n), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = rate
        frame.pts = first + pos
        out.mux(audio.encode(frame))
    out.mux(audio.encode(None))


# Every container of the extension list that PyAV writes, each with an encoder a real file
# of that kind would have: extension -> (muxer, encoder, pixel format, size, options).
CONTAINERS: dict[str, tuple[str, str, str, tuple[int, int], dict[str, str]]] = {
    "mp4": ("mp4", "libx264", "yuv420p", (176, 144), {}),
    "m4v": ("mp4", "libx265", "yuv420p", (176, 144), {"x265-params": "log-level=none"}),
    "mov": ("mov", "prores_ks", "yuv422p10le", (176, 144), {}),
    "qt": ("mov", "mjpeg", "yuvj420p", (176, 144), {}),
    "avi": ("avi", "mpeg4", "yuv420p", (176, 144), {}),
    "divx": ("avi", "msmpeg4", "yuv420p", (176, 144), {}),
    "mkv": ("matroska", "libsvtav1", "yuv420p", (176, 144), {"preset": "12"}),
    "webm": ("webm", "libvpx-vp9", "yuv420p", (176, 144), {}),
    "mpg": ("mpeg", "mpeg1video", "yuv420p", (176, 144), {}),
    "mpeg": ("vob", "mpeg2video", "yuv420p", (176, 144), {}),
    "mpe": ("mpeg", "mpeg1video", "yuv420p", (176, 144), {}),
    "vob": ("vob", "mpeg2video", "yuv420p", (352, 288), {}),
    "ts": ("mpegts", "libx264", "yuv420p", (176, 144), {}),
    "MTS": ("mpegts", "libx264", "yuv420p", (176, 144), {}),
    "m2ts": ("mpegts", "libx265", "yuv420p", (176, 144), {"x265-params": "log-level=none"}),
    "m2t": ("mpegts", "mpeg2video", "yuv420p", (176, 144), {}),
    "3gp": ("3gp", "h263", "yuv420p", (176, 144), {}),
    "3g2": ("3g2", "mpeg4", "yuv420p", (176, 144), {}),
    "wmv": ("asf", "wmv2", "yuv420p", (176, 144), {}),
    "asf": ("asf", "wmv1", "yuv420p", (176, 144), {}),
    "flv": ("flv", "flv", "yuv420p", (176, 144), {}),
    "f4v": ("f4v", "libx264", "yuv420p", (176, 144), {}),
    "ogv": ("ogg", "libvpx", "yuv420p", (176, 144), {}),
    "ogg": ("ogg", "libvpx", "yuv420p", (176, 144), {}),
    "dv": ("dv", "dvvideo", "yuv420p", (720, 576), {}),
    "mxf": ("mxf", "mpeg2video", "yuv422p", (720, 576), {}),
}
# AVCHD camcorders write 192-byte packets (a timestamp before each TS packet).
M2TS_MODE = {"mpegts_m2ts_mode": "1"}


def write_container(folder: Path, ext: str) -> Path:
    """One second of the arrow in the container and codec ``CONTAINERS[ext]`` names."""
    fmt, codec, pix_fmt, size, options = CONTAINERS[ext]
    m2ts = ext.lower() in ("mts", "m2ts")
    return write_video(
        folder / f"clip.{ext}",
        fmt=fmt,
        codec=codec,
        pix_fmt=pix_fmt,
        size=size,
        options=options,
        container_options=M2TS_MODE if m2ts else None,
    )
