"""Temporal pooling: a clip vector that depends on frame order.

Mean pooling cannot tell a ball rolling left from one rolling right (same frames,
opposite order). ``TemporalPooling`` is CLIP4Clip's "seqTransf": a small
transformer over the per-frame vectors plus position embeddings, added back to
the frame vectors (residual) and then averaged. Its output layers start at zero,
so an untrained head is exactly mean pooling.

A frame vector says what is in the frame far more than where it is, so the head
may also read each frame's patch tokens (hidden state ``motion_layer`` of the
vision tower; the demo reads the first layer's, which keep fine detail): the
``motion`` branch reduces them to a small spatial map per frame and convolves each
pair of consecutive maps, which shows which way things move or grow. It also
starts at zero.

It is saved beside the CLIP weights as ``temporal_head.safetensors``; the
checkpoint's ``clipsearch.json`` says ``"pooling": "temporal"`` and holds the
head's shape.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HEAD_FILE = "temporal_head.safetensors"


class MotionBranch(nn.Module):
    """Consecutive patch-token maps (B, T, P, W) -> a change to the clip vector (B, D).

    Each frame's tokens shrink to ``channels`` per patch; each pair of frames (the
    map and its change) goes through one 3x3 convolution over the patch grid, and
    the result is averaged over the grid and the pairs. Local and shared across the
    grid, it detects an edge moving one way wherever in the frame that happens.
    Pairs are frames 1 to ``offsets`` apart, so that slow changes can add up.
    """

    def __init__(
        self, dim: int, token_width: int, grid: int, channels: int, hidden: int, offsets: int
    ):
        super().__init__()
        self.grid, self.side, self.offsets = grid, math.isqrt(grid), offsets
        if self.side * self.side != grid:
            raise ValueError(f"motion branch needs a square patch grid, got {grid} patches")
        self.norm = nn.LayerNorm(token_width)
        self.reduce = nn.Linear(token_width, channels)
        self.conv = nn.Conv2d(2 * channels, hidden, kernel_size=3, padding=1)
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, t, p, _ = tokens.shape
        if p != self.grid:
            raise ValueError(f"motion branch expects {self.grid} patch tokens per frame, got {p}")
        if t < 2:
            return tokens.new_zeros(b, self.out.out_features)
        maps = self.reduce(self.norm(tokens)).transpose(2, 3)  # (B, T, C, P)
        maps = maps.reshape(b, t, -1, self.side, self.side)
        # frame t against t+k for k = 1..offsets: slow changes add up over several frames
        steps = torch.cat(
            [
                torch.cat([maps[:, :-k], maps[:, k:] - maps[:, :-k]], dim=2)
                for k in range(1, min(self.offsets, t - 1) + 1)
            ],
            dim=1,
        )
        n = steps.shape[1]
        local = F.gelu(self.conv(steps.flatten(0, 1)))  # (B * n, hidden, side, side)
        return self.out(local.mean((2, 3)).view(b, n, -1).mean(1))


class TemporalPooling(nn.Module):
    def __init__(
        self,
        dim: int,
        *,
        layers: int = 2,
        heads: int = 4,
        max_frames: int = 32,
        motion_channels: int = 0,
        token_width: int = 0,
        grid: int = 0,
        motion_hidden: int = 256,
        motion_layer: int = -1,
        motion_offsets: int = 1,
    ):
        super().__init__()
        self.dim, self.layers, self.heads, self.max_frames = dim, layers, heads, max_frames
        self.positions = nn.Embedding(max_frames, dim)
        nn.init.normal_(self.positions.weight, std=0.02)
        block = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=dim * 4, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        for layer in self.encoder.layers:
            assert isinstance(layer, nn.TransformerEncoderLayer)
            nn.init.zeros_(layer.self_attn.out_proj.weight)
            nn.init.zeros_(layer.self_attn.out_proj.bias)
            nn.init.zeros_(layer.linear2.weight)
            nn.init.zeros_(layer.linear2.bias)
        self.motion_shape = {
            "motion_channels": motion_channels,
            "token_width": token_width,
            "grid": grid,
            "motion_hidden": motion_hidden,
            "motion_layer": motion_layer,
            "motion_offsets": motion_offsets,
        }
        # which of the vision tower's hidden states the motion branch reads: 0 is the patch
        # embedding, -1 the last layer; early layers keep the fine detail of small changes
        self.motion_layer = motion_layer
        self.motion = (
            MotionBranch(dim, token_width, grid, motion_channels, motion_hidden, motion_offsets)
            if motion_channels > 0
            else None
        )

    @property
    def needs_tokens(self) -> bool:
        """Whether ``forward`` needs the frames' patch tokens (the motion branch)."""
        return self.motion is not None

    def forward(
        self,
        frames: torch.Tensor,
        slots: torch.Tensor | None = None,
        tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Unit frame vectors (B, T, D) -> unit clip vectors (B, D).

        ``slots`` (B, T) are the frames' positions among the clip's sampled frames
        (default 0..T-1); training on a subset of frames passes their original slots.
        ``tokens`` (B, T, P, W) are the frames' patch tokens from hidden state
        ``motion_layer``, which the motion branch needs.
        """
        b, t, _ = frames.shape
        if slots is None:
            slots = torch.arange(t, device=frames.device).expand(b, t)
        positions = self.positions(slots)
        # the pre-norm layers are residual: hidden - positions = frames + learned change
        hidden = self.encoder(frames + positions)
        pooled = (hidden - positions).mean(1)
        if self.motion is not None:
            if tokens is None:
                raise ValueError("this temporal head reads patch tokens: pass tokens=")
            pooled = pooled + self.motion(tokens)
        return F.normalize(pooled, dim=-1)

    def config(self) -> dict[str, int]:
        shape = {"layers": self.layers, "heads": self.heads, "max_frames": self.max_frames}
        if self.motion is not None:
            shape.update(self.motion_shape)
        return shape

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, directory / HEAD_FILE)

    @classmethod
    def load(cls, directory: Path, dim: int, config: dict[str, int]) -> TemporalPooling:
        from safetensors.torch import load_file

        head = cls(dim, **config)
        head.load_state_dict(load_file(directory / HEAD_FILE))
        return head.eval()
