"""Training data: texts written from clip attributes, augmentations that keep them true,
and validation groups carved from the training list."""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from clipsearch.data.collection import Clip, validation_split
from clipsearch.data.synth import COLORS
from training.augment import (
    AugmentConfig,
    augment_views,
    erase_object,
    nanmedian,
    object_weight,
    recolor,
    resize_factor,
    resize_object,
    scene_overlay,
    time_indices,
    zoomed_size,
)
from training.data import ClipTextDataset, FrameCache, make_collate
from training.module import multi_positive_nce
from training.texts import Text, clip_attributes, draw_text, hard_negative, write
from training.validation import validation_score

ROW = {"color": "red", "size": "small", "speed": "fast", "background": "noise"}


def _attrs() -> dict[str, str]:
    return clip_attributes("BallBouncing", ROW)


def test_attributes_of_a_clip() -> None:
    assert _attrs() == {
        "class": "BallBouncing",
        "object": "ball",
        "motion": "bouncing",
        "color": "red",
        "size": "small",
        "speed": "fast",
        "background": "noise",
    }
    assert clip_attributes("ApplyEyeMakeup", None) == {"class": "ApplyEyeMakeup"}


def test_a_text_describes_the_clips_that_have_what_it_names() -> None:
    rng = random.Random(0)
    red_ball = write("color_object", _attrs(), rng)
    assert red_ball.text in ("a red ball", "red ball", "a video of a red ball")
    green_ball = clip_attributes("BallRollingLeft", {**ROW, "color": "green"})
    red_box = clip_attributes("BoxSpinning", ROW)
    assert red_ball.describes(clip_attributes("BallRollingLeft", ROW))
    assert not red_ball.describes(green_ball) and not red_ball.describes(red_box)
    spinning = write("motion", red_box, rng)
    assert "spinning" in spinning.text and spinning.describes(red_box)
    caption = write("caption", _attrs(), rng)
    assert all(w in caption.text for w in ("small", "red", "ball bouncing", "fast", "noise"))


def test_class_phrases_only_without_attribute_texts() -> None:
    rng = random.Random(1)
    texts = {draw_text(_attrs(), rng, attribute_texts=False).requires for _ in range(50)}
    assert texts == {(("class", "BallBouncing"),)}
    ucf = {draw_text({"class": "ApplyEyeMakeup"}, rng).view for _ in range(50)}
    assert ucf == {"class"}


def test_hard_negative_changes_one_attribute_and_never_writes_a_heldout_combo() -> None:
    rng = random.Random(2)
    text = write("color_class", _attrs(), rng)
    for _ in range(50):
        neg = hard_negative(text, _attrs(), rng, forbidden=["BallBouncing:green"])
        assert neg is not None and not neg.describes(_attrs())
        assert dict(neg.requires)["class"] == "BallBouncing"
        assert dict(neg.requires)["color"] not in ("red", "green")
    assert hard_negative(Text("a video of ball bouncing", (("class", "X"),)), _attrs(), rng) is None


def _clip(color: str) -> np.ndarray:
    """16 frames of a grey background with a square of ``color`` moving right."""
    frames = np.full((16, 3, 48, 48), 120, np.uint8)
    for t in range(16):
        frames[t, :, 20:30, t * 2 : t * 2 + 10] = np.array(COLORS[color], np.uint8)[:, None, None]
    return frames


def test_recolour_moves_the_object_and_leaves_greys() -> None:
    out = recolor(_clip("green"), "green", "red")
    assert np.abs(out[0, :, 25, 5].astype(int) - COLORS["red"]).max() < 25
    assert np.abs(out[0, :, 5, 40].astype(int) - 120).max() <= 1


def test_resizing_scales_the_object_and_restores_the_scene_it_covered() -> None:
    clip = _clip("green")
    before = (object_weight(clip, "green") > 0.5).sum(axis=(1, 2))
    bigger = resize_object(clip, "green", [1.5])[0]
    after = (object_weight(bigger, "green") > 0.5).sum(axis=(1, 2))
    assert np.allclose(after / before, 1.5**2, rtol=0.25)
    smaller = resize_object(clip, "green", [0.6])[0]
    assert np.allclose(
        (object_weight(smaller, "green") > 0.5).sum(axis=(1, 2)) / before, 0.36, rtol=0.3
    )
    # where the square was and no longer is, the grey of the scene is back
    assert np.abs(smaller[0, :, 20, 0].astype(int) - 120).max() <= 2
    # it stays where it was: the centre of mass does not move
    ys, xs = np.nonzero(object_weight(bigger, "green")[5] > 0.5)
    assert abs(xs.mean() - 14.5) < 1 and abs(ys.mean() - 24.5) < 1
    # the factor takes one size word's range into another's
    assert zoomed_size("small", resize_factor("small", "large")) == "large"
    assert zoomed_size("large", resize_factor("large", "medium")) == "medium"


def test_nanmedian_is_numpys() -> None:
    rng = np.random.default_rng(0)
    for shape, axis in (((8, 3, 6, 5), 0), ((4, 3, 30), 2), ((7,), 0)):
        a = rng.normal(size=shape).astype(np.float32)
        a[rng.random(shape) < 0.4] = np.nan
        a[(0,) * (len(shape) - 1)] = np.nan  # a slice with no value at all (NaN out)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns about that slice
            expected = np.nanmedian(a, axis=axis)
        assert np.allclose(nanmedian(a, axis), expected, equal_nan=True, atol=1e-6)


def test_resized_clips_say_their_new_size() -> None:
    cfg = AugmentConfig(resize_prob=1.0)
    rng = np.random.default_rng(0)
    attrs = clip_attributes("BallBouncing", {**ROW, "color": "green"})
    sizes = {
        augment_views(_clip("green"), attrs, cfg, rng, n_out=8)[0].attrs["size"] for _ in range(20)
    }
    assert sizes == {"medium", "large"}
    # white is found by no colour, and dots or stripes have no one shape to scale
    for cls, colour in (("BallBouncing", "white"), ("DotsScattering", "green")):
        attrs = clip_attributes(cls, {**ROW, "color": colour})
        assert augment_views(_clip("green"), attrs, cfg, rng, n_out=8)[0].attrs["size"] == "small"


def test_time_warp_keeps_the_order() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        idx = time_indices(16, 8, 1.0, rng)
        assert len(idx) == 8 and (np.diff(idx) >= 0).all() and idx[0] >= 0 and idx[-1] < 16
    assert time_indices(16, 8, 0.0, rng).tolist() == [1, 3, 5, 7, 9, 11, 13, 15]


HELD = ["BallBouncing:red"]


def test_augmented_attributes_follow_the_pixels() -> None:
    cfg = AugmentConfig(
        time_warp=1.0, recolor_prob=1.0, scene_prob=1.0, distractor_prob=1.0, camera_prob=1.0,
        zoom=0.5, aspect=0.2, shift=0.1,
    )  # fmt: skip
    rng = np.random.default_rng(3)
    attrs = clip_attributes("BallBouncing", {**ROW, "color": "green"})
    sizes = set()
    for _ in range(40):
        view = augment_views(
            _clip("green"), attrs, cfg, rng, n_out=8, forbidden=["BallBouncing:red"]
        )[0]
        assert view.frames.shape == (8, 3, 48, 48) and view.frames.dtype == np.uint8
        assert view.attrs["color"] not in ("green", "red") and "background" not in view.attrs
        assert view.attrs["class"] == "BallBouncing" and view.theta.shape == (2, 3)
        sizes.add(view.attrs.get("size"))
    # a zoom changes the size word, or makes it unknown where the zoomed range straddles two
    assert (
        None in sizes and len(sizes - {None}) >= 2 and sizes <= {"small", "medium", "large", None}
    )


def test_size_words_follow_the_zoom() -> None:
    assert zoomed_size("small", 1.0) == "small" and zoomed_size("small", 1.05) == "small"
    assert zoomed_size("small", 1.2) is None  # 21.6-26.4 px: small or medium
    assert zoomed_size("small", 1.35) == "medium" and zoomed_size("small", 2.0) == "large"
    assert zoomed_size("large", 0.75) == "medium" and zoomed_size("huge", 1.0) is None


def test_a_size_between_two_words_is_unknown_not_false() -> None:
    medium_ball = write("size_object", {"object": "ball", "size": "medium"}, random.Random(0))
    between = {"object": "ball"}  # a ball zoomed to between two size words
    assert not medium_ball.describes(between)
    assert medium_ball.undecided(between, {"size"})
    assert not medium_ball.undecided({"object": "box"}, {"size"})  # the object already differs
    assert not medium_ball.undecided({"object": "ball", "size": "small"}, set())
    cfg = AugmentConfig(zoom=0.25, scene_prob=1.0)
    rng = np.random.default_rng(2)
    views = [augment_views(_clip("green"), _attrs(), cfg, rng, n_out=8)[0] for _ in range(40)]
    assert all("background" in v.unknown and "background" not in v.attrs for v in views)
    sizeless = [v for v in views if "size" not in v.attrs]
    assert sizeless and all("size" in v.unknown for v in sizeless)
    assert all("size" not in v.unknown for v in views if "size" in v.attrs)


def test_undecided_pairs_drop_out_of_the_loss() -> None:
    logits = torch.tensor([[5.0, 1.0, 4.0], [0.0, 3.0, 2.0]])
    positives = torch.tensor([[True, False, False], [False, True, False]])
    undecided = torch.tensor([[False, False, True], [False, False, False]])
    masked = multi_positive_nce(logits, positives, undecided)
    assert masked < multi_positive_nce(logits, positives)
    # the same as if the pair's logit were far below every other
    far = logits.clone()
    far[0, 2] = -1e4
    assert torch.isclose(masked, multi_positive_nce(far, positives))


def test_a_size_twin_differs_from_its_clip_in_size_only() -> None:
    cfg = AugmentConfig(size_twin_prob=1.0, recolor_prob=1.0, scene_prob=1.0, zoom=0.25)
    rng = np.random.default_rng(0)
    attrs = clip_attributes("BallBouncing", {**ROW, "color": "green"})
    pairs = [augment_views(_clip("green"), attrs, cfg, rng, n_out=8) for _ in range(40)]
    twins = [p for p in pairs if len(p) == 2]
    assert 5 < len(twins) < 40  # only where the zoom leaves both sizes nameable
    for clip, twin in twins:
        assert clip.attrs["size"] != twin.attrs["size"]
        assert {k: v for k, v in clip.attrs.items() if k != "size"} == {
            k: v for k, v in twin.attrs.items() if k != "size"
        }
        assert (clip.theta == twin.theta).all()
        # the same scene, colour and frames: they differ only around the object
        differ = np.abs(clip.frames.astype(int) - twin.frames).max(axis=1) > 2
        assert differ.any() and not differ[:, :12].any() and not differ[:, 38:].any()
        assert clip.attrs["color"] != "green"
    # never without the setting
    assert all(
        len(augment_views(_clip("green"), attrs, AugmentConfig(), rng, n_out=8)) == 1
        for _ in range(5)
    )


def _tokenize(texts: list[str], **_: object) -> dict[str, torch.Tensor]:
    ids = torch.tensor([[len(t), sum(map(ord, t))] for t in texts])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _six_green_balls(augment: AugmentConfig, **kwargs: Any) -> ClipTextDataset:
    frames = np.stack([_clip("green")] * 6)
    clips = [
        Clip(path=f"A/v_A_g01_c{i:02d}.avi", source=Path("/x"), label="BallBouncing")
        for i in range(6)
    ]
    attrs = [clip_attributes("BallBouncing", {**ROW, "color": "green"})] * 6
    return ClipTextDataset(
        FrameCache(clips, frames, []),
        ["BallBouncing"],
        attrs,
        frames_per_step=8,
        augment=augment,
        **kwargs,
    )


def test_a_twin_sits_beside_its_clip_in_the_batch_with_its_own_size_text() -> None:
    dataset = _six_green_balls(AugmentConfig(size_twin_prob=1.0, zoom=0.25), seed=1)
    samples = [dataset[i] for i in range(6)]
    batch = make_collate(_tokenize, 32)(samples)
    assert batch["frames"].shape[0] == 6  # twins take the place of the last samples
    with_twin = [s for s in samples if s["twin"] is not None]
    assert with_twin, "no twin drawn"
    first = with_twin[0]
    i = next(k for k, s in enumerate(samples) if s is first)
    kept = sum(1 + (s["twin"] is not None) for s in samples[:i])
    assert kept + 1 < 6  # the twin made it into the batch
    sizes = batch["attr_size"][kept : kept + 2].tolist()
    assert sizes[0] != sizes[1] and -1 not in sizes
    # each one's text names its own size, so it is the other one's negative
    assert batch["positives"][kept, kept] and batch["positives"][kept + 1, kept + 1]
    assert not batch["positives"][kept, kept + 1] and not batch["positives"][kept + 1, kept]
    assert "size" in dict(first["text"].requires) and first["text"].view == "size_object"


def test_erasing_leaves_the_scene_alone() -> None:
    clip = _clip("green")
    clip[:, :, 40:44, 40:44] = 60  # a static grey mark stays
    empty = erase_object(clip, "green")
    assert object_weight(empty, "green").max() < 0.05
    # the grey of the scene is back where the square was, and the rest is untouched
    assert np.abs(empty[:, :, 20:30].astype(int) - 120).max() <= 2
    assert (empty[:, :, 40:44, 40:44] == 60).all()


def test_an_empty_view_is_its_clip_without_the_object_and_has_no_attributes() -> None:
    cfg = AugmentConfig(empty_prob=1.0, recolor_prob=1.0, scene_prob=1.0, distractor_prob=1.0)
    rng = np.random.default_rng(0)
    attrs = clip_attributes("BallBouncing", {**ROW, "color": "green"})
    for _ in range(10):
        view, empty = augment_views(_clip("green"), attrs, cfg, rng, n_out=8)
        assert empty.empty and not view.empty
        assert empty.attrs == {} and not empty.unknown
        assert (view.theta == empty.theta).all()
        # the same scene and camera: they differ only where the object was
        differ = np.abs(view.frames.astype(int) - empty.frames).max(axis=1) > 2
        assert differ[:, 20:30].any() and not differ[:, :18].any() and not differ[:, 32:].any()
        assert not any(text.describes(empty.attrs) for text in _texts(view.attrs))
    # none where the object cannot be found by its colour, or fills the frame
    for other in ({**attrs, "color": "white"}, clip_attributes("StripesScrolling", ROW)):
        assert len(augment_views(_clip("green"), other, cfg, rng, n_out=8)) == 1
    # the setting off draws nothing more: the same views as before it existed
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    plain = augment_views(_clip("green"), attrs, AugmentConfig(recolor_prob=0.5), a, n_out=8)
    off = augment_views(
        _clip("green"), attrs, AugmentConfig(recolor_prob=0.5, empty_prob=0.0), b, n_out=8
    )
    assert len(off) == 1 and (plain[0].frames == off[0].frames).all()
    assert a.random() == b.random()


def test_a_texture_goes_behind_the_object() -> None:
    clip = _clip("green")
    behind = object_weight(clip, "green")
    rng = np.random.default_rng(0)
    for _ in range(12):
        out = scene_overlay(clip, rng, texture_prob=1.0, behind=behind)
        # the scene takes a strong pattern; the object's own pixels stay as they were
        assert np.abs(out[:, :, 35:].astype(int) - 120).max() >= 15
        solid = np.broadcast_to((behind > 0.99)[:, None], clip.shape)
        assert solid.any() and (out[solid] == clip[solid]).all()
    # without the setting, the overlay is the smooth one, and draws no more numbers
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    plain = scene_overlay(clip, a)
    assert (scene_overlay(clip, b, texture_prob=0.0, behind=behind) == plain).all()
    assert a.random() == b.random()


def _texts(attrs: dict[str, str]) -> list[Text]:
    rng = random.Random(0)
    return [draw_text(attrs, rng, True) for _ in range(50)]


def test_empty_views_are_extra_rows_that_no_text_describes() -> None:
    dataset = _six_green_balls(AugmentConfig(empty_prob=0.5), hard_negative_prob=1.0, seed=3)
    samples = [dataset[i] for i in range(6)]
    n_empty = sum(s["empty"] is not None for s in samples)
    assert 0 < n_empty < 6, "no empty view drawn"
    batch = make_collate(_tokenize, 32)(samples)
    assert batch["frames"].shape[0] == 6 + n_empty and batch["theta"].shape[0] == 6 + n_empty
    n_texts = 6 + sum(s["negative"] is not None for s in samples)  # then the hard negatives
    assert batch["positives"].shape == (6 + n_empty, n_texts)
    assert not batch["positives"][6:].any() and not batch["undecided"][6:].any()
    assert batch["positives"][:6].any(dim=1).all()
    assert (batch["labels"][6:] == -1).all() and (batch["attr_color"][6:] == -1).all()
    first = next(s["empty"] for s in samples if s["empty"] is not None)
    assert torch.equal(batch["frames"][6], first["frames"])


def test_a_clip_no_text_describes_is_a_negative_for_every_text() -> None:
    logits = torch.tensor([[5.0, 1.0], [0.0, 3.0]])
    positives = torch.tensor([[True, False], [False, True]])
    base = multi_positive_nce(logits, positives)
    with_low = torch.cat([logits, torch.tensor([[-2.0, -2.0]])])
    with_high = torch.cat([logits, torch.tensor([[6.0, 6.0]])])
    none = torch.zeros(1, 2, dtype=torch.bool)
    low = multi_positive_nce(with_low, torch.cat([positives, none]))
    high = multi_positive_nce(with_high, torch.cat([positives, none]))
    assert torch.isfinite(high) and base < low < high


def _clips(groups: list[int]) -> list[Clip]:
    return [
        Clip(path=f"A/v_A_g{g:02d}_c01.avi", source=Path("/x"), label="A", group=g) for g in groups
    ]


def test_validation_is_whole_groups_of_the_training_list() -> None:
    train, val = validation_split(_clips([8, 9, 10, 11, 12, 8, 12]), 2)
    assert {c.group for c in val} == {11, 12} and len(val) == 3
    assert {c.group for c in train} == {8, 9, 10}
    train, val = validation_split(_clips([8, 8]), 3)  # one group: it trains
    assert val == [] and len(train) == 2
    assert validation_split(_clips([8, 9]), 0) == (_clips([8, 9]), [])


def test_validation_score_is_the_mean_of_what_the_data_allow() -> None:
    assert validation_score({"mAP": 0.8, "pairs_mAP": 0.6, "freeform_mAP": None}) == pytest.approx(
        0.7
    )
    assert validation_score({"mAP": 0.5}) == 0.5


def test_decoded_frames_are_laid_out_as_the_cache_reads_them_back(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    # the same bytes in another memory layout trained another model: a fresh clone (no
    # cache) and every later run (a cache hit) must hand training the same array
    from clipsearch.data.collection import load_collection
    from clipsearch.model import load_model
    from training.data import load_frames

    clips = load_collection(tiny_synth).clips[:4]
    preprocess = load_model(tiny_model_dir, towers="vision").preprocess
    decoded = load_frames(clips, 4, preprocess, cache_dir=tmp_path, workers=1)
    cached = load_frames(clips, 4, preprocess, cache_dir=tmp_path, workers=1)
    assert isinstance(cached.frames, np.memmap)  # the second read is the cache's
    assert decoded.frames.flags.c_contiguous
    assert decoded.frames.strides == cached.frames.strides
    assert np.array_equal(decoded.frames, cached.frames)
    assert [c.path for c in decoded.clips] == [c.path for c in cached.clips]
