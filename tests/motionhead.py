"""A tiny CLIP with a temporal head whose motion branch reads patch tokens, for tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from clipsearch.model import ClipEncoder, load_model, vision_grid
from clipsearch.temporal import TemporalPooling


def motion_encoder(model_dir: Path) -> tuple[ClipEncoder, TemporalPooling]:
    """The checkpoint at ``model_dir`` with a fresh (seeded, untrained: exactly mean
    pooling) one-layer head reading the tokens of hidden state 1, and that head."""
    base = load_model(model_dir)
    grid, width = vision_grid(base.model)
    torch.manual_seed(0)
    head = TemporalPooling(
        base.dim, layers=1, motion_channels=4, token_width=width, grid=grid, motion_layer=1
    )
    video = dataclasses.replace(base.video, pooling="temporal", temporal=head.config())
    return ClipEncoder(base.model, base.tokenizer, base.preprocess, video, "m", temporal=head), head


def train_stand_in(head: TemporalPooling) -> None:
    """Any non-zero weights, in place of training."""
    for p in head.parameters():
        torch.nn.init.normal_(p, std=0.2)
