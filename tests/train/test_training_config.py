"""Training recipes: the shipped recipe is the default, and bad recipes fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipsearch.errors import InvalidInput
from training.config import CONFIG_DIR, TrainConfig


def test_demo_recipe_is_the_default() -> None:
    # `clipsearch train` without flags and `make demo` train the same model
    assert TrainConfig.load("synthucf") == TrainConfig()


def test_overrides_apply_and_none_is_ignored() -> None:
    cfg = TrainConfig.load("synthucf", max_epochs=2, init=None)
    assert cfg.max_epochs == 2 and cfg.init is None


def test_unknown_setting_and_bad_json_are_errors(tmp_path: Path) -> None:
    (tmp_path / "typo.json").write_text('{"max_epoch": 3}')
    with pytest.raises(InvalidInput, match="unknown settings max_epoch"):
        TrainConfig.load(tmp_path / "typo.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InvalidInput, match="invalid JSON"):
        TrainConfig.load(tmp_path / "bad.json")
    with pytest.raises(InvalidInput, match="no training recipe 'nope'"):
        TrainConfig.load("nope")


@pytest.mark.parametrize("recipe", sorted(p.stem for p in CONFIG_DIR.glob("*.json")))
def test_every_shipped_recipe_loads(recipe: str) -> None:
    from training.freeze import parse_freeze

    cfg = TrainConfig.load(recipe)
    parse_freeze(cfg.freeze)
    assert cfg.pooling in ("mean", "temporal")
    if cfg.pooling == "temporal":
        # sampling a subset of frames aliases fast periodic motion (a ball that moves more
        # than half the frame between two kept frames seems to go the other way)
        assert cfg.train_frames == cfg.num_frames
    if recipe.startswith("ucf101"):
        assert cfg.init == "openai/clip-vit-base-patch32" and not cfg.whiten_patches


def test_reverse_pairs_are_read_as_pairs_and_checked(tmp_path: Path) -> None:
    (tmp_path / "pairs.json").write_text('{"reverse_pairs": [["OpenDoor", "CloseDoor"]]}')
    assert TrainConfig.load(tmp_path / "pairs.json").reverse_pairs == (("OpenDoor", "CloseDoor"),)
    (tmp_path / "bad.json").write_text('{"reverse_pairs": [["OpenDoor"]]}')
    with pytest.raises(InvalidInput, match="reverse_pairs must be a list"):
        TrainConfig.load(tmp_path / "bad.json")


def test_tower_dtype_and_val_start_are_checked(tmp_path: Path) -> None:
    assert TrainConfig.load("synthucf", tower_dtype="bf16").tower_dtype == "bf16"
    with pytest.raises(InvalidInput, match="tower_dtype must be one of auto, fp32, bf16"):
        TrainConfig.load("synthucf", tower_dtype="fp16")
    (tmp_path / "r.json").write_text('{"tower_dtype": "int8"}')
    with pytest.raises(InvalidInput, match="not 'int8'"):
        TrainConfig.load(tmp_path / "r.json")
    with pytest.raises(InvalidInput, match="val_start must be at least 0 and below 1"):
        TrainConfig.load("synthucf", val_start=1.0)


def test_probabilities_are_checked(tmp_path: Path) -> None:
    assert TrainConfig.load("synthucf", empty_prob=0.5).augment().empty_prob == 0.5
    with pytest.raises(InvalidInput, match="empty_prob must be from 0 to 1"):
        TrainConfig.load("synthucf", empty_prob=1.5)
    (tmp_path / "r.json").write_text('{"recolor_prob": "often"}')
    with pytest.raises(InvalidInput, match="recolor_prob must be from 0 to 1, not 'often'"):
        TrainConfig.load(tmp_path / "r.json")
    with pytest.raises(InvalidInput, match=r"class_templates must be 0 \(all\) or more"):
        TrainConfig.load("synthucf", class_templates=-1)
