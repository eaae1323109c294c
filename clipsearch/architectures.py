"""CLIP architectures by name, for models trained from scratch or benchmarked without weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clipsearch.checkpoint import VideoConfig
from clipsearch.errors import InvalidInput
from clipsearch.model import ClipEncoder, ImagePreprocess


@dataclass(frozen=True)
class Architecture:
    image_size: int
    patch_size: int
    vision_width: int
    vision_layers: int
    vision_heads: int
    text_width: int
    text_layers: int
    text_heads: int
    embed_dim: int
    context_length: int = 77
    # text vocabulary rows (OpenAI CLIP's 49,408); None: as many as the tokenizer has
    vocab_size: int | None = 49408


ARCHITECTURES: dict[str, Architecture] = {
    # trains from scratch on SynthUCF on a 2-core CPU in minutes: 48x48 input, 8x8 patches
    "tiny": Architecture(48, 8, 128, 3, 4, 128, 2, 4, 128, context_length=32, vocab_size=None),
    "vit-b-32": Architecture(224, 32, 768, 12, 12, 512, 12, 8, 512),
    "vit-b-16": Architecture(224, 16, 768, 12, 12, 512, 12, 8, 512),
    "vit-l-14": Architecture(224, 14, 1024, 24, 16, 768, 12, 12, 768),
}


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise InvalidInput(f"unknown architecture {name!r} (known: {known})") from None


def create_model(arch: str | Architecture, tokenizer: Any, *, model_id: str) -> ClipEncoder:
    """A randomly initialised CLIP of the given architecture around ``tokenizer``."""
    from transformers import CLIPConfig, CLIPModel

    a = get_architecture(arch) if isinstance(arch, str) else arch
    config = CLIPConfig(
        text_config={
            "vocab_size": max(len(tokenizer), a.vocab_size or 0),
            "hidden_size": a.text_width,
            "intermediate_size": a.text_width * 4,
            "num_hidden_layers": a.text_layers,
            "num_attention_heads": a.text_heads,
            "max_position_embeddings": a.context_length,
            "projection_dim": a.embed_dim,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "image_size": a.image_size,
            "patch_size": a.patch_size,
            "hidden_size": a.vision_width,
            "intermediate_size": a.vision_width * 4,
            "num_hidden_layers": a.vision_layers,
            "num_attention_heads": a.vision_heads,
            "projection_dim": a.embed_dim,
        },
        projection_dim=a.embed_dim,
    )
    model = CLIPModel(config)
    preprocess = ImagePreprocess(shortest_edge=a.image_size, crop=(a.image_size, a.image_size))
    video = VideoConfig(max_text_tokens=a.context_length, model_id=model_id)
    return ClipEncoder(model, tokenizer, preprocess, video, model_id)
