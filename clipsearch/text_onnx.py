"""The CLIP text tower as an ONNX Runtime dynamic-int8 model: the fast query path.

Every query streams all of the tower's weights through the CPU, so int8 weights (a
quarter of fp32's bytes, int8 matrix products) make a single query several times faster.
The tower is exported once per checkpoint with ``torch.onnx`` (batch and sequence length
dynamic: queries are padded to the longest in their batch, never to 77), quantized with
``onnxruntime.quantization.quantize_dynamic`` and cached per checkpoint
(:mod:`clipsearch.onnx_int8`). ``clipsearch parity`` reports what int8 changes against
fp32.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from clipsearch.onnx_int8 import cached_export, export_quantized, weights_digest

MODEL_FILE = "text-int8.onnx"
INPUTS = ("input_ids", "attention_mask")


class _TextTower(torch.nn.Module):
    """input_ids, attention_mask (B, L) -> projected text features (B, D), unnormalised."""

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if hasattr(self.model, "get_text_features"):
            out = self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            return out if isinstance(out, torch.Tensor) else out.pooler_output
        return self.model(input_ids=input_ids, attention_mask=attention_mask).text_embeds


def _text_modules(model: Any) -> list[tuple[str, torch.nn.Module]]:
    if hasattr(model, "text_model") and hasattr(model, "text_projection"):
        return [("text_model", model.text_model), ("text_projection", model.text_projection)]
    return [("model", model)]


def tower_digest(model: Any) -> str:
    """A digest of the text tower's weights and configuration and of the export setup."""
    config = getattr(model.config, "text_config", model.config)
    return weights_digest(config.to_dict(), _text_modules(model), "text")


def export_int8(model: Any, tokenizer: Any, out: Path) -> None:
    """Export the text tower of ``model`` to ``out`` (fp32 ONNX, then dynamic int8)."""
    sample = tokenizer(["a person playing tennis", "a dog"], padding=True, return_tensors="pt")
    export_quantized(
        _TextTower(model),
        (sample["input_ids"], sample["attention_mask"]),
        out,
        inputs=list(INPUTS),
        outputs=["text_features"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "text_features": {0: "batch"},
        },
    )


def cached_int8(
    model: Any, tokenizer: Any, cache_dir: str | os.PathLike[str], digest: str | None = None
) -> Path:
    """The int8 ONNX file of ``model``'s text tower, exported on first use (``digest``:
    its :func:`tower_digest`, when the caller has it already)."""
    return cached_export(
        cache_dir,
        digest or tower_digest(model),
        MODEL_FILE,
        lambda out: export_int8(model, tokenizer, out),
        "text",
    )
