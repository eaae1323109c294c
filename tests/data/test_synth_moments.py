"""SynthUCF moments set: layout, class balance, span timing, scenes, determinism, errors."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from clipsearch.data.synthucf import read_moments
from clipsearch.data.synth import (
    CLASSES,
    COLORS,
    MOMENTS_DIR,
    MOMENTS_FILE,
    REVERSED_OF,
    SIZES,
    SPEEDS,
    MomentsSummary,
    generate,
    generate_moments,
    make_background,
    make_scene,
)
from clipsearch.errors import InvalidInput
from clipsearch.video import probe

# 4 classes x 3 = 12 short spans (2 clips of 3 + 3 clips of 2) and one 12-s long video.
KNOBS: dict[str, Any] = {
    "classes": 4,
    "moments_per_class": 3,
    "long_videos": 1,
    "long_duration_s": 12.0,
    "seed": 0,
}
SELECTED = CLASSES[:4]
KEYS = {
    "path",
    "kind",
    "duration_s",
    "fps",
    "width",
    "height",
    "scene_group",
    "color",
    "background",
    "size",
    "speed",
    "segments",
}


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _lines(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / MOMENTS_FILE).read_text().splitlines()]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> MomentsSummary:
    return generate_moments(tmp_path_factory.mktemp("moments") / "m", workers=2, **KNOBS)


@pytest.fixture(scope="module")
def entries(built: MomentsSummary) -> list[dict[str, Any]]:
    return read_moments(built.root)


def test_summary_and_layout(built: MomentsSummary, entries: list[dict[str, Any]]) -> None:
    assert (built.n_clips, built.n_long, built.n_spans) == (5, 1, 16)
    assert built.seconds > 0
    names = sorted(p.name for p in built.root.iterdir())
    assert names == [
        "long_01.avi",
        *(f"m_{i:04d}.avi" for i in range(1, 6)),
        MOMENTS_FILE,
    ]
    assert [e["path"] for e in entries] == [f"m_{i:04d}.avi" for i in range(1, 6)] + ["long_01.avi"]
    assert entries == _lines(built.root)  # read_moments returns the lines as written


def test_jsonl_fields(entries: list[dict[str, Any]]) -> None:
    for e in entries:
        assert set(e) == KEYS
        assert e["kind"] == ("long" if e["path"].startswith("long_") else "short")
        assert (e["fps"], e["width"], e["height"]) == (25, 320, 240)
        assert e["scene_group"] in range(1, 8)  # split 1's test groups
        assert e["color"] in COLORS and e["size"] in SIZES and e["speed"] in SPEEDS
        assert e["background"] in ("flat", "gradient", "noise")
        # the scene is the first class's test scene of that group
        scene = make_scene(0, e["segments"][0]["class"], e["scene_group"])
        assert (scene.color, scene.background) == (e["color"], e["background"])
        assert (scene.size, scene.speed) == (e["size"], e["speed"])


def test_classes_balanced_and_distinct(entries: list[dict[str, Any]]) -> None:
    short = [e for e in entries if e["kind"] == "short"]
    long = [e for e in entries if e["kind"] == "long"]
    counts = Counter(s["class"] for e in short for s in e["segments"])
    assert counts == dict.fromkeys(SELECTED, 3)
    assert sorted(len(e["segments"]) for e in short) == [2, 2, 2, 3, 3]
    for e in entries:
        classes = [s["class"] for s in e["segments"]]
        assert len(set(classes)) == len(classes), e  # never twice, so never adjacent
    assert len(long) == 1 and {s["class"] for s in long[0]["segments"]} == set(SELECTED)


def test_spans_contiguous_and_timed(entries: list[dict[str, Any]]) -> None:
    for e in entries:
        spans = e["segments"]
        assert spans[0]["start_s"] == 0.0
        assert spans[-1]["end_s"] == e["duration_s"]
        for a, b in pairwise(spans):
            assert a["end_s"] == b["start_s"]
        for s in spans:
            length = s["end_s"] - s["start_s"]
            assert abs(length * 5 - round(length * 5)) < 1e-6  # whole 0.2-s steps
            if e["kind"] == "short":
                assert 3.0 - 1e-9 <= length <= 5.0 + 1e-9
            else:
                assert 2.2 - 1e-9 <= length <= 3.8 + 1e-9  # 0.7-1.3x the 3-s mean
    assert [e["duration_s"] for e in entries if e["kind"] == "long"] == [12.0]


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_decoded_duration_and_scene(built: MomentsSummary, entries: list[dict[str, Any]]) -> None:
    for e in entries:
        path = built.root / e["path"]
        info = probe(path)
        assert abs(info.duration_s - e["duration_s"]) <= 1 / 25 + 1e-6
        assert (info.width, info.height, info.fps) == (320, 240, 25)
        frames = _decode(path)
        assert abs(len(frames) - e["duration_s"] * 25) <= 1
        # every span shows an object of the clip's colour on the clip's background
        scene = make_scene(0, e["segments"][0]["class"], e["scene_group"])
        rgb = np.asarray(scene.rgb, dtype=np.int16)
        bg = np.median(make_background(scene, 320, 240).reshape(-1, 3), axis=0)
        for s in e["segments"]:
            first, last = round(s["start_s"] * 25), round(s["end_s"] * 25)
            picks = frames[np.linspace(first, last - 1, 6).round().astype(int)].astype(np.int16)
            dist = np.abs(picks - rgb).sum(axis=-1)
            assert ((dist < 60).sum(axis=(1, 2)) > 100).any(), (e["path"], s)
            rest = picks[dist > 150]
            assert np.abs(np.median(rest, axis=0) - bg).max() < 25, (e["path"], s)


def test_deterministic_and_rebuild(built: MomentsSummary, tmp_path: Path) -> None:
    again = generate_moments(tmp_path / "again", workers=1, **KNOBS)
    assert _hashes(again.root) == _hashes(built.root)
    # a smaller rebuild in place removes the files it no longer has
    (again.root / "m_0009.avi.tmp").write_bytes(b"x")
    (again.root / "notes.txt").write_text("kept")
    small = generate_moments(
        again.root, classes=2, moments_per_class=1, long_videos=0, seed=0, workers=1
    )
    assert (small.n_clips, small.n_long, small.n_spans) == (1, 0, 2)
    assert sorted(p.name for p in again.root.iterdir()) == ["m_0001.avi", MOMENTS_FILE, "notes.txt"]
    assert len(read_moments(again.root)) == 1
    # another seed gives other pixels
    other = generate_moments(
        tmp_path / "other", classes=2, moments_per_class=1, long_videos=0, seed=1, workers=1
    )
    assert _hashes(other.root)["m_0001.avi"] != _hashes(again.root)["m_0001.avi"]


def test_few_classes_long_videos_and_pairs(tmp_path: Path) -> None:
    summary = generate_moments(
        tmp_path / "three",
        classes=3,
        moments_per_class=2,
        long_videos=2,
        long_duration_s=6.0,
        workers=1,
    )
    entries = read_moments(summary.root)
    short = [e for e in entries if e["kind"] == "short"]
    assert Counter(s["class"] for e in short for s in e["segments"]) == dict.fromkeys(
        CLASSES[:3], 2
    )
    long = [e for e in entries if e["kind"] == "long"]
    assert [len(e["segments"]) for e in long] == [3, 3]  # min(6, classes) spans
    assert Counter(s["class"] for e in long for s in e["segments"]) == dict.fromkeys(CLASSES[:3], 2)
    # a direction pair may sit side by side: the hardest case for moment retrieval
    assert REVERSED_OF["BallRollingRight"] == "BallRollingLeft"
    pairs = {
        frozenset((a["class"], b["class"])) for e in entries for a, b in pairwise(e["segments"])
    }
    assert frozenset(("BallRollingLeft", "BallRollingRight")) in pairs


def test_generate_builds_moments(tmp_path: Path) -> None:
    out = tmp_path / "full"
    summary = generate(out, classes=2, groups=1, clips=1, moments_per_class=1, long_videos=0)
    assert summary.moments is not None and summary.moments.root == out / MOMENTS_DIR
    assert summary.moments.n_clips == 1
    assert (out / "synth_meta.jsonl").is_file()
    assert [e["path"] for e in read_moments(out / MOMENTS_DIR)] == ["m_0001.avi"]
    # one class cannot make a moments clip: it is skipped and the old set removed
    again = generate(out, classes=1, groups=1, clips=1)
    assert again.moments is None and not (out / MOMENTS_DIR).exists()
    off = generate(tmp_path / "off", classes=2, groups=1, clips=1, moments=False)
    assert off.moments is None and not (tmp_path / "off" / MOMENTS_DIR).exists()


@pytest.mark.parametrize(
    ("knobs", "match"),
    [
        ({"classes": 1}, "at least 2 classes"),
        ({"classes": 13}, "classes"),
        ({"moments_per_class": 0}, "moments_per_class"),
        ({"moments_per_class": True}, "moments_per_class"),
        ({"long_videos": -1}, "long_videos"),
        ({"long_videos": 1.0}, "long_videos"),
        ({"long_duration_s": 60.1}, "long_duration_s"),
        ({"long_duration_s": 4.0}, "long_duration_s"),
        ({"long_duration_s": "60"}, "long_duration_s"),
        ({"seed": -1}, "seed"),
        ({"workers": 0}, "workers"),
    ],
)
def test_invalid_knobs(knobs: dict[str, Any], match: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=match):
        generate_moments(tmp_path / "bad", **knobs)
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    "knobs", [{"moments_per_class": 0}, {"long_videos": -1}, {"moments": "yes"}]
)
def test_generate_invalid_moment_knobs(knobs: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        generate(tmp_path / "bad", **knobs)
    assert not (tmp_path / "bad").exists()


def test_invalid_root(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(InvalidInput, match="not a directory"):
        generate_moments(target, classes=2)
    with pytest.raises(InvalidInput, match="non-empty path"):
        generate_moments("", classes=2)


GOOD: dict[str, Any] = {
    "path": "m_0001.avi",
    "duration_s": 7.0,
    "segments": [
        {"class": "BoxSpinning", "start_s": 0.0, "end_s": 4.0},
        {"class": "BallBouncing", "start_s": 4.0, "end_s": 7.0},
    ],
}


def _spans(*spans: tuple[float, float]) -> dict[str, Any]:
    return {**GOOD, "segments": [{"class": "A", "start_s": a, "end_s": b} for a, b in spans]}


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"path": "m.avi", "segments": []}), "missing key.*duration_s"),
        (json.dumps({**GOOD, "path": "../x.avi"}), "relative file path"),
        (json.dumps({**GOOD, "duration_s": 0}), "positive number"),
        (json.dumps({**GOOD, "segments": []}), "non-empty list"),
        (json.dumps({**GOOD, "segments": [{"class": "A", "start_s": 0}]}), "segment 1.*end_s"),
        (json.dumps(_spans((0.0, 2.0), (2.0, 2.0))), "segment 2.*start_s < end_s"),
        (json.dumps(_spans((3.0, 5.0), (0.0, 2.0))), "segment 2 starts at 0.0, before"),
        (json.dumps(_spans((0.0, 3.0), (2.5, 5.0))), "before segment 1 ends"),
        (json.dumps(_spans((0.0, 3.0), (3.0, 7.06))), "past the clip's duration"),
        (json.dumps({**GOOD, "segments": [{"class": "", "start_s": 0, "end_s": 1}]}), "class"),
        (json.dumps(_spans((0.0, True))), "numbers"),
    ],
)
def test_read_moments_errors(line: str, match: str, tmp_path: Path) -> None:
    good = json.dumps({**GOOD, "path": "m_0000.avi"})
    (tmp_path / MOMENTS_FILE).write_text(f"{good}\n{line}\n")
    with pytest.raises(InvalidInput, match=match) as info:
        read_moments(tmp_path)
    assert f"{MOMENTS_FILE}:2:" in str(info.value)  # names the file and the line
    assert "\n" not in str(info.value)


def test_read_moments_ok_and_missing(tmp_path: Path) -> None:
    ok = {**GOOD, "segments": [*GOOD["segments"][:1], {**GOOD["segments"][1], "end_s": 7.04}]}
    (tmp_path / MOMENTS_FILE).write_text(json.dumps(ok) + "\n\n")
    assert read_moments(tmp_path) == [ok]  # within 0.05 s of the end is fine
    assert read_moments(tmp_path / MOMENTS_FILE) == [ok]
    (tmp_path / MOMENTS_FILE).write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n")
    with pytest.raises(InvalidInput, match=":2: duplicate path"):
        read_moments(tmp_path)
    with pytest.raises(InvalidInput, match="no such moments file"):
        read_moments(tmp_path / "nowhere")
