"""Browser previews (H.264 MP4, faststart) and JPEG posters, with the on-disk cache."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from clipsearch import media
from clipsearch.errors import InvalidInput, VideoDecodeError
from clipsearch.media import (
    ensure_poster,
    ensure_preview,
    make_preview,
    validate_key,
    write_poster,
)


def write_clip(
    path: Path, n_frames: int, *, fps: int = 25, size: tuple[int, int] = (320, 240)
) -> Path:
    """An MPEG-4/AVI clip (one keyframe) with a moving bar and a silent audio track."""
    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.gop_size = 1000
        audio = out.add_stream("pcm_s16le", rate=8000)
        for i in range(n_frames):
            img = np.full((height, width, 3), 40, np.uint8)
            x = (i * 7) % (width - 20)
            img[:, x : x + 20] = (250, 200, 10)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        samples = av.AudioFrame.from_ndarray(
            np.zeros((1, 8000 * n_frames // fps), np.int16), format="s16", layout="mono"
        )
        samples.sample_rate = 8000
        out.mux(audio.encode(samples))
        out.mux(audio.encode(None))
        out.mux(stream.encode(None))
    return path


def video_facts(path: Path) -> dict[str, object]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        times = [f.time for f in c.decode(s)]
        return {
            "format": c.format.name,
            "codec": s.codec_context.name,
            "pix_fmt": s.codec_context.pix_fmt,
            "size": (s.codec_context.width, s.codec_context.height),
            "n_audio": len(c.streams.audio),
            "duration": c.duration / av.time_base if c.duration else None,
            "times": np.array(times, dtype=np.float64),
        }


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("src") / "clip.avi", 100)  # 4 s at 25 fps


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# --- previews -----------------------------------------------------------------------------


def test_preview_is_browser_playable_h264_mp4(src: Path, tmp_path: Path) -> None:
    dest = make_preview(src, tmp_path / "p.mp4")
    assert dest == tmp_path / "p.mp4"
    got, want = video_facts(dest), video_facts(src)
    assert "mp4" in str(got["format"])
    assert got["codec"] == "h264"
    assert got["pix_fmt"] == "yuv420p"
    assert got["size"] == (320, 240)
    assert got["n_audio"] == 0
    assert want["n_audio"] == 1  # the source had audio; the preview drops it
    assert got["duration"] == pytest.approx(4.0, abs=0.05)
    got_t, want_t = got["times"], want["times"]
    assert isinstance(got_t, np.ndarray) and isinstance(want_t, np.ndarray)
    assert len(got_t) == len(want_t) == 100
    np.testing.assert_allclose(got_t, want_t, atol=1e-3)  # seeking to t shows source t
    data = dest.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")  # faststart: index first
    assert no_temp_files(tmp_path)


def test_preview_even_size_and_downscale(tmp_path: Path) -> None:
    odd = write_clip(tmp_path / "odd.avi", 10, size=(402, 226))
    assert video_facts(make_preview(odd, tmp_path / "a.mp4"))["size"] == (402, 226)
    assert video_facts(make_preview(odd, tmp_path / "b.mp4", max_side=201))["size"] == (200, 112)


def test_preview_of_unreadable_source(tmp_path: Path) -> None:
    bad = tmp_path / "bad.avi"
    bad.write_text("not a video")
    with pytest.raises(VideoDecodeError, match=r"bad\.avi"):
        make_preview(bad, tmp_path / "out.mp4")
    with pytest.raises(VideoDecodeError, match=r"gone\.avi"):
        make_preview(tmp_path / "gone.avi", tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()
    assert no_temp_files(tmp_path)


def test_concurrent_builds_of_one_preview(src: Path, tmp_path: Path) -> None:
    dest = tmp_path / "same.mp4"
    errors: list[BaseException] = []

    def build() -> None:
        try:
            make_preview(src, dest)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(video_facts(dest)["times"]) == 100  # type: ignore[arg-type]
    assert no_temp_files(tmp_path)


# --- posters ------------------------------------------------------------------------------


def test_write_poster_jpeg(tmp_path: Path) -> None:
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    dest = write_poster(frame, tmp_path / "sub" / "p.jpg")
    with Image.open(dest) as img:
        assert img.format == "JPEG"
        assert img.size == (320, 240)
    small = write_poster(frame[:100, :50], tmp_path / "s.jpg", max_side=320)
    with Image.open(small) as img:
        assert img.size == (50, 100)  # never upscaled
    with pytest.raises(InvalidInput):
        write_poster(np.zeros((10, 10), np.uint8), tmp_path / "x.jpg")
    assert no_temp_files(tmp_path)


# --- cache --------------------------------------------------------------------------------


@pytest.mark.parametrize(("ensure", "suffix"), [(ensure_preview, ".mp4"), (ensure_poster, ".jpg")])
def test_ensure_caches_and_rebuilds_when_source_is_newer(
    src: Path, tmp_path: Path, ensure: Callable[[Path, Path, str], Path], suffix: str
) -> None:
    key = "3f2c1d9e-0000-4a4a-9b9b-123456789abc"
    cached = ensure(src, tmp_path / "cache", key)
    assert cached == tmp_path / "cache" / f"{key}{suffix}"
    src_mtime = src.stat().st_mtime_ns
    os.utime(cached, ns=(src_mtime + 10**9, src_mtime + 10**9))
    stamp = cached.stat().st_mtime_ns
    assert ensure(src, tmp_path / "cache", key) == cached
    assert cached.stat().st_mtime_ns == stamp  # served from cache, not rebuilt
    os.utime(cached, ns=(src_mtime - 10**9, src_mtime - 10**9))  # now older than the source
    assert ensure(src, tmp_path / "cache", key) == cached
    assert cached.stat().st_mtime_ns >= src_mtime  # rebuilt
    if suffix == ".jpg":
        with Image.open(cached) as img:
            assert img.format == "JPEG" and img.size == (320, 240)


def test_ensure_preview_builds_once_under_concurrency(
    src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = media.make_preview

    def counting(s: Path, d: Path, **kw: int) -> Path:
        calls.append(d)
        return real(s, d, **kw)

    monkeypatch.setattr(media, "make_preview", counting)
    threads = [
        threading.Thread(target=ensure_preview, args=(src, tmp_path, "k1")) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert (tmp_path / "k1.mp4").is_file()


@pytest.mark.parametrize("key", ["../evil", "a/b", "", "a b", "x.mp4", "ok\n", "..", "é"])
def test_bad_keys_are_rejected(src: Path, tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidInput):
        validate_key(key)
    with pytest.raises(InvalidInput):
        ensure_preview(src, tmp_path / "cache", key)
    with pytest.raises(InvalidInput):
        ensure_poster(src, tmp_path / "cache", key)
    assert not (tmp_path / "cache").exists()


def test_ensure_with_missing_source(tmp_path: Path) -> None:
    with pytest.raises(VideoDecodeError, match=r"nope\.avi"):
        ensure_preview(tmp_path / "nope.avi", tmp_path, "k")
