"""Moments of a video: fixed-length windows, the frames each one pools, and the winner.

A video of any length is cut into windows of ``window_s`` seconds every ``stride_s``
seconds (the last one ends at the video's end). Each window is sampled like a short
clip (``frames`` frames at the midpoints of equal parts) and pooled by the model's
head into one window vector. The video's own vector is the mean of its windows'
vectors (:func:`video_vector`): eight frames spread over a whole long video are too far
apart to show fast motion (a 9-s clip of a ball rolling every 2 s), while each window
sees it. With the default 2 s windows every 1 s and 6 frames, windows share their
frames (a grid of 3 frames per second), so a 7-second clip decodes 21 frames and a
7.2-second one 22; the whole-video view (poster, ``frame_times``) takes its frames from
that grid.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clipsearch.errors import InvalidInput
from clipsearch.settings import WINDOW_FRAMES
from clipsearch.video import interval_midpoints

# Times closer than this are one sample (float noise from window arithmetic).
_TIME_DECIMALS = 6
# A moment grows over the windows scoring within this fraction of the gap between its
# best window and the video's median one, or within the floor when that is more
# (chosen on moments sets of another seed).
MOMENT_SPREAD = 0.7
MOMENT_MIN_MARGIN = 0.1
# Stores cut before the frames a window pools were stamped pooled 8.
UNSTAMPED_FRAMES = 8


@dataclass(frozen=True)
class WindowPlan:
    """How videos are cut into moments."""

    window_s: float = 2.0
    stride_s: float = 1.0
    # longer videos get longer windows further apart, never more windows
    max_windows: int = 120
    frames: int = WINDOW_FRAMES

    def __post_init__(self) -> None:
        for name in ("window_s", "stride_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise InvalidInput(f"{name} must be a positive number of seconds, got {value}")
        if self.stride_s > self.window_s:
            raise InvalidInput(
                f"stride_s ({self.stride_s}) must not exceed window_s ({self.window_s}): "
                "parts of the video would belong to no moment"
            )
        for name, least in (("max_windows", 2), ("frames", 1)):
            count = getattr(self, name)
            if isinstance(count, bool) or not isinstance(count, int):
                raise InvalidInput(f"{name} must be an integer, got {count!r}")
            if count < least:
                raise InvalidInput(f"{name} must be at least {least}, got {count}")

    def windows(self, duration_s: float) -> list[tuple[float, float]]:
        """(start_s, end_s) of each window of a video lasting ``duration_s``."""
        duration = float(duration_s)
        if not math.isfinite(duration) or duration <= 0:
            raise InvalidInput(f"duration must be a positive number of seconds, got {duration_s}")
        if duration <= self.window_s + 1e-9:
            return [(0.0, duration)]
        span = duration - self.window_s
        n = math.floor(span / self.stride_s + 1e-9) + 1
        if n + 1 > self.max_windows:
            # longer windows, evenly spread: every second still belongs to some window
            stride = span / (self.max_windows - 1)
            length = max(self.window_s, stride)
            starts = [min(i * stride, duration - length) for i in range(self.max_windows)]
        else:
            length = self.window_s
            starts = [i * self.stride_s for i in range(n)]
            if starts[-1] < span - 0.5 * 10**-_TIME_DECIMALS:
                starts.append(span)
        out: list[tuple[float, float]] = []
        for s in starts:
            window = (round(s, _TIME_DECIMALS), round(min(s + length, duration), _TIME_DECIMALS))
            if not out or window != out[-1]:
                out.append(window)
        return out


def video_vector(window_vectors: np.ndarray) -> np.ndarray:
    """A video's unit vector from its windows' unit vectors (S, D): their mean, rescaled."""
    mean = np.asarray(window_vectors, dtype=np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


@dataclass(frozen=True)
class FrameLayout:
    """Which sampled frames make the whole-video view and each window.

    ``times`` are the sorted, distinct sample times; ``clip`` (at most num_frames,) and
    ``window_frames`` (S, plan.frames) index into them.
    """

    times: np.ndarray
    clip: np.ndarray
    windows: list[tuple[float, float]]
    window_frames: np.ndarray


def frame_layout(duration_s: float, num_frames: int, plan: WindowPlan) -> FrameLayout:
    """The sample times of a video and how its views share them.

    Only the windows' frames are decoded, on one grid (``window_s / plan.frames`` apart):
    the last window, which ends at the video's end, takes the grid times nearest its own
    midpoints (within half a step), so it adds at most a frame or two. The whole-video
    view (the poster and the stored ``frame_times``) takes, for each of its ``num_frames``
    midpoints, the nearest frame, each frame once. A video no longer than one window has
    that window's frames, which are the midpoints themselves."""
    windows = plan.windows(duration_s)
    window_times = np.stack([s + interval_midpoints(e - s, plan.frames) for s, e in windows])
    step = plan.window_s / plan.frames
    if len(windows) > 1 and all(abs(e - s - plan.window_s) < 1e-9 for s, e in windows):
        # full-length windows sample one grid of times: the last one, which ends at the
        # video's end wherever that falls, takes the grid times nearest its own
        window_times = np.floor((window_times - step / 2) / step + 0.5) * step + step / 2
    times, inverse = np.unique(np.round(window_times.ravel(), _TIME_DECIMALS), return_inverse=True)
    return FrameLayout(
        times=times,
        clip=np.unique(nearest(times, interval_midpoints(duration_s, num_frames))),
        windows=windows,
        window_frames=inverse.reshape(len(windows), plan.frames),
    )


def nearest(times: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target, the index of the nearest of the sorted ``times`` (the earlier one
    on a tie)."""
    if len(times) == 1:
        return np.zeros(len(targets), dtype=np.intp)
    right = np.clip(np.searchsorted(times, targets), 1, len(times) - 1)
    left = right - 1
    later = np.abs(times[right] - targets) < np.abs(targets - times[left])
    return np.where(later, right, left).astype(np.intp)


@dataclass(frozen=True)
class LayoutTimes:
    """``times(duration)`` for :func:`clipsearch.video.sample_frames` (picklable)."""

    num_frames: int
    plan: WindowPlan

    def __call__(self, duration_s: float) -> np.ndarray:
        return frame_layout(duration_s, self.num_frames, self.plan).times


@dataclass(frozen=True)
class Moment:
    """The best-matching window of one video for one query."""

    index: int
    start_s: float
    end_s: float
    score: float


def window_scores(windows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine of each unit window vector (S, D) with the unit query (D,) or (Q, D).

    For a multi-vector query the score of a window is its best match among the
    query vectors.
    """
    q = np.asarray(query, dtype=np.float32)
    return _cosines(np.asarray(windows, dtype=np.float32), q).astype(np.float64)


def _cosines(windows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """:func:`window_scores` in float32 of float32 arrays: one product for a single query
    vector (a server's common case: each NumPy call holds the GIL)."""
    if query.ndim == 1:
        return windows @ query
    return (windows @ query.T).max(axis=1)


def video_scores(scores: np.ndarray, lengths: Sequence[int] | None = None) -> np.ndarray:
    """Videos' scores from their windows' scores: the best mean of three neighbouring
    windows' scores (an end window stands in for the neighbour it lacks; a video of one
    window scores that window).

    ``scores`` (N,) or (N, Q), one row per window, holds one video's windows or, with
    ``lengths`` (each at least 1), several videos' end to end; the answer has one row per
    video, (V,) or (V, Q).

    An action lasts, so it scores high over neighbouring windows; one window that scores
    high beside low ones (a transition, a scene that only looks like the query) counts
    for a third. Ranked this way, moments and trimmed clips are both found more often
    than by the best window alone (README, "Videos ranked by three windows").
    """
    values = np.asarray(scores, dtype=np.float64)
    sizes = np.asarray([len(values)] if lengths is None else lengths, dtype=np.intp)
    if values.ndim not in (1, 2) or len(values) == 0 or len(sizes) == 0 or sizes.min() < 1:
        raise InvalidInput(f"need the scores of one or more windows, got shape {values.shape}")
    if int(sizes.sum()) != len(values):
        raise InvalidInput(f"{len(values)} window scores for {int(sizes.sum())} windows")
    ends = np.cumsum(sizes)
    starts = ends - sizes
    left = np.arange(-1, len(values) - 1)
    left[starts] = starts
    right = np.arange(1, len(values) + 1)
    right[ends - 1] = ends - 1
    stretch = (values[left] + values + values[right]) / 3
    return np.asarray(np.maximum.reduceat(stretch, starts, axis=0))


def score_videos(windows: Sequence[np.ndarray], query: np.ndarray) -> np.ndarray:
    """:func:`video_scores` of several videos for one or more query vectors (as
    :func:`window_scores` takes them), from their window vectors (each (S_i, D), S_i >= 1)
    -> (V,)."""
    # One small product per video, not one over their concatenation: copying that many
    # floats makes NumPy let go of the GIL, and under a server's load each such release
    # costs the request a wait of a switch interval (5 ms) or more to get it back.
    q = np.asarray(query, dtype=np.float32)
    scores = np.concatenate([_cosines(np.asarray(w, dtype=np.float32), q) for w in windows])
    return video_scores(scores.astype(np.float64), [len(w) for w in windows])


def video_score(scores: Sequence[float] | np.ndarray) -> float:
    """:func:`video_scores` of one video for one query: its windows' scores (S,) -> its own."""
    return float(video_scores(np.asarray(scores, dtype=np.float64).reshape(-1))[0])


def best_moment(
    scores: Sequence[float] | np.ndarray,
    windows: Sequence[Sequence[float]],
    *,
    spread: float = MOMENT_SPREAD,
    min_margin: float = MOMENT_MIN_MARGIN,
) -> Moment:
    """The top-scoring window, grown over the neighbouring windows that score nearly as well.

    Overlapping windows of one action all score alike, so the moment is the contiguous
    run of windows around the winner scoring within ``margin`` of it, where ``margin``
    is ``spread`` times the gap between the winner and the video's median window
    (at least ``min_margin``: a video showing one action throughout is one moment).
    The moment spans the run's windows, from the first one's start to the last one's end.
    """
    vals = _score_list(scores, windows)
    best = max(range(len(vals)), key=vals.__getitem__)
    return _grow(vals, windows, best, 0, len(vals) - 1, spread, min_margin)[0]


def grow_moment(
    scores: Sequence[float] | np.ndarray,
    windows: Sequence[Sequence[float]],
    best: int,
    *,
    lo: int = 0,
    hi: int | None = None,
    spread: float = MOMENT_SPREAD,
    min_margin: float = MOMENT_MIN_MARGIN,
) -> tuple[Moment, int, int]:
    """Window ``best`` grown as :func:`best_moment` grows its winner, but only over the
    windows ``lo..hi`` (inclusive; the margin still comes from the whole video's median),
    with the first and last window of the run it grew over."""
    vals = _score_list(scores, windows)
    last = len(vals) - 1 if hi is None else hi
    if not 0 <= lo <= best <= last < len(vals):
        raise InvalidInput(f"window {best} is not within {lo}..{last} of {len(vals)} windows")
    return _grow(vals, windows, best, lo, last, spread, min_margin)


def _score_list(
    scores: Sequence[float] | np.ndarray, windows: Sequence[Sequence[float]]
) -> list[float]:
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0 or len(values) != len(windows):
        raise InvalidInput(
            f"need one score per window, got {values.shape} scores for {len(windows)} windows"
        )
    # plain floats: a video has at most a few hundred windows, and numpy's per-call
    # overhead would dominate (this runs for every result of every query)
    out: list[float] = values.tolist()
    return out


def _grow(
    vals: list[float],
    windows: Sequence[Sequence[float]],
    best: int,
    first: int,
    last: int,
    spread: float,
    min_margin: float,
) -> tuple[Moment, int, int]:
    top = vals[best]
    margin = max(spread * (top - statistics.median(vals)), min_margin)
    lo = hi = best
    while lo > first and vals[lo - 1] >= top - margin:
        lo -= 1
    while hi < last and vals[hi + 1] >= top - margin:
        hi += 1
    return Moment(best, float(windows[lo][0]), float(windows[hi][1]), top), lo, hi


def temporal_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two time spans (start, end)."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0
