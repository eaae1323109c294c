"""Which parts of a pretrained CLIP stay fixed while fine-tuning.

``"none"``: everything trains. ``"proj_ln"``: only the two projections, the layer
norms and the logit scale train (cheap, keeps the pretrained features). ``"layers:N"``:
the patch/token embeddings and the first N transformer layers of both towers are
frozen, the rest trains. New heads (the temporal head) always train.
"""

from __future__ import annotations

from typing import Any

from clipsearch.errors import InvalidInput

FREEZE_CHOICES = ("none", "proj_ln", "layers:N")


def parse_freeze(spec: str) -> tuple[str, int]:
    """``"none" | "proj_ln" | "layers:N"`` -> (mode, N)."""
    if spec in ("none", "proj_ln"):
        return spec, 0
    if spec.startswith("layers:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            n = -1
        if n >= 0:
            return "layers", n
    raise InvalidInput(f"freeze must be one of {', '.join(FREEZE_CHOICES)}; got {spec!r}")


def _is_proj_or_norm(name: str) -> bool:
    return (
        "projection" in name
        or "layer_norm" in name
        or "layernorm" in name
        or "pre_layrnorm" in name
        or name == "logit_scale"
    )


def _layer_index(name: str) -> int | None:
    """The encoder layer a parameter belongs to (``...encoder.layers.<i>....``)."""
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part == "layers" and parts[i + 1].isdigit():
            return int(parts[i + 1])
    return None


def apply_freeze(model: Any, spec: str) -> dict[str, int]:
    """Set ``requires_grad`` on a ``CLIPModel``'s parameters; returns trainable/frozen counts."""
    mode, n = parse_freeze(spec)
    for name, param in model.named_parameters():
        if mode == "none":
            trainable = True
        elif mode == "proj_ln":
            trainable = _is_proj_or_norm(name)
        else:
            layer = _layer_index(name)
            trainable = layer >= n if layer is not None else not (n > 0 and "embeddings" in name)
        param.requires_grad_(trainable)
    counts = {"trainable": 0, "frozen": 0}
    for param in model.parameters():
        counts["trainable" if param.requires_grad else "frozen"] += param.numel()
    return counts
