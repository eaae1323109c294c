"""Training settings: a frozen dataclass read from a JSON recipe in ``training/configs/``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from clipsearch.data.collection import VALIDATION_GROUPS
from clipsearch.errors import InvalidInput
from training.augment import AugmentConfig

CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_RECIPE = "synthucf"
TOWER_DTYPES = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "tiny"  # architecture for training from scratch (clipsearch.architectures)
    init: str | None = None  # hub id or directory of a pretrained CLIP to fine-tune instead
    split: int = 1  # official split: train on its train list, report on its test list
    num_frames: int = 8  # frames sampled per clip (cached, and used by ingest)
    pooling: str = "temporal"  # clip pooling: "mean" or "temporal" (clipsearch.temporal)
    temporal_layers: int = 2
    # temporal head: channels per patch of its motion branch over patch tokens (0: none)
    motion_channels: int = 16
    motion_layer: int = 1  # the vision tower's hidden state it reads (0: patch embedding)
    motion_offsets: int = 1  # it compares frames 1..N apart
    head_lr: float = 1e-3  # learning rate of the temporal head
    head_start: float = 0.0  # fraction of training before the head starts to learn
    # classes that are each other's time reversal: with a temporal head, each such clip
    # also trains played backwards as a clip of the other class (pairs absent from the
    # dataset are ignored); SynthUCF's three direction pairs by default
    reverse_pairs: tuple[tuple[str, str], ...] = (
        ("BallRollingLeft", "BallRollingRight"),
        ("BoxGrowing", "BoxShrinking"),
        ("TriangleRising", "TriangleFalling"),
    )
    cache_frames: int = 16  # frames decoded per training clip (a step sees train_frames)
    train_frames: int = 8  # frames per clip per step, taken from the cached ones on a warped clock
    batch_size: int = 64
    max_epochs: int = 48
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 20
    vocab_size: int = 1000  # tokenizer size when training from scratch
    # texts from clip attributes ("a red ball", "something spinning", captions), not only
    # class phrases (training.texts); needs synth_meta.jsonl, else class phrases only
    attribute_texts: bool = True
    hard_negative_prob: float = 0.3  # also a copy of the text with one attribute changed
    whiten_patches: bool = True  # from scratch: start the patch embedding as a whitening
    aux_loss_weight: float = 3.0  # training-only cosine class head on clip vectors
    # training-only classifiers of colour and size on clip vectors (synth_meta.jsonl only)
    attribute_loss_weight: float = 1.0
    class_loss_weight: float = 1.0  # weight of the clip-vs-all-class-prompts loss
    class_templates: int = 0  # prompt templates per class a step draws for that loss (0: all)
    # augmentation (training.augment): how video is made varies, the texts follow it
    time_warp: float = 0.5  # speed and easing of the clock frames are taken on (0: even)
    recolor_prob: float = 0.5  # the object takes another named colour, and so does its text
    gray_prob: float = 0.1  # colour dropped
    resize_prob: float = 0.5  # the object takes another named size, and so does its text
    # and a second view beside it in the batch, the same but for the object's named size
    size_twin_prob: float = 0.0
    scene_prob: float = 0.4  # a static texture, gradient or checkerboard over the background
    distractor_prob: float = 0.3  # one or two static shapes
    camera_prob: float = 0.5  # brightness/contrast, sensor noise, blur
    zoom: float = 0.25  # zoom in by up to this fraction (out by up to half of it)
    aspect: float = 0.15  # stretch one axis by up to this fraction
    shift: float = 0.1  # shift by up to this fraction of the frame
    empty_prob: float = 0.0  # also the view with the object erased, a negative for every text
    texture_prob: float = 0.0  # a scene overlay is a fine texture (tiles, grating, grain) instead
    # colour x class combos withheld from training: a count chosen from synth_meta.jsonl
    # (clipsearch.data.synthucf.default_heldout), or explicit "Class:colour" strings
    heldout: int | list[str] = 3
    freeze: str = "none"  # fine-tuning: "none", "proj_ln" or "layers:N" (training.freeze)
    # groups of the split's training list kept apart for validation (a group shares scene
    # and object, so validation clips are never near-copies of training ones); the test
    # list is only for `clipsearch eval`
    val_groups: int = VALIDATION_GROUPS
    val_every: int = 1  # epochs between retrieval validations (0: never)
    # the fraction of the epochs trained before validation starts: on the cosine schedule
    # the best epoch comes late (29-39 of 40, 36-46 of 48, from 0, in every run measured),
    # so validating earlier only costs time; the last epoch is always validated
    val_start: float = 0.5
    select_best: bool = True  # keep the epoch with the best validation score, not the last
    seed: int = 0
    max_steps: int = -1  # stop after this many optimiser steps (-1: no limit; for smoke tests)
    accelerator: str = "cpu"  # Lightning accelerator: "cpu", "gpu" or "auto"
    precision: str = "32-true"  # Lightning precision (the whole step; see tower_dtype)
    # the dtype the two towers run in while training, under autocast (losses, heads and
    # weights stay fp32): "fp32", "bf16", or "auto": bf16 on a CPU with bf16 in hardware
    # (clipsearch.cpu.training_dtype), else fp32
    tower_dtype: str = "auto"
    decode_workers: int | None = None

    @classmethod
    def load(cls, recipe: str | Path = DEFAULT_RECIPE, **overrides: Any) -> TrainConfig:
        """A recipe by name (``training/configs/<name>.json``) or path, plus overrides."""
        path = Path(recipe)
        if not path.suffix:
            path = CONFIG_DIR / f"{recipe}.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))
            raise InvalidInput(f"no training recipe {recipe!r} (known: {known})") from None
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}: invalid JSON: {exc}") from None
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidInput(f"{path}: unknown settings {', '.join(unknown)}")
        if "reverse_pairs" in data:
            data["reverse_pairs"] = _parse_pairs(data["reverse_pairs"], path)
        cfg = replace(cls(**data), **{k: v for k, v in overrides.items() if v is not None})
        for name in (f.name for f in fields(cls) if f.name.endswith("_prob")):
            value = getattr(cfg, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise InvalidInput(f"{path}: {name} must be from 0 to 1, not {value!r}")
        if isinstance(cfg.class_templates, bool) or not isinstance(cfg.class_templates, int):
            raise InvalidInput(f"{path}: class_templates must be an integer")
        if cfg.class_templates < 0:
            raise InvalidInput(f"{path}: class_templates must be 0 (all) or more")
        if not 0.0 <= cfg.val_start < 1.0:
            raise InvalidInput(f"{path}: val_start must be at least 0 and below 1")
        if cfg.tower_dtype not in TOWER_DTYPES:
            raise InvalidInput(
                f"{path}: tower_dtype must be one of {', '.join(TOWER_DTYPES)}, "
                f"not {cfg.tower_dtype!r}"
            )
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def augment(self) -> AugmentConfig:
        return AugmentConfig(
            **{f.name: getattr(self, f.name) for f in fields(AugmentConfig)}  # same names
        )


def _parse_pairs(value: Any, path: Path) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(c, str) for c in p) for p in value
    ):
        raise InvalidInput(f'{path}: reverse_pairs must be a list of ["Class", "Class"] pairs')
    return tuple((a, b) for a, b in value)
