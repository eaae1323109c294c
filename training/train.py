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
import numpy as np
import torch
from torch.utils.data import DataLoader

from clipsearch.architectures import create_model
from clipsearch.dataset import Collection, load_collection
from clipsearch.errors import DatasetError
from clipsearch.evaluate import evaluate_vectors
from clipsearch.model import ClipEncoder, VideoConfig, load_model, save_model
from clipsearch.temporal import TemporalPooling
from training.config import TrainConfig
from training.data import (
    ClipTextDataset,
    FrameCache,
    class_prompts,
    load_frames,
    make_collate,
    read_captions,
    training_texts,
)
from training.init import whiten_patch_embedding
from training.module import ClipVideoModule
from training.tokenizer import build_tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainRun:
    """Where to read and write; the recipe is a ``TrainConfig``."""

    data: Path
    out: Path
    cache_dir: Path | None = None
    progress_bar: bool = True


def _build_encoder(
    cfg: TrainConfig, collection: Collection, captions: dict[str, str]
) -> ClipEncoder:
    if cfg.init:
        base = load_model(cfg.init)
        tokenizer, model, preprocess = base.tokenizer, base.model, base.preprocess
        temporal, model_id = base.temporal, base.model_id
    else:
        tokenizer = build_tokenizer(training_texts(collection.classes, captions), cfg.vocab_size)
        base = create_model(cfg.arch, tokenizer, model_id=f"{cfg.arch}-untrained")
        model, preprocess, temporal, model_id = base.model, base.preprocess, None, base.model_id
    if cfg.pooling == "temporal" and temporal is None:
        temporal = TemporalPooling(base.dim, layers=cfg.temporal_layers)
    video = VideoConfig(
        num_frames=cfg.num_frames,
        pooling=cfg.pooling,
        max_text_tokens=base.video.max_text_tokens,
        model_id=model_id,
        temporal=temporal.config() if temporal is not None else None,
    )
    return ClipEncoder(model, tokenizer, preprocess, video, model_id, temporal=temporal)


@torch.inference_mode()
def encode_cached(encoder: ClipEncoder, cache: FrameCache, batch: int = 32) -> np.ndarray:
    """Pooled clip vectors for cached uint8 frames, as ingest would compute them."""
    out: list[np.ndarray] = []
    for i in range(0, len(cache.frames), batch):
        chunk = torch.from_numpy(np.array(cache.frames[i : i + batch]))
        b, t = chunk.shape[:2]
        pixels = encoder.preprocess.normalize(chunk.flatten(0, 1).float().div_(255.0))
        feats = encoder.model.get_image_features(pixel_values=pixels)
        feats = feats if isinstance(feats, torch.Tensor) else feats.pooler_output
        per_frame = torch.nn.functional.normalize(feats, dim=-1).view(b, t, -1).numpy()
        out.extend(encoder.pool(f) for f in per_frame)
    return np.stack(out)


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
    test_clips = collection.split(cfg.split, "test")
    if not train_clips:
        raise DatasetError(f"split {cfg.split} of {run.data} has no training clips")
    captions = read_captions(collection.root)

    encoder = _build_encoder(cfg, collection, captions)
    log.info("decoding %d train + %d test clips", len(train_clips), len(test_clips))
    t0 = time.perf_counter()
    train_cache = load_frames(
        train_clips,
        cfg.num_frames,
        encoder.preprocess,
        cache_dir=run.cache_dir,
        workers=cfg.decode_workers,
    )
    test_cache = (
        load_frames(
            test_clips,
            cfg.num_frames,
            encoder.preprocess,
            cache_dir=run.cache_dir,
            workers=cfg.decode_workers,
        )
        if test_clips
        else None
    )
    decode_s = time.perf_counter() - t0

    if not cfg.init and cfg.whiten_patches:
        whiten_patch_embedding(encoder.model, train_cache.frames, encoder.preprocess, seed=cfg.seed)
    dataset = ClipTextDataset(
        train_cache,
        collection.classes,
        captions,
        cfg.caption_prob,
        seed=cfg.seed,
        frames_per_step=cfg.train_frames,
        color_aug_prob=cfg.color_aug_prob,
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
        affine_aug=cfg.affine_aug,
        class_prompts=(
            class_prompts(encoder.tokenizer, collection.classes, encoder.video.max_text_tokens)
            if cfg.class_loss_weight > 0
            else None
        ),
        class_loss_weight=cfg.class_loss_weight,
        temporal=encoder.temporal,
        head_lr=cfg.head_lr,
        head_start=cfg.head_start,
        n_classes=len(collection.classes),
        aux_loss_weight=cfg.aux_loss_weight,
    )
    run.out.mkdir(parents=True, exist_ok=True)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=cfg.max_epochs,
        max_steps=cfg.max_steps,
        precision=cfg.precision,  # type: ignore[arg-type]
        logger=L.pytorch.loggers.CSVLogger(run.out, name="logs", version=""),
        enable_checkpointing=False,
        enable_progress_bar=run.progress_bar,
        enable_model_summary=False,
        log_every_n_steps=max(1, min(5, len(loader))),
    )
    t0 = time.perf_counter()
    module.train()
    trainer.fit(module, loader)
    fit_s = time.perf_counter() - t0
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
        "train_failed": train_cache.failed,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "train_loss": float(trainer.callback_metrics.get("train_loss", float("nan"))),
        "decode_s": round(decode_s, 2),
        "fit_s": round(fit_s, 2),
    }
    if test_cache is not None:
        vectors = encode_cached(encoder, test_cache)
        labels = [c.label for c in test_cache.clips]
        report = evaluate_vectors(encoder, collection.classes, vectors, labels)
        metrics[f"split{cfg.split}_test"] = report.metrics
    metrics["total_s"] = round(time.perf_counter() - started, 2)
    (run.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.info("saved %s to %s", model_id, run.out)
    return metrics
