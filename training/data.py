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

from clipsearch.dataset import Clip, class_phrase
from clipsearch.errors import DatasetError
from clipsearch.frames import decode_many
from clipsearch.model import ClipEncoder, ImagePreprocess, clip_frame_features, pool_clips

log = logging.getLogger(__name__)

TEMPLATES = (
    "a video of {}",
    "{}",
    "a clip of {}",
    "footage of {}",
    "a short video showing {}",
)
QUERY_TEMPLATE = TEMPLATES[0]


@dataclass(frozen=True)
class FrameCache:
    clips: list[Clip]  # the clips that decoded
    frames: np.ndarray  # (N, T, 3, h, w) uint8
    failed: list[str]  # relative paths that did not decode


def _cache_key(clips: Sequence[Clip], num_frames: int, pre: ImagePreprocess) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([num_frames, pre.shortest_edge, list(pre.crop), pre.squash]).encode())
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
        rows.append(pixels.mul_(255).round_().to(torch.uint8).numpy())
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
    """Captions by relative path from ``clipsearch.attributes.read_meta`` rows (empty: none)."""
    if not meta:
        return {}
    return {path: row["caption"] for path, row in meta.items() if row.get("caption")}


def training_texts(classes: Sequence[str], captions: dict[str, str]) -> list[str]:
    """Every text a model may see in training (for building the tokenizer)."""
    phrases = [class_phrase(c) for c in classes]
    return [t.format(p) for p in phrases for t in TEMPLATES] + sorted(set(captions.values()))


class ClipTextDataset(Dataset[dict[str, Any]]):
    """Clip frames (uint8 (T, 3, h, w)) with one text: a class phrase or the clip's caption.

    Each sample also carries the keys that decide positives in the loss: a text's
    key is its class (for templated class phrases) or the caption itself; a clip
    matches its class and its own caption.
    """

    def __init__(
        self,
        cache: FrameCache,
        classes: Sequence[str],
        captions: dict[str, str],
        caption_prob: float,
        seed: int = 0,
        frames_per_step: int | None = None,
        color_aug_prob: float = 0.0,
    ):
        self.cache = cache
        self.class_index = {c: i for i, c in enumerate(classes)}
        self.color_aug_prob = color_aug_prob
        self.frames_per_step = frames_per_step
        self.captions = captions
        self.caption_prob = caption_prob
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.cache.clips)

    def _recolor(self, frames: np.ndarray) -> np.ndarray:
        """Shuffle or drop colour: class phrases name no colour, so the model must look
        at shape and motion. Never applied to captions, which do name colours."""
        if self.rng.random() < 0.2:
            grey = frames.mean(axis=1, keepdims=True).astype(np.uint8)
            return np.repeat(grey, 3, axis=1)
        perm = [0, 1, 2]
        self.rng.shuffle(perm)
        return frames[:, perm]

    def clip_keys(self, index: int) -> frozenset[str]:
        clip = self.cache.clips[index]
        caption = self.captions.get(clip.path)
        keys = {f"class:{clip.label}"} if clip.label else set()
        if caption:
            keys.add(f"caption:{caption}")
        return frozenset(keys)

    def text_for(self, index: int) -> tuple[str, str]:
        """(text, key) for one draw."""
        clip = self.cache.clips[index]
        caption = self.captions.get(clip.path)
        if caption and (not clip.label or self.rng.random() < self.caption_prob):
            return caption, f"caption:{caption}"
        phrase = class_phrase(clip.label) if clip.label else clip.path
        return self.rng.choice(TEMPLATES).format(phrase), f"class:{clip.label}"

    def __getitem__(self, index: int) -> dict[str, Any]:
        text, key = self.text_for(index)
        frames = np.asarray(self.cache.frames[index])
        slots = list(range(len(frames)))
        if self.frames_per_step and self.frames_per_step < len(frames):
            slots = sorted(self.rng.sample(slots, self.frames_per_step))
            frames = frames[slots]
        if key.startswith("class:") and self.rng.random() < self.color_aug_prob:
            frames = self._recolor(frames)
        return {
            "frames": torch.from_numpy(np.array(frames)),
            "text": text,
            "slots": torch.tensor(slots),
            "text_key": key,
            "label": self.class_index.get(self.cache.clips[index].label or "", -1),
            "clip_keys": self.clip_keys(index),
        }


def class_prompts(tokenizer: Any, classes: Sequence[str], max_length: int) -> dict[str, Any]:
    """Every template for every class, tokenised, class-major (for the class-prompt loss)."""
    texts = [t.format(class_phrase(c)) for c in classes for t in TEMPLATES]
    tok = tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {
        "input_ids": tok["input_ids"],
        "attention_mask": tok["attention_mask"],
        "n_classes": len(classes),
    }


def make_collate(
    tokenizer: Any, max_length: int
) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """Batch samples: stacked frames, tokenised texts padded to the batch, positives mask."""

    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        texts = [b["text"] for b in batch]
        tok = tokenizer(
            texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        text_keys = [b["text_key"] for b in batch]
        positives = torch.tensor([[k in b["clip_keys"] for k in text_keys] for b in batch])
        return {
            "frames": torch.stack([b["frames"] for b in batch]),
            "slots": torch.stack([b["slots"] for b in batch]),
            "input_ids": tok["input_ids"],
            "attention_mask": tok["attention_mask"],
            "positives": positives,
            "labels": torch.tensor([b["label"] for b in batch]),
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
