"""Temporal pooling: a clip vector that depends on frame order.

Mean pooling cannot tell a ball rolling left from one rolling right (same frames,
opposite order). ``TemporalPooling`` is CLIP4Clip's "seqTransf": a small
transformer over the per-frame vectors plus position embeddings, added back to
the frame vectors (residual) and then averaged. Its output layers start at zero,
so an untrained head is exactly mean pooling.

It is saved beside the CLIP weights as ``temporal_head.safetensors``; the
checkpoint's ``clipsearch.json`` says ``"pooling": "temporal"``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HEAD_FILE = "temporal_head.safetensors"


class TemporalPooling(nn.Module):
    def __init__(self, dim: int, *, layers: int = 2, heads: int = 4, max_frames: int = 32):
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

    def forward(self, frames: torch.Tensor, slots: torch.Tensor | None = None) -> torch.Tensor:
        """Unit frame vectors (B, T, D) -> unit clip vectors (B, D).

        ``slots`` (B, T) are the frames' positions among the clip's sampled frames
        (default 0..T-1); training on a subset of frames passes their original slots.
        """
        b, t, _ = frames.shape
        if slots is None:
            slots = torch.arange(t, device=frames.device).expand(b, t)
        positions = self.positions(slots)
        # the pre-norm layers are residual: hidden - positions = frames + learned change
        hidden = self.encoder(frames + positions)
        return F.normalize((hidden - positions).mean(1), dim=-1)

    def config(self) -> dict[str, int]:
        return {"layers": self.layers, "heads": self.heads, "max_frames": self.max_frames}

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, directory / HEAD_FILE)

    @classmethod
    def load(cls, directory: Path, dim: int, config: dict[str, int]) -> TemporalPooling:
        from safetensors.torch import load_file

        head = cls(dim, **config)
        head.load_state_dict(load_file(directory / HEAD_FILE))
        return head.eval()
