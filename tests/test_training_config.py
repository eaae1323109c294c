"""Training recipes: the shipped recipe is the default, and bad recipes fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipsearch.errors import InvalidInput
from training.config import TrainConfig


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
