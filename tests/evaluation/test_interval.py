"""The scene bootstrap behind ``freeform_mAP_interval``."""

from __future__ import annotations

import numpy as np
import pytest

from clipsearch.evaluation.interval import mean_ap, scene_interval
from clipsearch.evaluation.retrieval import query_aps


def _scored(
    n_scenes: int = 12, per_scene: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    scenes = [s for s in range(n_scenes) for _ in range(per_scene)]
    relevant = np.zeros((3, len(scenes)), bool)
    for q in range(3):  # each query: the clips of every third scene
        relevant[q] = [s % 3 == q for s in scenes]
    scores = relevant + rng.normal(0, 0.6, size=relevant.shape)
    return scores, relevant, scenes


def test_mean_ap_is_the_mean_of_each_query_ap() -> None:
    scores, relevant, _ = _scored()
    clips = np.eye(scores.shape[1])
    aps = [float(ap or 0.0) for ap in query_aps(scores, clips, relevant)]
    assert mean_ap(scores, relevant) == pytest.approx(np.mean(aps), abs=1e-6)
    relevant[0] = False  # a query with no relevant clip is left out, not scored 0
    assert mean_ap(scores, relevant) == pytest.approx(np.mean(aps[1:]), abs=1e-6)
    assert mean_ap(scores, relevant & False) is None


def test_interval_holds_the_full_figure_and_narrows_with_more_scenes() -> None:
    scores, relevant, scenes = _scored()
    full = mean_ap(scores, relevant)
    got = scene_interval(scores, relevant, scenes)
    assert got is not None and full is not None
    low, high = got
    assert low < full < high and high - low > 0.02
    more = scene_interval(*_scored(n_scenes=120))
    assert more is not None
    low2, high2 = more
    assert high2 - low2 < (high - low) * 0.6
    assert scene_interval(scores, relevant, scenes) == (low, high)  # seeded: the same again


def test_perfect_rankings_and_bad_input() -> None:
    _, relevant, scenes = _scored()
    assert scene_interval(relevant.astype(float), relevant, scenes) == (1.0, 1.0)
    assert scene_interval(relevant.astype(float), relevant, [0] * len(scenes)) is None
    with pytest.raises(ValueError, match="same clips"):
        scene_interval(relevant.astype(float), relevant, scenes[:-1])
