"""``clipsearch model init``: randomly initialised CLIPs of standard sizes, for speed tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import CLIPConfig

from clipsearch.architectures import ARCHITECTURES
from clipsearch.cli import main
from clipsearch.model import load_model


def test_init_writes_a_checkpoint_the_factory_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tiny"
    assert main(["model", "init", "--arch", "tiny", "--out", str(out)]) == 0
    assert "for speed measurements only" in capsys.readouterr().out
    encoder = load_model(out)
    assert encoder.model_id == "random-tiny"
    assert encoder.dim == ARCHITECTURES["tiny"].embed_dim
    vectors = encoder.encode_text(["a video of ball bouncing", "box spinning"])
    assert vectors.shape == (2, encoder.dim)
    config = CLIPConfig.from_pretrained(out)
    assert config.vision_config.image_size == 48 and config.vision_config.patch_size == 8


def test_init_is_seeded(tmp_path: Path) -> None:
    """The weights are (the BPE tokenizer may order tied merges differently)."""
    paths = [tmp_path / name for name in ("a", "b", "c")]
    for path, seed in zip(paths, (0, 0, 1), strict=True):
        assert (
            main(["model", "init", "--arch", "tiny", "--out", str(path), "--seed", str(seed)]) == 0
        )
    a, b, c = ((p / "model.safetensors").read_bytes() for p in paths)
    assert a == b and a != c


def test_init_refuses_a_non_empty_directory_and_an_unknown_arch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("precious")
    assert main(["model", "init", "--arch", "tiny", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("clipsearch: error:") and "not empty" in err and "\n" not in err
    assert (tmp_path / "keep.txt").read_text() == "precious"
    assert main(["model", "init", "--arch", "vit-x-99", "--out", str(tmp_path / "x")]) == 2
    assert "unknown architecture 'vit-x-99'" in capsys.readouterr().err


@pytest.mark.parametrize(("arch", "millions"), [("vit-b-32", 151.3), ("vit-b-16", 149.6)])
def test_standard_sizes_match_openai_clip(arch: str, millions: float) -> None:
    """Parameter counts of the configs (built on the meta device: no weights allocated)."""
    import torch
    from transformers import CLIPModel

    from clipsearch.architectures import create_model
    from training.tokenizer import build_tokenizer

    tokenizer = build_tokenizer(["a video of ball bouncing"] * 4, vocab_size=300)
    with torch.device("meta"):
        encoder = create_model(arch, tokenizer, model_id=arch)
    assert isinstance(encoder.model, CLIPModel)
    count = sum(p.numel() for p in encoder.model.parameters()) / 1e6
    assert count == pytest.approx(millions, abs=0.1)
