"""How far a mean AP could move with other scenes: a bootstrap over scenes.

Test clips come in scenes (a UCF101 group, or a SynthUCF class x group: one
background, object colour, size and speed), and clips of a scene are near-copies, so
a split's 336 clips are about 84 independent draws. Resampling whole scenes with
replacement, and scoring every query on each resample, gives the interval that a
test set of the same kind could give the same model.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

LEVEL = 0.9
RESAMPLES = 200


def mean_ap(scores: np.ndarray, relevant: np.ndarray) -> float | None:
    """Mean AP of the queries (rows) that have a relevant clip; None when none has."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.take_along_axis(relevant.astype(bool), order, axis=1)
    n_rel = ranked.sum(axis=1)
    kept = n_rel > 0
    if not kept.any():
        return None
    precision = np.cumsum(ranked, axis=1) / np.arange(1, ranked.shape[1] + 1)
    return float(((precision * ranked).sum(axis=1)[kept] / n_rel[kept]).mean())


def scene_interval(
    scores: np.ndarray,
    relevant: np.ndarray,
    scenes: Sequence[Hashable],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, float] | None:
    """The central ``level`` interval of the mean AP over ``resamples`` resampled scene sets.

    ``scores`` and ``relevant`` are (queries, clips); ``scenes`` names each clip's scene.
    A query without a relevant clip in a resample is left out of that resample's mean.
    None when there are fewer than two scenes (nothing to resample).
    """
    if scores.shape != relevant.shape or scores.shape[1] != len(scenes):
        raise ValueError("scores, relevant and scenes must describe the same clips")
    members: dict[Hashable, list[int]] = {}
    for i, scene in enumerate(scenes):
        members.setdefault(scene, []).append(i)
    groups = [np.asarray(v) for v in members.values()]
    if len(groups) < 2 or scores.shape[0] == 0:
        return None
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(resamples):
        picked = np.concatenate([groups[g] for g in rng.integers(len(groups), size=len(groups))])
        mean = mean_ap(scores[:, picked], relevant[:, picked])
        if mean is not None:
            means.append(mean)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return round(float(low), 4), round(float(high), 4)
