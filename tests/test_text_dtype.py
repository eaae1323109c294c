"""A bf16 text tower: close to fp32, and `clipsearch parity` says how close."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from clipsearch.cli import main
from clipsearch.errors import InvalidInput
from clipsearch.model import load_model
from webapp.settings import ConfigError, Settings

TEXTS = ["a video of ball bouncing", "a red triangle rising", "box spinning"]


@pytest.mark.parametrize("towers", ["text", "both"])
def test_bf16_text_vectors_stay_close_to_fp32(tiny_model_dir: Path, towers: str) -> None:
    fp32 = load_model(tiny_model_dir, towers=towers).encode_text(TEXTS)  # type: ignore[arg-type]
    encoder = load_model(tiny_model_dir, towers=towers, text_dtype="bf16")  # type: ignore[arg-type]
    bf16 = encoder.encode_text(TEXTS)
    assert encoder.text_dtype == "bf16" and bf16.dtype == np.float32
    cosine = np.sum(fp32 * bf16, axis=1)
    assert np.all(cosine > 0.99) and not np.array_equal(fp32, bf16)
    if towers == "both":  # the vision tower keeps its fp32 weights
        weight = encoder.model.vision_model.embeddings.patch_embedding.weight
        assert weight.dtype == torch.float32


def test_unknown_text_dtypes_are_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(InvalidInput, match="text dtype must be one of fp32, bf16"):
        load_model(tiny_model_dir, text_dtype="fp16")
    with pytest.raises(ConfigError):
        Settings(model="m", text_dtype="int4")
    env = {"CLIPSEARCH_MODEL": "m", "CLIPSEARCH_TEXT_DTYPE": "bf16"}
    assert Settings.from_env(env).text_dtype == "bf16"


def test_parity_reports_cosine_map_and_speed(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "parity.json"
    args = ["parity", "--data", str(tiny_synth), "--model", str(tiny_model_dir)]
    assert main([*args, "--json", str(out)]) == 0
    assert "bf16 text tower: cosine to fp32" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["n_queries"] >= 4 and report["n_clips"] > 0
    assert 0.99 < report["cosine_fp32_bf16"]["min"] <= report["cosine_fp32_bf16"]["mean"] <= 1.0
    assert report["mAP_delta"] == pytest.approx(
        report["bf16"]["mAP"] - report["fp32"]["mAP"], abs=1e-6
    )
    assert report["bf16_ok_as_default"] == (report["mAP_delta"] >= -0.01)
    assert report["single_query_ms"]["fp32"] > 0 and report["single_query_ms"]["bf16"] > 0
