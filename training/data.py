"""Training data: clips decoded once into a uint8 frame cache, paired with texts.

Each clip's frames are decoded, resized and centre-cropped to the model's input
size once, and kept as uint8 (N, T, 3, h, w) in memory and in an ``.npy`` file
keyed by the clip list and geometry, so epochs (and reruns) never decode again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from clipsearch.data.collection import Clip
from clipsearch.data.synth import COLORS, SIZES
from clipsearch.errors import DatasetError
from clipsearch.model import ClipEncoder, ImagePreprocess, clip_frame_features, pool_clips
from clipsearch.pipeline.decode import decode_many
from training.augment import AugmentConfig, Augmented, augment_views
from training.texts import Attributes, Text, class_prompt_texts, draw_text, hard_negative, write

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameCache:
    clips: list[Clip]  # the clips that decoded
    frames: np.ndarray  # (N, T, 3, h, w) uint8
    failed: list[str]  # relative paths that did not decode


def _cache_key(clips: Sequence[Clip], num_frames: int, pre: ImagePreprocess) -> str:
    h = hashlib.sha256()
    # "uint8": frames resized as bytes (clipsearch.model.ImagePreprocess.resize_crop)
    h.update(
        json.dumps([num_frames, pre.shortest_edge, list(pre.crop), pre.squash, "uint8"]).encode()
    )
    for c in clips:
        st = c.source.stat()
        h.update(f"{c.path}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def load_frames(
    clips: Sequence[Clip],
    num_frames: int,
    preprocess: ImagePreprocess,
    *,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> FrameCache:
    """Decode (or load from cache) ``num_frames`` frames of every clip at model resolution."""
    if not clips:
        raise DatasetError("no clips to load")
    key = _cache_key(clips, num_frames, preprocess)
    if cache_dir is not None:
        npy, meta = cache_dir / f"frames-{key}.npy", cache_dir / f"frames-{key}.json"
        if npy.exists() and meta.exists():
            try:
                info = json.loads(meta.read_text())
                by_path = {c.path: c for c in clips}
                cached = FrameCache(
                    [by_path[p] for p in info["ok"]], np.load(npy, mmap_mode="r"), info["failed"]
                )
                log.info("frame cache hit: %s", npy)
                return cached
            except (OSError, ValueError, KeyError) as exc:
                log.warning("ignoring unreadable frame cache %s: %s", npy, exc)
    kept: list[Clip] = []
    failed: list[str] = []
    rows: list[np.ndarray] = []
    for item in decode_many([c.source for c in clips], num_frames, workers=workers):
        if progress:
            progress(1)
        if item.frames is None:
            failed.append(clips[item.index].path)
            continue
        pixels = preprocess.resize_crop(item.frames.frames)
        # C order, as a cache hit reads them back: resize_crop's channels-last layout would
        # carry into np.stack, and the same bytes in another layout train another model
        rows.append(np.ascontiguousarray(pixels.mul_(255).round_().to(torch.uint8).numpy()))
        kept.append(clips[item.index])
    if not rows:
        raise DatasetError(f"none of the {len(clips)} clips could be decoded")
    frames = np.stack(rows)
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = npy.with_suffix(".tmp.npy")
        np.save(tmp, frames)
        tmp.replace(npy)
        tmp_meta = meta.with_suffix(".tmp.json")
        tmp_meta.write_text(json.dumps({"ok": [c.path for c in kept], "failed": failed}))
        tmp_meta.replace(meta)
    return FrameCache(kept, frames, failed)


def captions_from_meta(meta: dict[str, dict[str, Any]] | None) -> dict[str, str]:
    """Captions by relative path from ``clipsearch.data.synthucf.read_meta`` rows (empty: none)."""
    if not meta:
        return {}
    return {path: row["caption"] for path, row in meta.items() if row.get("caption")}


class ClipTextDataset(Dataset[dict[str, Any]]):
    """One augmented view of a clip's cached frames with one text that is true of it.

    The text comes from the clip's attributes after augmentation
    (:func:`training.texts.draw_text`); with ``hard_negative_prob`` a sample also
    carries its text with one attribute changed, which the collate adds as an extra
    text column. With the augmentation's ``size_twin_prob`` a sample may carry a
    ``twin``: the same view with the object at another named size; then both texts
    name the object and its size. With its ``empty_prob`` a sample may carry ``empty``:
    the view with the object erased, which has no text and no class.
    """

    def __init__(
        self,
        cache: FrameCache,
        classes: Sequence[str],
        attrs: Sequence[Attributes],
        *,
        frames_per_step: int,
        augment: AugmentConfig,
        attribute_texts: bool = True,
        hard_negative_prob: float = 0.0,
        forbidden: Sequence[str] = (),
        seed: int = 0,
    ):
        if len(attrs) != len(cache.clips):
            raise ValueError("one attribute dict per cached clip")
        self.cache = cache
        self.class_index = {c: i for i, c in enumerate(classes)}
        self.attrs = list(attrs)
        self.frames_per_step = frames_per_step
        self.augment = augment
        self.attribute_texts = attribute_texts
        self.hard_negative_prob = hard_negative_prob
        self.forbidden = list(forbidden)
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.cache.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        views = augment_views(
            self.cache.frames[index],
            self.attrs[index],
            self.augment,
            self.np_rng,
            n_out=min(self.frames_per_step, len(self.cache.frames[index])),
            forbidden=self.forbidden,
        )
        empty = next((v for v in views if v.empty), None)
        views = [v for v in views if not v.empty]
        view = views[0]
        label = self.class_index.get(self.cache.clips[index].label or "", -1)
        twin = None
        if len(views) > 1:
            # both texts name the size, so each is the other clip's hard negative
            text = write("size_object", view.attrs, self.rng)
            twin = _sample(views[1], write("size_object", views[1].attrs, self.rng), label)
        else:
            text = draw_text(view.attrs, self.rng, self.attribute_texts)
        negative = None
        if self.attribute_texts and self.rng.random() < self.hard_negative_prob:
            negative = hard_negative(text, view.attrs, self.rng, self.forbidden)
        sample = _sample(view, text, label, negative, twin)
        sample["empty"] = None if empty is None else _sample(empty, None, -1)
        return sample


def _sample(
    view: Augmented,
    text: Text | None,
    label: int,
    negative: Text | None = None,
    twin: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "frames": torch.from_numpy(view.frames),
        "theta": torch.from_numpy(view.theta),
        "text": text,
        "negative": negative,
        "attrs": view.attrs,
        "unknown": view.unknown,
        "label": label,
        "twin": twin,
    }


def class_prompts(tokenizer: Any, classes: Sequence[str], max_length: int) -> dict[str, Any]:
    """Every template for every class, tokenised, class-major (for the class-prompt loss)."""
    tok = tokenizer(
        class_prompt_texts(classes),
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return {
        "input_ids": tok["input_ids"],
        "attention_mask": tok["attention_mask"],
        "n_classes": len(classes),
    }


ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {"color": tuple(COLORS), "size": SIZES}
"""Attributes with a training-only classifier on clip vectors, and their values."""


def make_collate(
    tokenizer: Any, max_length: int
) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """Batch samples: stacked frames (a sample's twin right after it, in the place of the
    last samples, so a batch keeps its size; then the empty views of the batch's samples,
    extra rows that no text describes), the batch's texts then its hard negatives,
    tokenised, ``positives`` (clips x texts): which texts describe which clips,
    ``undecided`` (clips x texts): which are neither true nor false of a clip, and
    ``attr_<name>``: each clip's value index of the attributes in
    :data:`ATTRIBUTE_VALUES` (-1: unknown)."""

    def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch: list[dict[str, Any]] = []
        for b in samples:
            batch += [b] if b["twin"] is None else [b, b["twin"]]
        batch = batch[: len(samples)]
        texts: list[Text] = [b["text"] for b in batch]
        texts += [b["negative"] for b in batch if b["negative"] is not None]
        batch += [b["empty"] for b in batch if b.get("empty") is not None]  # rows, no texts
        tok = tokenizer(
            [t.text for t in texts],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        positives = torch.tensor([[t.describes(b["attrs"]) for t in texts] for b in batch])
        undecided = torch.tensor(
            [
                [t.undecided(b["attrs"], b["unknown"]) for t in texts]
                if b["unknown"]
                else [False] * len(texts)
                for b in batch
            ]
        )
        return {
            "frames": torch.stack([b["frames"] for b in batch]),
            "theta": torch.stack([b["theta"] for b in batch]),
            "input_ids": tok["input_ids"],
            "attention_mask": tok["attention_mask"],
            "positives": positives,
            "undecided": undecided,
            "labels": torch.tensor([b["label"] for b in batch]),
            **{
                f"attr_{name}": torch.tensor(
                    [values.index(b["attrs"][name]) if name in b["attrs"] else -1 for b in batch]
                )
                for name, values in ATTRIBUTE_VALUES.items()
            },
        }

    return collate


@torch.inference_mode()
def encode_cached(encoder: ClipEncoder, cache: FrameCache, batch: int = 32) -> np.ndarray:
    """Pooled clip vectors for cached uint8 frames, as ingest computes them (model's device)."""
    device = next(encoder.model.parameters()).device
    out: list[np.ndarray] = []
    for i in range(0, len(cache.frames), batch):
        chunk = torch.from_numpy(np.array(cache.frames[i : i + batch])).to(device)
        pixels = encoder.preprocess.normalize(chunk.flatten(0, 1).float().div_(255.0))
        per_frame, grid = clip_frame_features(
            encoder.model, encoder.temporal, pixels.view(*chunk.shape[:2], *pixels.shape[1:])
        )
        pooled = pool_clips(encoder.temporal, per_frame.float(), grid)
        out.append(pooled.float().cpu().numpy())
    return np.concatenate(out)
