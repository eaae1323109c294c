"""Clip augmentations for training: what changes between cameras, scenes and renderers.

Each works on one clip's cached frames, uint8 ``(T, 3, h, w)``, draws from the
caller's RNG, and says which clip attributes it made unknown or changed, so the
texts written afterwards stay true (:mod:`training.texts`):

- time: which of the cached frames are seen, on a warped clock (speed and easing);
- colour: the object recoloured to another named colour (the colour attribute
  changes with it), or all colour dropped;
- size: the object, found by its colour, drawn at another named size over the
  scene it covered (the size attribute changes with it); and a *twin*, the same view
  but for the object's size, to sit beside it in the batch;
- scene: a static overlay (smooth noise, gradient, checkerboard; or a fine texture of
  tiles, bricks, gratings or grain behind the object) and static distractor shapes
  that do not move, so what moves decides the class;
- camera: brightness and contrast, sensor noise, blur, and zoom/shift/aspect (the
  zoom is applied in the model, on the batch, but drawn here so sizes stay honest);
- empty: beside the view, the same view with the object erased (the scene alone, under
  the same scene, camera and zoom), which no text describes: the texts must rank it
  below clips that show what they say (opt-in; README, "Empty scenes").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from clipsearch.data.synth import _SIZE_RANGE as SIZE_RANGES  # radius per size word, at 240 px
from clipsearch.data.synth import COLORS

# objects whose size word is not one shape's extent (many dots; stripes fill the frame)
_UNSCALED = frozenset({"dots", "stripes"})
# the cut between neighbouring size words (halfway between their radius ranges)
_SIZE_CUTS = ((23.5, "small"), (31.5, "medium"), (float("inf"), "large"))


def zoomed_size(size: str, factor: float) -> str | None:
    """The size word of an object of size ``size`` after a zoom by ``factor``, or None
    when the zoomed range straddles two words."""
    if size not in SIZE_RANGES:
        return None
    lo, hi = (v * factor for v in SIZE_RANGES[size])
    words = {next(w for cut, w in _SIZE_CUTS if v < cut) for v in (lo, hi)}
    return words.pop() if len(words) == 1 else None


@dataclass(frozen=True)
class AugmentConfig:
    time_warp: float = 0.0  # 0: the cached frames evenly; up to 1: strong speed/easing changes
    recolor_prob: float = 0.0  # the object takes another named colour
    gray_prob: float = 0.0  # colour dropped (colour attribute unknown)
    scene_prob: float = 0.0  # a static overlay on the background
    distractor_prob: float = 0.0  # one or two static shapes
    camera_prob: float = 0.0  # brightness/contrast, noise, blur
    resize_prob: float = 0.0  # the object takes another named size
    size_twin_prob: float = 0.0  # and a second view, the same but for the object's size
    zoom: float = 0.0  # zoom in up to this fraction, out up to half of it
    aspect: float = 0.0  # stretch one axis by up to this fraction
    shift: float = 0.0  # move by up to this fraction of the frame
    empty_prob: float = 0.0  # also the view with the object erased
    texture_prob: float = 0.0  # a scene overlay is a fine texture behind the object


def time_indices(n_cached: int, n_out: int, warp: float, rng: np.random.Generator) -> np.ndarray:
    """``n_out`` increasing frame indices into ``n_cached`` frames on a warped clock.

    The span seen (a sub-interval when the warp is strong) and an easing curve
    (``u ** gamma``, or an ease-in-out) change the speed and its profile; the order
    never reverses, so direction stays what the label says.
    """
    u = (np.arange(n_out) + 0.5) / n_out
    if warp > 0:
        kind = rng.integers(3)
        gamma = math.exp(rng.uniform(-1, 1) * 0.7 * warp)
        if kind == 0:
            u = u**gamma
        elif kind == 1:
            u = 1 - (1 - u) ** gamma
        else:
            s = 0.5 - 0.5 * np.cos(np.pi * u)
            u = (1 - warp * 0.6) * u + warp * 0.6 * s
        span = 1 - rng.uniform(0, 0.35 * warp)
        start = rng.uniform(0, 1 - span)
        u = start + span * u
    idx = np.clip(np.floor(u * n_cached).astype(int), 0, n_cached - 1)
    return np.maximum.accumulate(idx)


def recolor(frames: np.ndarray, source: str, target: str) -> np.ndarray:
    """Move pixels of the named ``source`` colour to ``target``, leaving greys alone.

    A pixel's share of the source colour is its projection on the source's chroma
    direction; that share moves towards the target colour. Low-chroma backgrounds
    barely move; the object, its anti-aliased edge and its noise move with it.
    """
    s = np.asarray(COLORS[source], np.float32)
    t = np.asarray(COLORS[target], np.float32)
    share = _share(frames, source)
    weight = np.clip(share, 0, 1.2) / (1 + np.exp(-(share - 0.4) * 12))
    out = frames.astype(np.float32) + (t - s)[None, :, None, None] * weight[:, None]
    return np.clip(out, 0, 255).round().astype(np.uint8)


def _share(frames: np.ndarray, color: str) -> np.ndarray:
    """Each pixel's projection on the named colour's chroma direction, ``(T, h, w)``: 1 for
    that colour, about 0 for greys."""
    c = np.asarray(COLORS[color], np.float32)
    c = c - c.mean()
    x = frames.astype(np.float32)
    return np.einsum("tchw,c->thw", x - x.mean(1, keepdims=True), c) / float(c @ c)


def object_weight(frames: np.ndarray, color: str) -> np.ndarray:
    """How much each pixel belongs to the object of the named colour, in [0, 1],
    ``(T, h, w)``: the object, its anti-aliased edge and its noise; greys stay at 0."""
    return np.clip((_share(frames, color) - 0.15) / 0.5, 0, 1)


def _erase(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Float frames ``x`` (t, 3, h, w) without the object of weight ``m`` (t, h, w): what it
    covered is filled from the same pixels in the frames where it is elsewhere (the
    scene is static), or from the frame's median where it never moves away."""
    t, _, h, w = x.shape
    uncovered = np.where((m < 0.01)[:, None], x, np.nan)
    bg = nanmedian(uncovered, axis=0)[None]  # (1, 3, h, w)
    never = np.isnan(bg)
    if never.any():
        frame_bg = nanmedian(uncovered.reshape(t, 3, -1), axis=2)  # (t, 3)
        bg = np.where(never, np.nan_to_num(frame_bg)[:, :, None, None], bg)
    pad = np.pad(m, ((0, 0), (1, 1), (1, 1)))
    cover = np.max([pad[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], 0)
    return x * (1 - cover[:, None]) + bg * cover[:, None]  # the edge's halo goes too


@dataclass(frozen=True)
class FoundObject:
    """The object of a named colour in a clip, found once: the clip as floats, the
    object's weight (:func:`object_weight`) and the clip with the object erased
    (:func:`_erase`), for an erased view and any resized ones alike."""

    frames: np.ndarray  # float32 (t, 3, h, w)
    weight: np.ndarray  # (t, h, w)
    base: np.ndarray  # float32 (t, 3, h, w), the object erased

    @classmethod
    def find(cls, frames: np.ndarray, color: str) -> FoundObject:
        x = frames.astype(np.float32)
        m = object_weight(frames, color)
        return cls(x, m, _erase(x, m))

    def erased(self) -> np.ndarray:
        """The frames without the object: the scene alone, uint8."""
        return np.clip(self.base, 0, 255).round().astype(np.uint8)

    def resized(self, factors: Sequence[float]) -> list[np.ndarray]:
        """The object scaled about its centre in each frame, once for each of
        ``factors``, drawn over the erased frames; uint8."""
        x, m, base = self.frames, self.weight, self.base
        _, _, h, w = x.shape
        mass = m.sum(axis=(1, 2))
        present = mass >= 1.0  # elsewhere (blinked off, out of view) there is nothing to move
        safe = np.where(present, mass, 1.0)
        cy = (m.sum(axis=2) * np.arange(h)).sum(axis=1) / safe
        cx = (m.sum(axis=1) * np.arange(w)).sum(axis=1) / safe
        layer = np.concatenate([x * m[:, None], m[:, None]], axis=1)  # (t, 4, h, w)
        outs = []
        for f in factors:
            # scaled by f about the centre: bilinear, zero outside, one axis at a time
            wy = _stretch(cy, f, h) * present[:, None, None]
            wx = _stretch(cx, f, w)
            moved = wy[:, None] @ layer @ wx[:, None].transpose(0, 1, 3, 2)
            alpha = np.clip(moved[:, 3:], 0, 1)
            out = base * (1 - alpha) + moved[:, :3]
            outs.append(np.clip(out, 0, 255).round().astype(np.uint8))
        return outs


def erase_object(frames: np.ndarray, color: str) -> np.ndarray:
    """The frames without the object of the named colour: the scene alone."""
    return FoundObject.find(frames, color).erased()


def resize_object(frames: np.ndarray, color: str, factors: Sequence[float]) -> list[np.ndarray]:
    """The object of the named colour scaled about its centre in each frame, once for
    each of ``factors`` (the object is found once, and erased as :func:`erase_object`
    does before it is drawn at its new size)."""
    return FoundObject.find(frames, color).resized(factors)


def _stretch(centre: np.ndarray, factor: float, n: int) -> np.ndarray:
    """(t, n, n) bilinear weights that take pixel row/column ``j`` of the output from
    ``centre + (j - centre) / factor`` of the input (zero beyond the edge)."""
    src = centre[:, None] + (np.arange(n, dtype=np.float32) - centre[:, None]) / factor
    return np.maximum(0.0, 1.0 - np.abs(src[:, :, None] - np.arange(n, dtype=np.float32)))


def nanmedian(a: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmedian`` along one axis by a single sort (NaN sorts last); NaN where a
    slice is all NaN, without a warning."""
    ordered = np.sort(a, axis=axis)
    count = (~np.isnan(a)).sum(axis=axis, keepdims=True)
    lo = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis)
    hi = np.take_along_axis(ordered, count // 2, axis)
    return np.squeeze((lo + hi) / 2, axis=axis)


def resize_factor(size: str, target: str) -> float:
    """The scale that takes an object of one size word to the middle of another's range."""
    (a, b), (c, d) = SIZE_RANGES[size], SIZE_RANGES[target]
    return (c + d) / (a + b)


def grayscale(frames: np.ndarray) -> np.ndarray:
    luma = np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), frames, axes=([0], [1]))
    return np.repeat(luma[:, None].round().astype(np.uint8), 3, axis=1)


def _field(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A static pattern in [-1, 1]: smooth noise, a linear gradient or a checkerboard."""
    kind = rng.integers(3)
    if kind == 0:
        g = rng.integers(2, 7)
        grid = rng.uniform(-1, 1, size=(g, g)).astype(np.float32)
        return np.asarray(Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC))
    if kind == 1:
        a = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = (xx - w / 2) * np.cos(a) + (yy - h / 2) * np.sin(a)
        return ramp / (np.abs(ramp).max() + 1e-6)
    cell = int(rng.integers(3, 12))
    yy, xx = np.mgrid[0:h, 0:w]
    return (((yy // cell) + (xx // cell)) % 2 * 2 - 1).astype(np.float32)


def _texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A static fine texture in [-1, 1], a few pixels to a cell at the model's input:
    tiles or bricks with dark joints, a grating at any angle, or grain."""
    kind = rng.integers(3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:
        ch = rng.uniform(3, 8)
        cw = ch * rng.uniform(1, 3)
        row = np.floor(yy / ch)
        shift = (row % 2) * cw * (0.5 if rng.random() < 0.6 else 0.0)
        col = np.floor((xx + shift) / cw)
        tone = rng.uniform(-0.2, 1.0, size=(int(h / ch) + 2, int(w / cw) + 3))
        out = tone[row.astype(int), col.astype(int) + 1]
        joint = ((yy % ch) < 1) | (((xx + shift) % cw) < 1)
        return np.where(joint, -1.0, out).astype(np.float32)
    if kind == 1:
        a = rng.uniform(0, np.pi)
        wave = np.sin(
            2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / rng.uniform(2.5, 10)
            + rng.uniform(0, 2 * np.pi)
        )
        return (np.sign(wave) if rng.random() < 0.5 else wave).astype(np.float32)
    g = int(rng.integers(1, 3))
    grain = rng.uniform(-1, 1, size=(h // g + 1, w // g + 1)).astype(np.float32)
    return np.repeat(np.repeat(grain, g, 0), g, 1)[:h, :w]


def scene_overlay(
    frames: np.ndarray,
    rng: np.random.Generator,
    *,
    texture_prob: float = 0.0,
    behind: np.ndarray | None = None,
) -> np.ndarray:
    """Add a static pattern, greyish with a slight tint, to every frame; with
    ``texture_prob`` a stronger fine texture (:func:`_texture`) instead, drawn only where
    ``behind`` (T, h, w), the object's weight, leaves the scene showing."""
    _, _, h, w = frames.shape
    if texture_prob > 0 and rng.random() < texture_prob:
        amp = rng.uniform(15, 60)
        field = _texture(h, w, rng)
    else:
        amp = rng.uniform(8, 40)
        field = _field(h, w, rng)
        behind = None
    tint = 1 + rng.uniform(-0.15, 0.15, size=3).astype(np.float32)
    pattern = field[None, None] * amp * tint[None, :, None, None]
    if behind is not None:
        pattern = pattern * (1 - behind[:, None])
    return np.clip(frames.astype(np.float32) + pattern, 0, 255).round().astype(np.uint8)


def _neutral_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    if rng.random() < 0.2:  # now and then a saturated one
        return tuple(int(v) for v in rng.integers(0, 256, size=3))  # type: ignore[return-value]
    grey = rng.uniform(30, 225)
    return tuple(int(v) for v in np.clip(grey + rng.uniform(-25, 25, size=3), 0, 255))  # type: ignore[return-value]


def distractors(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paint one or two static shapes (bars, blobs, polygons) on every frame."""
    _, _, h, w = frames.shape
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 3))):
        colour = (*_neutral_colour(rng), 255)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.04, 0.18) * w, rng.uniform(0.04, 0.25) * h
        kind = rng.integers(3)
        if kind == 0:
            draw.rectangle((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)
        elif kind == 1:
            draw.ellipse((cx - rx, cy - ry * 0.5, cx + rx, cy + ry * 0.5), fill=colour)
        else:
            n = int(rng.integers(5, 8))
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            radii = rng.uniform(0.5, 1.0, n)
            pts = [
                (cx + rx * r * math.cos(a), cy + ry * r * math.sin(a))
                for a, r in zip(angles, radii, strict=True)
            ]
            draw.polygon(pts, fill=colour)
    layer = np.asarray(img, np.float32).transpose(2, 0, 1)  # (4, h, w)
    alpha = layer[3:] / 255.0
    out = frames.astype(np.float32) * (1 - alpha)[None] + layer[None, :3] * alpha[None]
    return out.round().astype(np.uint8)


def camera(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness/contrast change, sensor noise and, now and then, a slight blur."""
    x = frames.astype(np.float32)
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.75, 1.2) + mean + rng.uniform(-20, 20)
    sigma = rng.uniform(0, 8)
    if sigma > 0.5:
        x = x + sigma * rng.standard_normal(size=x.shape, dtype=np.float32)
    if rng.random() < 0.3:
        pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
        h, w = x.shape[2:]
        rows = pad[:, :, :h] + pad[:, :, 1 : h + 1] + pad[:, :, 2 : h + 2]  # a 3x3 box blur
        x = (rows[..., :w] + rows[..., 1 : w + 1] + rows[..., 2 : w + 2]) / 9
    return np.clip(x, 0, 255).round().astype(np.uint8)


def affine_params(cfg: AugmentConfig, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(a 2x3 ``affine_grid`` matrix, the factor it scales objects by) for one clip."""
    if cfg.zoom <= 0 and cfg.aspect <= 0 and cfg.shift <= 0:
        return np.array([[1, 0, 0], [0, 1, 0]], np.float32), 1.0
    scale = 1 - rng.uniform(-0.5 * cfg.zoom, cfg.zoom)  # sampled area: <1 zooms in
    stretch = math.exp(rng.uniform(-1, 1) * cfg.aspect)
    sx, sy = scale * math.sqrt(stretch), scale / math.sqrt(stretch)
    tx, ty = rng.uniform(-1, 1, size=2) * cfg.shift
    theta = np.array([[sx, 0, tx], [0, sy, ty]], np.float32)
    return theta, 1 / sy  # sizes are relative to the frame height


@dataclass(frozen=True)
class Augmented:
    frames: np.ndarray  # uint8 (n_out, 3, h, w)
    attrs: dict[str, str]
    theta: np.ndarray  # (2, 3) for the model's zoom/shift
    # attributes the clip still has but the view no longer shows one word for (a size
    # between two words after the zoom, a speed or background changed by augmentation):
    # texts naming them are neither true nor false of it
    unknown: frozenset[str] = frozenset()
    empty: bool = False  # the object erased: a scene no text describes


def augment_views(
    frames: np.ndarray,
    attrs: Mapping[str, str],
    cfg: AugmentConfig,
    rng: np.random.Generator,
    *,
    n_out: int,
    forbidden: Sequence[str] = (),
) -> list[Augmented]:
    """One training view of a clip's cached frames and the attributes it still shows,
    and with ``cfg.size_twin_prob`` a second one that differs only in the object's named
    size (same frames, colour, scene, camera and zoom); with ``cfg.empty_prob`` last an
    ``empty`` one, the view with the object erased.

    ``forbidden`` lists "Class:colour" combinations never to create by recolouring.
    """
    out = dict(attrs)
    unknown: set[str] = set()
    idx = time_indices(len(frames), n_out, cfg.time_warp, rng)
    source = np.asarray(frames[idx])
    clip = source
    if cfg.time_warp > 0 and len(set(idx.tolist())) < n_out * 0.75 and "speed" in out:
        out.pop("speed")
        unknown.add("speed")
    color = out.get("color")
    size = out.get("size")
    scale, twin_scale = 1.0, 0.0  # the object's scale in the view and in its twin (0: none)
    found: FoundObject | None = None  # the object, once a resize or the empty view needs it
    # with twins the zoom is drawn first: it decides which sizes can still be named
    early = affine_params(cfg, rng) if cfg.size_twin_prob > 0 else None
    if (
        size in SIZE_RANGES
        and color in COLORS
        and color != "white"
        and out.get("object") not in _UNSCALED
    ):
        assert size is not None and color is not None
        if rng.random() < cfg.resize_prob:
            target = [w for w in SIZE_RANGES if w != size][int(rng.integers(len(SIZE_RANGES) - 1))]
            scale = resize_factor(size, target)
        if early is not None and rng.random() < cfg.size_twin_prob:
            twin_scale = _twin_scale(size, scale, early[1], rng)
        scales = [f for f in (scale, twin_scale) if f]
        if scales != [1.0]:
            found = FoundObject.find(source, color)
            moved = found.resized([f for f in scales if f != 1.0])
            clip = np.concatenate([source if f == 1.0 else moved.pop(0) for f in scales])
    empty = (
        cfg.empty_prob > 0
        and color in COLORS
        and color != "white"
        and out.get("object") != "stripes"  # they are the whole frame
        and rng.random() < cfg.empty_prob
    )
    if empty:
        assert color is not None
        if found is None:
            found = FoundObject.find(source, color)
        clip = np.concatenate([clip, found.erased()])  # the empty view goes last
    if color is not None and rng.random() < cfg.gray_prob:
        clip = grayscale(clip)
        out.pop("color")
    elif color in COLORS and color != "white" and rng.random() < cfg.recolor_prob:
        choices = [c for c in COLORS if c != color and f"{out.get('class')}:{c}" not in forbidden]
        if choices:
            target = choices[int(rng.integers(len(choices)))]
            clip = recolor(clip, color, target)
            out["color"] = target
    if rng.random() < cfg.scene_prob:
        shown = out.get("color")  # after any recolouring
        behind = (
            object_weight(clip, shown)
            if cfg.texture_prob > 0 and shown in COLORS and shown != "white"
            else None
        )
        clip = scene_overlay(clip, rng, texture_prob=cfg.texture_prob, behind=behind)
        if "background" in out:
            out.pop("background")
            unknown.add("background")
    if rng.random() < cfg.distractor_prob:
        clip = distractors(clip, rng)
    if rng.random() < cfg.camera_prob:
        clip = camera(clip, rng)
    theta, zoom = early or affine_params(cfg, rng)
    views = []
    for i, factor in enumerate((scale, twin_scale) if twin_scale else (scale,)):
        view_attrs, view_unknown = dict(out), set(unknown)
        if "size" in view_attrs:
            zoomed = zoomed_size(view_attrs.pop("size"), zoom * factor)
            if zoomed is not None:
                view_attrs["size"] = zoomed
            else:
                view_unknown.add("size")
        frames_i = clip[i * len(idx) : (i + 1) * len(idx)]  # the twin's frames follow
        views.append(
            Augmented(np.ascontiguousarray(frames_i), view_attrs, theta, frozenset(view_unknown))
        )
    if empty:
        views.append(Augmented(np.ascontiguousarray(clip[-len(idx) :]), {}, theta, empty=True))
    return views


def _twin_scale(size: str, scale: float, zoom: float, rng: np.random.Generator) -> float:
    """The scale of an object of size ``size`` in a twin of a view that shows it at
    ``scale``: one that, after the zoom, takes another size word (0: none does)."""
    named = zoomed_size(size, scale * zoom)
    options = [
        f
        for f in (resize_factor(size, w) for w in SIZE_RANGES)
        if zoomed_size(size, f * zoom) not in (None, named)
    ]
    if named is None or not options:
        return 0.0
    return options[int(rng.integers(len(options)))]
