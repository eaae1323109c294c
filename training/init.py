"""Data-dependent initialisation for models trained from scratch.

A ViT's patch embedding starts as noise and learns slowly from little data.
Starting it as the whitening transform of real training patches (their top
principal components scaled to unit variance, as in fast small-data
training recipes) gives the encoder meaningful patch features from step one.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from clipsearch.model import ImagePreprocess

log = logging.getLogger(__name__)


@torch.no_grad()
def whiten_patch_embedding(
    model: Any,
    frames: np.ndarray,
    preprocess: ImagePreprocess,
    *,
    max_images: int = 2048,
    eps: float = 1e-2,
    seed: int = 0,
) -> None:
    """Set ``vision_model.embeddings.patch_embedding`` from cached uint8 frames (N, T, 3, h, w)."""
    conv = model.vision_model.embeddings.patch_embedding
    out_ch, in_ch, k, _ = conv.weight.shape
    rng = np.random.default_rng(seed)
    flat = frames.reshape(-1, *frames.shape[2:])
    pick = rng.choice(len(flat), size=min(max_images, len(flat)), replace=False)
    pixels = preprocess.normalize(torch.from_numpy(np.asarray(flat[np.sort(pick)])).float() / 255)
    patches = torch.nn.functional.unfold(pixels, kernel_size=k, stride=k)  # (N, C*k*k, L)
    patches = patches.transpose(1, 2).reshape(-1, in_ch * k * k).double()
    patches -= patches.mean(0)
    cov = patches.T @ patches / len(patches)
    eigvals, eigvecs = torch.linalg.eigh(cov)  # ascending
    n = min(out_ch, in_ch * k * k)
    top_vals, top_vecs = eigvals[-n:].flip(0), eigvecs[:, -n:].flip(1)
    weight = (top_vecs / torch.sqrt(top_vals + eps)).T  # (n, C*k*k)
    new = conv.weight.clone()
    new[:n] = weight.reshape(n, in_ch, k, k).to(new.dtype)
    conv.weight.copy_(new)
    log.info("patch embedding whitened from %d patches", len(patches))
