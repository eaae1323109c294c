"""``train(cfg) -> metrics``: fit a CLIP on a UCF101-layout dataset and save it.

From scratch (``cfg.arch``, tokenizer learned from the training text) or
fine-tuning a pretrained checkpoint (``cfg.init``, a hub id or directory): the
same loop, and the result always saves with ``save_pretrained`` so it loads
through ``clipsearch.model.load_model`` like any hub checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from clipsearch.architectures import create_model
from clipsearch.checkpoint import VideoConfig
from clipsearch.cpu import training_dtype
from clipsearch.data.collection import Collection, load_collection, validation_split
from clipsearch.data.synthucf import default_heldout, is_heldout, parse_combo, read_meta
from clipsearch.errors import DatasetError, InvalidInput
from clipsearch.model import ClipEncoder, load_model, save_model, vision_grid
from clipsearch.temporal import TemporalPooling
from training.config import TrainConfig
from training.curves import plot_curves, write_tidy_curves
from training.data import (
    ATTRIBUTE_VALUES,
    ClipTextDataset,
    captions_from_meta,
    class_prompts,
    load_frames,
    make_collate,
)
from training.freeze import apply_freeze
from training.init import whiten_patch_embedding
from training.module import ClipVideoModule
from training.texts import clip_attributes, vocabulary_texts
from training.tokenizer import build_tokenizer
from training.validation import SCORE_PARTS, RetrievalValidation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainRun:
    """Where to read and write; the recipe is a ``TrainConfig``."""

    data: Path
    out: Path
    cache_dir: Path | None = None
    progress_bar: bool = True


def _heldout_combos(cfg: TrainConfig, meta: dict[str, dict[str, Any]] | None) -> list[str]:
    if isinstance(cfg.heldout, int):
        if cfg.heldout < 0:
            raise InvalidInput(f"heldout must be >= 0 or a list of Class:colour, got {cfg.heldout}")
        return default_heldout(meta, cfg.split, cfg.heldout) if meta and cfg.heldout else []
    for combo in cfg.heldout:
        parse_combo(combo)
    return list(cfg.heldout)


def _build_encoder(
    cfg: TrainConfig, collection: Collection, captions: dict[str, str], heldout: list[str]
) -> ClipEncoder:
    if cfg.init:
        base = load_model(cfg.init)
        tokenizer, model, preprocess = base.tokenizer, base.model, base.preprocess
        temporal, model_id = base.temporal, base.model_id
    else:
        texts = vocabulary_texts(collection.classes, sorted(set(captions.values())))
        tokenizer = build_tokenizer(texts, cfg.vocab_size)
        base = create_model(cfg.arch, tokenizer, model_id=f"{cfg.arch}-untrained")
        model, preprocess, temporal, model_id = base.model, base.preprocess, None, base.model_id
    if cfg.pooling == "temporal" and temporal is None:
        grid, width = vision_grid(model)
        temporal = TemporalPooling(
            base.dim,
            layers=cfg.temporal_layers,
            motion_channels=cfg.motion_channels,
            token_width=width if cfg.motion_channels else 0,
            grid=grid if cfg.motion_channels else 0,
            motion_layer=cfg.motion_layer,
            motion_offsets=cfg.motion_offsets,
        )
    video = VideoConfig(
        num_frames=cfg.num_frames,
        pooling=cfg.pooling,
        max_text_tokens=base.video.max_text_tokens,
        model_id=model_id,
        temporal=temporal.config() if temporal is not None else None,
        heldout=heldout or None,
    )
    return ClipEncoder(model, tokenizer, preprocess, video, model_id, temporal=temporal)


def reverse_index(classes: list[str], pairs: tuple[tuple[str, str], ...]) -> list[int]:
    """For each class index, the index of its time-reversed class (-1: none)."""
    index = {c: i for i, c in enumerate(classes)}
    out = [-1] * len(classes)
    for a, b in pairs:
        if a in index and b in index:
            out[index[a]], out[index[b]] = index[b], index[a]
    return out


def resolve_tower_dtype(cfg: TrainConfig) -> str:
    """``cfg.tower_dtype`` with ``auto`` decided: bf16 on a CPU with bf16 in hardware,
    fp32 elsewhere (on a GPU, Lightning's ``precision`` is the setting)."""
    if cfg.tower_dtype != "auto":
        return cfg.tower_dtype
    return training_dtype() if cfg.accelerator == "cpu" else "fp32"


def _has_tensorboard() -> bool:
    import importlib.util

    return any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX"))


def _weights_digest(directory: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(directory.glob("*.safetensors")):
        h.update(f.read_bytes())
    return h.hexdigest()[:8]


def train(cfg: TrainConfig, run: TrainRun) -> dict[str, Any]:
    """Train, save model + tokenizer + ``metrics.json`` to ``run.out``; return the metrics."""
    started = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    collection = load_collection(run.data)
    if not collection.is_ucf:
        raise DatasetError(f"{run.data} is not a UCF101-layout root (UCF-101/ + ucfTrainTestlist/)")
    train_clips = [c for c in collection.split(cfg.split, "train") if c.label]
    if not train_clips:
        raise DatasetError(f"split {cfg.split} of {run.data} has no training clips")
    train_clips, val_clips = validation_split(train_clips, cfg.val_groups)
    if cfg.val_groups and not val_clips:
        log.warning("one training group only: no validation, the last epoch is kept")
    meta = read_meta(collection.root)
    captions = captions_from_meta(meta)
    heldout = _heldout_combos(cfg, meta)
    if heldout and meta:
        kept = [c for c in train_clips if not is_heldout(meta.get(c.path, {}), heldout)]
        log.info("withholding %d training clips of %s", len(train_clips) - len(kept), heldout)
        n_withheld, train_clips = len(train_clips) - len(kept), kept
    else:
        n_withheld = 0

    encoder = _build_encoder(cfg, collection, captions, heldout)
    log.info("decoding %d train + %d validation clips", len(train_clips), len(val_clips))
    t0 = time.perf_counter()
    train_cache = load_frames(
        train_clips,
        max(cfg.cache_frames, cfg.train_frames),
        encoder.preprocess,
        cache_dir=run.cache_dir,
        workers=cfg.decode_workers,
    )
    val_cache = (
        load_frames(
            val_clips,
            cfg.num_frames,
            encoder.preprocess,
            cache_dir=run.cache_dir,
            workers=cfg.decode_workers,
        )
        if val_clips and cfg.val_every > 0
        else None
    )
    decode_s = time.perf_counter() - t0

    freeze_counts = apply_freeze(encoder.model, cfg.freeze)
    tower_dtype = resolve_tower_dtype(cfg)
    if not cfg.init and cfg.whiten_patches:
        whiten_patch_embedding(encoder.model, train_cache.frames, encoder.preprocess, seed=cfg.seed)
    rows = meta or {}
    dataset = ClipTextDataset(
        train_cache,
        collection.classes,
        [clip_attributes(c.label, rows.get(c.path)) for c in train_cache.clips],
        frames_per_step=cfg.train_frames,
        augment=cfg.augment(),
        attribute_texts=cfg.attribute_texts,
        hard_negative_prob=cfg.hard_negative_prob,
        forbidden=heldout,
        seed=cfg.seed,
    )
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=len(dataset) > cfg.batch_size,
        collate_fn=make_collate(encoder.tokenizer, encoder.video.max_text_tokens),
        num_workers=0,
    )
    module = ClipVideoModule(
        encoder.model,
        encoder.preprocess,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps,
        class_prompts=(
            class_prompts(encoder.tokenizer, collection.classes, encoder.video.max_text_tokens)
            if cfg.class_loss_weight > 0
            else None
        ),
        class_loss_weight=cfg.class_loss_weight,
        class_templates=cfg.class_templates,
        temporal=encoder.temporal,
        head_lr=cfg.head_lr,
        head_start=cfg.head_start,
        n_classes=len(collection.classes),
        aux_loss_weight=cfg.aux_loss_weight,
        attribute_heads=(
            {k: len(v) for k, v in ATTRIBUTE_VALUES.items()}
            if meta and cfg.attribute_texts
            else None
        ),
        attribute_loss_weight=cfg.attribute_loss_weight,
        reverse_of=reverse_index(collection.classes, cfg.reverse_pairs),
        tower_dtype=torch.bfloat16 if tower_dtype == "bf16" else None,
    )
    run.out.mkdir(parents=True, exist_ok=True)
    validation = (
        RetrievalValidation(
            encoder,
            val_cache,
            collection.classes,
            meta=[rows.get(c.path) for c in val_cache.clips] if meta else None,
            every=cfg.val_every,
            start=int(cfg.max_epochs * cfg.val_start),
        )
        if val_cache is not None
        else None
    )
    loggers: list[Any] = [L.pytorch.loggers.CSVLogger(run.out, name="logs", version="")]
    if _has_tensorboard():
        loggers.append(L.pytorch.loggers.TensorBoardLogger(run.out, name="logs", version="tb"))
    trainer = L.Trainer(
        accelerator=cfg.accelerator,
        devices=1,
        max_epochs=cfg.max_epochs,
        max_steps=cfg.max_steps,
        precision=cfg.precision,  # type: ignore[arg-type]
        logger=loggers,
        callbacks=[validation] if validation is not None else [],
        enable_checkpointing=False,
        enable_progress_bar=run.progress_bar,
        enable_model_summary=False,
        log_every_n_steps=max(1, min(5, len(loader))),
    )
    attention = encoder.model.config._attn_implementation
    if tower_dtype == "bf16" and cfg.accelerator == "cpu":
        # torch's CPU SDPA kernel is slow backwards in bf16 (0.96 s a demo step against
        # 0.50 s with plain matrix products); inference keeps SDPA
        encoder.model.set_attn_implementation("eager")
    t0 = time.perf_counter()
    module.train()
    try:
        trainer.fit(module, loader)
    finally:
        encoder.model.set_attn_implementation(attention)
    fit_s = time.perf_counter() - t0
    if validation is not None and cfg.select_best:
        validation.restore_best()
    encoder.model.cpu()
    if encoder.temporal is not None:
        encoder.temporal.cpu()
    encoder.model.eval()
    if encoder.temporal is not None:
        encoder.temporal.eval()

    save_model(encoder, run.out)
    model_id = f"{run.out.resolve().name}-{_weights_digest(run.out)}"
    video = replace(encoder.video, model_id=model_id)
    video.save(run.out)
    encoder = ClipEncoder(
        encoder.model,
        encoder.tokenizer,
        encoder.preprocess,
        video,
        model_id,
        temporal=encoder.temporal,
    )

    metrics: dict[str, Any] = {
        "model_id": model_id,
        "config": cfg.to_dict(),
        "n_train_clips": len(train_cache.clips),
        "heldout": heldout,
        "n_heldout_train_clips": n_withheld,
        "train_failed": train_cache.failed,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "train_loss": float(trainer.callback_metrics.get("train_loss", float("nan"))),
        "tower_dtype": tower_dtype,
        "decode_s": round(decode_s, 2),
        "fit_s": round(fit_s, 2),
        "parameters": freeze_counts,
    }
    if validation is not None:
        metrics["validation"] = {
            "groups": sorted({c.group for c in val_clips if c.group is not None}),
            "n_clips": len(val_cache.clips) if val_cache is not None else 0,
            "score": "mean of " + ", ".join(SCORE_PARTS) + " (those the data allow)",
            "best_epoch": validation.best_epoch,
            "best_val_score": validation.best_score,
            "selected": "best" if cfg.select_best else "last",
            "seconds": round(validation.seconds, 2),
            "history": validation.history,
        }
    if validation is not None and validation.history:
        best = next(h for h in validation.history if h["epoch"] == validation.best_epoch)
        metrics["validation"]["best"] = best
    metrics["total_s"] = round(time.perf_counter() - started, 2)
    plot_curves(run.out / "logs" / "metrics.csv", run.out / "training_curves.png", model_id)
    write_tidy_curves(run.out / "logs" / "metrics.csv", run.out / "logs")
    (run.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.info("saved %s to %s", model_id, run.out)
    return metrics
