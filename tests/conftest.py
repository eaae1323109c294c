"""Shared fixtures: a tiny CLIP checkpoint, stores, and (lazily) a tiny SynthUCF set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

PHRASES = [
    "a video of ball bouncing",
    "a video of box spinning",
    "a small red ball bouncing fast on a gradient background",
    "a large blue box spinning slowly on a noise background",
    "a yellow triangle rising on a flat background",
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny CLIP saved with ``save_pretrained`` (loads like a hub checkpoint)."""
    import torch

    from clipsearch.architectures import create_model
    from clipsearch.model import save_model
    from training.tokenizer import build_tokenizer

    torch.manual_seed(0)
    tokenizer = build_tokenizer(PHRASES * 4, vocab_size=300)
    encoder = create_model("tiny", tokenizer, model_id="tiny-random")
    return save_model(encoder, tmp_path_factory.mktemp("models") / "tiny-random")


@pytest.fixture
def memory_store() -> Iterator[object]:
    from clipsearch.store.client import QdrantClientStore

    store = QdrantClientStore.in_memory()
    yield store
    store.close()


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SynthUCF build: 4 classes x 8 groups x 1 clip (split 1 trains on group 8)."""
    from clipsearch.synth import generate

    root = tmp_path_factory.mktemp("data") / "synthucf"
    generate(root, classes=4, groups=8, clips=1, seed=0, workers=2, moments=False)
    return root
