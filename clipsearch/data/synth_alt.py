"""The ``alt`` rendering of SynthUCF: the same 12 classes, drawn the way real footage varies.

A held-out test set for search quality: a model trained on the default rendering
(:mod:`clipsearch.data.synth`) and evaluated here shows whether it learnt the classes or
SynthUCF's exact pixels. What stays: each class's object shape and motion, the
direction pairs (the second is the first one's frames in reverse order), the colour
names (shades jittered within the hue), size words (radius relative to frame height),
speed words, the UCF101 layout, split lists, ``synth_meta.jsonl`` fields and caption
wording. What varies, drawn from the seeded RNG per group (:class:`AltScene`) or clip
(:class:`~clipsearch.data.synth.ClipSpec`):

- frame size and aspect (:data:`FRAME_SIZES`), frame rate (:data:`FPS_CHOICES`),
  clip length 1.6-9 s;
- background (:data:`TEXTURES`: checker, tiled, wood, brick, mottled "photo" noise,
  horizontal and diagonal gradients), with even light, a vignette or light from one
  side; always low-saturation and contrasting with the object;
- 0-2 static distractors per group (:data:`DISTRACTORS`: a rounded panel, a pole, a
  blurred blob, a house shape) in neutral greys and browns, near the frame's sides,
  behind the object;
- motion curves: easing of the travelling, growing and scattering classes, damped
  bounces of several heights, spins that speed up or slow down either way round,
  elliptic orbits, blinks that fade, sloped or drifting paths;
- object look: flat fill, outline or top-lit gradient; soft edges (blur);
- sensor noise up to sigma 11, and H.264 (libx264) or low-bitrate MPEG-4 in the AVI.

All randomness comes from :func:`clipsearch.data.synth._seq` with the ``"alt"`` rendering
key, so the default rendering's scenes never coincide with these. Rows of
``synth_meta.jsonl`` add ``rendering``, ``lighting``, ``distractors``, ``easing``,
``shading``, ``blur``, ``noise_sigma`` and ``codec``; ``background`` is the texture name.
``easing`` is the clip's motion curve: one of :data:`EASINGS` for the rolling, rising,
growing and scattering classes, ``steady``/``damped`` for bouncing,
``steady``/``accelerating``/``decelerating`` for spinning, ``hard``/``fade`` for
blinking, ``steady`` otherwise.
"""

from __future__ import annotations

import colorsys
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from clipsearch.errors import InvalidInput
from clipsearch.data.synth import (
    _CAPTION_TEMPLATES,
    _KIND_KEYS,
    _SIZE_RANGE,
    _SIZE_WORDS,
    _SPEED_WORDS,
    BASE_SIZE,
    BIT_RATE,
    CLASS_PHRASES,
    CLASSES,
    COLORS,
    REVERSED_OF,
    RGB,
    SIZES,
    SPEEDS,
    ClipSpec,
    _AviWriter,
    _contrasts,
    _family,
    _luma,
    _pick_bg_color,
    _regular,
    _rotated,
    clip_relpath,
    moment_row,
    scene_words,
    span_row,
)
from clipsearch.data.synth import _seq as _base_seq

if TYPE_CHECKING:
    from clipsearch.data.synth import _MomentJob

RENDERING = "alt"

FRAME_SIZES: tuple[tuple[int, int], ...] = (
    (480, 270),
    (640, 360),
    (352, 288),
    (360, 360),
    (256, 192),
    (426, 240),
    (320, 240),
)
FPS_CHOICES: tuple[int, ...] = (12, 15, 24, 25, 30, 50)
DURATION_S = (1.6, 9.0)

TEXTURES: tuple[str, ...] = (
    "checker",
    "tiled",
    "wood",
    "brick",
    "mottled",
    "horizontal gradient",
    "diagonal gradient",
)
LIGHTINGS: tuple[str, ...] = ("even", "vignette", "side")
DISTRACTORS: tuple[str, ...] = ("panel", "pole", "blob", "house")
EASINGS: tuple[str, ...] = ("linear", "ease-in-out", "accelerating", "decelerating")
SHADINGS: tuple[str, ...] = ("flat", "outline", "gradient")
CODECS: tuple[str, ...] = ("h264", "mpeg4")
_NOISE_SIGMAS: tuple[float, ...] = (0.0, 2.5, 4.0, 6.0, 8.0, 11.0)
_N_NOISE_FRAMES = 8

# Seconds per motion cycle (slow, medium, fast); stripes: pixels per second at 240 high.
# Shifted from the default's table; adjacent speed words stay apart under the tempo jitter.
_PERIODS: dict[str, tuple[float, float, float]] = {
    "BallBouncing": (1.8, 1.2, 0.75),
    "BallRollingLeft": (5.0, 3.2, 2.0),
    "BoxSpinning": (4.5, 2.8, 1.6),
    "BoxGrowing": (3.8, 2.5, 1.6),
    "TriangleRising": (4.4, 2.9, 1.8),
    "StarBlinking": (1.7, 1.1, 0.65),
    "RingOrbiting": (4.4, 2.9, 1.8),
    "StripesScrolling": (30.0, 65.0, 140.0),
    "DotsScattering": (3.3, 2.1, 1.35),
}
_TEMPO = (0.87, 1.13)
# Minimum luma gap between a texture's two ends (wider for textures that need contrast).
_BAND_GAP: dict[str, float] = {"mottled": 60.0, "checker": 45.0, "brick": 45.0}
_DEFAULT_BAND_GAP = 35.0
_TINT = 12.0  # background channels stray at most this far from grey (default: 22)
_MPEG4_QUALITY = (0.3, 0.65)  # bit rate as a fraction of the default's (per pixel and frame)
_CRF = (22, 31)

Drawer = Callable[[ImageDraw.ImageDraw, float], None]
Decor = Callable[[ImageDraw.ImageDraw], None]


def _seq(seed: int, *key: int) -> np.random.SeedSequence:
    return _base_seq(seed, *key, rendering=RENDERING)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(_seq(seed, *key))


# --------------------------------------------------------------------------- scene / clip


@dataclass(frozen=True)
class Distractor:
    """A static, neutral-coloured object of the set; its position is drawn per clip."""

    kind: str  # one of DISTRACTORS
    rgb: RGB
    size: float  # height as a fraction of the frame height (pole, panel, blob); house: width
    aspect: float  # width / height (house: wall height / width)


@dataclass(frozen=True)
class AltScene:
    """What one alt group fixes: the look of the set, the object and the camera."""

    texture: str  # one of TEXTURES
    bg_dark: RGB  # the texture runs between these two colours
    bg_light: RGB
    texture_seed: int
    lighting: str  # one of LIGHTINGS
    color: str
    rgb: RGB  # the colour's shade in this group (hue kept)
    accent: RGB  # floor line: contrasts with the background
    shading: str  # one of SHADINGS
    blur: float  # Gaussian blur radius at a 240-pixel-high frame (0: sharp)
    size: str
    radius: float  # object radius at a 240-pixel-high frame
    speed: str
    tempo: float
    easing: str  # one of EASINGS
    motion_seed: int  # per-group motion details (damping, spin direction, orbit shape)
    noise_sigma: float
    distractors: tuple[Distractor, ...]
    codec: str  # one of CODECS
    quality: float  # x264 CRF, or the MPEG-4 bit rate fraction

    @property
    def background(self) -> str:
        """The texture name, as ``synth_meta.jsonl``'s ``background`` holds it."""
        return self.texture


def _shade(rng: np.random.Generator, color: str) -> RGB:
    """A shade of a named colour: hue within about 4 degrees, saturation and value jittered."""
    r, g, b = (v / 255.0 for v in COLORS[color])
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    if color == "white":
        s, v = rng.uniform(0.0, 0.06), rng.uniform(0.9, 1.0)
        h = rng.random()
    else:
        h = (h + rng.uniform(-0.011, 0.011)) % 1.0
        s = min(1.0, s * rng.uniform(0.85, 1.05))
        v = min(1.0, v * rng.uniform(0.86, 1.02))
    rgb = colorsys.hsv_to_rgb(h, s, v)
    return (round(rgb[0] * 255), round(rgb[1] * 255), round(rgb[2] * 255))


def _pick_band(rng: np.random.Generator, obj: RGB, texture: str) -> tuple[RGB, RGB]:
    """Two low-saturation colours on one side of the object's luma, both contrasting with it.

    Every mix of the two stays on that side, 60 luma levels or more from the object.
    """
    lum = _luma(obj)
    rooms = {-1: lum - 72.0, 1: 175.0 - lum}  # greys span luma 12-235
    sides = [side for side, room in rooms.items() if room >= 15.0]
    if len(sides) == 2:
        side = -1 if rng.random() < rooms[-1] / (rooms[-1] + rooms[1]) else 1
    else:
        side = sides[0] if sides else max(rooms, key=lambda k: rooms[k])

    def ok(c: RGB) -> bool:
        return (_luma(c) < lum) == (side < 0) and _contrasts(c, obj, 60.0)

    gap = _BAND_GAP.get(texture, _DEFAULT_BAND_GAP)
    first = _pick_bg_color(rng, obj, min_luma=60.0, side=side, tint=_TINT)
    if not ok(first):  # no room found: the far end of that side
        first = (14, 14, 16) if side < 0 else (238, 238, 236)
    second, best = first, 0.0
    for _ in range(40):
        cand = _pick_bg_color(rng, obj, min_luma=60.0, side=side, tint=_TINT)
        diff = abs(_luma(cand) - _luma(first))
        if ok(cand) and diff > best:
            second, best = cand, diff
        if best >= gap:
            break
    if texture in ("wood", "brick"):  # warm, still low-saturation and contrasting
        warm = [_warm(first), _warm(second)]
        if all(ok(c) for c in warm):
            first, second = warm[0], warm[1]
    dark, light = sorted((first, second), key=_luma)
    return dark, light


def _warm(c: RGB) -> RGB:
    r, g, b = (int(np.clip(v, 0, 255)) for v in (c[0] + 14, c[1] + 3, c[2] - 12))
    return (r, g, b)


def _pick_distractor_color(rng: np.random.Generator, obj: RGB, dark: RGB, light: RGB) -> RGB:
    """A grey or brown far from the object colour that stands out from the background.

    Preferably lighter or darker than the whole texture; else far from its middle.
    """
    lo, hi = _luma(dark), _luma(light)
    for attempt in range(200):
        g = float(rng.uniform(25.0, 225.0))
        if rng.random() < 0.5:  # brown: a quarter less blue than red, whatever the lightness
            c = np.array([g * 1.1 + 6.0, g, g * 0.82])
        else:  # grey with a faint tint
            c = g + rng.uniform(-6.0, 6.0, size=3)
        r, gr, b = (int(v) for v in np.clip(np.rint(c), 0, 255))
        col: RGB = (r, gr, b)
        lum = _luma(col)
        if math.dist(col, obj) < 110 or abs(lum - _luma(obj)) < 35:
            continue
        outside = lum <= lo - 30 or lum >= hi + 30
        if outside or (attempt >= 100 and abs(lum - (lo + hi) / 2) >= 45):
            return col
    return (128, 128, 128) if abs(_luma(obj) - 128) >= 35 else (40, 38, 36)


def _pick_distractors(
    rng: np.random.Generator, obj: RGB, dark: RGB, light: RGB
) -> tuple[Distractor, ...]:
    """None, one or two distractors of different kinds, with colours and proportions."""
    n = int(rng.choice(3, p=[0.3, 0.4, 0.3]))
    kinds = [str(k) for k in rng.choice(DISTRACTORS, size=n, replace=False)]
    out: list[Distractor] = []
    for kind in kinds:
        rgb = _pick_distractor_color(rng, obj, dark, light)
        if kind == "panel":  # upright or lying, at most 0.44 frame heights wide
            if rng.random() < 0.5:
                size, aspect = rng.uniform(0.2, 0.35), rng.uniform(0.45, 0.7)
            else:
                size, aspect = rng.uniform(0.12, 0.2), rng.uniform(1.5, 2.2)
        elif kind == "pole":
            size, aspect = rng.uniform(0.45, 0.85), rng.uniform(0.03, 0.05)
        elif kind == "blob":
            size, aspect = rng.uniform(0.1, 0.18), rng.uniform(1.7, 2.4)
        else:  # house: size is the width, aspect the wall height over the width
            size, aspect = rng.uniform(0.2, 0.32), rng.uniform(0.55, 0.75)
        out.append(Distractor(kind, rgb, float(size), float(aspect)))
    return tuple(out)


def make_scene(seed: int, class_name: str, group: int) -> AltScene:
    """The alt scene of one (class, group); direction pairs share their first class's scene."""
    if class_name not in CLASSES:
        raise InvalidInput(f"unknown class {class_name!r}; expected one of {', '.join(CLASSES)}")
    fam = CLASSES.index(_family(class_name))
    rng = _rng(seed, 0, fam, group)
    color = str(rng.choice(list(COLORS)))
    rgb = _shade(rng, color)
    texture = str(rng.choice(TEXTURES))
    lighting = str(rng.choice(LIGHTINGS, p=[0.5, 0.25, 0.25]))
    dark, light = _pick_band(rng, rgb, texture)
    texture_seed = int(rng.integers(2**31))
    mid = (_luma(dark) + _luma(light)) / 2
    accent: RGB = (22, 20, 24) if mid > 110 else (232, 232, 226)
    shading = str(rng.choice(SHADINGS))
    blur = float(rng.uniform(0.5, 1.2)) if rng.random() < 0.45 else 0.0
    size = str(rng.choice(SIZES))
    lo, hi = _SIZE_RANGE[size]
    radius = float(rng.uniform(lo, hi))
    speed = str(rng.choice(SPEEDS))
    tempo = float(rng.uniform(*_TEMPO))
    easing = str(rng.choice(EASINGS))
    motion_seed = int(rng.integers(2**31))
    noise_sigma = float(rng.choice(_NOISE_SIGMAS))
    distractors = _pick_distractors(rng, rgb, dark, light)
    codec = str(rng.choice(CODECS, p=[0.6, 0.4]))
    if codec == "h264":
        quality = float(rng.integers(_CRF[0], _CRF[1] + 1))
    else:
        quality = round(float(rng.uniform(*_MPEG4_QUALITY)), 3)
    return AltScene(
        texture=texture,
        bg_dark=dark,
        bg_light=light,
        texture_seed=texture_seed,
        lighting=lighting,
        color=color,
        rgb=rgb,
        accent=accent,
        shading=shading,
        blur=blur,
        size=size,
        radius=radius,
        speed=speed,
        tempo=tempo,
        easing=easing,
        motion_seed=motion_seed,
        noise_sigma=noise_sigma,
        distractors=distractors,
        codec=codec,
        quality=quality,
    )


def _random_spec(rng: np.random.Generator, width: int, height: int, fps: int, n: int) -> ClipSpec:
    pos = (float(rng.random()), float(rng.random()))
    phase = float(rng.random())
    return ClipSpec(width, height, fps, n, pos, phase, int(rng.integers(2**31)))


def _pick_format(rng: np.random.Generator) -> tuple[int, int, int]:
    """Frame width, height and rate."""
    width, height = FRAME_SIZES[int(rng.integers(len(FRAME_SIZES)))]
    fps = int(FPS_CHOICES[int(rng.integers(len(FPS_CHOICES)))])
    return width, height, fps


def make_clip_spec(seed: int, class_name: str, group: int, clip: int) -> ClipSpec:
    """Frame size and rate, length (1.6-9 s), position and phase of one alt clip."""
    if class_name not in CLASSES:
        raise InvalidInput(f"unknown class {class_name!r}; expected one of {', '.join(CLASSES)}")
    fam = CLASSES.index(_family(class_name))
    rng = _rng(seed, 1, fam, group, clip)
    width, height, fps = _pick_format(rng)
    lo, hi = math.ceil(DURATION_S[0] * fps), math.floor(DURATION_S[1] * fps)
    n_frames = int(rng.integers(lo, hi + 1))
    return _random_spec(rng, width, height, fps, n_frames)


def make_caption(seed: int, class_name: str, group: int, clip: int, scene: AltScene) -> str:
    """A sentence worded like the default's captions, naming the texture as the background."""
    rng = _rng(seed, 2, CLASSES.index(class_name), group, clip)
    template = _CAPTION_TEMPLATES[int(rng.integers(len(_CAPTION_TEMPLATES)))]
    phrase = CLASS_PHRASES[class_name]
    article = "" if phrase.split()[0].endswith("s") else "a "
    obj = f"{article}{_SIZE_WORDS[scene.size]} {scene.color} {phrase}"
    return template.format(obj=obj, speed=_SPEED_WORDS[scene.speed], bg=scene.texture)


# --------------------------------------------------------------------------- backgrounds


def _grid_noise(rng: np.random.Generator, width: int, height: int, rows: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: a random grid of ``rows`` rows upsampled bicubically."""
    cols = max(2, round(rows * width / height))
    grid = rng.uniform(-1.0, 1.0, size=(rows, cols)).astype(np.float32)
    img = Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32)


def _texture_field(scene: AltScene, width: int, height: int) -> np.ndarray:
    """The texture as a field in [0, 1] (0: the dark colour, 1: the light one), (H, W)."""
    rng = np.random.default_rng(scene.texture_seed)
    h = float(height)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    tex = scene.texture
    if tex == "checker":
        cell = h * rng.uniform(0.08, 0.2)
        ox, oy = rng.uniform(0, cell, size=2)
        f = ((np.floor((x + ox) / cell) + np.floor((y + oy) / cell)) % 2).astype(np.float32)
        return f * rng.uniform(0.8, 1.0) + rng.uniform(0.0, 0.1)
    if tex == "tiled":
        th = h * rng.uniform(0.12, 0.28)
        tw = th * rng.uniform(1.0, 2.0)
        grout = max(1.5, h * rng.uniform(0.01, 0.02))
        ix, iy = np.floor(x / tw), np.floor(y / th)
        in_grout = ((x % tw) < grout) | ((y % th) < grout)
        shade = rng.uniform(0.55, 1.0, size=64).astype(np.float32)
        f = shade[((ix * 7 + iy * 13) % 64).astype(int)]
        dark_grout = rng.random() < 0.5
        return np.where(in_grout, 0.0 if dark_grout else 1.0, f if dark_grout else 1.0 - f)
    if tex == "wood":
        board = h * rng.uniform(0.14, 0.3)
        row = np.floor(y / board)
        offsets = rng.uniform(0, 1, size=256).astype(np.float32)
        warp = _grid_noise(rng, width, height, 5) * 0.35
        period = h * rng.uniform(0.025, 0.05)
        grain = 0.5 + 0.5 * np.sin(2 * np.pi * (y / period + warp + offsets[row.astype(int) % 256]))
        tone = rng.uniform(0.3, 0.8, size=256).astype(np.float32)[row.astype(int) % 256]
        seam = (y % board) < max(1.0, h * 0.008)
        f = 0.55 * tone + 0.45 * grain
        return np.where(seam, 0.0, f)
    if tex == "brick":
        bh = h * rng.uniform(0.07, 0.12)
        bw = bh * rng.uniform(2.0, 2.6)
        mortar = max(1.5, bh * 0.14)
        row = np.floor(y / bh)
        xs = x + (row % 2) * bw / 2
        col = np.floor(xs / bw)
        in_mortar = ((xs % bw) < mortar) | ((y % bh) < mortar)
        tone = rng.uniform(0.0, 0.45, size=97).astype(np.float32)
        f = tone[((col * 31 + row * 17) % 97).astype(int)]
        f = f + 0.08 * _grid_noise(rng, width, height, 40)
        return np.where(in_mortar, 1.0, f)
    if tex == "mottled":  # photo-like: several octaves, stretched to the full band
        f = np.zeros((height, width), dtype=np.float32)
        for rows, weight in ((3, 0.45), (8, 0.28), (24, 0.17), (70, 0.1)):
            f += weight * _grid_noise(rng, width, height, rows)
        lo, hi = np.percentile(f, [2.0, 98.0])
        return (f - lo) / max(float(hi - lo), 1e-6)
    if tex == "horizontal gradient":
        f = x / max(width - 1, 1)
        return 1.0 - f if rng.random() < 0.5 else f
    # diagonal gradient
    angle = rng.uniform(0.35, 1.2) * (1 if rng.random() < 0.5 else -1)
    proj = x * math.cos(angle) + y * math.sin(angle)
    return (proj - proj.min()) / max(float(proj.max() - proj.min()), 1e-6)


def _light_field(scene: AltScene, width: int, height: int) -> np.ndarray:
    """How lit each pixel is, in (0, 1]: 1 everywhere for even light."""
    if scene.lighting == "even":
        return np.ones((height, width), dtype=np.float32)
    rng = np.random.default_rng(scene.texture_seed + 1)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / max(width - 1, 1) * 2 - 1, y / max(height - 1, 1) * 2 - 1
    if scene.lighting == "vignette":
        cx, cy = rng.uniform(-0.25, 0.25, size=2)
        d2 = ((u - cx) ** 2 + (v - cy) ** 2) / 2.0
        return np.clip(1.0 - rng.uniform(0.6, 0.9) * d2, 0.05, 1.0)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (u * math.cos(angle) + v * math.sin(angle)) / math.sqrt(2) * 0.5 + 0.5
    return 1.0 - rng.uniform(0.55, 0.85) * ramp


def _texture(scene: AltScene, width: int, height: int) -> np.ndarray:
    """Texture and lighting, (H, W, 3) uint8; every pixel lies between the two band colours."""
    f = np.clip(_texture_field(scene, width, height), 0.0, 1.0)
    f = f * _light_field(scene, width, height)
    dark = np.asarray(scene.bg_dark, dtype=np.float32)
    light = np.asarray(scene.bg_light, dtype=np.float32)
    col = dark + (light - dark) * f[:, :, None]
    return np.clip(np.rint(col), 0, 255).astype(np.uint8)


def _draw_distractor(
    img: Image.Image, item: Distractor, rng: np.random.Generator, side: int
) -> None:
    """Draw one distractor near the left (``side`` -1) or right (+1) edge of ``img``."""
    w, h = img.size
    cx = w * (rng.uniform(0.04, 0.2) if side < 0 else rng.uniform(0.8, 0.96))
    d = ImageDraw.Draw(img)
    fill = item.rgb
    darker = tuple(int(c * 0.72) for c in fill)
    if item.kind == "panel":
        ph = item.size * h
        pw = item.aspect * ph
        bottom = h * rng.uniform(0.72, 0.98)
        box = (cx - pw / 2, bottom - ph, cx + pw / 2, bottom)
        d.rounded_rectangle(box, radius=0.18 * min(pw, ph), fill=fill, outline=darker, width=1)
    elif item.kind == "pole":
        ph = item.size * h
        pw = max(2.0, item.aspect * ph * 0.5)
        bottom = h * rng.uniform(0.88, 1.02)
        d.rectangle((cx - pw / 2, bottom - ph, cx + pw / 2, bottom), fill=fill)
        arm = pw * rng.uniform(3.0, 5.0) * (1 if rng.random() < 0.5 else -1)
        top = bottom - ph
        d.rectangle((min(cx, cx + arm), top, max(cx, cx + arm), top + pw), fill=fill)
    elif item.kind == "blob":  # an irregular, blurred, elongated blob (a bush, a smudge)
        bh = item.size * h
        bw = item.aspect * bh
        cy = h * rng.uniform(0.2, 0.8)
        n = int(rng.integers(9, 13))
        ang = np.sort(rng.uniform(0, 2 * math.pi, n))
        rad = rng.uniform(0.75, 1.15, n)
        pts = [
            (cx + 0.5 * bw * r * math.cos(a), cy + 0.5 * bh * r * math.sin(a))
            for a, r in zip(ang, rad, strict=True)
        ]
        mask = Image.new("L", (w, h), 0)
        ImageDraw.Draw(mask).polygon(pts, fill=255)
        mask = mask.filter(ImageFilter.GaussianBlur(0.22 * bh))
        img.paste(Image.new("RGB", (w, h), fill), (0, 0), mask)
    else:  # house: walls and a roof as one pentagon, and a door
        hw = item.size * h
        wall = item.aspect * hw
        roof = hw * rng.uniform(0.4, 0.55)
        bottom = h * rng.uniform(0.8, 1.0)
        x0, x1 = cx - hw / 2, cx + hw / 2
        pts = [(x0, bottom), (x0, bottom - wall), (cx, bottom - wall - roof)]
        pts += [(x1, bottom - wall), (x1, bottom)]
        d.polygon(pts, fill=fill, outline=darker)
        dw = hw * 0.2
        d.rectangle((cx - dw / 2, bottom - wall * 0.55, cx + dw / 2, bottom), fill=darker)


def make_backdrop(scene: AltScene, width: int, height: int, layout: int) -> np.ndarray:
    """Texture, light and distractors of a scene, (H, W, 3) uint8.

    ``layout`` seeds where the distractors stand (per clip, or per moments file).
    """
    img = Image.fromarray(_texture(scene, width, height))
    rng = _rng(layout, 7)
    first = -1 if rng.random() < 0.5 else 1
    for i, item in enumerate(scene.distractors):
        _draw_distractor(img, item, rng, first if i % 2 == 0 else -first)
    return np.asarray(img).copy()


# --------------------------------------------------------------------------- motion


def _ease(name: str, u: float) -> float:
    if name == "ease-in-out":
        return u * u * (3.0 - 2.0 * u)
    if name == "accelerating":
        return u**1.7
    if name == "decelerating":
        return 1.0 - (1.0 - u) ** 1.7
    return u


class _Motion(NamedTuple):
    draw: Drawer  # draws the object on an "L" mask (255: opaque) at time t
    decor: Decor | None  # static parts drawn on the backdrop (the floor line)
    label: str  # the motion curve, for synth_meta.jsonl's "easing"


def _make_motion(class_name: str, scene: AltScene, spec: ClipSpec) -> _Motion:
    """Per-class drawing closure on the object mask, for the first class of a pair."""
    w, h = spec.width, spec.height
    k = h / 240.0
    r = scene.radius * k
    px, py = spec.pos
    period_s = _PERIODS[class_name][SPEEDS.index(scene.speed)] / scene.tempo
    style = np.random.default_rng((scene.motion_seed, CLASSES.index(class_name)))
    crng = _rng(spec.seed, 8)

    def cycle(t: float) -> float:
        return (spec.phase + t / period_s) % 1.0

    def eased(t: float) -> float:
        return _ease(scene.easing, cycle(t))

    if class_name == "BallBouncing":
        floor = h * (0.74 + 0.14 * py)
        cx = w * (0.2 + 0.6 * px)
        top = min(h * style.uniform(0.3, 0.55), floor - 2 * r - 4)
        damping = 1.0 if style.random() < 0.5 else float(style.uniform(0.55, 0.8))
        n_b = 1 if damping == 1.0 else 3
        heights = [top * damping**j for j in range(n_b)]
        durs = [math.sqrt(damping**j) for j in range(n_b)]
        starts = np.cumsum([0.0, *durs])
        total = float(starts[-1])
        line_w = max(2, round(style.uniform(2.0, 4.5) * k))

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            u = ((spec.phase + t / (period_s * total)) % 1.0) * total
            j = min(int(np.searchsorted(starts, u, side="right")) - 1, n_b - 1)
            v = (u - starts[j]) / durs[j]
            cy = floor - r - heights[j] * 4 * v * (1 - v)
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)

        def decor(d: ImageDraw.ImageDraw) -> None:
            y = floor + line_w / 2
            d.line([(0, y), (w, y)], fill=scene.accent, width=line_w)

        return _Motion(draw, decor, "steady" if n_b == 1 else "damped")

    if class_name == "BallRollingLeft":
        cy0 = h * (0.25 + 0.5 * py)
        slope = h * crng.uniform(-0.06, 0.06)
        span = w + 2 * r

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            u = eased(t)
            cx, cy = w + r - u * span, cy0 + slope * (u - 0.5)
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)

        return _Motion(draw, None, scene.easing)

    if class_name == "BoxSpinning":
        cx, cy = w * (0.3 + 0.4 * px), h * (0.3 + 0.4 * py)
        corners = _regular(4, r * 1.3, start=math.pi / 4)
        direction = 1.0 if style.random() < 0.5 else -1.0
        accel = 0.0 if style.random() < 0.4 else float(style.uniform(0.4, 0.9))
        accel *= 1.0 if style.random() < 0.5 else -1.0
        length = spec.n_frames / spec.fps

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            turns = spec.phase + (t + accel * (t * t / (2 * length) - t / 2)) / period_s
            d.polygon(_rotated(cx, cy, corners, direction * 2 * math.pi * turns), fill=255)

        label = "steady" if accel == 0 else ("accelerating" if accel > 0 else "decelerating")
        return _Motion(draw, None, label)

    if class_name == "BoxGrowing":
        cx, cy = w * (0.35 + 0.3 * px), h * (0.38 + 0.24 * py)
        s0, s1 = style.uniform(0.3, 0.45), style.uniform(1.6, 1.9)
        tilt = crng.uniform(-0.2, 0.2)

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            half = r * (s0 + (s1 - s0) * eased(t))
            pts = _regular(4, half * math.sqrt(2), start=math.pi / 4)
            d.polygon(_rotated(cx, cy, pts, tilt), fill=255)

        return _Motion(draw, None, scene.easing)

    if class_name == "TriangleRising":
        cx0 = w * (0.2 + 0.6 * px)
        drift = w * crng.uniform(-0.06, 0.06)
        tri = _regular(3, r * 1.2)
        span = h + 2.4 * r

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            u = eased(t)
            cx, cy = cx0 + drift * (u - 0.5), h + 1.2 * r - u * span
            d.polygon([(cx + x, cy + y) for x, y in tri], fill=255)

        return _Motion(draw, None, scene.easing)

    if class_name == "StarBlinking":
        cx, cy = w * (0.3 + 0.4 * px), h * (0.3 + 0.4 * py)
        outer = _regular(5, r * 1.45)
        inner = _regular(5, r * style.uniform(0.5, 0.68), start=-math.pi / 2 + math.pi / 5)
        star = np.empty((10, 2))
        star[0::2], star[1::2] = outer, inner
        pts = _rotated(cx, cy, star, crng.uniform(-0.3, 0.3))
        duty = float(style.uniform(0.4, 0.65))
        fade = 0.0 if style.random() < 0.5 else float(style.uniform(0.08, 0.15))

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            u = cycle(t)
            if u >= duty:
                return
            alpha = 1.0 if fade == 0 else min(1.0, (u + 0.5 / spec.fps) / fade, (duty - u) / fade)
            d.polygon(pts, fill=round(255 * alpha))

        return _Motion(draw, None, "hard" if fade == 0 else "fade")

    if class_name == "RingOrbiting":
        ox, oy = w * (0.42 + 0.16 * px), h * (0.42 + 0.16 * py)
        orbit = min(w, h) * style.uniform(0.26, 0.32)
        rx = min(orbit * style.uniform(1.0, 1.35), 0.42 * w)
        ry = orbit * style.uniform(0.75, 1.0)
        ring_w = max(3, round(style.uniform(0.3, 0.5) * r))
        rr = r * 1.05
        direction = 1.0 if style.random() < 0.5 else -1.0

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            a = direction * 2 * math.pi * cycle(t)
            cx, cy = ox + rx * math.cos(a), oy - ry * math.sin(a)
            d.ellipse((cx - rr, cy - rr, cx + rr, cy + rr), outline=255, width=ring_w)

        return _Motion(draw, None, "steady")

    if class_name == "StripesScrolling":
        stripe = max(5.0, style.uniform(0.45, 0.8) * r)
        pitch = stripe * style.uniform(1.8, 2.8)
        v = _PERIODS[class_name][SPEEDS.index(scene.speed)] * scene.tempo * k
        direction = 1.0 if crng.random() < 0.5 else -1.0
        x0 = spec.phase * pitch
        n = int(w / pitch) + 3

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            off = (x0 + direction * v * t) % pitch
            for i in range(-1, n):
                left = off + i * pitch
                d.rectangle((left, 0, left + stripe - 1, h), fill=255)

        return _Motion(draw, None, "steady")

    if class_name == "DotsScattering":
        ox, oy = w * (0.35 + 0.3 * px), h * (0.35 + 0.3 * py)
        n_dots = int(crng.integers(20, 49))
        ang = crng.uniform(0, 2 * math.pi, n_dots)
        reach = crng.uniform(0.3, 1.0, n_dots) * min(w, h) * style.uniform(0.5, 0.65)
        jitter = crng.normal(0, 0.3 * r, (n_dots, 2))
        dirs = np.stack([np.cos(ang), np.sin(ang)], axis=1)
        dots = (3 * k + 0.15 * r) * crng.uniform(0.7, 1.3, n_dots)

        def draw(d: ImageDraw.ImageDraw, t: float) -> None:
            xy = jitter + dirs * (reach * eased(t))[:, None]
            for (x, y), s in zip(xy, dots, strict=True):
                d.ellipse((ox + x - s, oy + y - s, ox + x + s, oy + y + s), fill=255)

        return _Motion(draw, None, scene.easing)

    raise InvalidInput(f"unknown class {class_name!r}")  # pragma: no cover - checked before


# --------------------------------------------------------------------------- rendering


def _noise_frames(scene: AltScene, spec: ClipSpec) -> list[np.ndarray]:
    if scene.noise_sigma <= 0:
        return []
    rng = _rng(spec.seed, 3)
    shape = (spec.height, spec.width)
    frames = []
    for _ in range(_N_NOISE_FRAMES):
        luma = rng.normal(0.0, scene.noise_sigma * 0.8, size=(*shape, 1))
        chroma = rng.normal(0.0, scene.noise_sigma * 0.6, size=(*shape, 3))
        frames.append(np.rint(luma + chroma).astype(np.int16))
    return frames


def _erode(mask: np.ndarray, n: int) -> np.ndarray:
    """Minimum over the (2n+1)-square around each pixel (edges extended), uint8 (H, W)."""
    out = mask
    for axis in (0, 1):
        padded = np.pad(out, [(n, n) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        size = out.shape[axis]
        acc = padded.take(range(0, size), axis=axis)
        for shift in range(1, 2 * n + 1):
            acc = np.minimum(acc, padded.take(range(shift, shift + size), axis=axis))
        out = acc
    return out


class _Painter:
    """Composites the object mask onto a backdrop: fill, shading, blur and noise."""

    def __init__(self, scene: AltScene, spec: ClipSpec, backdrop: np.ndarray) -> None:
        self.spec = spec
        k = spec.height / 240.0
        self.raw = backdrop
        self.sigma = scene.blur * k
        self.base = backdrop
        if self.sigma > 0:
            img = Image.fromarray(backdrop).filter(ImageFilter.GaussianBlur(self.sigma))
            self.base = np.asarray(img)
        self.rgb = np.asarray(scene.rgb, dtype=np.float32)
        self.shading = scene.shading
        self.outline = max(1, round(1.6 * k))
        self.pad = self.outline + 2 + (math.ceil(3 * self.sigma) if self.sigma > 0 else 0)
        self.noise = _noise_frames(scene, spec)

    def frame(self, mask: Image.Image, index: int) -> np.ndarray:
        """Frame ``index`` (for its noise) with the object of ``mask`` on the backdrop."""
        out = self.base.copy()
        box = mask.getbbox()
        if box is not None:
            w, h = self.spec.width, self.spec.height
            p = self.pad
            x0, y0 = max(0, box[0] - 2 * p), max(0, box[1] - 2 * p)
            x1, y1 = min(w, box[2] + 2 * p), min(h, box[3] + 2 * p)
            m_img = mask.crop((x0, y0, x1, y1))
            m = np.asarray(m_img, dtype=np.float32)[:, :, None] / 255.0
            fill: np.ndarray = np.broadcast_to(self.rgb, (*m.shape[:2], 3)).astype(np.float32)
            if self.shading == "gradient":  # lit from above, across the object's height
                bh = max(box[3] - box[1], 1)
                ys = np.arange(y0, y1, dtype=np.float32)
                lit = 1.15 - 0.32 * np.clip((ys - box[1]) / bh, 0.0, 1.0)
                fill = np.clip(fill * lit[:, None, None], 0.0, 255.0)
            elif self.shading == "outline":
                inner = _erode(np.asarray(m_img), self.outline).astype(np.float32)[:, :, None]
                edge = m - inner / 255.0
                fill = fill * (1.0 - 0.5 * np.clip(edge, 0.0, 1.0))
            region = self.raw[y0:y1, x0:x1].astype(np.float32)
            region += (fill - region) * m
            patch = np.clip(np.rint(region), 0, 255).astype(np.uint8)
            if self.sigma > 0:
                blurred = Image.fromarray(patch).filter(ImageFilter.GaussianBlur(self.sigma))
                patch = np.asarray(blurred)
            # keep only the part whose blur context lies inside the crop (or the frame edge)
            ix0 = 0 if x0 == 0 else p
            iy0 = 0 if y0 == 0 else p
            ix1 = patch.shape[1] if x1 == w else patch.shape[1] - p
            iy1 = patch.shape[0] if y1 == h else patch.shape[0] - p
            out[y0 + iy0 : y0 + iy1, x0 + ix0 : x0 + ix1] = patch[iy0:iy1, ix0:ix1]
        if self.noise:
            noisy = out.astype(np.int16) + self.noise[index % len(self.noise)]
            out = np.clip(noisy, 0, 255).astype(np.uint8)
        return out


def clip_backdrop(
    class_name: str, scene: AltScene, spec: ClipSpec, *, layout: int | None = None
) -> np.ndarray:
    """What a clip shows behind its object: :func:`make_backdrop` and the class's static
    parts (the floor line), before blur and noise, (H, W, 3) uint8."""
    base = REVERSED_OF.get(class_name, class_name)
    backdrop = make_backdrop(
        scene, spec.width, spec.height, spec.seed if layout is None else layout
    )
    decor = _make_motion(base, scene, spec).decor
    if decor is None:
        return backdrop
    img = Image.fromarray(backdrop)
    decor(ImageDraw.Draw(img))
    return np.asarray(img).copy()


def iter_frames(
    class_name: str, scene: AltScene, spec: ClipSpec, *, layout: int | None = None
) -> Iterator[np.ndarray]:
    """The frames of one alt clip, each (height, width, 3) uint8 RGB, in order.

    ``layout`` seeds the distractors' places (default: the clip's seed; a moments file
    passes its own so they stay put across spans). The second class of a direction
    pair yields its partner's frames in reverse order.
    """
    if class_name not in CLASSES:
        raise InvalidInput(f"unknown class {class_name!r}; expected one of {', '.join(CLASSES)}")
    base = REVERSED_OF.get(class_name, class_name)
    motion = _make_motion(base, scene, spec)
    painter = _Painter(scene, spec, clip_backdrop(class_name, scene, spec, layout=layout))
    order = range(spec.n_frames)
    for i in reversed(order) if base != class_name else order:
        mask = Image.new("L", (spec.width, spec.height), 0)
        motion.draw(ImageDraw.Draw(mask), i / spec.fps)
        yield painter.frame(mask, i)


def render_frames(
    class_name: str, scene: AltScene, spec: ClipSpec, *, layout: int | None = None
) -> np.ndarray:
    """All frames of one alt clip, shape (n_frames, height, width, 3), uint8."""
    frames = np.empty((spec.n_frames, spec.height, spec.width, 3), dtype=np.uint8)
    for i, frame in enumerate(iter_frames(class_name, scene, spec, layout=layout)):
        frames[i] = frame
    return frames


def motion_label(class_name: str, scene: AltScene, spec: ClipSpec) -> str:
    """The motion curve of a clip ("ease-in-out", "damped", "fade", "steady", ...)."""
    return _make_motion(REVERSED_OF.get(class_name, class_name), scene, spec).label


# --------------------------------------------------------------------------- encoding


def writer(path: str | Path, scene: AltScene, width: int, height: int, fps: int) -> _AviWriter:
    """An AVI writer with the scene's codec: H.264 (x264, CRF) or low-bitrate MPEG-4."""
    if scene.codec == "h264":
        return _AviWriter(
            path,
            width,
            height,
            fps,
            bit_rate=0,
            codec="libx264",
            codec_tag="H264",
            options={
                "crf": str(int(scene.quality)),
                "preset": "veryfast",
                "x264-params": "bframes=0",
            },
            gop_size=2 * fps,
        )
    rate = BIT_RATE * (width * height) / (BASE_SIZE[0] * BASE_SIZE[1]) * fps / 25
    return _AviWriter(
        path,
        width,
        height,
        fps,
        bit_rate=max(40_000, round(rate * scene.quality)),
        codec="mpeg4",
        codec_tag="FMP4",
        gop_size=fps,
    )


def _scene_meta(scene: AltScene) -> dict[str, Any]:
    return {
        "rendering": RENDERING,
        "lighting": scene.lighting,
        "distractors": [d.kind for d in scene.distractors],
        "shading": scene.shading,
        "blur": round(scene.blur, 2),
        "noise_sigma": scene.noise_sigma,
        "codec": scene.codec,
    }


def build_clip(class_name: str, group: int, clip: int, seed: int, path: Path) -> dict[str, object]:
    """Render, encode and atomically write one alt clip; return its ``synth_meta`` row."""
    scene = make_scene(seed, class_name, group)
    spec = make_clip_spec(seed, class_name, group, clip)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with writer(tmp, scene, spec.width, spec.height, spec.fps) as out:
            for frame in iter_frames(class_name, scene, spec):
                out.write(frame[None])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    extra = _scene_meta(scene)
    return {
        "path": clip_relpath(class_name, group, clip),
        "class": class_name,
        "group": group,
        "clip": clip,
        **scene_words(scene),
        "fps": spec.fps,
        "width": spec.width,
        "height": spec.height,
        "duration_s": spec.duration_s,
        "caption": make_caption(seed, class_name, group, clip, scene),
        "rendering": extra.pop("rendering"),
        "easing": motion_label(class_name, scene, spec),
        **extra,
    }


def build_moment(job: _MomentJob) -> dict[str, object]:
    """One alt moments file: its spans on one scene, at the file's own size and rate.

    Span boundaries are the planned 0.2 s steps rounded to whole frames.
    """
    scene = make_scene(job.seed, job.classes[0], job.group)
    rng = _rng(job.seed, 6, _KIND_KEYS[job.kind], job.index)
    width, height, fps = _pick_format(rng)
    layout = int(rng.integers(2**31))
    spans: list[dict[str, object]] = []
    tmp = job.path.with_name(job.path.name + ".tmp")
    cum_steps = 0
    try:
        with writer(tmp, scene, width, height, fps) as out:
            for class_name, steps in zip(job.classes, job.steps, strict=True):
                start = out.n_frames
                cum_steps += steps
                n_frames = round(cum_steps * fps / 5) - start
                spec = _random_spec(rng, width, height, fps, n_frames)
                for frame in iter_frames(class_name, scene, spec, layout=layout):
                    out.write(frame[None])
                spans.append(span_row(class_name, start, out.n_frames, fps))
            total = out.n_frames
        os.replace(tmp, job.path)
    finally:
        tmp.unlink(missing_ok=True)
    words = scene_words(scene)
    return moment_row(job, total, fps, (width, height), words, spans, _scene_meta(scene))
