"""SynthUCF's ``alt`` rendering: layout, metadata, variety, determinism, pairs, look, moments."""

from __future__ import annotations

import colorsys
import subprocess
import sys
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from synthfiles import meta_rows, read_lines, tree_hashes

from clipsearch.cli import main
from clipsearch.data import synth_alt
from clipsearch.data.synthucf import read_moments
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
    generate,
    generate_moments,
    make_scene,
)
from clipsearch.data.synth_alt import (
    DISTRACTORS,
    FPS_CHOICES,
    FRAME_SIZES,
    TEXTURES,
    clip_backdrop,
    make_backdrop,
    make_clip_spec,
    render_frames,
)
from clipsearch.errors import InvalidInput
from clipsearch.video import probe, sample_frames

ALT_KEYS = {
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
    "rendering",
    "easing",
    "lighting",
    "distractors",
    "shading",
    "blur",
    "noise_sigma",
    "codec",
}
LUMA = np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> SynthSummary:
    """All 12 classes x 2 groups x 1 clip and a small moments set, in the alt rendering."""
    return generate(
        tmp_path_factory.mktemp("alt") / "a",
        classes=12,
        groups=2,
        clips=1,
        seed=0,
        workers=2,
        moments_per_class=1,
        long_videos=0,
        rendering="alt",
    )


@pytest.fixture(scope="module")
def root(built: SynthSummary) -> Path:
    return built.root


def test_layout_and_splits(built: SynthSummary, root: Path) -> None:
    assert built.n_clips == 24 and built.n_classes == 12
    assert sorted(p.name for p in (root / "UCF-101").iterdir()) == sorted(CLASSES)
    videos = {p.relative_to(root / "UCF-101").as_posix() for p in root.glob("UCF-101/*/*.avi")}
    assert len(videos) == 24
    assert "DotsScattering/v_DotScattering_g02_c01.avi" in videos
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    lists = root / "ucfTrainTestlist"
    assert read_lines(lists / "classInd.txt") == [
        f"{i} {c}" for i, c in enumerate(sorted(CLASSES), 1)
    ]
    labels = {c: i for i, c in enumerate(sorted(CLASSES), 1)}
    # groups 1-2 are split 1's test groups and train groups of splits 2 and 3
    assert set(read_lines(lists / "testlist01.txt")) == videos
    assert read_lines(lists / "trainlist01.txt") == []
    for split in (2, 3):
        train = read_lines(lists / f"trainlist0{split}.txt")
        assert {line.split(" ")[0] for line in train} == videos
        assert all(int(line.split(" ")[1]) == labels[line.split("/")[0]] for line in train)
        assert read_lines(lists / f"testlist0{split}.txt") == []


def test_meta_rows(root: Path) -> None:
    meta = meta_rows(root)
    assert len(meta) == 24
    for m in meta:
        assert set(m) == ALT_KEYS, m
        assert m["rendering"] == "alt"
        cls, name = m["path"].split("/")
        assert m["class"] == cls and name.startswith(f"v_{class_prefix(cls)}_g")
        assert m["color"] in COLORS and m["size"] in SIZES and m["speed"] in SPEEDS
        assert m["background"] in TEXTURES
        assert (m["width"], m["height"]) in FRAME_SIZES and m["fps"] in FPS_CHOICES
        assert 1.6 <= m["duration_s"] <= 9.0
        assert set(m["distractors"]) <= set(DISTRACTORS) and len(m["distractors"]) <= 2
        assert m["codec"] in ("h264", "mpeg4")
        caption = m["caption"]
        for word in (CLASS_PHRASES[cls], m["color"], m["background"], m["size"]):
            assert word in caption, (word, caption)
        scene = synth_alt.make_scene(0, cls, m["group"])
        assert [d.kind for d in scene.distractors] == m["distractors"]
        assert scene.texture == m["background"] and scene.color == m["color"]


def test_videos_decode(root: Path) -> None:
    codecs = set()
    for m in meta_rows(root):
        path = root / "UCF-101" / m["path"]
        with av.open(str(path)) as container:
            assert container.format.name == "avi"
            stream = container.streams.video[0]
            name = stream.codec_context.name
            assert name == m["codec"]
            codecs.add(name)
            assert stream.average_rate == m["fps"]
            shapes = {f.to_ndarray(format="rgb24").shape for f in container.decode(stream)}
            n_frames = stream.frames
        assert shapes == {(m["height"], m["width"], 3)}
        assert abs(n_frames - m["duration_s"] * m["fps"]) <= 1
        info = probe(path)
        assert (info.width, info.height, info.codec) == (m["width"], m["height"], m["codec"])
        assert abs(info.duration_s - m["duration_s"]) < 0.1
    assert codecs == {"h264", "mpeg4"}
    sampled = sample_frames(root / "UCF-101" / meta_rows(root)[0]["path"], 8)
    assert len(sampled.frames) == 8


def test_formats_vary(root: Path) -> None:
    meta = meta_rows(root)
    assert len({(m["width"], m["height"]) for m in meta}) >= 4
    assert len({m["fps"] for m in meta}) >= 4
    assert len({m["background"] for m in meta}) >= 4
    specs = [make_clip_spec(0, c, g, k) for c in CLASSES for g in range(1, 26) for k in (1, 2)]
    assert {(s.width, s.height) for s in specs} == set(FRAME_SIZES)
    assert {s.fps for s in specs} == set(FPS_CHOICES)
    assert all(1.6 <= s.n_frames / s.fps <= 9.0 for s in specs)
    scenes = [synth_alt.make_scene(0, c, g) for c in CLASSES for g in range(1, 26)]
    assert {s.texture for s in scenes} == set(TEXTURES)
    assert {d.kind for s in scenes for d in s.distractors} == set(DISTRACTORS)
    n_with = sum(bool(s.distractors) for s in scenes)
    assert 0.5 * len(scenes) < n_with < 0.9 * len(scenes)


@pytest.mark.slow
def test_deterministic_and_keyed_apart(root: Path, tmp_path: Path) -> None:
    knobs: dict[str, Any] = {"classes": 3, "groups": 1, "clips": 2, "moments_per_class": 1}
    a = generate(tmp_path / "a", workers=2, long_videos=0, rendering="alt", **knobs)
    b = generate(tmp_path / "b", workers=1, long_videos=0, rendering="alt", **knobs)
    assert tree_hashes(a.root) == tree_hashes(b.root)
    # a clip is the same in a bigger build, and another seed changes it
    full = tree_hashes(root)
    for rel, digest in tree_hashes(a.root).items():
        if rel.endswith("_c01.avi") and rel.startswith("UCF-101/"):
            assert full[rel] == digest
    other = generate(tmp_path / "c", classes=1, groups=1, clips=1, seed=1, rendering="alt")
    rel = "UCF-101/BallBouncing/v_BallBouncing_g01_c01.avi"
    assert tree_hashes(other.root)[rel] != full[rel]
    # the alt streams are keyed apart from the default's: the scenes do not coincide
    default = [make_scene(0, c, g).color for c in CLASSES for g in range(1, 26)]
    alt = [synth_alt.make_scene(0, c, g).color for c in CLASSES for g in range(1, 26)]
    assert default != alt


# Encodes one H.264 alt clip after rendering two, from per-frame copies or from views of
# the rendered array: the same frames, but another history of allocations.
_ENCODE_AFTER = """
import hashlib, sys
from clipsearch.data import synth_alt
clips = {}
for clip in (1, 2):
    scene = synth_alt.make_scene(0, "BallRollingLeft", 1)
    spec = synth_alt.make_clip_spec(0, "BallRollingLeft", 1, clip)
    clips[clip] = scene, spec, synth_alt.render_frames("BallRollingLeft", scene, spec)
scene, spec, frames = clips[1]
with synth_alt.writer(sys.argv[1], scene, spec.width, spec.height, spec.fps) as out:
    for frame in frames:
        out.write(frame[None].copy() if sys.argv[2] == "copies" else frame[None])
print(scene.codec, hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())
"""


@pytest.mark.slow
def test_a_clip_does_not_depend_on_what_the_process_allocated_before(tmp_path: Path) -> None:
    # libx264 reads memory it never wrote; the writer has malloc zero-fill it (glibc)
    printed = [
        subprocess.run(
            [sys.executable, "-c", _ENCODE_AFTER, str(tmp_path / f"{how}.avi"), how],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for how in ("copies", "views")
    ]
    assert printed[0][0] == "h264"
    assert printed[0] == printed[1]


def _object_mask(frames: np.ndarray, backdrop: np.ndarray) -> np.ndarray:
    """Where the frames differ from the backdrop (the object), per frame (T, H, W)."""
    diff = np.abs(frames.astype(np.int16) - backdrop.astype(np.int16)).sum(axis=-1)
    return np.asarray(diff > 90)


def _plain(cls: str, group: int) -> tuple[synth_alt.AltScene, ClipSpec]:
    """A clip's scene and spec without noise and blur, so the object is exactly findable."""
    scene = replace(synth_alt.make_scene(0, cls, group), noise_sigma=0.0, blur=0.0)
    return scene, make_clip_spec(0, cls, group, 1)


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
        scene = synth_alt.make_scene(0, forward, group)
        spec = make_clip_spec(0, forward, group, 1)
        assert synth_alt.make_scene(0, backward, group) == scene
        assert make_clip_spec(0, backward, group, 1) == spec
        fwd = render_frames(forward, scene, spec)
        assert fwd.shape == (spec.n_frames, spec.height, spec.width, 3)
        assert np.array_equal(render_frames(backward, scene, spec), fwd[::-1])
        # the forward motion goes the named way (easing changes the pace, not the way)
        plain, _ = _plain(forward, group)
        frames = render_frames(forward, plain, spec)
        mask = _object_mask(frames, clip_backdrop(forward, plain, spec))
        area = mask.sum(axis=(1, 2))
        xs = (mask * np.arange(spec.width)).sum(axis=(1, 2)) / np.maximum(area, 1)
        ys = (mask * np.arange(spec.height)[:, None]).sum(axis=(1, 2)) / np.maximum(area, 1)
        values = np.stack([xs, ys, area], axis=1)[area > 20, axis]
        steps = np.diff(values)
        steps = steps[steps != 0]
        assert len(steps) > 5 and (np.sign(steps) == sign).mean() > 0.75, (forward, group)


def _hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


def test_object_colour_is_the_named_colour() -> None:
    for cls in (c for c in CLASSES if c not in REVERSED_OF):  # the pairs' frames are shared
        for group in (1, 2, 3):
            scene = synth_alt.make_scene(0, cls, group)
            spec = make_clip_spec(0, cls, group, 1)
            spec = replace(spec, n_frames=min(spec.n_frames, 30))
            frames = render_frames(cls, scene, spec)  # with noise, blur and shading
            plain, _ = _plain(cls, group)
            mask = _object_mask(render_frames(cls, plain, spec), clip_backdrop(cls, plain, spec))
            pixels = frames[mask].astype(float)
            assert len(pixels) > 100, (cls, group)
            rgb = np.median(pixels, axis=0) / 255.0
            h, s, v = colorsys.rgb_to_hsv(*rgb)
            named = np.asarray(COLORS[scene.color]) / 255.0
            if scene.color == "white":
                assert s < 0.15 and v > 0.75, (cls, group, rgb)
            else:
                nh, ns, _ = colorsys.rgb_to_hsv(*named)
                assert _hue_distance(h, nh) < 0.035, (cls, group, scene.color, rgb)
                assert s > 0.5 * ns, (cls, group, scene.color, rgb)


def test_backgrounds_neutral_and_contrasting() -> None:
    for cls in CLASSES:
        for group in range(1, 26):
            scene = synth_alt.make_scene(0, cls, group)
            bg = synth_alt._texture(scene, 96, 72).astype(float)
            obj = np.asarray(scene.rgb, dtype=float)
            assert np.linalg.norm(bg - obj, axis=-1).min() > 120, (cls, group)
            assert np.abs(bg @ LUMA - obj @ LUMA).min() >= 55, (cls, group)
            assert (bg.max(axis=-1) - bg.min(axis=-1)).max() <= 60  # low saturation
            for item in scene.distractors:
                c = np.asarray(item.rgb, dtype=float)
                assert c.max() - c.min() <= 0.3 * max(c.max(), 1) + 12  # grey or brown
                assert np.linalg.norm(c - obj) >= 100


def test_distractors_drawn_where_the_meta_says(root: Path) -> None:
    seen = {True: 0, False: 0}
    for m in meta_rows(root):
        scene = synth_alt.make_scene(0, m["class"], m["group"])
        spec = make_clip_spec(0, m["class"], m["group"], m["clip"])
        with_them = make_backdrop(scene, spec.width, spec.height, spec.seed)
        without = make_backdrop(replace(scene, distractors=()), spec.width, spec.height, spec.seed)
        changed = np.abs(with_them.astype(int) - without.astype(int)).sum(axis=-1) > 30
        has = bool(m["distractors"])
        seen[has] += 1
        if has:
            # visible, but a small part of the frame, and not in its middle
            assert 0.002 < changed.mean() < 0.25, (m["path"], changed.mean())
            mid = changed[:, spec.width // 3 : 2 * spec.width // 3]
            assert mid.sum() < 0.5 * changed.sum(), m["path"]  # near the sides
            short = replace(spec, n_frames=3)
            frames = render_frames(m["class"], scene, short)
            plain = render_frames(m["class"], replace(scene, distractors=()), short)
            assert not np.array_equal(frames, plain)
        else:
            assert not changed.any()
    assert seen[True] and seen[False]


def test_every_class_draws_its_object() -> None:
    for cls in CLASSES:
        scene, spec = _plain(cls, 4)
        frames = render_frames(cls, scene, spec)
        bare = clip_backdrop(cls, scene, spec)
        area = _object_mask(frames, bare).mean(axis=(1, 2))
        # a blinking star is off part of the time; travelling objects (eased) enter and leave
        travel = {"StarBlinking": 0.3, "BallRollingLeft": 0.6, "TriangleRising": 0.6}
        need = travel.get(REVERSED_OF.get(cls, cls), 0.8)
        assert (area > 0.002).mean() > need, cls


def test_moments(root: Path) -> None:
    entries = read_moments(root / "moments")
    assert [e["path"] for e in entries] == [f"m_{i:04d}.avi" for i in range(1, len(entries) + 1)]
    counts: dict[str, int] = {}
    for e in entries:
        assert e["rendering"] == "alt" and e["background"] in TEXTURES
        assert (e["width"], e["height"]) in FRAME_SIZES and e["fps"] in FPS_CHOICES
        assert e["scene_group"] in range(1, 8)
        scene = synth_alt.make_scene(0, e["segments"][0]["class"], e["scene_group"])
        assert (scene.color, scene.texture) == (e["color"], e["background"])
        assert e["segments"][0]["start_s"] == 0.0
        assert e["segments"][-1]["end_s"] == e["duration_s"]
        for a, b in pairwise(e["segments"]):
            assert a["end_s"] == b["start_s"]
        for span in e["segments"]:
            counts[span["class"]] = counts.get(span["class"], 0) + 1
            assert 2.9 <= span["end_s"] - span["start_s"] <= 5.1
        with av.open(str(root / "moments" / e["path"])) as container:
            stream = container.streams.video[0]
            assert stream.average_rate == e["fps"]
            n = sum(1 for _ in container.decode(stream))
        assert n == round(e["duration_s"] * e["fps"])
    assert counts == dict.fromkeys(CLASSES, 1)


def test_moments_alone_and_long(tmp_path: Path) -> None:
    summary = generate_moments(
        tmp_path / "m",
        classes=3,
        moments_per_class=1,
        long_videos=1,
        long_duration_s=6.0,
        rendering="alt",
    )
    entries = read_moments(summary.root)
    long = [e for e in entries if e["kind"] == "long"]
    assert len(long) == 1 and long[0]["duration_s"] == 6.0
    assert all(e["rendering"] == "alt" for e in entries)


@pytest.mark.parametrize("rendering", ["fancy", "", None, 1, "SynthUCF"])
def test_invalid_rendering(rendering: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="rendering"):
        generate(tmp_path / "bad", rendering=rendering)
    with pytest.raises(InvalidInput, match="rendering"):
        generate_moments(tmp_path / "bad", rendering=rendering)
    assert not (tmp_path / "bad").exists()


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d"
    argv = ["synth", "--out", str(out), "--classes", "2", "--groups", "1", "--clips", "1"]
    assert main([*argv, "--moments-per-class", "0", "--rendering", "alt", "-q"]) == 0
    assert "wrote 2 clips of 2 classes" in capsys.readouterr().out
    assert {m["rendering"] for m in meta_rows(out)} == {"alt"}
    assert main([*argv, "--rendering", "fancy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rendering must be one of synthucf, alt" in err
