"""How far a figure could move with other scenes: a bootstrap over scenes.

Test clips come in scenes (a UCF101 group, or a SynthUCF class x group: one
background, object colour, size and speed), and clips of a scene are near-copies, so
a split's 336 clips are about 84 independent draws. Drawing whole scenes again with
replacement, and computing the figure on each draw, gives the interval that another
test list of the same kind could give the same model.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np

LEVEL = 0.9
RESAMPLES = 200


def scene_interval(
    figure: Callable[[np.ndarray], float | None],
    scenes: Sequence[Hashable],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, float] | None:
    """The central ``level`` interval of ``figure`` over ``resamples`` draws of scenes.

    ``scenes`` names each clip's scene; ``figure`` gets the clip indices of one draw
    (whole scenes, with replacement) and returns the figure on them, or None when it
    has none there. None when there are fewer than two scenes or no draw had a figure.
    """
    members: dict[Hashable, list[int]] = {}
    for i, scene in enumerate(scenes):
        members.setdefault(scene, []).append(i)
    groups = [np.asarray(v) for v in members.values()]
    if len(groups) < 2:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        picked = np.concatenate([groups[g] for g in rng.integers(len(groups), size=len(groups))])
        value = figure(picked)
        if value is not None:
            values.append(value)
    if not values:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return round(float(low), 4), round(float(high), 4)
