"""Collapsing near-duplicate results: one result per scene, the others folded into it.

UCF101 clips of one class and group (``v_Class_gNN_cMM``) are cut from one source video,
so a page of results is often several near-copies of one scene. Three modes:

* ``none``: every result, as ranked.
* ``group``: results of the same (``class``, ``group``) payload fold into the best-ranked
  one. A video without a class or a group (a loose file) never folds by this rule.
* ``near``: a result whose pooled (whole-video) vector has cosine >= a threshold with a
  result kept before it folds into the best-ranked such one.

The ``near`` threshold comes from the store's own vectors (:func:`near_threshold`):

* **With groups** (at least two distinct (class, group) keys): each sampled grouped
  video's nearest neighbour among videos of *another* group is a pair known not to be
  copies of each other. The threshold is the lowest cosine that at most ``NEAR_FPR``
  (1 %) of those nearest-neighbour similarities reach: just above (by ``TOLERANCE``, a
  float32 rounding margin) the ``floor(0.01 * n) + 1``-th highest of them, so about the
  99th percentile, and above the highest one when fewer than 100 videos were sampled.
  This is the rule ``clipsearch calibrate`` uses for "no good match" (the score at most
  1 % of irrelevant pairs reach), applied to "distinct videos".
* **Without groups** (a library of loose files): copies are the outliers of the
  nearest-neighbour similarity distribution, so the threshold is Tukey's upper fence of
  every sampled video's nearest-neighbour cosine, ``Q3 + 1.5 * IQR`` (at most 1).
* Too few videos for either rule (fewer than two groups and fewer than
  ``MIN_OUTLIER_VIDEOS`` videos): no threshold, and ``near`` folds nothing.

Folding is greedy in rank order, so it is stable under paging: the kept results of a
longer ranking start with those of a shorter one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from clipsearch.errors import InvalidInput

COLLAPSE_MODES = ("none", "group", "near")
NEAR_FPR = 0.01  # share of distinct (other-group) nearest neighbours above the threshold
NEAR_SAMPLE = 2048  # videos whose nearest neighbour is looked for (evenly over id order)
MIN_OUTLIER_VIDEOS = 4  # the outlier rule needs a distribution to speak of
CANDIDATE_FACTOR = 4  # candidates fetched per wanted kept result at first (then doubled)
TOLERANCE = 1e-5  # cosines computed in float32 differ by a few 1e-7 between code paths
_BLOCK = 512  # rows of the similarity matrix computed at once


def validate_collapse(value: object, default: str = "none") -> str:
    """A collapse mode (``none``, ``group`` or ``near``; None or blank: ``default``), or
    ``InvalidInput`` (``invalid_collapse``)."""
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.strip().lower() in COLLAPSE_MODES:
        return value.strip().lower()
    raise InvalidInput(
        f"collapse must be one of {', '.join(COLLAPSE_MODES)}, got {value!r}",
        code="invalid_collapse",
    )


def validate_near_threshold(value: float | None) -> float | None:
    """An explicit ``near`` threshold: a finite cosine in [-1, 1], or None (from the data)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not -1 <= value <= 1:
        raise InvalidInput(
            f"near_threshold must be a cosine between -1 and 1, got {value!r}",
            code="invalid_near_threshold",
        )
    return float(value)


def group_key(payload: Mapping[str, Any]) -> Hashable | None:
    """The (class, group) a video was cut from, or None for a video without either."""
    cls, group = payload.get("class"), payload.get("group")
    if cls is None or group is None or cls == "":
        return None
    return (str(cls), str(group))


@dataclass(frozen=True)
class Kept:
    """A result kept after collapsing: its position in the ranking and those of the
    results folded into it (in rank order)."""

    index: int
    folded: tuple[int, ...] = ()


def fold_groups(keys: Sequence[Hashable | None]) -> list[Kept]:
    """Collapse by key: the first result of each key is kept, later ones fold into it;
    a None key is always kept and never folds anything."""
    kept: list[tuple[int, list[int]]] = []
    owner: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        if key is not None and key in owner:
            owner[key].append(i)
            continue
        folded: list[int] = []
        kept.append((i, folded))
        if key is not None:
            owner[key] = folded
    return [Kept(i, tuple(f)) for i, f in kept]


def fold_near(vectors: Sequence[np.ndarray | None], threshold: float | None) -> list[Kept]:
    """Collapse by similarity: a result whose vector has cosine >= ``threshold`` with a
    kept one folds into the best-ranked such one; a result without a vector (or with no
    threshold at all) is always kept."""
    kept: list[tuple[int, list[int]]] = []
    rows: list[np.ndarray] = []  # unit vectors of the kept results that have one
    owners: list[int] = []  # their positions in ``kept``
    for i, vector in enumerate(vectors):
        unit = _unit(vector) if vector is not None and threshold is not None else None
        if unit is not None and rows:
            sims = np.stack(rows) @ unit
            close = np.flatnonzero(sims >= threshold)
            if close.size:
                kept[owners[int(close[0])]][1].append(i)
                continue
        kept.append((i, []))
        if unit is not None:
            rows.append(unit)
            owners.append(len(kept) - 1)
    return [Kept(i, tuple(f)) for i, f in kept]


def _unit(vector: np.ndarray) -> np.ndarray | None:
    v = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(v))
    return v / norm if v.size and np.isfinite(norm) and norm > 0 else None


# --------------------------------------------------------------------------- threshold


@dataclass(frozen=True)
class NearThreshold:
    """A ``near`` threshold and how it was found: ``rule`` is ``groups`` (the 99th
    percentile of other-group nearest neighbours), ``outliers`` (Tukey's fence),
    ``override`` (set by hand) or ``none`` (too few videos: ``value`` is None)."""

    value: float | None
    rule: str
    samples: int = 0


def near_threshold(
    vectors: np.ndarray,
    keys: Sequence[Hashable | None],
    *,
    fpr: float = NEAR_FPR,
    sample: int = NEAR_SAMPLE,
) -> NearThreshold:
    """The ``near`` threshold of a store's pooled vectors (N, D) and their group keys
    (see the module's docstring for the rule)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    n = len(matrix)
    if n != len(keys):
        raise ValueError(f"{n} vectors but {len(keys)} keys")
    if n < 2:
        return NearThreshold(None, "none")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    codes = _codes(keys)
    grouped = np.flatnonzero(codes >= 0)
    if len(np.unique(codes[grouped])) >= 2:
        queries = _spread(grouped, sample)
        best = np.sort(_nearest(matrix, codes, queries, other_group=True))
        allowed = int(fpr * len(best))  # distinct videos that may reach the threshold
        value = float(best[len(best) - allowed - 1]) + TOLERANCE
        return NearThreshold(min(value, 1.0), "groups", len(best))
    if n < MIN_OUTLIER_VIDEOS:
        return NearThreshold(None, "none")
    queries = _spread(np.arange(n), sample)
    best = _nearest(matrix, codes, queries, other_group=False)
    q1, q3 = np.quantile(best, [0.25, 0.75])
    return NearThreshold(min(float(q3 + 1.5 * (q3 - q1)), 1.0), "outliers", len(best))


def _codes(keys: Sequence[Hashable | None]) -> np.ndarray:
    """An integer per key (-1 for None)."""
    index: dict[Hashable, int] = {}
    return np.array(
        [-1 if k is None else index.setdefault(k, len(index)) for k in keys], dtype=np.int64
    )


def _spread(indices: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` of ``indices``, evenly spaced (deterministic)."""
    if len(indices) <= limit:
        return indices
    return indices[np.linspace(0, len(indices) - 1, limit).round().astype(np.int64)]


def _nearest(
    matrix: np.ndarray, codes: np.ndarray, queries: np.ndarray, *, other_group: bool
) -> np.ndarray:
    """Each query row's highest cosine with another video: with ``other_group`` only
    with grouped videos of another group (-inf when there is none)."""
    out = np.empty(len(queries), dtype=np.float64)
    for start in range(0, len(queries), _BLOCK):
        rows = queries[start : start + _BLOCK]
        sims = matrix[rows] @ matrix.T
        sims[np.arange(len(rows)), rows] = -np.inf  # not itself
        if other_group:
            same = codes[rows][:, None] == codes[None, :]
            sims[same | (codes[None, :] < 0)] = -np.inf
        out[start : start + len(rows)] = sims.max(axis=1)
    return out


# --------------------------------------------------------------------------- paging


class Ranked(Protocol):
    """A ranked search result: an id and a payload."""

    @property
    def id(self) -> str: ...

    @property
    def payload(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=Ranked)


@dataclass(frozen=True)
class Collapsed(Generic[R]):
    """A kept result, its position in the full ranking and the ids folded into it."""

    item: R
    rank: int
    folded: tuple[str, ...]


@dataclass(frozen=True)
class CollapsedPage(Generic[R]):
    """One page of kept results, whether more follow, and every candidate looked at."""

    results: list[Collapsed[R]]
    has_next: bool
    candidates: int


def collapse_page(
    fetch: Callable[[int], tuple[list[R], bool]],
    mode: str,
    *,
    offset: int,
    k: int,
    max_candidates: int,
    first: int = 0,
    vectors: Callable[[Sequence[str]], Mapping[str, np.ndarray]] | None = None,
    threshold: float | None = None,
) -> CollapsedPage[R]:
    """Kept results ``[offset : offset + k]`` of a ranking fetched by ``fetch(n)`` (the
    best ``n`` results and whether that is all of them), collapsed by ``mode``.

    Candidates grow from ``max(first, CANDIDATE_FACTOR * (offset + k + 1))``, doubling
    until ``offset + k + 1`` results are kept, the ranking is exhausted or
    ``max(max_candidates, offset + k + 1)`` were looked at. ``near`` reads the pooled
    vectors of the candidates through ``vectors(ids)`` (each id once).
    """
    need = offset + k + 1  # one more kept result says whether a next page exists
    cap = max(max_candidates, need)
    n = min(max(first, CANDIDATE_FACTOR * need), cap)
    known: dict[str, np.ndarray | None] = {}
    while True:
        ranked, exhausted = fetch(n)
        if mode == "near":
            missing = [r.id for r in ranked if r.id not in known]
            found = vectors(missing) if vectors is not None and missing else {}
            known.update({i: found.get(i) for i in missing})
            kept = fold_near([known[r.id] for r in ranked], threshold)
        elif mode == "group":
            kept = fold_groups([group_key(r.payload) for r in ranked])
        else:
            kept = [Kept(i) for i in range(len(ranked))]
        if len(kept) >= need or exhausted or n >= cap:
            break
        n = min(2 * n, cap)
    page = [
        Collapsed(ranked[c.index], c.index, tuple(ranked[i].id for i in c.folded))
        for c in kept[offset : offset + k]
    ]
    return CollapsedPage(page, len(kept) > offset + k, len(ranked))
