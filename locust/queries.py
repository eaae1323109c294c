"""Query pools for the load tests: unique free-form queries and a Zipf-popular subset.

Pure Python (no locust import), so the tests can check it. Queries are built from the
words users of a SynthUCF-like collection would type: a subject, a colour, a size, an
action, a speed, a background and a phrasing, giving tens of thousands of distinct
sentences; the pool is shuffled with a seed, so every run asks the same queries.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

SUBJECTS = {
    "ball": ("bouncing", "rolling left", "rolling right", "rolling", "moving"),
    "box": ("spinning", "growing", "shrinking", "turning", "getting bigger"),
    "square": ("spinning", "growing", "shrinking", "rotating"),
    "triangle": ("rising", "falling", "moving up", "moving down"),
    "star": ("blinking", "flashing", "appearing and disappearing"),
    "ring": ("orbiting", "going round in a circle", "circling"),
    "stripes": ("scrolling", "moving sideways", "sliding"),
    "dots": ("scattering", "spreading out", "exploding outwards"),
}
COLOURS = ("", "red", "green", "blue", "yellow", "white", "orange", "purple")
SIZES = ("", "small", "large", "medium-sized", "tiny", "big")
SPEEDS = ("", "fast", "slowly", "quickly", "at medium speed")
BACKGROUNDS = ("", "on a gradient background", "on a flat background", "on a noisy background")
PHRASINGS = ("{}", "a {}", "a video of a {}", "show me a {}", "clip of a {}", "the moment a {}")


def query_pool(size: int = 20_000, seed: int = 0) -> list[str]:
    """``size`` distinct queries in a seeded random order."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    sentences = []
    for (subject, actions), colour, size_word, speed, background in itertools.product(
        SUBJECTS.items(), COLOURS, SIZES, SPEEDS, BACKGROUNDS
    ):
        for action in actions:
            words = " ".join(w for w in (size_word, colour, subject, action, speed) if w)
            sentences.append(f"{words} {background}".strip())
    rng = random.Random(seed)
    rng.shuffle(sentences)
    out = []
    for i, sentence in enumerate(sentences):
        out.append(PHRASINGS[i % len(PHRASINGS)].format(sentence))
        if len(out) == size:
            return out
    raise ValueError(f"only {len(out)} distinct queries can be built, asked for {size}")


def zipf_weights(n: int, exponent: float = 1.1) -> list[float]:
    """Weights of the n most popular queries: rank r gets 1 / r**exponent."""
    return [1.0 / (rank**exponent) for rank in range(1, n + 1)]


def zipf_picker(pool: Sequence[str], n: int = 500, exponent: float = 1.1, seed: int = 0):  # type: ignore[no-untyped-def]
    """A function returning popular queries with Zipf frequencies (a cache's best case)."""
    popular = list(pool[:n])
    weights = zipf_weights(len(popular), exponent)
    rng = random.Random(seed)

    def pick() -> str:
        return rng.choices(popular, weights=weights, k=1)[0]

    return pick


if __name__ == "__main__":  # the pool, one query per line (for `clipsearch bench-text`)
    import sys

    print("\n".join(query_pool(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)))
