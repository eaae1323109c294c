"""Display geometry: every orientation a display matrix or a rotate tag can give comes out
upright and unmirrored, sizes are the displayed ones, and deinterlacing keeps each frame
and its time."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import numpy as np
import pytest
from videolib import arrow_scene, bar_scene, combing, points_up, write_video

from clipsearch.display import Geometry, display_geometry
from clipsearch.media import make_preview
from clipsearch.video import frame_times, probe, sample_frames

PORTRAIT = (112, 192)


def _scene() -> np.ndarray:
    picture = arrow_scene(*PORTRAIT)(0.0)
    picture[80:100, 5:25] = (240, 240, 0)  # a yellow mark on the left: shows a mirror
    return picture


def _yellow_x(picture: np.ndarray) -> float:
    mark = (picture[..., 0] > 180) & (picture[..., 1] > 180) & (picture[..., 2] < 90)
    return float(np.nonzero(mark)[1].mean() / picture.shape[1])


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
@pytest.mark.parametrize(("hflip", "vflip"), [(False, False), (True, False), (False, True)])
def test_every_display_matrix_comes_out_upright(
    tmp_path: Path, degrees: int, hflip: bool, vflip: bool
) -> None:
    # stored as a device would: so that turning it ``degrees`` counter-clockwise, then
    # mirroring, shows the scene
    picture = _scene()
    if hflip:
        picture = picture[:, ::-1]
    if vflip:
        picture = picture[::-1]
    stored = np.ascontiguousarray(np.rot90(picture, k=-degrees // 90))
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as out:
        stream: Any = out.add_stream("libx264", rate=25)
        stream.height, stream.width = stored.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    shown = sample_frames(path, 1).frames[0]
    assert shown.shape[:2] == (PORTRAIT[1], PORTRAIT[0])
    assert points_up(shown)
    assert _yellow_x(shown) < 0.3  # on the left: not mirrored
    info = probe(path)
    assert (info.width, info.height) == PORTRAIT


@pytest.mark.parametrize("tag", [90, 180, 270])
def test_the_legacy_rotate_tag(tmp_path: Path, tag: int) -> None:
    size = PORTRAIT if tag != 180 else (176, 144)
    path = write_video(tmp_path / "old.mkv", size=size, rotate_tag=tag)
    result = sample_frames(path, 2)
    assert (result.width, result.height) == size
    assert all(points_up(f) for f in result.frames)


def test_geometry_sizes() -> None:
    assert Geometry().display_size(320, 240) == (320, 240)
    assert Geometry(sar=Fraction(16, 15)).display_size(720, 576) == (768, 576)
    assert Geometry(ops=("clock",)).display_size(1920, 1080) == (1080, 1920)
    assert Geometry(Fraction(4, 3), ("cclock",)).display_size(1440, 1080) == (1080, 1920)


def test_a_broken_sample_aspect_ratio_is_ignored() -> None:
    for sar in (Fraction(1, 100), Fraction(50), None, 0):
        stream = SimpleNamespace(sample_aspect_ratio=sar, metadata={})
        assert display_geometry(stream).sar == 1


def test_deinterlacing_keeps_every_frame_and_its_time(tmp_path: Path) -> None:
    path = write_video(
        tmp_path / "tv.ts",
        fmt="mpegts",
        codec="mpeg2video",
        size=(320, 240),
        seconds=1.0,
        interlaced=True,
        scene=bar_scene(320, 240),
    )
    preview = make_preview(path, tmp_path / "preview.mp4")
    np.testing.assert_allclose(frame_times(preview), frame_times(path), atol=1e-3)
    with av.open(str(preview)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        raw = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == len(raw) == 25
    assert max(combing(f) for f in frames[1:-1]) < min(combing(f) for f in raw[1:-1]) / 4


@pytest.mark.parametrize("fmt", ["mp4", "mov"])
def test_a_still_stored_first_is_not_taken_for_the_video(tmp_path: Path, fmt: str) -> None:
    """A one-frame picture as the first video stream, not marked as cover art (what
    ``ffmpeg -i cover.jpg -i clip.mp4 -map 0 -map 1 -c copy`` makes; MP4 and MOV mark it
    the default track)."""
    path = write_video(tmp_path / f"still.{fmt}", fmt=fmt, seconds=3.0, cover=True)
    sampled = sample_frames(path, 4)
    assert sampled.duration_s == pytest.approx(3.0, abs=0.05)
    assert all(points_up(frame) for frame in sampled.frames)  # the arrow, not the red still
