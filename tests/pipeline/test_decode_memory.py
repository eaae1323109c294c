"""Memory stays bounded on long videos: decoded frames are converted as they are chosen,
frames go through the model a batch at a time, decoding ahead backs off after large
results, and large results come back from the decode processes through a file."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from test_video import pattern, read_index

from clipsearch.model import ClipEncoder, load_model
from clipsearch.pipeline import decode as frames
from clipsearch.pipeline.embed import EmbeddedClip, embed_clips
from clipsearch.video import sample_frames
from clipsearch.windows import LayoutTimes, WindowPlan

MB = 1024 * 1024


def _plain_video(path: Path, n_frames: int, size: tuple[int, int], fps: int = 25) -> Path:
    """Frames that spell their index, with a single keyframe (nothing to seek to)."""
    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.gop_size = 1000
        small = [pattern(i, width // 8, height // 8) for i in range(n_frames)]
        for img in small:
            big = np.repeat(np.repeat(img, 8, axis=0), 8, axis=1)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(big, format="rgb24")))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def full_hd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _plain_video(tmp_path_factory.mktemp("fullhd") / "fullhd.avi", 150, (1920, 1080))


def test_sampling_holds_no_full_size_frames(full_hd: Path) -> None:
    """150 frames sampled at 64 px from a 1080p video: held as decoded frames until the
    end (as before), they raised the peak by 160-430 MB; converted as they are chosen,
    by nothing measurable."""
    script = textwrap.dedent(
        f"""
        import resource
        from clipsearch.video import sample_frames
        sample_frames({str(full_hd)!r}, 2, max_side=64)  # decoder and libraries warm
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        got = sample_frames({str(full_hd)!r}, 150, max_side=64)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(got.frames.shape, (after - before) // 1024)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[:4] == ["(150,", "36,", "64,", "3)"]
    grown_mb = int(out[-1])
    assert grown_mb < 50, f"sampling 150 frames grew the peak by {grown_mb} MB"


def test_frames_converted_as_chosen_are_the_frames_at_each_time(full_hd: Path) -> None:
    got = sample_frames(full_hd, 6, max_side=480)
    assert got.frames.shape == (6, 270, 480, 3)
    # midpoints of 6 parts of 150 frames: frames 12, 37, 62, 87, 112, 137
    assert [read_index(f) for f in got.frames] == [12, 37, 62, 87, 112, 137]
    repeated = sample_frames(full_hd, 300, max_side=96)  # each frame chosen twice in a row
    indices = [read_index(f) for f in repeated.frames]
    assert indices == [i // 2 for i in range(300)]


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> ClipEncoder:
    return load_model(tiny_model_dir, towers="vision")


def test_frames_go_through_the_model_in_batches_across_clips(encoder: ClipEncoder) -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 255, (45, 60, 80, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (7, 90, 50, 3), dtype=np.uint8)
    videos = [(a, np.arange(40).reshape(5, 8)), (b, np.array([[0, 1, 2, 3, 4, 5, 6, 6]]))]
    whole = encoder.embed_views(videos, batch_size=64)
    for size in (1, 5, 32):
        parts = encoder.embed_views(videos, batch_size=size)
        for (fa, pa), (fb, pb) in zip(whole, parts, strict=True):
            np.testing.assert_allclose(fa, fb, atol=1e-5)
            np.testing.assert_allclose(pa, pb, atol=1e-5)


def test_preprocessing_many_frames_equals_one_at_a_time(encoder: ClipEncoder) -> None:
    frames_ = np.random.default_rng(4).integers(0, 255, (70, 48, 64, 3), dtype=np.uint8)
    together = encoder.preprocess(frames_)
    alone = torch.cat([encoder.preprocess(f[None]) for f in frames_])
    assert together.shape == alone.shape
    torch.testing.assert_close(together, alone)


def _videos(folder: Path, n: int) -> list[Path]:
    folder.mkdir(exist_ok=True)
    return [_plain_video(folder / f"v{i}.avi", 20, (64, 48)) for i in range(n)]


def _decode_started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    started: list[str] = []
    lock = threading.Lock()
    real = frames.sample_frames

    def spy(path: Path, *args: object, **kwargs: object) -> object:
        with lock:
            started.append(Path(path).name)
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(frames, "sample_frames", spy)
    return started


def _settle(started: list[str], expected: int) -> int:
    """How many decodes have started, once ``expected`` have or a second has passed."""
    deadline = time.monotonic() + 1.0
    while len(started) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # time for any unexpected extra to start
    return len(started)


def test_decoding_ahead_backs_off_after_large_clips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = _videos(tmp_path / "v", 8)
    started = _decode_started(monkeypatch)
    # every clip's frames are "large" against a 1-byte budget: two per worker, no more
    tight = frames.decode_many(sources, 4, workers=1, ahead=16, ahead_bytes=1)
    first = next(tight)
    assert _settle(started, 2) == 2
    second = next(tight)
    assert _settle(started, 3) == 3
    rest = list(tight)
    assert [d.index for d in [first, second, *rest]] == list(range(8))
    started.clear()
    roomy = frames.decode_many(sources, 4, workers=1, ahead=16)
    loose = [next(roomy), next(roomy)]
    assert _settle(started, 8) == 8  # small clips: all of them ahead
    loose += list(roomy)
    for a, b in zip([first, second, *rest], loose, strict=True):
        assert a.frames is not None and b.frames is not None
        np.testing.assert_array_equal(a.frames.frames, b.frames.frames)


def test_a_batch_closes_when_its_clips_hold_enough_frames(
    encoder: ClipEncoder, tmp_path: Path
) -> None:
    sources = _videos(tmp_path / "v", 5)  # 0.8 s each: 8 frames with the plan
    plan = WindowPlan(frames=8)
    by_frames = list(embed_clips(encoder, sources, workers=1, plan=plan, batch_frames=16))
    assert [len(batch) for batch in by_frames] == [2, 2, 1]
    by_clips = list(embed_clips(encoder, sources, workers=1, plan=plan))
    assert [len(batch) for batch in by_clips] == [5]
    flat = [c for batch in by_frames for c in batch]
    for a, b in zip(flat, by_clips[0], strict=True):
        assert isinstance(a, EmbeddedClip) and isinstance(b, EmbeddedClip)
        np.testing.assert_allclose(a.embedding.pooled, b.embedding.pooled, atol=1e-5)
    sampled = sample_frames(sources[0], 8, times=LayoutTimes(8, plan))
    assert len(sampled.frames) == 8


def test_large_decodes_come_back_from_workers_through_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = _videos(tmp_path / "v", 4)
    expected = [d.frames for d in frames.decode_many(sources, 8, workers=1)]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(frames, "SPILL_BYTES", 1)  # every decode is "large"
    spilled = []
    for decoded in frames.decode_many(sources, 8, workers=2):
        spilled.append(decoded.frames)
        (folder,) = scratch.iterdir()  # the run's own folder, files taken as they come
        assert folder.name.startswith("clipsearch-decode-")
    for a, b in zip(expected, spilled, strict=True):
        assert a is not None and b is not None
        np.testing.assert_array_equal(a.frames, b.frames)
        np.testing.assert_array_equal(a.timestamps, b.timestamps)
    assert list(scratch.iterdir()) == []  # nothing left behind
