"""SynthUCF generator: layout, splits, metadata, video format, determinism, pairs."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from synthfiles import meta_rows, read_lines, tree_hashes

from clipsearch.data.synth import (
    CLASS_PHRASES,
    CLASSES,
    COLORS,
    REVERSED_OF,
    SIZES,
    SPEEDS,
    ClipSpec,
    SynthSummary,
    class_prefix,
    encode_avi,
    generate,
    make_background,
    make_clip_spec,
    make_scene,
    render_frames,
)
from clipsearch.errors import InvalidInput

META_KEYS = {
    "path",
    "class",
    "group",
    "clip",
    "color",
    "background",
    "size",
    "speed",
    "fps",
    "width",
    "height",
    "duration_s",
    "caption",
}
NAME_RE = re.compile(r"^v_(?P<prefix>[A-Za-z]+)_g(?P<group>\d\d)_c(?P<clip>\d\d)\.avi$")


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthSummary, list[tuple[int, int]]]:
    """All 12 classes, 1 group, 1 clip each (12 clips), built with a worker pool."""
    calls: list[tuple[int, int]] = []
    root = tmp_path_factory.mktemp("synth") / "a"
    summary = generate(
        root,
        classes=12,
        groups=1,
        clips=1,
        seed=0,
        workers=2,
        progress=lambda done, total: calls.append((done, total)),
        moments=False,
    )
    return summary, calls


@pytest.fixture(scope="module")
def root(build: tuple[SynthSummary, list[tuple[int, int]]]) -> Path:
    return build[0].root


@pytest.fixture(scope="module")
def split_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One class, 22 groups: every split has a full test side and a train side."""
    out = tmp_path_factory.mktemp("synth") / "splits"
    generate(out, classes=1, groups=22, clips=1, seed=3, workers=2)
    return out


def test_public_names() -> None:
    assert len(CLASSES) == 12
    assert CLASSES[0] == "BallBouncing" and CLASSES[-1] == "DotsScattering"
    assert CLASS_PHRASES["BallRollingLeft"] == "ball rolling left"
    assert CLASS_PHRASES["DotsScattering"] == "dots scattering"
    assert set(CLASS_PHRASES) == set(CLASSES)
    assert class_prefix("DotsScattering") == "DotScattering"
    assert all(class_prefix(c) == c for c in CLASSES if c != "DotsScattering")


def test_summary_layout_and_progress(
    build: tuple[SynthSummary, list[tuple[int, int]]], root: Path
) -> None:
    summary, calls = build
    assert summary.n_clips == 12 and summary.n_classes == 12 and summary.seconds > 0
    assert sorted(p.name for p in (root / "UCF-101").iterdir()) == sorted(CLASSES)
    videos = sorted((root / "UCF-101").glob("*/*.avi"))
    assert len(videos) == 12
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    lists = {p.name for p in (root / "ucfTrainTestlist").iterdir()}
    assert lists == {"classInd.txt"} | {
        f"{k}list0{i}.txt" for k in ("train", "test") for i in (1, 2, 3)
    }
    assert calls[-1] == (12, 12) and len(calls) == 12
    for video in videos:
        m = NAME_RE.match(video.name)
        assert m, video.name
        assert m["prefix"] == class_prefix(video.parent.name)
        assert int(m["group"]) == 1 and int(m["clip"]) == 1


def test_class_ind(root: Path) -> None:
    raw = (root / "ucfTrainTestlist" / "classInd.txt").read_bytes()
    assert raw.endswith(b"\r\n")
    lines = read_lines(root / "ucfTrainTestlist" / "classInd.txt")
    assert lines == [f"{i} {name}" for i, name in enumerate(sorted(CLASSES), 1)]


def _check_splits(root: Path, groups: int) -> None:
    lists = root / "ucfTrainTestlist"
    labels = {line.split()[1]: int(line.split()[0]) for line in read_lines(lists / "classInd.txt")}
    all_clips = {p.relative_to(root / "UCF-101").as_posix() for p in root.glob("UCF-101/*/*.avi")}
    for split in (1, 2, 3):
        train = [line.split(" ") for line in read_lines(lists / f"trainlist0{split}.txt")]
        test = read_lines(lists / f"testlist0{split}.txt")
        test_groups = set(range(7 * (split - 1) + 1, 7 * split + 1)) & set(range(1, groups + 1))
        for path, label in train:
            cls, name = path.split("/")
            assert int(label) == labels[cls]
            assert int(NAME_RE.match(name)["group"]) not in test_groups  # type: ignore[index]
        for path in test:
            assert " " not in path
            assert int(NAME_RE.match(path.split("/")[1])["group"]) in test_groups  # type: ignore[index]
        train_paths = {p for p, _ in train}
        assert not train_paths & set(test)
        assert train_paths | set(test) == all_clips
        assert len(train) + len(test) == len(all_clips)


def test_splits_full(split_root: Path) -> None:
    _check_splits(split_root, 22)
    lists = split_root / "ucfTrainTestlist"
    assert len(read_lines(lists / "testlist01.txt")) == 7
    assert len(read_lines(lists / "trainlist03.txt")) == 15  # groups 1-14 and 22


def test_splits_short(root: Path) -> None:
    _check_splits(root, 1)
    lists = root / "ucfTrainTestlist"
    assert read_lines(lists / "testlist02.txt") == []  # groups 8-14 do not exist
    assert len(read_lines(lists / "trainlist02.txt")) == 12
    assert len(read_lines(lists / "testlist01.txt")) == 12
    assert read_lines(lists / "trainlist01.txt") == []


def test_prefix_quirk(root: Path) -> None:
    files = sorted(p.name for p in (root / "UCF-101" / "DotsScattering").iterdir())
    assert files == ["v_DotScattering_g01_c01.avi"]
    entries = [
        line
        for name in ("testlist01.txt", "trainlist02.txt")
        for line in read_lines(root / "ucfTrainTestlist" / name)
        if line.startswith("DotsScattering/")
    ]
    label = sorted(CLASSES).index("DotsScattering") + 1
    assert entries == [
        "DotsScattering/v_DotScattering_g01_c01.avi",
        f"DotsScattering/v_DotScattering_g01_c01.avi {label}",
    ]
    assert not list(root.rglob("v_DotsScattering*"))


def test_meta(root: Path) -> None:
    meta = meta_rows(root)
    assert len(meta) == 12
    assert len({m["path"] for m in meta}) == 12
    for m in meta:
        assert set(m) == META_KEYS
        path = str(m["path"])
        assert (root / "UCF-101" / path).is_file()
        cls, name = path.split("/")
        assert m["class"] == cls and cls in CLASSES
        parsed = NAME_RE.match(name)
        assert parsed and int(parsed["group"]) == m["group"] and int(parsed["clip"]) == m["clip"]
        assert m["color"] in COLORS and m["size"] in SIZES and m["speed"] in SPEEDS
        assert m["background"] in ("flat", "gradient", "noise")
        assert (m["width"], m["height"]) in ((320, 240), (400, 226))
        assert m["fps"] in (25, 30)
        assert 2.0 <= m["duration_s"] <= 6.0
        caption = str(m["caption"])
        assert CLASS_PHRASES[cls] in caption
        assert str(m["color"]) in caption and str(m["background"]) in caption
        assert str(m["size"]) in caption


def test_videos_decode(root: Path) -> None:
    for m in meta_rows(root):
        with av.open(str(root / "UCF-101" / str(m["path"]))) as container:
            assert container.format.name == "avi"
            stream = container.streams.video[0]
            assert stream.codec_context.name == "mpeg4"
            assert stream.average_rate == m["fps"]
            n_frames = 0
            for frame in container.decode(stream):
                if n_frames == 0:
                    assert frame.to_ndarray(format="rgb24").shape == (m["height"], m["width"], 3)
                n_frames += 1
        expected = m["duration_s"] * m["fps"]
        assert abs(n_frames - expected) <= 1


def test_wide_30fps_encoding(tmp_path: Path) -> None:
    scene = make_scene(0, "RingOrbiting", 1)
    spec = ClipSpec(width=400, height=226, fps=30, n_frames=61, pos=(0.5, 0.5), phase=0.0, seed=1)
    frames = render_frames("RingOrbiting", scene, spec)
    assert frames.shape == (61, 226, 400, 3) and frames.dtype == np.uint8
    out = tmp_path / "wide.avi"
    encode_avi(frames, out, spec.fps)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 30 and stream.time_base == Fraction(1, 30)
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 61 and decoded[0].shape == (226, 400, 3)
    # lossy, but close to what was rendered
    assert np.abs(decoded[30].astype(int) - frames[30].astype(int)).mean() < 12


def test_quotas_over_default_build() -> None:
    specs = [make_clip_spec(0, c, g, k) for c in CLASSES for g in range(1, 26) for k in range(1, 5)]
    wide = sum(s.width == 400 for s in specs) / len(specs)
    fps30 = sum(s.fps == 30 for s in specs) / len(specs)
    assert 0.02 <= wide <= 0.04 and 0.12 <= fps30 <= 0.18
    assert all(s.height == 226 for s in specs if s.width == 400)
    assert all(2.0 <= s.duration_s <= 6.0 for s in specs)


def test_deterministic(root: Path, tmp_path: Path) -> None:
    again = generate(
        tmp_path / "again", classes=12, groups=1, clips=1, seed=0, workers=1, moments=False
    )
    assert tree_hashes(again.root) == tree_hashes(root)
    # a subset build gives the same clips; another seed gives different ones
    subset = generate(
        tmp_path / "subset", classes=2, groups=1, clips=1, seed=0, workers=1, moments=False
    )
    other = generate(
        tmp_path / "other", classes=2, groups=1, clips=1, seed=1, workers=1, moments=False
    )
    full = tree_hashes(root)
    for rel, digest in tree_hashes(subset.root).items():
        if rel.startswith("UCF-101/"):
            assert full[rel] == digest
    for rel, digest in tree_hashes(other.root).items():
        if rel.startswith("UCF-101/"):
            assert full[rel] != digest


def test_rerun_removes_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "rerun"
    generate(out, classes=2, groups=2, clips=2, workers=1, moments=False)
    assert len(list(out.rglob("*.avi"))) == 8
    assert (out / "UCF-101" / "BallRollingLeft" / "v_BallRollingLeft_g02_c02.avi").is_file()
    (out / "UCF-101" / "BallBouncing" / "v_BallBouncing_g09_c01.avi.tmp").write_bytes(b"x")
    summary = generate(out, classes=1, groups=1, clips=1, workers=1)
    assert summary.n_clips == 1
    assert [p.name for p in out.rglob("*.avi*")] == ["v_BallBouncing_g01_c01.avi"]
    assert len(meta_rows(out)) == 1


def _centroids(frames: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """Per frame (x, y, area) of the object-coloured pixels, on a 2x-subsampled grid."""
    small = frames[:, ::2, ::2].astype(np.int16)
    mask = np.abs(small - np.asarray(rgb, dtype=np.int16)).sum(axis=-1) < 60
    area = mask.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        xs = (mask * np.arange(mask.shape[2])).sum(axis=(1, 2)) / area
        ys = (mask * np.arange(mask.shape[1])[:, None]).sum(axis=(1, 2)) / area
    return np.stack([xs, ys, area], axis=1)


@pytest.mark.parametrize(
    ("forward", "backward", "axis", "sign"),
    [
        ("BallRollingLeft", "BallRollingRight", 0, -1),
        ("BoxGrowing", "BoxShrinking", 2, 1),
        ("TriangleRising", "TriangleFalling", 1, -1),
    ],
)
def test_reversed_pairs(forward: str, backward: str, axis: int, sign: int) -> None:
    assert REVERSED_OF[backward] == forward
    for group in (1, 2):
        scene = make_scene(0, forward, group)
        spec = make_clip_spec(0, forward, group, 1)
        assert make_scene(0, backward, group) == scene
        assert make_clip_spec(0, backward, group, 1) == spec
        fwd = render_frames(forward, scene, spec)
        bwd = render_frames(backward, scene, spec)
        assert fwd.shape == (spec.n_frames, spec.height, spec.width, 3)
        assert np.array_equal(bwd, fwd[::-1])
        # and the forward motion really goes the named way most of the time
        steps = np.diff(_centroids(fwd, scene.rgb)[:, axis])
        steps = steps[np.isfinite(steps) & (steps != 0)]
        assert (np.sign(steps) == sign).mean() > 0.8


def test_objects_visible_and_contrasting() -> None:
    for cls in CLASSES:
        for group in range(1, 26):
            scene = make_scene(0, cls, group)
            bg = make_background(scene, 160, 120).astype(float)
            dist = np.linalg.norm(bg - np.asarray(scene.rgb, dtype=float), axis=-1)
            assert dist.min() > 80, (cls, group, scene)
            assert scene.radius >= 18


def test_every_class_draws_its_object() -> None:
    for cls in CLASSES:
        scene = make_scene(5, cls, 3)
        spec = make_clip_spec(5, cls, 3, 2)
        frames = render_frames(cls, scene, spec)
        areas = _centroids(frames, scene.rgb)[:, 2]
        assert (areas > 25).mean() > (0.4 if cls == "StarBlinking" else 0.8), cls


@pytest.mark.parametrize(
    "knobs",
    [
        {"classes": 0},
        {"classes": 13},
        {"classes": True},
        {"classes": "3"},
        {"groups": 0},
        {"groups": 26},
        {"clips": 0},
        {"clips": 2.5},
        {"seed": -1},
        {"workers": 0},
    ],
)
def test_invalid_knobs(knobs: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        generate(tmp_path / "bad", **knobs)
    assert not (tmp_path / "bad").exists()


def test_invalid_root(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(InvalidInput, match="not a directory"):
        generate(target, classes=1, groups=1, clips=1)
    with pytest.raises(InvalidInput):
        render_frames(
            "NoSuchClass", make_scene(0, "BallBouncing", 1), make_clip_spec(0, "BallBouncing", 1, 1)
        )
