"""Training settings: a frozen dataclass read from a JSON recipe in ``training/configs/``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from clipsearch.errors import InvalidInput

CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_RECIPE = "synthucf"


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
    train_frames: int = 8  # random subset of those seen per clip per training step
    batch_size: int = 64
    max_epochs: int = 30
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 20
    vocab_size: int = 1000  # tokenizer size when training from scratch
    caption_prob: float = 0.3  # chance a sample's text is its free-form caption
    whiten_patches: bool = True  # from scratch: start the patch embedding as a whitening
    aux_loss_weight: float = 3.0  # training-only cosine class head on clip vectors
    class_loss_weight: float = 1.0  # weight of the clip-vs-all-class-prompts loss
    color_aug_prob: float = 0.8  # recolour frames paired with a class phrase (not captions)
    affine_aug: float = 0.1  # random zoom/shift of each clip, as a fraction of the frame
    # colour x class combos withheld from training: a count chosen from synth_meta.jsonl
    # (clipsearch.attributes.default_heldout), or explicit "Class:colour" strings
    heldout: int | list[str] = 3
    freeze: str = "none"  # fine-tuning: "none", "proj_ln" or "layers:N" (training.freeze)
    val_every: int = 1  # epochs between retrieval validations on the test clips (0: never)
    select_best: bool = True  # keep the epoch with the best validation mAP, not the last
    seed: int = 0
    max_steps: int = -1  # stop after this many optimiser steps (-1: no limit; for smoke tests)
    accelerator: str = "cpu"  # Lightning accelerator: "cpu", "gpu" or "auto"
    precision: str = "32-true"  # Lightning precision, e.g. "bf16-mixed" on CPUs with AMX
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
        cfg = cls(**data)
        return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _parse_pairs(value: Any, path: Path) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(c, str) for c in p) for p in value
    ):
        raise InvalidInput(f'{path}: reverse_pairs must be a list of ["Class", "Class"] pairs')
    return tuple((a, b) for a, b in value)
