"""The scene bootstrap behind ``freeform_mAP_interval``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clipsearch.evaluation.interval import scene_interval


def _figure(
    n_scenes: int, per_scene: int = 4, seed: int = 0
) -> tuple[Callable[[np.ndarray], float], list[int], float]:
    """Each clip's value is its scene's (drawn at random) plus a little noise; the figure is
    the mean value over the clips of a draw."""
    rng = np.random.default_rng(seed)
    scenes = [s for s in range(n_scenes) for _ in range(per_scene)]
    values = rng.normal(size=n_scenes)[scenes] + rng.normal(0, 0.1, size=len(scenes))
    return (lambda idx: float(values[idx].mean())), scenes, float(values.mean())


def test_interval_holds_the_figure_and_narrows_with_more_scenes() -> None:
    figure, scenes, full = _figure(12)
    got = scene_interval(figure, scenes)
    assert got is not None
    low, high = got
    assert low < full < high and high - low > 0.3
    more = scene_interval(*_figure(300)[:2])
    assert more is not None and more[1] - more[0] < (high - low) * 0.4
    assert scene_interval(figure, scenes) == got  # seeded: the same again


def test_whole_scenes_are_drawn() -> None:
    seen: list[np.ndarray] = []
    scenes = ["a", "a", "b", "b", "b", "c"]

    def record(idx: np.ndarray) -> float:
        seen.append(idx)
        return 0.0

    scene_interval(record, scenes, resamples=20)
    for idx in seen:
        counts = np.bincount(idx, minlength=6)
        assert counts[0] == counts[1] and counts[2] == counts[3] == counts[4]
        assert counts[0] + counts[2] + counts[5] == 3  # three scenes drawn, each whole


def test_nothing_to_resample() -> None:
    figure, scenes, _ = _figure(12)
    assert scene_interval(figure, [0] * len(scenes)) is None
    assert scene_interval(lambda idx: None, scenes) is None
