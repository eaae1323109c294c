"""SynthUCF: a synthetic action dataset shaped exactly like UCF101.

The contract is ``specs/synthetic-ucf.md``. A build writes::

    <root>/UCF-101/<Class>/v_<Prefix>_gGG_cCC.avi      MPEG-4 Part 2 in AVI
    <root>/ucfTrainTestlist/classInd.txt               1-based, alphabetical
    <root>/ucfTrainTestlist/{train,test}list0{1,2,3}.txt
    <root>/synth_meta.jsonl                            one JSON object per clip

Every clip is one object doing one motion on a per-group scene. All randomness
comes from ``numpy.random.SeedSequence(seed, spawn_key=...)`` keyed by
(class, group, clip), so output is byte-identical for the same seed and knobs
whatever the worker count or scheduling. A clip of class ``c`` in group ``g``
is also identical across builds with more classes or groups.

The direction pairs (``BallRollingLeft``/``BallRollingRight``,
``BoxGrowing``/``BoxShrinking``, ``TriangleRising``/``TriangleFalling``) share
their scene and clip parameters: the second of each pair is rendered as the
first one's frames in reverse order.

Rendering is split from encoding (:func:`render_frames`, :func:`encode_avi`)
so that multi-span "moment" clips are made by concatenating the frames of
several classes rendered on one :class:`Scene`. :func:`generate_moments`
(called by :func:`generate` unless ``moments=False``) writes::

    <root>/moments/m_NNNN.avi       2 or 3 back-to-back spans of 3-5 s each
    <root>/moments/long_NN.avi      60 s: 6 spans of 7-13 s, all of different classes
    <root>/moments/moments.jsonl    one JSON object per file, written last

Every selected class appears in exactly ``moments_per_class`` short clips; the
long videos spread the classes as evenly as they can. A clip's scene is one of
split 1's test scenes (groups 1-7), shared by all its spans.

Renderings: ``rendering="synthucf"`` (the default, described above) or ``"alt"``
(:mod:`clipsearch.data.synth_alt`, ``clipsearch synth --rendering alt``): the same classes,
colour names, size and speed words, layout, split lists and caption wording, drawn the
way real footage varies (frame sizes 256x192 to 640x360, 12-50 fps, 1.6-9 s, textured
backgrounds and uneven light, static distractors, eased and damped motion, shaded
objects, stronger noise, H.264 or low-bitrate MPEG-4). A held-out test set: train on the
default rendering, evaluate on ``alt``. Its rows in ``synth_meta.jsonl`` and
``moments.jsonl`` add ``"rendering": "alt"`` and the details of each clip's look; its
random streams are keyed apart from the default's, so no scene coincides.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import math
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import av
import numpy as np
from PIL import Image, ImageDraw

from clipsearch.errors import InvalidInput

logger = logging.getLogger(__name__)

RGB = tuple[int, int, int]
Drawer = Callable[[ImageDraw.ImageDraw, float], None]

# --------------------------------------------------------------------------- constants

CLASSES: tuple[str, ...] = (
    "BallBouncing",
    "BallRollingLeft",
    "BallRollingRight",
    "BoxSpinning",
    "BoxGrowing",
    "BoxShrinking",
    "TriangleRising",
    "TriangleFalling",
    "StarBlinking",
    "RingOrbiting",
    "StripesScrolling",
    "DotsScattering",
)


def _split_camel(name: str) -> str:
    return " ".join(w.lower() for w in re.findall(r"[A-Z][a-z]*", name))


CLASS_PHRASES: dict[str, str] = {c: _split_camel(c) for c in CLASSES}
"""Natural-language phrase of each class, e.g. ``"ball rolling left"``."""

# The second class of each pair is the first one played backwards.
REVERSED_OF: dict[str, str] = {
    "BallRollingRight": "BallRollingLeft",
    "BoxShrinking": "BoxGrowing",
    "TriangleFalling": "TriangleRising",
}

# UCF101's HandstandPushups/v_HandStandPushups_* quirk, reproduced on purpose.
_FILE_PREFIX: dict[str, str] = {"DotsScattering": "DotScattering"}

COLORS: dict[str, RGB] = {
    "red": (220, 30, 30),
    "green": (30, 180, 50),
    "blue": (40, 70, 230),
    "yellow": (240, 220, 30),
    "white": (245, 245, 245),
    "orange": (250, 140, 20),
    "purple": (150, 50, 200),
}
BACKGROUNDS: tuple[str, ...] = ("flat", "gradient", "noise")
SIZES: tuple[str, ...] = ("small", "medium", "large")
SPEEDS: tuple[str, ...] = ("slow", "medium", "fast")

# Object radius in pixels for a 240-pixel-high frame (scaled with frame height).
_SIZE_RANGE: dict[str, tuple[float, float]] = {
    "small": (18.0, 22.0),
    "medium": (25.0, 30.0),
    "large": (33.0, 40.0),
}
# Seconds per motion cycle (slow, medium, fast); stripes use pixels per second.
_PERIODS: dict[str, tuple[float, float, float]] = {
    "BallBouncing": (1.6, 1.1, 0.7),
    "BallRollingLeft": (4.5, 3.0, 1.9),
    "BoxSpinning": (4.0, 2.6, 1.5),
    "BoxGrowing": (3.5, 2.4, 1.5),
    "TriangleRising": (4.0, 2.7, 1.7),
    "StarBlinking": (1.5, 1.0, 0.6),
    "RingOrbiting": (4.0, 2.7, 1.7),
    "StripesScrolling": (35.0, 70.0, 130.0),
    "DotsScattering": (3.0, 2.0, 1.3),
}
_SENSOR_NOISE: tuple[float, ...] = (0.0, 1.5, 3.0, 5.0)
_N_NOISE_FRAMES = 6

BASE_SIZE = (320, 240)
WIDE_SIZE = (400, 226)
P_WIDE = 0.03
P_30FPS = 0.15
# Durations are multiples of 0.2 s (a whole number of frames at 25 and 30 fps).
_DURATION_STEPS = (10, 30)  # 2.0 s .. 6.0 s
BIT_RATE = 360_000  # for 320x240; scaled with the pixel count
GOP_SIZE = 25

RENDERINGS: tuple[str, ...] = ("synthucf", "alt")
DEFAULT_RENDERING = "synthucf"
# Folded into every SeedSequence key of a non-default rendering (the name's bytes), so
# its scenes never coincide with the default's for the same seed.
_RENDERING_KEYS: dict[str, int] = {r: int.from_bytes(r.encode(), "big") for r in RENDERINGS}

MAX_GROUPS = 25
MAX_CLIPS = 99
SPLITS = (1, 2, 3)
GROUPS_PER_TEST_SPLIT = 7

VIDEO_DIR = "UCF-101"
LIST_DIR = "ucfTrainTestlist"
META_FILE = "synth_meta.jsonl"
MOMENTS_DIR = "moments"
MOMENTS_FILE = "moments.jsonl"

# Moments set: 25 fps, 320x240; span lengths are whole 0.2 s steps (5 frames).
MOMENT_FPS = 25
_STEP_FRAMES = MOMENT_FPS // 5
_SPAN_STEPS = (15, 25)  # short clips: 3.0 s .. 5.0 s per span
LONG_DURATION_S = 60.0
LONG_SPANS = 6
_LONG_SPREAD = (7, 13)  # long span length in tenths of the mean: 7-13 s for 6 in 60 s
MAX_MOMENTS_PER_CLASS = 99
MAX_LONG_VIDEOS = 99
_MAX_LONG_DURATION_S = 3600.0

_SPEED_WORDS = {"slow": "slowly", "medium": "at medium speed", "fast": "fast"}
_SIZE_WORDS = {"small": "small", "medium": "medium-sized", "large": "large"}
_CAPTION_TEMPLATES: tuple[str, ...] = (
    "{obj} {speed} on a {bg} background",
    "{obj} {speed} against a {bg} background",
    "a video of {obj} {speed} on a {bg} background",
    "{bg} background with {obj} {speed}",
)


# --------------------------------------------------------------------------- naming


def class_prefix(class_name: str) -> str:
    """File-name prefix of a class: ``"DotsScattering"`` -> ``"DotScattering"``, else the name."""
    return _FILE_PREFIX.get(class_name, class_name)


def clip_filename(class_name: str, group: int, clip: int) -> str:
    """File name of one clip, e.g. ``v_BallBouncing_g01_c01.avi``."""
    return f"v_{class_prefix(class_name)}_g{group:02d}_c{clip:02d}.avi"


def clip_relpath(class_name: str, group: int, clip: int) -> str:
    """POSIX path of a clip relative to ``UCF-101/``, as written in the split lists."""
    return f"{class_name}/{clip_filename(class_name, group, clip)}"


def split_test_groups(split: int) -> range:
    """Groups that split ``split`` (1..3) tests on: 1-7, 8-14, 15-21."""
    if split not in SPLITS:
        raise InvalidInput(f"split must be one of {SPLITS}, got {split!r}")
    first = GROUPS_PER_TEST_SPLIT * (split - 1) + 1
    return range(first, first + GROUPS_PER_TEST_SPLIT)


# --------------------------------------------------------------------------- scene / clip


@dataclass(frozen=True)
class Scene:
    """What one group fixes: background, object colour, size, speed and sensor noise."""

    background: str  # "flat" | "gradient" | "noise"
    bg_top: RGB
    bg_bottom: RGB  # equals bg_top for "flat"; texture base is bg_top for "noise"
    texture_seed: int
    color: str
    rgb: RGB
    accent: RGB  # floor line colour: contrasts with the background
    size: str
    radius: float  # object radius at a 240-pixel-high frame
    speed: str
    tempo: float  # per-group speed jitter (multiplies the motion rate)
    noise_sigma: float


@dataclass(frozen=True)
class ClipSpec:
    """What one clip varies: frame size and rate, length, start position and phase."""

    width: int
    height: int
    fps: int
    n_frames: int
    pos: tuple[float, float]  # start position, fractions in [0, 1]
    phase: float  # motion phase in [0, 1)
    seed: int  # for per-clip details (dot directions, sensor noise)

    @property
    def duration_s(self) -> float:
        return round(self.n_frames / self.fps, 3)


def _family(class_name: str) -> str:
    return REVERSED_OF.get(class_name, class_name)


def _seq(seed: int, *key: int, rendering: str = DEFAULT_RENDERING) -> np.random.SeedSequence:
    """The random stream ``key`` of ``seed``; other renderings get keys of their own."""
    if rendering != DEFAULT_RENDERING:
        key = (_RENDERING_KEYS[rendering], *key)
    return np.random.SeedSequence(seed, spawn_key=key)


def _check_rendering(rendering: object) -> str:
    if not isinstance(rendering, str) or rendering not in RENDERINGS:
        raise InvalidInput(f"rendering must be one of {', '.join(RENDERINGS)}, got {rendering!r}")
    return rendering


def _luma(c: RGB | np.ndarray) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])


def _contrasts(bg: RGB, obj: RGB, min_luma: float) -> bool:
    dist = math.dist(bg, obj)
    return dist >= 140.0 and abs(_luma(bg) - _luma(obj)) >= min_luma


def _pick_bg_color(
    rng: np.random.Generator, obj: RGB, *, min_luma: float, side: int = 0, tint: float = 22.0
) -> RGB:
    """A low-saturation colour that contrasts with ``obj``; ``side`` -1/+1 forces darker/lighter.

    ``tint`` bounds how far each channel strays from grey.
    """
    for _ in range(200):
        grey = rng.uniform(12.0, 235.0)
        tint_rgb = rng.uniform(-tint, tint, size=3)
        c = tuple(int(v) for v in np.clip(grey + tint_rgb, 0, 255))
        col: RGB = (c[0], c[1], c[2])
        darker = _luma(col) < _luma(obj)
        if side and (side < 0) != darker:
            continue
        if _contrasts(col, obj, min_luma):
            return col
    # Unreachable in practice; fall back to whichever extreme contrasts best.
    return (16, 16, 20) if _luma(obj) > 110 or side < 0 else (232, 232, 228)


def make_scene(seed: int, class_name: str, group: int) -> Scene:
    """The scene of one (class, group); direction pairs share their first class's scene."""
    fam = CLASSES.index(_family(class_name))
    rng = np.random.default_rng(_seq(seed, 0, fam, group))
    color = str(rng.choice(list(COLORS)))
    rgb = COLORS[color]
    background = str(rng.choice(BACKGROUNDS))
    if background == "flat":
        top = _pick_bg_color(rng, rgb, min_luma=55.0)
        bottom = top
    elif background == "gradient":
        top = _pick_bg_color(rng, rgb, min_luma=55.0)
        side = -1 if _luma(top) < _luma(rgb) else 1
        bottom = top
        for _ in range(20):
            bottom = _pick_bg_color(rng, rgb, min_luma=55.0, side=side)
            if abs(_luma(bottom) - _luma(top)) >= 35:
                break
    else:
        top = _pick_bg_color(rng, rgb, min_luma=85.0)
        bottom = top
    texture_seed = int(rng.integers(2**31))
    size = str(rng.choice(SIZES))
    lo, hi = _SIZE_RANGE[size]
    radius = float(rng.uniform(lo, hi))
    speed = str(rng.choice(SPEEDS))
    tempo = float(rng.uniform(0.85, 1.15))
    noise_sigma = float(rng.choice(_SENSOR_NOISE))
    mid = (_luma(top) + _luma(bottom)) / 2
    accent: RGB = (20, 20, 24) if mid > 110 else (235, 235, 230)
    return Scene(
        background=background,
        bg_top=top,
        bg_bottom=bottom,
        texture_seed=texture_seed,
        color=color,
        rgb=rgb,
        accent=accent,
        size=size,
        radius=radius,
        speed=speed,
        tempo=tempo,
        noise_sigma=noise_sigma,
    )


# Irrational steps of the Weyl sequences behind the size and frame-rate quotas.
_WEYL_STEPS = ((math.sqrt(5) - 1) / 2, math.sqrt(2) - 1)


def _quota_draw(seed: int, stream: int, fam: int, group: int, clip: int) -> float:
    """A low-discrepancy value in [0, 1) per clip, so ~3%/~15% quotas come out close.

    Independent Bernoulli draws would scatter (1200 clips at 3% gave anywhere from 20 to
    50 wide clips); a seeded Weyl sequence over a stable clip index does not, and still
    does not depend on which other clips a build contains.
    """
    offset = float(np.random.default_rng(_seq(seed, 4, stream)).random())
    index = ((clip - 1) * len(CLASSES) + fam) * MAX_GROUPS + group - 1
    return (offset + index * _WEYL_STEPS[stream]) % 1.0


def make_clip_spec(seed: int, class_name: str, group: int, clip: int) -> ClipSpec:
    """Frame size and rate, length, position and phase of one clip."""
    fam = CLASSES.index(_family(class_name))
    rng = np.random.default_rng(_seq(seed, 1, fam, group, clip))
    wide = _quota_draw(seed, 0, fam, group, clip) < P_WIDE
    fps = 30 if _quota_draw(seed, 1, fam, group, clip) < P_30FPS else 25
    steps = int(rng.integers(_DURATION_STEPS[0], _DURATION_STEPS[1] + 1))
    n_frames = steps * fps // 5  # steps * 0.2 s
    width, height = WIDE_SIZE if wide else BASE_SIZE
    pos = (float(rng.random()), float(rng.random()))
    phase = float(rng.random())
    clip_seed = int(rng.integers(2**31))
    return ClipSpec(width, height, fps, n_frames, pos, phase, clip_seed)


def make_caption(seed: int, class_name: str, group: int, clip: int, scene: Scene) -> str:
    """A natural sentence containing the class phrase, colour, size, speed and background."""
    rng = np.random.default_rng(_seq(seed, 2, CLASSES.index(class_name), group, clip))
    template = _CAPTION_TEMPLATES[int(rng.integers(len(_CAPTION_TEMPLATES)))]
    phrase = CLASS_PHRASES[class_name]
    article = "" if phrase.split()[0].endswith("s") else "a "
    obj = f"{article}{_SIZE_WORDS[scene.size]} {scene.color} {phrase}"
    return template.format(obj=obj, speed=_SPEED_WORDS[scene.speed], bg=scene.background)


# --------------------------------------------------------------------------- rendering


def make_background(scene: Scene, width: int, height: int) -> np.ndarray:
    """The static background of a scene at the given size, (H, W, 3) uint8."""
    top = np.asarray(scene.bg_top, dtype=np.float32)
    if scene.background == "flat":
        return np.broadcast_to(top.astype(np.uint8), (height, width, 3)).copy()
    if scene.background == "gradient":
        bottom = np.asarray(scene.bg_bottom, dtype=np.float32)
        ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        col = top * (1.0 - ramp) + bottom * ramp
        return np.broadcast_to(np.rint(col), (height, width, 3)).astype(np.uint8)
    # Smooth noise texture: two octaves of bicubically upsampled random grids. The grids
    # do not depend on the frame size, so the texture only rescales between sizes.
    rng = np.random.default_rng(scene.texture_seed)
    tex = np.zeros((height, width), dtype=np.float32)
    for (gh, gw), weight in (((6, 8), 0.65), ((24, 32), 0.35)):
        grid = rng.uniform(-1.0, 1.0, size=(gh, gw)).astype(np.float32)
        img = Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC)
        tex += weight * np.asarray(img, dtype=np.float32)
    tint = rng.uniform(0.7, 1.0, size=3).astype(np.float32)
    col = top + 30.0 * tex[:, :, None] * tint
    return np.clip(np.rint(col), 0, 255).astype(np.uint8)


def _rotated(cx: float, cy: float, pts: np.ndarray, angle: float) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]


def _regular(n: int, radius: float, start: float = -math.pi / 2) -> np.ndarray:
    a = start + np.arange(n) * 2 * math.pi / n
    return np.stack([radius * np.cos(a), radius * np.sin(a)], axis=1)


def _make_drawer(class_name: str, scene: Scene, spec: ClipSpec) -> Drawer:
    """Per-class drawing closure ``draw(d, t)`` for time ``t`` (s) since the clip start."""
    w, h = spec.width, spec.height
    k = h / 240.0
    r = scene.radius * k
    fill = scene.rgb
    px, py = spec.pos
    period_s = _PERIODS[class_name][SPEEDS.index(scene.speed)] / scene.tempo

    def cycle(t: float) -> float:
        return (spec.phase + t / period_s) % 1.0

    if class_name == "BallBouncing":
        floor = h * (0.78 + 0.1 * py)
        cx = w * (0.2 + 0.6 * px)
        height = min(h * 0.45, floor - 2 * r - 4)
        line_w = max(2, round(3 * k))
        line_y = floor + line_w / 2

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            u = cycle(t)
            cy = floor - r - height * 4 * u * (1 - u)
            d.line([(0, line_y), (w, line_y)], fill=scene.accent, width=line_w)
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)

        return draw

    if class_name == "BallRollingLeft":
        cy = h * (0.25 + 0.5 * py)
        span = w + 2 * r

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            cx = w + r - cycle(t) * span
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)

        return draw

    if class_name == "BoxSpinning":
        cx, cy = w * (0.3 + 0.4 * px), h * (0.3 + 0.4 * py)
        corners = _regular(4, r * 1.3, start=math.pi / 4)

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            d.polygon(_rotated(cx, cy, corners, 2 * math.pi * cycle(t)), fill=fill)

        return draw

    if class_name == "BoxGrowing":
        cx, cy = w * (0.35 + 0.3 * px), h * (0.38 + 0.24 * py)

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            half = r * (0.35 + 1.45 * cycle(t))
            d.rectangle((cx - half, cy - half, cx + half, cy + half), fill=fill)

        return draw

    if class_name == "TriangleRising":
        cx = w * (0.2 + 0.6 * px)
        tri = _regular(3, r * 1.2)
        span = h + 2.4 * r

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            cy = h + 1.2 * r - cycle(t) * span
            d.polygon([(cx + x, cy + y) for x, y in tri], fill=fill)

        return draw

    if class_name == "StarBlinking":
        cx, cy = w * (0.3 + 0.4 * px), h * (0.3 + 0.4 * py)
        outer = _regular(5, r * 1.45)
        inner = _regular(5, r * 0.6, start=-math.pi / 2 + math.pi / 5)
        star = np.empty((10, 2))
        star[0::2], star[1::2] = outer, inner
        tilt = (spec.seed % 1000) / 1000 * 0.4 - 0.2
        pts = _rotated(cx, cy, star, tilt)

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            if cycle(t) < 0.55:
                d.polygon(pts, fill=fill)

        return draw

    if class_name == "RingOrbiting":
        ox, oy = w * (0.42 + 0.16 * px), h * (0.42 + 0.16 * py)
        orbit = min(w, h) * 0.3
        ring_w = max(4, round(0.4 * r))
        rr = r * 1.05

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            a = 2 * math.pi * cycle(t)
            cx, cy = ox + orbit * math.cos(a), oy - orbit * math.sin(a)
            d.ellipse((cx - rr, cy - rr, cx + rr, cy + rr), outline=fill, width=ring_w)

        return draw

    if class_name == "StripesScrolling":
        stripe = max(6.0, 0.6 * r)
        pitch = 2.2 * stripe
        v = _PERIODS[class_name][SPEEDS.index(scene.speed)] * scene.tempo * k
        direction = 1.0 if spec.seed % 2 else -1.0
        x0 = spec.phase * pitch
        n = int(w / pitch) + 3

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            off = (x0 + direction * v * t) % pitch
            for i in range(-1, n):
                left = off + i * pitch
                d.rectangle((left, 0, left + stripe - 1, h), fill=fill)

        return draw

    if class_name == "DotsScattering":
        ox, oy = w * (0.35 + 0.3 * px), h * (0.35 + 0.3 * py)
        drng = np.random.default_rng(spec.seed)
        n_dots = int(drng.integers(28, 41))
        ang = drng.uniform(0, 2 * math.pi, n_dots)
        reach = drng.uniform(0.35, 1.0, n_dots) * min(w, h) * 0.6
        jitter = drng.normal(0, 0.3 * r, (n_dots, 2))
        dirs = np.stack([np.cos(ang), np.sin(ang)], axis=1)
        dot = 3 * k + 0.15 * r

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            u = cycle(t)
            xy = jitter + dirs * (reach * u)[:, None]
            for x, y in xy:
                d.ellipse((ox + x - dot, oy + y - dot, ox + x + dot, oy + y + dot), fill=fill)

        return draw

    raise InvalidInput(f"unknown class {class_name!r}")


def _sensor_noise(scene: Scene, spec: ClipSpec) -> list[np.ndarray]:
    if scene.noise_sigma <= 0:
        return []
    rng = np.random.default_rng(_seq(spec.seed, 3))
    shape = (spec.height, spec.width, 3)
    return [
        np.rint(rng.normal(0.0, scene.noise_sigma, size=shape)).astype(np.int16)
        for _ in range(_N_NOISE_FRAMES)
    ]


def render_frames(class_name: str, scene: Scene, spec: ClipSpec) -> np.ndarray:
    """Render one clip as RGB frames, shape (n_frames, height, width, 3), uint8.

    The second class of a direction pair is its partner's frames reversed. Frames of
    several classes rendered on the same scene, size and rate can be concatenated.
    """
    if class_name not in CLASSES:
        raise InvalidInput(f"unknown class {class_name!r}; expected one of {', '.join(CLASSES)}")
    base = REVERSED_OF.get(class_name)
    if base is not None:
        return np.ascontiguousarray(render_frames(base, scene, spec)[::-1])
    draw = _make_drawer(class_name, scene, spec)
    background = Image.fromarray(make_background(scene, spec.width, spec.height))
    noise = _sensor_noise(scene, spec)
    frames = np.empty((spec.n_frames, spec.height, spec.width, 3), dtype=np.uint8)
    tmp = np.empty((spec.height, spec.width, 3), dtype=np.int16)
    for i in range(spec.n_frames):
        img = background.copy()
        draw(ImageDraw.Draw(img), i / spec.fps)
        arr = np.asarray(img)
        if noise:
            np.add(arr, noise[i % len(noise)], out=tmp, dtype=np.int16)
            np.clip(tmp, 0, 255, out=tmp)
            frames[i] = tmp
        else:
            frames[i] = arr
    return frames


# --------------------------------------------------------------------------- encoding

_M_PERTURB = -6  # glibc's mallopt option; 255 makes malloc hand out zero-filled memory
_writers_open = 0
_writers_lock = threading.Lock()


@functools.cache
def _mallopt() -> Callable[[int, int], int] | None:
    try:
        return ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # not glibc
        return None


def _zero_filled_allocations(on: bool) -> None:
    """While any writer is open, malloc hands out zero-filled memory (glibc).

    The libx264 that PyAV bundles reads memory it never wrote: otherwise its output, and so
    an alt clip's bytes, depend on what the process allocated and freed before (a worker
    that had built other clips wrote another file).
    """
    global _writers_open
    mallopt = _mallopt()
    if mallopt is None:
        return
    with _writers_lock:
        _writers_open += 1 if on else -1
        if _writers_open == (1 if on else 0):
            mallopt(_M_PERTURB, 255 if on else 0)


class _AviWriter:
    """Streams RGB frames into an AVI, bit-exact; a context manager.

    By default MPEG-4 Part 2 with the XviD tag at :data:`BIT_RATE`; ``codec``,
    ``codec_tag``, ``options`` (codec private options) and ``gop_size`` select another
    encoder, and ``bit_rate=0`` leaves the rate to the codec's options (x264's ``crf``).
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: int,
        *,
        bit_rate: int | None = None,
        codec: str = "mpeg4",
        codec_tag: str = "XVID",
        options: dict[str, str] | None = None,
        gop_size: int = GOP_SIZE,
    ) -> None:
        if bit_rate is None:
            bit_rate = round(BIT_RATE * (width * height) / (BASE_SIZE[0] * BASE_SIZE[1]))
        self.width, self.height = width, height
        self.n_frames = 0
        _zero_filled_allocations(True)
        self._zero_filled = True
        try:
            self._container = av.open(
                str(path), mode="w", format="avi", options={"fflags": "+bitexact"}
            )
        except BaseException:
            self._end_zero_fill()
            raise
        try:
            stream = self._container.add_stream(
                codec, rate=Fraction(fps), options={"flags": "+bitexact", **(options or {})}
            )
            if not isinstance(stream, av.VideoStream):
                raise ValueError(f"{codec} is not a video encoder")
            stream.width = width
            stream.height = height
            stream.pix_fmt = "yuv420p"
            if bit_rate:
                stream.bit_rate = bit_rate
            stream.gop_size = gop_size
            stream.codec_context.thread_count = 1
            stream.codec_context.codec_tag = codec_tag
        except BaseException:
            self._container.close()
            self._end_zero_fill()
            raise
        self._stream = stream

    def write(self, frames: np.ndarray) -> None:
        """Append frames (T, H, W, 3) uint8 RGB."""
        if frames.ndim != 4 or frames.shape[1:] != (self.height, self.width, 3):
            raise ValueError(
                f"frames of shape {frames.shape} do not fit a {self.width}x{self.height} video"
            )
        for i in range(frames.shape[0]):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            frame.pts = self.n_frames
            self.n_frames += 1
            self._container.mux(self._stream.encode(frame))

    def close(self, *, flush: bool = True) -> None:
        try:
            if flush:
                self._container.mux(self._stream.encode(None))
        finally:
            try:
                self._container.close()
            finally:
                self._end_zero_fill()

    def _end_zero_fill(self) -> None:
        """This writer's part in :func:`_zero_filled_allocations`, ended once."""
        if self._zero_filled:
            self._zero_filled = False
            _zero_filled_allocations(False)

    def __enter__(self) -> _AviWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(flush=exc_type is None)


def encode_avi(
    frames: np.ndarray, path: str | Path, fps: int, *, bit_rate: int | None = None
) -> None:
    """Encode RGB frames (T, H, W, 3) as MPEG-4 Part 2 (XviD tag) in AVI, bit-exact."""
    _, height, width, _ = frames.shape
    with _AviWriter(path, width, height, fps, bit_rate=bit_rate) as writer:
        writer.write(frames)


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` built."""

    root: Path
    n_clips: int
    n_classes: int
    seconds: float
    moments: MomentsSummary | None = None  # None when the moments set was not built


@dataclass(frozen=True)
class _Job:
    class_name: str
    group: int
    clip: int
    seed: int
    path: Path
    rendering: str = DEFAULT_RENDERING


def _build_clip(job: _Job) -> dict[str, object]:
    """Render, encode and atomically write one clip; return its metadata line."""
    if job.rendering != DEFAULT_RENDERING:
        from clipsearch.data import synth_alt  # it builds on this module

        return synth_alt.build_clip(job.class_name, job.group, job.clip, job.seed, job.path)
    scene = make_scene(job.seed, job.class_name, job.group)
    spec = make_clip_spec(job.seed, job.class_name, job.group, job.clip)
    frames = render_frames(job.class_name, scene, spec)
    tmp = job.path.with_name(job.path.name + ".tmp")
    try:
        encode_avi(frames, tmp, spec.fps)
        os.replace(tmp, job.path)
    finally:
        tmp.unlink(missing_ok=True)
    return {
        "path": clip_relpath(job.class_name, job.group, job.clip),
        "class": job.class_name,
        "group": job.group,
        "clip": job.clip,
        **scene_words(scene),
        "fps": spec.fps,
        "width": spec.width,
        "height": spec.height,
        "duration_s": spec.duration_s,
        "caption": make_caption(job.seed, job.class_name, job.group, job.clip, scene),
    }


def _check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise InvalidInput(f"{name} must be {bounds}, got {value}")
    return value


def _write_text(path: Path, lines: list[str], newline: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write("".join(line + newline for line in lines))
    os.replace(tmp, path)


def _remove_stale(video_root: Path, expected: set[str]) -> None:
    """Delete leftovers of earlier or interrupted builds inside our own class folders."""
    for class_name in CLASSES:
        folder = video_root / class_name
        if not folder.is_dir():
            continue
        for f in folder.iterdir():
            rel = f"{class_name}/{f.name}"
            stale_clip = f.name.startswith("v_") and f.suffix == ".avi" and rel not in expected
            if f.is_file() and (stale_clip or f.name.endswith(".avi.tmp")):
                logger.info("removing stale file %s", f)
                f.unlink()
        if class_name not in {e.split("/", 1)[0] for e in expected} and not any(folder.iterdir()):
            folder.rmdir()


def _run_jobs(
    jobs: list[_Job], workers: int, progress: Callable[[int, int], None] | None
) -> Iterator[dict[str, object]]:
    total = len(jobs)
    if workers <= 1 or total <= 1:
        for done, job in enumerate(jobs, 1):
            yield _build_clip(job)
            if progress is not None:
                progress(done, total)
        return
    ctx = multiprocessing.get_context()
    with ctx.Pool(processes=min(workers, total)) as pool:
        for done, meta in enumerate(pool.imap_unordered(_build_clip, jobs), 1):
            yield meta
            if progress is not None:
                progress(done, total)


def generate(
    out: str | Path,
    *,
    classes: int = 12,
    groups: int = 25,
    clips: int = 4,
    seed: int = 0,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    moments: bool = True,
    moments_per_class: int = 4,
    long_videos: int = 2,
    rendering: str = DEFAULT_RENDERING,
) -> SynthSummary:
    """Build a SynthUCF dataset under ``out``.

    ``classes`` takes the first N classes of :data:`CLASSES`; ``groups`` (1..25) and
    ``clips`` (clips per group) set the size; ``seed`` fixes every pixel. ``rendering``
    (:data:`RENDERINGS`) picks how the classes are drawn: ``"synthucf"`` or ``"alt"``
    (:mod:`clipsearch.data.synth_alt`, the moments set included). Rerunning on an
    existing root regenerates it (deterministically); ``synth_meta.jsonl`` is written last,
    so its presence marks a complete build. ``progress(done, total)`` is called per clip
    of the main set.

    With ``moments`` (and at least 2 classes) the moments set is built into
    ``<out>/moments`` by :func:`generate_moments` with ``moments_per_class`` and
    ``long_videos``, before ``synth_meta.jsonl`` is written. Otherwise the files of an
    earlier moments set there are removed, so the root always matches its knobs.
    """
    classes = _check_int("classes", classes, 1, len(CLASSES))
    groups = _check_int("groups", groups, 1, MAX_GROUPS)
    clips = _check_int("clips", clips, 1, MAX_CLIPS)
    seed = _check_int("seed", seed, 0)
    if workers is not None:
        workers = _check_int("workers", workers, 1)
    if not isinstance(moments, bool):
        raise InvalidInput(f"moments must be true or false, got {moments!r}")
    moments_per_class = _check_int("moments_per_class", moments_per_class, 1, MAX_MOMENTS_PER_CLASS)
    long_videos = _check_int("long_videos", long_videos, 0, MAX_LONG_VIDEOS)
    rendering = _check_rendering(rendering)
    root = _check_root("out", out)

    t0 = time.perf_counter()
    selected = CLASSES[:classes]
    video_root = root / VIDEO_DIR
    list_root = root / LIST_DIR
    for class_name in selected:
        (video_root / class_name).mkdir(parents=True, exist_ok=True)
    list_root.mkdir(parents=True, exist_ok=True)
    (root / META_FILE).unlink(missing_ok=True)  # the completion marker goes last

    jobs = [
        _Job(c, g, k, seed, video_root / c / clip_filename(c, g, k), rendering)
        for c in selected
        for g in range(1, groups + 1)
        for k in range(1, clips + 1)
    ]
    _remove_stale(video_root, {clip_relpath(j.class_name, j.group, j.clip) for j in jobs})
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    logger.info(
        "generating SynthUCF (%s) at %s: %d classes x %d groups x %d clips = %d clips, %d workers",
        rendering,
        root,
        classes,
        groups,
        clips,
        len(jobs),
        n_workers,
    )
    metas = {str(m["path"]): m for m in _run_jobs(jobs, n_workers, progress)}

    # classInd and split lists, ordered like UCF101's: by class label, group, clip.
    labels = {c: i for i, c in enumerate(sorted(selected), 1)}
    _write_text(list_root / "classInd.txt", [f"{i} {c}" for c, i in labels.items()], "\r\n")
    ordered = sorted(jobs, key=lambda j: (labels[j.class_name], j.group, j.clip))
    for split in SPLITS:
        test_groups = split_test_groups(split)
        train = [
            f"{clip_relpath(j.class_name, j.group, j.clip)} {labels[j.class_name]}"
            for j in ordered
            if j.group not in test_groups
        ]
        test = [
            clip_relpath(j.class_name, j.group, j.clip) for j in ordered if j.group in test_groups
        ]
        _write_text(list_root / f"trainlist0{split}.txt", train, "\r\n")
        _write_text(list_root / f"testlist0{split}.txt", test, "\r\n")

    moments_summary: MomentsSummary | None = None
    if moments and classes >= 2:
        moments_summary = generate_moments(
            root / MOMENTS_DIR,
            classes=classes,
            moments_per_class=moments_per_class,
            long_videos=long_videos,
            seed=seed,
            workers=n_workers,
            rendering=rendering,
        )
    else:
        if moments:
            logger.info("no moments set: it needs at least 2 classes, got %d", classes)
        _remove_moments(root / MOMENTS_DIR, set())

    meta_lines = [
        json.dumps(metas[clip_relpath(j.class_name, j.group, j.clip)], ensure_ascii=False)
        for j in jobs
    ]
    _write_text(root / META_FILE, meta_lines, "\n")
    seconds = time.perf_counter() - t0
    logger.info("SynthUCF done: %d clips in %.1f s", len(jobs), seconds)
    return SynthSummary(
        root=root, n_clips=len(jobs), n_classes=classes, seconds=seconds, moments=moments_summary
    )


# --------------------------------------------------------------------------- moments set

_J = TypeVar("_J")


@dataclass(frozen=True)
class MomentsSummary:
    """What :func:`generate_moments` built.

    ``n_clips`` counts the short clips, ``n_long`` the long videos and ``n_spans``
    the spans of all of them (``classes * moments_per_class`` are in short clips).
    """

    root: Path
    n_clips: int
    n_long: int
    n_spans: int
    seconds: float


@dataclass(frozen=True)
class _MomentJob:
    name: str  # file name inside the moments folder
    kind: str  # "short" | "long"
    index: int  # 1-based within its kind
    classes: tuple[str, ...]
    steps: tuple[int, ...]  # span lengths in 0.2 s steps
    group: int  # scene group (one of split 1's test groups)
    seed: int
    path: Path
    rendering: str = DEFAULT_RENDERING


_KIND_KEYS = {"short": 0, "long": 1}


def moment_filename(kind: str, index: int) -> str:
    """``m_0001.avi`` for short clips, ``long_01.avi`` for long videos (``index`` 1-based)."""
    return f"m_{index:04d}.avi" if kind == "short" else f"long_{index:02d}.avi"


def _short_sizes(n_spans: int, n_classes: int) -> list[int]:
    """Split ``n_spans`` into clips of 2 or 3 spans, about half the spans in each."""
    if n_classes < 3:
        return [2] * (n_spans // 2)
    n3 = n_spans // 6
    if (n_spans - 3 * n3) % 2:
        n3 = n3 - 1 if n3 > 0 else 1
    return [3] * n3 + [2] * ((n_spans - 3 * n3) // 2)


def _pick_classes(
    rng: np.random.Generator, selected: Sequence[str], counts: dict[str, int], k: int, sign: int
) -> tuple[str, ...]:
    """``k`` different classes, those with the largest ``sign * count`` first (ties at random).

    Taking the most-needed classes keeps the counts within one of each other, so the
    quotas always come out exactly; the chosen classes are returned in random order.
    """
    order = [selected[int(i)] for i in rng.permutation(len(selected))]
    ranked = sorted(order, key=lambda c: -sign * counts[c])
    picked = ranked[:k]
    for c in picked:
        counts[c] -= sign
    return tuple(picked[int(i)] for i in rng.permutation(k))


def _split_steps(rng: np.random.Generator, total: int, n: int) -> list[int]:
    """``n`` span lengths (0.2 s steps) summing to ``total``, each 0.7-1.3x the mean."""
    lo = -(-total * _LONG_SPREAD[0] // (10 * n))  # ceil
    hi = total * _LONG_SPREAD[1] // (10 * n)
    steps = [int(v) for v in rng.integers(lo, hi + 1, size=n)]
    diff = total - sum(steps)
    while diff:
        direction = 1 if diff > 0 else -1
        room = [i for i, v in enumerate(steps) if lo <= v + direction <= hi]
        steps[room[int(rng.integers(len(room)))]] += direction
        diff -= direction
    return steps


def _plan_moments(
    seed: int,
    selected: Sequence[str],
    moments_per_class: int,
    long_videos: int,
    long_steps: int,
    folder: Path,
    rendering: str = DEFAULT_RENDERING,
) -> list[_MomentJob]:
    """Classes, span lengths and scene group of every moments file (short ones first)."""
    groups = list(split_test_groups(1))
    jobs: list[_MomentJob] = []

    rng = np.random.default_rng(_seq(seed, 5, 0, rendering=rendering))
    sizes = _short_sizes(len(selected) * moments_per_class, len(selected))
    sizes = [sizes[int(i)] for i in rng.permutation(len(sizes))]
    need = dict.fromkeys(selected, moments_per_class)
    for i, k in enumerate(sizes, 1):
        classes = _pick_classes(rng, selected, need, k, sign=1)
        lo, hi = _SPAN_STEPS
        steps = tuple(int(v) for v in rng.integers(lo, hi + 1, size=k))
        name = moment_filename("short", i)
        group = groups[(i - 1) % len(groups)]
        jobs.append(
            _MomentJob(name, "short", i, classes, steps, group, seed, folder / name, rendering)
        )
    if any(need.values()):  # pragma: no cover - guaranteed by _pick_classes
        raise AssertionError(f"unbalanced moments plan: {need}")

    rng = np.random.default_rng(_seq(seed, 5, 1, rendering=rendering))
    used = dict.fromkeys(selected, 0)
    n_spans = min(LONG_SPANS, len(selected))
    for j in range(1, long_videos + 1):
        classes = _pick_classes(rng, selected, used, n_spans, sign=-1)
        steps = tuple(_split_steps(rng, long_steps, n_spans))
        name = moment_filename("long", j)
        group = groups[(len(sizes) + j - 1) % len(groups)]
        jobs.append(
            _MomentJob(name, "long", j, classes, steps, group, seed, folder / name, rendering)
        )
    return jobs


def _moment_spec(rng: np.random.Generator, n_frames: int) -> ClipSpec:
    """A 320x240, 25 fps :class:`ClipSpec` of ``n_frames`` with a random position and phase."""
    pos = (float(rng.random()), float(rng.random()))
    phase = float(rng.random())
    span_seed = int(rng.integers(2**31))
    return ClipSpec(BASE_SIZE[0], BASE_SIZE[1], MOMENT_FPS, n_frames, pos, phase, span_seed)


def _build_moment(job: _MomentJob) -> dict[str, object]:
    """Render the spans on one scene, stream them into one AVI, write it atomically."""
    if job.rendering != DEFAULT_RENDERING:
        from clipsearch.data import synth_alt  # it builds on this module

        return synth_alt.build_moment(job)
    # The first class's test scene of the group; every drawer works on any scene (the
    # background was picked to contrast with the object colour, whatever the class).
    scene = make_scene(job.seed, job.classes[0], job.group)
    rng = np.random.default_rng(_seq(job.seed, 6, _KIND_KEYS[job.kind], job.index))
    width, height = BASE_SIZE
    spans: list[dict[str, object]] = []
    tmp = job.path.with_name(job.path.name + ".tmp")
    try:
        with _AviWriter(tmp, width, height, MOMENT_FPS) as writer:
            for class_name, steps in zip(job.classes, job.steps, strict=True):
                start = writer.n_frames
                spec = _moment_spec(rng, steps * _STEP_FRAMES)
                writer.write(render_frames(class_name, scene, spec))
                spans.append(span_row(class_name, start, writer.n_frames, MOMENT_FPS))
            n_frames = writer.n_frames
        os.replace(tmp, job.path)
    finally:
        tmp.unlink(missing_ok=True)
    return moment_row(job, n_frames, MOMENT_FPS, (width, height), scene_words(scene), spans)


class _Described(Protocol):
    """What a scene of any rendering names in its meta rows."""

    @property
    def color(self) -> str: ...
    @property
    def background(self) -> str: ...
    @property
    def size(self) -> str: ...
    @property
    def speed(self) -> str: ...


def scene_words(scene: _Described) -> dict[str, str]:
    """A scene's colour, background, size and speed, as its meta rows name them (a
    :class:`Scene`, or another rendering's scene with the same four words)."""
    return {
        "color": scene.color,
        "background": scene.background,
        "size": scene.size,
        "speed": scene.speed,
    }


def span_row(class_name: str, start: int, end: int, fps: float) -> dict[str, object]:
    """One labelled span of a moments file, frames ``start`` to ``end``, in seconds."""
    return {
        "class": class_name,
        "start_s": round(start / fps, 3),
        "end_s": round(end / fps, 3),
    }


def moment_row(
    job: _MomentJob,
    n_frames: int,
    fps: float,
    size: tuple[int, int],
    scene: Mapping[str, object],
    spans: list[dict[str, object]],
    extra: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """A moments file's row of ``moments.jsonl`` (``scene``: colour, background, size and
    speed words; ``extra``: what a rendering adds after the spans)."""
    return {
        "path": job.name,
        "kind": job.kind,
        "duration_s": round(n_frames / fps, 3),
        "fps": fps,
        "width": size[0],
        "height": size[1],
        "scene_group": job.group,
        **scene,
        "segments": spans,
        **(extra or {}),
    }


def _imap_unordered(
    fn: Callable[[_J], dict[str, object]],
    jobs: list[_J],
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[dict[str, object]]:
    total = len(jobs)
    if workers <= 1 or total <= 1:
        results: Iterator[dict[str, object]] = map(fn, jobs)
        pool = None
    else:
        pool = multiprocessing.get_context().Pool(processes=min(workers, total))
        results = pool.imap_unordered(fn, jobs)
    try:
        for done, result in enumerate(results, 1):
            yield result
            if progress is not None:
                progress(done, total)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def _moment_files(folder: Path) -> Iterator[Path]:
    """Files of ours in a moments folder: clips, temporaries and the jsonl."""
    if not folder.is_dir():
        return
    for f in folder.iterdir():
        ours = re.fullmatch(r"(m_\d+|long_\d+)\.avi(\.tmp)?", f.name) or f.name in (
            MOMENTS_FILE,
            MOMENTS_FILE + ".tmp",
        )
        if ours and f.is_file():
            yield f


def _remove_moments(folder: Path, keep: set[str]) -> None:
    """Delete our files in ``folder`` except ``keep``; drop the folder when left empty."""
    for f in _moment_files(folder):
        if f.name not in keep:
            logger.info("removing stale file %s", f)
            f.unlink()
    if folder.is_dir() and not keep and not any(folder.iterdir()):
        folder.rmdir()


def _check_root(name: str, value: object) -> Path:
    if not isinstance(value, (str, Path)) or str(value) == "":
        raise InvalidInput(f"{name} must be a non-empty path, got {value!r}")
    root = Path(value).expanduser()
    if root.exists() and not root.is_dir():
        raise InvalidInput(f"output root {root} exists and is not a directory")
    return root


def _check_moments(
    classes: object, moments_per_class: object, long_videos: object, long_duration_s: object
) -> tuple[int, int, int, int]:
    """Validate the moments knobs; returns them with the long duration in 0.2 s steps."""
    n = _check_int("classes", classes, 1, len(CLASSES))
    if n < 2:
        raise InvalidInput(f"a moments set needs at least 2 classes, got classes={n}")
    mpc = _check_int("moments_per_class", moments_per_class, 1, MAX_MOMENTS_PER_CLASS)
    n_long = _check_int("long_videos", long_videos, 0, MAX_LONG_VIDEOS)
    d = long_duration_s
    if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d):
        raise InvalidInput(f"long_duration_s must be a number of seconds, got {d!r}")
    n_spans = min(LONG_SPANS, n)
    steps = round(d * 5)
    if abs(steps - d * 5) > 1e-6 or not 2.0 * n_spans <= d <= _MAX_LONG_DURATION_S:
        raise InvalidInput(
            f"long_duration_s must be a multiple of 0.2 between {2.0 * n_spans:g} and "
            f"{_MAX_LONG_DURATION_S:g} (for {n_spans} segments), got {d!r}"
        )
    return n, mpc, n_long, steps


def generate_moments(
    root: str | Path,
    *,
    classes: int = 12,
    moments_per_class: int = 4,
    long_videos: int = 2,
    seed: int = 0,
    workers: int | None = None,
    long_duration_s: float = LONG_DURATION_S,
    progress: Callable[[int, int], None] | None = None,
    rendering: str = DEFAULT_RENDERING,
) -> MomentsSummary:
    """Build the moments set in the folder ``root`` (``<dataset>/moments`` in a full build).

    Short clips ``m_NNNN.avi`` hold 2 or 3 back-to-back spans of 3-5 s; every one of
    the first ``classes`` classes appears in exactly ``moments_per_class`` of them.
    ``long_videos`` files ``long_NN.avi`` of ``long_duration_s`` (60 s; other values are
    for tests) hold ``min(6, classes)`` spans of 0.7-1.3x the mean length, covering
    the classes as evenly as possible. No class appears twice in one file. Each file is
    one scene (background, colour, size, speed, noise) from split 1's test groups.
    ``moments.jsonl`` is written last, so its presence marks a complete set; files of
    an earlier build with other knobs are removed. Byte-identical for the same knobs.
    ``rendering="alt"`` draws the set in :mod:`clipsearch.data.synth_alt`'s style (each file
    at its own frame size and rate); its entries add ``"rendering": "alt"``.
    """
    classes, moments_per_class, long_videos, long_steps = _check_moments(
        classes, moments_per_class, long_videos, long_duration_s
    )
    seed = _check_int("seed", seed, 0)
    if workers is not None:
        workers = _check_int("workers", workers, 1)
    rendering = _check_rendering(rendering)
    folder = _check_root("root", root)

    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MOMENTS_FILE).unlink(missing_ok=True)  # the completion marker goes last
    jobs = _plan_moments(
        seed, CLASSES[:classes], moments_per_class, long_videos, long_steps, folder, rendering
    )
    _remove_moments(folder, {j.name for j in jobs})
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    n_long = sum(j.kind == "long" for j in jobs)
    n_spans = sum(len(j.classes) for j in jobs)
    logger.info(
        "generating the moments set at %s: %d clips + %d long videos, %d segments, %d workers",
        folder,
        len(jobs) - n_long,
        n_long,
        n_spans,
        n_workers,
    )
    # Long videos first: they take longest, so the pool finishes at about the same time.
    ordered = sorted(jobs, key=lambda j: j.kind != "long")
    metas = {
        str(m["path"]): m for m in _imap_unordered(_build_moment, ordered, n_workers, progress)
    }
    lines = [json.dumps(metas[j.name], ensure_ascii=False) for j in jobs]
    _write_text(folder / MOMENTS_FILE, lines, "\n")
    seconds = time.perf_counter() - t0
    logger.info("moments set done: %d files in %.1f s", len(jobs), seconds)
    return MomentsSummary(
        root=folder,
        n_clips=len(jobs) - n_long,
        n_long=n_long,
        n_spans=n_spans,
        seconds=seconds,
    )
