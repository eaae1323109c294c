"""Frame sampling: correct frames at interval midpoints, robust to lying containers.

Test clips carry their frame index in the pixels (16 black/white blocks, one
bit each), so every sampled frame can be identified after lossy compression.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import numpy as np
import pytest

from clipsearch import video
from clipsearch.errors import InvalidInput, VideoDecodeError
from clipsearch.video import (
    Continuity,
    FrameClock,
    estimate_duration,
    frame_times,
    interval_midpoints,
    pick_indices,
    probe,
    sample_frames,
    scaled_size,
    stream_timing,
)

GRID = 4  # 4x4 blocks = 16 bits of frame index


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """An RGB frame whose 4x4 blocks spell ``index`` in binary (white = 1)."""
    img = np.zeros((height, width, 3), np.uint8)
    for bit in range(GRID * GRID):
        if (index >> bit) & 1:
            r, c = divmod(bit, GRID)
            rows = slice(r * height // GRID, (r + 1) * height // GRID)
            cols = slice(c * width // GRID, (c + 1) * width // GRID)
            img[rows, cols] = 255
    return img


def read_index(img: np.ndarray) -> int:
    """Inverse of :func:`pattern`, reading the centre of each block."""
    height, width = img.shape[:2]
    value = 0
    for bit in range(GRID * GRID):
        r, c = divmod(bit, GRID)
        y0, y1 = r * height // GRID, (r + 1) * height // GRID
        x0, x1 = c * width // GRID, (c + 1) * width // GRID
        dy, dx = (y1 - y0) // 4, (x1 - x0) // 4
        if img[y0 + dy : y1 - dy, x0 + dx : x1 - dx].mean() > 128:
            value |= 1 << bit
    return value


def write_clip(
    path: Path,
    n_frames: int,
    *,
    fps: int = 25,
    size: tuple[int, int] = (320, 240),
    codec: str = "mpeg4",
    pts_ms: list[int] | None = None,
    gop: int = 1000,
) -> Path:
    """Encode ``n_frames`` index-pattern frames; ``pts_ms`` gives irregular (VFR) times."""
    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.gop_size = gop
        if pts_ms is not None:
            stream.time_base = Fraction(1, 1000)
            stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(pattern(i, width, height), format="rgb24")
            if pts_ms is not None:
                frame.pts = pts_ms[i]
                frame.time_base = Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def patch_avi_frame_count(src: Path, dest: Path, n_frames: int) -> Path:
    """Copy an AVI, rewriting the header frame counts (avih.dwTotalFrames, strh.dwLength)."""
    data = bytearray(src.read_bytes())
    avih, strh = data.find(b"avih"), data.find(b"strh")
    struct.pack_into("<I", data, avih + 8 + 16, n_frames)
    struct.pack_into("<I", data, strh + 8 + 32, n_frames)
    dest.write_bytes(bytes(data))
    return dest


def expected_cfr(n_frames: int, num: int) -> list[int]:
    """Frame showing at each midpoint of a CFR clip: floor((2i + 1) * n / (2 * num))."""
    return [((2 * i + 1) * n_frames) // (2 * num) for i in range(num)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    c = {
        "avi25": write_clip(d / "avi25.avi", 175),  # 7 s, one keyframe
        "avi30": write_clip(d / "avi30.avi", 210, fps=30),  # 7 s
        "odd": write_clip(d / "odd.avi", 75, size=(400, 226)),  # 3 s
        "h264": write_clip(d / "h264.mp4", 90, fps=30, codec="libx264", gop=30),  # B-frames
        "tiny": write_clip(d / "tiny.avi", 5),
    }
    rng = np.random.default_rng(7)
    steps = rng.choice([20, 40, 80, 120], size=100)
    pts = np.concatenate([[0], np.cumsum(steps)[:-1]]).astype(int).tolist()
    c["vfr"] = write_clip(d / "vfr.mkv", 100, pts_ms=pts)
    (d / "vfr.pts").write_text(",".join(map(str, pts)))
    c["says2s"] = patch_avi_frame_count(c["avi25"], d / "says2s.avi", 50)
    c["says10s"] = patch_avi_frame_count(c["avi25"], d / "says10s.avi", 250)
    data = c["avi25"].read_bytes()
    (d / "truncated.avi").write_bytes(data[: len(data) * 2 // 5])
    c["truncated"] = d / "truncated.avi"
    return c


# --- pure helpers -------------------------------------------------------------------------


def test_interval_midpoints() -> None:
    np.testing.assert_allclose(interval_midpoints(8.0, 4), [1.0, 3.0, 5.0, 7.0])
    np.testing.assert_allclose(interval_midpoints(7.0, 1), [3.5])
    with pytest.raises(InvalidInput):
        interval_midpoints(7.0, 0)


def test_pick_indices_last_frame_at_or_before_target() -> None:
    times = [0.0, 0.04, 0.08, 0.12]
    assert pick_indices(times, [0.0, 0.039, 0.04, 0.05, 0.5]) == [0, 0, 1, 1, 3]
    assert pick_indices(times, [-1.0]) == [0]  # before the first frame: frame 0
    assert pick_indices([0.0], [0.1, 0.2, 0.3]) == [0, 0, 0]


def test_estimate_duration_fallbacks() -> None:
    # the measured span of the timestamps first, then the stream's header, frames / fps,
    # and last the container's duration (audio and start offsets count there)
    assert estimate_duration(7.0, 9.0, 100, 25.0, 4003.0) == 9.0
    assert estimate_duration(7.0, None, 100, 25.0, 4003.0) == 7.0
    assert estimate_duration(0.0, float("nan"), 100, 25.0) == 4.0
    assert estimate_duration(None, None, 0, 25.0, 6.0) == 6.0
    assert estimate_duration(None, None, 0, 25.0) is None


def test_scaled_size() -> None:
    assert scaled_size(320, 240, None) == (320, 240)
    assert scaled_size(320, 240, 100) == (100, 75)
    assert scaled_size(240, 320, 160) == (120, 160)
    assert scaled_size(320, 240, 1000) == (320, 240)  # never upscaled


def test_frame_clock_falls_back_to_rate_without_pts() -> None:
    stream: Any = SimpleNamespace(time_base=Fraction(1, 25), start_time=None)
    clock = FrameClock(stream, 25.0)
    frames: list[Any] = [SimpleNamespace(pts=None, duration=0) for _ in range(3)]
    assert [clock(f) for f in frames] == pytest.approx([0.0, 0.04, 0.08])
    assert clock.end() == pytest.approx(0.12)


@pytest.mark.parametrize(
    ("time_base", "start"),
    [(Fraction(1, 25), 0), (Fraction(1001, 30000), 1001), (Fraction(1, 90000), 3003)],
)
def test_frame_clock_gives_the_exact_times_of_timestamps(time_base: Fraction, start: int) -> None:
    """Each time is the float nearest the exact pts * time_base (not one rounded twice),
    so 35 * 1/25 is 1.4 and NTSC steps land on the same floats as the Fraction's."""
    stream: Any = SimpleNamespace(time_base=time_base, start_time=start)
    clock = FrameClock(stream, 25.0)
    step = int(1 / (25 * time_base)) or 1
    pts = [start + i * step for i in range(0, 4000, 7)]
    frames: list[Any] = [SimpleNamespace(pts=p, duration=step) for p in pts]
    origin = float(start * time_base)
    assert [clock(f) for f in frames] == [float(p * time_base) - origin for p in pts]
    assert clock.last_step == float(step * time_base)


# --- sampling real clips ------------------------------------------------------------------


def test_test_clip_has_a_single_keyframe(clips: dict[str, Path]) -> None:
    """The clip that exposed the seek bug: one keyframe, then P-frames only."""
    with av.open(str(clips["avi25"])) as c:
        keys = [p.is_keyframe for p in c.demux(video=0) if p.size]
    assert len(keys) == 175
    assert sum(keys) == 1


@pytest.mark.parametrize(
    ("name", "n_frames", "fps", "size"),
    [
        ("avi25", 175, 25, (320, 240)),
        ("avi30", 210, 30, (320, 240)),
        ("odd", 75, 25, (400, 226)),
        ("h264", 90, 30, (320, 240)),
    ],
)
def test_samples_the_frame_at_each_interval_midpoint(
    clips: dict[str, Path], name: str, n_frames: int, fps: int, size: tuple[int, int]
) -> None:
    result = sample_frames(clips[name], 8)
    expected = expected_cfr(n_frames, 8)
    assert result.frames.shape == (8, size[1], size[0], 3)
    assert result.frames.dtype == np.uint8
    assert [read_index(f) for f in result.frames] == expected
    np.testing.assert_allclose(result.timestamps, np.array(expected) / fps, atol=1e-3)
    assert len({f.tobytes() for f in result.frames}) == 8  # the seek bug gave 8 x frame 0
    assert result.duration_s == pytest.approx(n_frames / fps, abs=1e-3)
    assert result.fps == pytest.approx(fps)
    assert (result.width, result.height) == size


def test_honest_file_is_decoded_once(
    clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_second_pass(*args: object) -> None:
        raise AssertionError("second pass on a file with correct metadata")

    monkeypatch.setattr(video, "_frames_by_index", no_second_pass)
    assert [read_index(f) for f in sample_frames(clips["avi25"]).frames] == expected_cfr(175, 8)


def test_variable_frame_rate(clips: dict[str, Path]) -> None:
    pts = np.array([int(x) for x in (clips["vfr"].parent / "vfr.pts").read_text().split(",")])
    times = pts / 1000.0
    result = sample_frames(clips["vfr"], 8)
    # Duration is the last frame's time plus its display duration (a few frame steps at most).
    assert times[-1] < result.duration_s <= times[-1] + 0.2
    targets = interval_midpoints(result.duration_s, 8)
    expected = (np.searchsorted(times, targets, side="right") - 1).tolist()
    assert [read_index(f) for f in result.frames] == expected
    np.testing.assert_allclose(result.timestamps, times[expected], atol=1e-3)
    assert len(set(expected)) == 8
    np.testing.assert_allclose(frame_times(clips["vfr"]), times, atol=1e-3)


@pytest.mark.parametrize("name", ["says2s", "says10s"])
def test_container_that_lies_about_its_duration(clips: dict[str, Path], name: str) -> None:
    # The headers really are wrong (7 s of frames inside) ...
    timing = stream_timing(clips[name])
    assert timing.header_s == pytest.approx(2.0 if name == "says2s" else 10.0)
    # ... the packets' timestamps are not, and probe measures them ...
    assert timing.span_s == pytest.approx(7.0) and probe(clips[name]).duration_s == 7.0
    # ... and sampling follows the frames actually decoded.
    result = sample_frames(clips[name], 8)
    assert result.duration_s == pytest.approx(7.0, abs=1e-3)
    assert [read_index(f) for f in result.frames] == expected_cfr(175, 8)
    np.testing.assert_allclose(result.timestamps, np.array(expected_cfr(175, 8)) / 25, atol=1e-3)


def test_truncated_file_samples_its_decodable_part(clips: dict[str, Path]) -> None:
    result = sample_frames(clips["truncated"], 8)
    indices = [read_index(f) for f in result.frames]
    assert 1.0 < result.duration_s < 7.0
    assert indices == sorted(indices)
    assert len(set(indices)) == 8
    assert max(indices) / 25 < result.duration_s
    # Each returned frame is the one its timestamp says (index = t * fps).
    assert indices == [round(t * 25) for t in result.timestamps]
    n_decodable = round(result.duration_s * 25)
    assert indices == expected_cfr(n_decodable, 8)


def test_more_samples_than_frames_repeats_frames(clips: dict[str, Path]) -> None:
    result = sample_frames(clips["tiny"], 12)  # 5 frames, 0.2 s
    indices = [read_index(f) for f in result.frames]
    assert indices == expected_cfr(5, 12)
    assert set(indices) == set(range(5))
    assert result.frames.shape[0] == 12


def test_max_side_downscales_keeping_aspect(clips: dict[str, Path]) -> None:
    small = sample_frames(clips["avi25"], 8, max_side=100)
    assert small.frames.shape == (8, 75, 100, 3)
    assert (small.width, small.height) == (320, 240)  # native size is still reported
    assert [read_index(f) for f in small.frames] == expected_cfr(175, 8)
    odd = sample_frames(clips["odd"], 2, max_side=200)
    assert odd.frames.shape == (2, 113, 200, 3)
    assert sample_frames(clips["avi25"], 1, max_side=1000).frames.shape == (1, 240, 320, 3)


def test_probe_reads_headers(clips: dict[str, Path]) -> None:
    info = probe(clips["avi30"])
    assert (info.width, info.height, info.n_frames) == (320, 240, 210)
    assert info.fps == pytest.approx(30.0)
    assert info.duration_s == pytest.approx(7.0)
    assert info.codec == "mpeg4"


def test_invalid_num_frames(clips: dict[str, Path]) -> None:
    with pytest.raises(InvalidInput):
        sample_frames(clips["avi25"], 0)


# --- broken input -------------------------------------------------------------------------


def _bad_files(d: Path, good: Path) -> dict[str, Path]:
    (d / "empty.avi").write_bytes(b"")
    (d / "random.avi").write_bytes(np.random.default_rng(0).bytes(50_000))
    (d / "notes.avi").write_text("this is not a video\n" * 100)
    (d / "headers_only.avi").write_bytes(good.read_bytes()[:2000])
    with av.open(str(d / "audio.wav"), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    (d / "folder.avi").mkdir()
    names = ["empty", "random", "notes", "headers_only", "audio", "folder"]
    files = {n: next(d.glob(f"{n}.*")) for n in names}
    files["missing"] = d / "missing.avi"
    return files


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path]) -> dict[str, Path]:
    return _bad_files(tmp_path_factory.mktemp("bad"), clips["avi25"])


@pytest.mark.parametrize(
    "name", ["empty", "random", "notes", "headers_only", "audio", "folder", "missing"]
)
def test_broken_files_raise_one_typed_error(bad_files: dict[str, Path], name: str) -> None:
    path = bad_files[name]
    with pytest.raises(VideoDecodeError) as info:
        sample_frames(path, 8)
    assert path.name in str(info.value)
    assert info.value.path == str(path)
    assert info.value.code == "video_decode_error"
    if name != "headers_only":  # headers alone are enough for probe
        with pytest.raises(VideoDecodeError, match=path.name):
            probe(path)


# --- timestamps that break ----------------------------------------------------------------


def test_continuity_closes_breaks_backwards_always_and_leaps_where_told() -> None:
    joins = Continuity(leaps=False)
    assert [joins.see(t, 1.0) for t in (0.0, 1.0, 2.0, 0.0, 1.0, 9000.0)] == [
        0.0, 1.0, 2.0, 3.0, 4.0, 9003.0,
    ]  # fmt: skip
    joins = Continuity(leaps=True)
    assert [joins.see(t, 1.0) for t in (0.0, 1.0, 601.0, 3.0, 4.0, 13.5)] == [
        0.0, 1.0, 2.0, 3.0, 4.0, 13.5,
    ]  # fmt: skip


def write_part(path: Path, first: int, n_frames: int, *, start: int, fmt: str, codec: str) -> Path:
    """Index-pattern frames ``first``.. at 25 fps, timestamps from frame ``start``."""
    with av.open(str(path), "w", format=fmt) as out:
        stream: Any = out.add_stream(codec, rate=25, options={"bf": "0"})
        stream.width, stream.height, stream.pix_fmt = 176, 144, "yuv420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(pattern(first + i, 176, 144), format="rgb24")
            frame.pts = start + i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize(
    ("fmt", "codec", "starts"),
    [
        ("mpegts", "libx264", (0, 0)),  # a recording joined with cat
        ("mpeg", "mpeg2video", (0, 0)),  # the FFmpeg FAQ's way to join program streams
        ("mpegts", "libx264", (2500, 250)),  # the second part starts earlier
    ],
)
def test_files_joined_with_cat_are_sampled_over_both_parts(
    tmp_path: Path, fmt: str, codec: str, starts: tuple[int, int]
) -> None:
    parts = [
        write_part(tmp_path / f"p{k}", 75 * k, 75, start=s, fmt=fmt, codec=codec)
        for k, s in enumerate(starts)
    ]
    joined = tmp_path / f"joined.{'ts' if fmt == 'mpegts' else 'mpg'}"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    times = frame_times(joined)
    assert len(times) == 150 and np.all(np.diff(times) > 0)
    sampled = sample_frames(joined, 8, max_duration_s=60)
    assert sampled.duration_s == pytest.approx(6.0, abs=0.05)
    shown = [read_index(f) for f in sampled.frames]
    assert shown == pytest.approx([round(t * 25) for t in sampled.timestamps], abs=1)
    assert max(shown) > 120  # the second part is seen


def test_one_broken_timestamp_in_a_recording_is_closed_up(tmp_path: Path) -> None:
    """A packet whose pts is 600 s out (a reception glitch): neither 603 s long nor a
    frozen tail after it."""
    clean = write_part(tmp_path / "clean.ts", 0, 75, start=0, fmt="mpegts", codec="libx264")
    for bad in (30, 74):
        glitch = tmp_path / f"glitch{bad}.ts"
        with av.open(str(clean)) as src, av.open(str(glitch), "w", format="mpegts") as out:
            stream = src.streams.video[0]
            copy = out.add_stream_from_template(stream)
            for k, packet in enumerate(p for p in src.demux(stream) if p.size):
                if k == bad:
                    packet.pts += 600 * 90_000
                packet.stream = copy
                out.mux(packet)
        sampled = sample_frames(glitch, 8)
        assert sampled.duration_s == pytest.approx(3.0, abs=0.05)
        assert np.all(np.diff(sampled.timestamps) > 0)
        shown = [read_index(f) for f in sampled.frames]
        assert shown == pytest.approx([round(t * 25) for t in sampled.timestamps], abs=1)
