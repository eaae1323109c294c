"""A dataset with broken files of every kind mixed in: ingest skips each with its reason
in the report, ingests every good clip, and says so in its summary."""

from __future__ import annotations

import json
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from clipsearch.cli import main
from clipsearch.store.edge import QdrantEdgeStore
from clipsearch.store.stats import store_stats

GOOD = 4


def _video(path: Path, *, seconds: float = 2.0, fps: int = 10, w: int = 64, h: int = 48) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        for i in range(round(seconds * fps)):
            img = np.full((h, w, 3), 30, np.uint8)
            x = (i * 5) % max(1, w - 8)
            img[:, x : x + 8] = (240, 180, 20)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        for _ in range(10):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate = 16000
            for packet in stream.encode(frame):  # type: ignore[attr-defined]
                out.mux(packet)
        for packet in stream.encode(None):  # type: ignore[attr-defined]
            out.mux(packet)


# file -> what the reason must say
BROKEN = {
    "truncated.avi": "not a readable media file",
    "zero.avi": "empty file",
    "notes.avi": "not a readable media file",
    "audio.mp4": "no video stream",
    "photo.mp4": "a still image",
    "sliver.avi": "absurd frame size 8x640",
    "marathon.avi": "longer than the 3600-s limit",
}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixed")
    for i in range(GOOD):
        _video(root / f"good_{i}.avi", seconds=1.0 + i)
    whole = _video(root / "whole.avi", seconds=4).read_bytes()
    (root / "whole.avi").unlink()
    (root / "truncated.avi").write_bytes(whole[: len(whole) // 3])
    (root / "zero.avi").write_bytes(b"")
    (root / "notes.avi").write_text("meeting notes, not a video\n" * 40)
    _audio_only(root / "audio.mp4")
    Image.new("RGB", (64, 48), (200, 10, 10)).save(root / "photo.mp4", format="JPEG")
    _video(root / "sliver.avi", w=8, h=640, seconds=0.5)
    _video(root / "marathon.avi", seconds=2 * 3600, fps=1, w=16, h=16)  # 2 hours
    return root


def test_every_broken_kind_is_skipped_with_its_reason(
    mixed: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "report.json"
    store = tmp_path / "store"
    argv = ["ingest", str(mixed), "--model", str(tiny_model_dir), "--store", str(store)]
    argv += ["--media-dir", str(tmp_path / "media"), "--report", str(report_path), "-q"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    assert report["found"] == GOOD + len(BROKEN)
    assert report["ingested"] == GOOD and report["store_count"] == GOOD
    reasons = {f["path"]: f["reason"] for f in report["failed"]}
    assert set(reasons) == set(BROKEN)
    for name, reason in BROKEN.items():
        assert reason in reasons[name], (name, reasons[name])
        assert f"skipped {name}: " in out
    assert f"ingested {GOOD}," in out and f"skipped {len(BROKEN)}" in out
    with QdrantEdgeStore(store) as opened:
        stats = store_stats(opened)
    assert stats["consistent"] and stats["videos"]["count"] == GOOD
    # run again on the unchanged folder: the good clips are up to date, the broken ones
    # skipped again, and that is success (a scheduled re-run must not report failure)
    assert main(argv) == 0
    report = json.loads(report_path.read_text())
    assert report["up_to_date"] == GOOD and report["ingested"] == 0
    assert len(report["failed"]) == len(BROKEN)


def test_the_length_limit_can_be_raised(mixed: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    argv = ["ingest", str(mixed), "--model", str(tiny_model_dir), "--store", str(tmp_path / "s")]
    argv += ["--media-dir", str(tmp_path / "m"), "--report", str(report_path), "-q"]
    assert main([*argv, "--max-video-s", "0"]) == 0
    report = json.loads(report_path.read_text())
    assert report["ingested"] == GOOD + 1  # the two-hour video too
    assert "marathon.avi" not in {f["path"] for f in report["failed"]}


def test_a_file_that_kills_its_decoder_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decoder crash (a segfault, out of memory) takes its worker process down: that file
    is reported, the others are decoded again in new processes."""
    import os
    import signal

    from clipsearch.pipeline import decode as frames

    real = frames.sample_frames

    def crashing(path: Path, *args: object, **kwargs: object) -> object:
        if "poison" in str(path):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(frames, "sample_frames", crashing)
    files = [_video(tmp_path / f"{name}.avi", seconds=0.5) for name in "ab"]
    files.insert(1, _video(tmp_path / "poison.avi", seconds=0.5))
    files += [_video(tmp_path / f"{name}.avi", seconds=0.5) for name in "cde"]
    out = list(frames.decode_many(files, 4, workers=2))
    assert [d.source.name for d in out] == [f.name for f in files]
    failed = {d.source.name: d.error.reason for d in out if d.error is not None}
    assert failed == {"poison.avi": "the decoder crashed on this file"}
    # a slow consumer: the worker is dead before the next files are submitted
    decoding = frames.decode_many(files, 4, workers=2)
    slow = [next(decoding)]
    time.sleep(1.0)
    slow += list(decoding)
    assert [d.source.name for d in slow] == [f.name for f in files]
    assert {d.source.name: d.error.reason for d in slow if d.error is not None} == failed
