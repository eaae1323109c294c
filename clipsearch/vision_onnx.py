"""The CLIP vision tower as an ONNX Runtime dynamic-int8 model: the fast ingest path.

Ingest spends its time in the vision tower (dozens of frames per clip). Its int8 export
(int8 weights and matrix products, activations scaled per call) ran 2.8x faster than
fp32 torch on a 2-core Xeon with AVX-512 VNNI (a random ViT-B/32), and keeps retrieval
within 0.01 mAP of fp32 on the demo model (RESULTS.md, "Ingest"). Exported once per
checkpoint and cached like the text tower (:mod:`clipsearch.onnx_int8`); a temporal head
with a motion branch gets the patch tokens of the layer it reads as a second output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clipsearch.onnx_int8 import cached_export, cpu_session, export_quantized, weights_digest

MODEL_FILE = "vision-int8.onnx"


class _VisionTower(torch.nn.Module):
    """Normalised pixels (N, 3, h, w) -> projected image features (N, D), unnormalised,
    and with a ``layer`` the patch tokens (N, P, W) of that hidden state."""

    def __init__(self, model: Any, layer: int | None):
        super().__init__()
        self.model = model
        self.layer = layer

    def forward(self, pixels: torch.Tensor) -> Any:
        from clipsearch.model import vision_forward

        tokens = self.layer is not None
        feats, grid = vision_forward(
            self.model, pixels, tokens=tokens, layer=-1 if self.layer is None else self.layer
        )
        return (feats, grid) if tokens else feats


def _vision_modules(model: Any) -> list[tuple[str, torch.nn.Module]]:
    if hasattr(model, "vision_model") and hasattr(model, "visual_projection"):
        return [
            ("vision_model", model.vision_model),
            ("visual_projection", model.visual_projection),
        ]
    return [("model", model)]


def vision_digest(model: Any, layer: int | None) -> str:
    """A digest of the vision tower's weights and configuration and of the export setup."""
    config = getattr(model.config, "vision_config", model.config)
    return weights_digest(config.to_dict(), _vision_modules(model), f"vision/tokens{layer}")


def cached_vision_int8(
    model: Any, side: tuple[int, int], layer: int | None, cache_dir: str | os.PathLike[str]
) -> Path:
    """The int8 ONNX file of ``model``'s vision tower for inputs of ``side`` (h, w), with
    the patch tokens of hidden state ``layer`` when not None; exported on first use."""

    def export(out: Path) -> None:
        sample = torch.randn(2, 3, *side)
        outputs = ["image_features", "tokens"] if layer is not None else ["image_features"]
        export_quantized(
            _VisionTower(model, layer),
            (sample,),
            out,
            inputs=["pixels"],
            outputs=outputs,
            dynamic_axes={name: {0: "frames"} for name in ["pixels", *outputs]},
        )

    return cached_export(cache_dir, vision_digest(model, layer), MODEL_FILE, export, "vision")


class OnnxVisionTower:
    """An ONNX Runtime session of an exported vision tower (releases the GIL)."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None):
        self.session = cpu_session(path, threads, "vision")
        self.path = Path(path)
        self.tokens = len(self.session.get_outputs()) > 1

    def __call__(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        outputs = self.session.run(None, {"pixels": pixels.float().contiguous().numpy()})
        feats = torch.from_numpy(np.asarray(outputs[0], dtype=np.float32))
        grid = torch.from_numpy(np.asarray(outputs[1], dtype=np.float32)) if self.tokens else None
        return feats, grid
