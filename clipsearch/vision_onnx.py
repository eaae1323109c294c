"""The CLIP vision tower as an ONNX Runtime dynamic-int8 model: the fast ingest path.

Ingest spends its time in the vision tower (dozens of frames per clip). Its int8 export
(int8 weights and matrix products, activations scaled per call) ran 2.8x faster than
fp32 torch on a 2-core Xeon with AVX-512 VNNI (a random ViT-B/32), and keeps retrieval
within 0.01 mAP of fp32 on the demo model (RESULTS.md, "Ingest"). Exported once per
checkpoint and cached like the text tower (:mod:`clipsearch.onnx_int8`); a temporal head
with a motion branch gets the patch tokens of the layer it reads as a second output.

The patch embedding (a convolution whose stride is its kernel) is exported as the matrix
product it is: ONNX Runtime's int8 convolution ran a fifth of a ViT-B/32's time for a
twentieth of its arithmetic (RESULTS.md, "Ingest").
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from clipsearch.onnx_int8 import cached_export, export_quantized, weights_digest
from clipsearch.onnx_session import VisionSession

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


class PatchesAsMatMul(torch.nn.Module):
    """A convolution whose stride is its kernel, as one matrix product over the patches:
    (N, C, H, W) -> (N, out, H / k, W / k), the convolution's output."""

    def __init__(self, conv: torch.nn.Conv2d):
        super().__init__()
        self.kernel = int(conv.kernel_size[0])
        out, channels = conv.out_channels, conv.in_channels
        self.linear = torch.nn.Linear(channels * self.kernel**2, out, bias=conv.bias is not None)
        with torch.no_grad():
            # channels last in a patch: (ky, kx, c), what an NHWC image gives in order
            self.linear.weight.copy_(conv.weight.permute(0, 2, 3, 1).reshape(out, -1))
            if conv.bias is not None:
                self.linear.bias.copy_(conv.bias)

    @property
    def weight(self) -> torch.Tensor:  # transformers reads the input dtype from it
        return self.linear.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        k = self.kernel
        rows, cols = h // k, w // k
        patches = (
            x.permute(0, 2, 3, 1)
            .reshape(n, rows, k, cols, k * c)
            .permute(0, 1, 3, 2, 4)
            .reshape(n, rows * cols, k * k * c)
        )
        return self.linear(patches).transpose(1, 2).reshape(n, -1, rows, cols)


def _is_patch_conv(module: torch.nn.Conv2d, side: tuple[int, int]) -> bool:
    k = module.kernel_size[0]
    return (
        module.kernel_size[1] == k
        and side[0] % k == 0
        and side[1] % k == 0
        and tuple(module.stride) == tuple(module.kernel_size)
        and module.padding in ((0, 0), "valid")
        and tuple(module.dilation) == (1, 1)
        and module.groups == 1
    )


@contextlib.contextmanager
def _patches_as_matmul(model: Any, side: tuple[int, int]) -> Iterator[None]:
    """``model``'s patch embedding replaced by :class:`PatchesAsMatMul` while it lasts
    (for inputs of ``side``, (h, w))."""
    embeddings: Any = getattr(getattr(model, "vision_model", None), "embeddings", None)
    conv = getattr(embeddings, "patch_embedding", None)
    if not isinstance(conv, torch.nn.Conv2d) or not _is_patch_conv(conv, side):
        yield
        return
    embeddings.patch_embedding = PatchesAsMatMul(conv)
    try:
        yield
    finally:
        embeddings.patch_embedding = conv


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
    return weights_digest(
        config.to_dict(), _vision_modules(model), f"vision/tokens{layer}/patches-matmul"
    )


def export_vision_int8(model: Any, side: tuple[int, int], layer: int | None, out: Path) -> None:
    """Export the vision tower of ``model`` for inputs of ``side`` (h, w) to ``out`` (fp32
    ONNX, then dynamic int8), with the patch tokens of hidden state ``layer`` when not
    None."""
    sample = torch.randn(2, 3, *side)
    outputs = ["image_features", "tokens"] if layer is not None else ["image_features"]
    with _patches_as_matmul(model, side):
        export_quantized(
            _VisionTower(model, layer),
            (sample,),
            out,
            inputs=["pixels"],
            outputs=outputs,
            dynamic_axes={name: {0: "frames"} for name in ["pixels", *outputs]},
        )


def cached_vision_int8(
    model: Any, side: tuple[int, int], layer: int | None, cache_dir: str | os.PathLike[str]
) -> Path:
    """The int8 ONNX file of ``model``'s vision tower (:func:`export_vision_int8`),
    exported on first use."""
    return cached_export(
        cache_dir,
        vision_digest(model, layer),
        MODEL_FILE,
        lambda out: export_vision_int8(model, side, layer, out),
        "vision",
    )


class OnnxVisionTower:
    """An exported vision tower in place of the torch one: tensors in and out."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None):
        self.session = VisionSession(path, threads)

    def __call__(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        feats, grid = self.session(pixels.float().contiguous().numpy())
        return torch.from_numpy(feats), None if grid is None else torch.from_numpy(grid)
