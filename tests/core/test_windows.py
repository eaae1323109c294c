"""Moments: window plans, the frame layout they share, the winning window and its pooling.

Pure helpers are checked on hand-computed cases; ``sample_frames(times=LayoutTimes(...))``
on a small clip whose frames carry their index in the pixels (so the frame shown at each
sample time can be identified after compression); the view pooling on the tiny model.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import av
import numpy as np
import pytest
from motionhead import motion_encoder
from test_video import pattern, read_index  # frames that say their own index

from clipsearch.errors import InvalidInput
from clipsearch.model import ClipEncoder, load_model
from clipsearch.pipeline.embed import EmbeddedClip, embed_clips
from clipsearch.video import interval_midpoints, sample_frames
from clipsearch.windows import (
    LayoutTimes,
    Moment,
    WindowPlan,
    best_moment,
    frame_layout,
    nearest,
    score_videos,
    temporal_iou,
    video_score,
    video_scores,
    video_vector,
    window_scores,
)

FPS = 25
N_FRAMES = 80  # 3.2 s at 25 fps


# --------------------------------------------------------------------------- helpers


def write_clip(
    path: Path, n_frames: int, *, fps: int = FPS, size: tuple[int, int] = (128, 96)
) -> Path:
    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(pattern(i, width, height), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("segclips") / "index.avi", N_FRAMES)


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> ClipEncoder:
    return load_model(tiny_model_dir, towers="vision")


def covered(windows: list[tuple[float, float]], duration: float) -> bool:
    """Whether the windows' union is the whole [0, duration] (sorted by start)."""
    reach = 0.0
    for s, e in windows:
        if s > reach + 1e-6:
            return False
        reach = max(reach, e)
    return abs(reach - duration) < 1e-6


# --------------------------------------------------------------------------- window plans


def test_default_plan() -> None:
    plan = WindowPlan()
    assert (plan.window_s, plan.stride_s, plan.max_windows) == (2.0, 1.0, 120)


@pytest.mark.parametrize("duration", [0.04, 1.0, 1.99, 2.0])
def test_a_video_no_longer_than_a_window_is_one_window(duration: float) -> None:
    assert WindowPlan().windows(duration) == [(0.0, duration)]


def test_exact_multiples_of_the_stride() -> None:
    assert WindowPlan().windows(5.0) == [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (3.0, 5.0)]
    assert WindowPlan(window_s=2.0, stride_s=2.0).windows(6.0) == [
        (0.0, 2.0),
        (2.0, 4.0),
        (4.0, 6.0),
    ]
    # float steps that are not exact in binary still land on the duration
    windows = WindowPlan(window_s=0.3, stride_s=0.1).windows(1.0)
    assert len(windows) == 8
    np.testing.assert_allclose([s for s, _ in windows], np.arange(8) * 0.1, atol=1e-9)
    assert windows[-1] == (0.7, 1.0)


@pytest.mark.parametrize(
    ("plan", "duration", "expected"),
    [
        (WindowPlan(), 5.5, [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (3.0, 5.0), (3.5, 5.5)]),
        (WindowPlan(), 3.04, [(0.0, 2.0), (1.0, 3.0), (1.04, 3.04)]),
        (
            WindowPlan(window_s=3.0, stride_s=1.5),
            7.0,
            [(0.0, 3.0), (1.5, 4.5), (3.0, 6.0), (4.0, 7.0)],
        ),
    ],
)
def test_the_last_window_ends_at_the_duration(
    plan: WindowPlan, duration: float, expected: list[tuple[float, float]]
) -> None:
    windows = plan.windows(duration)
    assert windows == expected
    assert windows[-1][1] == pytest.approx(duration)
    assert all(e - s == pytest.approx(plan.window_s) for s, e in windows)
    assert covered(windows, duration)


def test_windows_are_plain_numbers() -> None:
    for duration in (7.0, 500.0):
        for s, e in WindowPlan().windows(duration):
            assert isinstance(s, float) and isinstance(e, float)
            assert math.isfinite(s) and math.isfinite(e)


@pytest.mark.parametrize("duration", [59.8, 60.0, 200.0])
def test_long_videos_are_capped_and_covered(duration: float) -> None:
    plan = WindowPlan()
    windows = plan.windows(duration)
    assert len(windows) <= plan.max_windows
    if duration >= 200:
        assert len(windows) == plan.max_windows
    starts = [s for s, _ in windows]
    assert starts[0] == 0.0 and windows[-1][1] == pytest.approx(duration)
    assert all(b > a for a, b in itertools.pairwise(starts))
    assert all(e - s == pytest.approx(plan.window_s) for s, e in windows)
    assert covered(windows, duration)


def test_the_cap_spreads_windows_evenly() -> None:
    plan = WindowPlan(window_s=2.0, stride_s=1.0, max_windows=3)
    # 3 windows of 2 s cannot cover 10 s: they widen to the stride and end at the end
    assert plan.windows(10.0) == [(0.0, 4.0), (4.0, 8.0), (6.0, 10.0)]
    assert len(WindowPlan(max_windows=2).windows(50.0)) == 2


def test_capped_windows_still_cover_a_very_long_video() -> None:
    duration = 1000.0  # 120 windows of 2 s cannot cover 1000 s without widening them
    assert covered(WindowPlan().windows(duration), duration)


def test_windows_are_distinct_just_past_a_stride() -> None:
    windows = WindowPlan().windows(3.0000001)
    assert len(set(windows)) == len(windows), windows


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_s": 0}, "window_s must be a positive number"),
        ({"window_s": -2.0}, "window_s must be a positive number"),
        ({"window_s": float("nan")}, "window_s must be a positive number"),
        ({"window_s": float("inf")}, "window_s must be a positive number"),
        ({"stride_s": 0.0}, "stride_s must be a positive number"),
        ({"window_s": "2"}, "window_s must be a number"),
        ({"stride_s": True}, "stride_s must be a number"),
        ({"window_s": 1.0, "stride_s": 1.5}, r"stride_s \(1.5\) must not exceed window_s \(1.0\)"),
        ({"max_windows": 1}, "max_windows must be at least 2"),
        ({"max_windows": 2.5}, "max_windows must be an integer"),
        ({"max_windows": True}, "max_windows must be an integer"),
    ],
)
def test_invalid_plans_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        WindowPlan(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("duration", [0.0, -1.0, float("nan"), float("inf")])
def test_invalid_durations(duration: float) -> None:
    with pytest.raises(InvalidInput, match="duration must be a positive number"):
        WindowPlan().windows(duration)


def test_stride_equal_to_window_is_allowed() -> None:
    assert WindowPlan(window_s=1.0, stride_s=1.0).windows(3.0) == [
        (0.0, 1.0),
        (1.0, 2.0),
        (2.0, 3.0),
    ]


# --------------------------------------------------------------------------- frame layout


def test_frame_layout_indices_point_at_the_right_times() -> None:
    plan = WindowPlan()
    assert plan.frames == 6
    layout = frame_layout(7.0, 8, plan)
    assert layout.windows == plan.windows(7.0)
    times = layout.times
    assert np.all(np.diff(times) > 0)  # sorted, distinct
    # the docstring's example: only the windows' frames, 3 a second: 21
    assert len(times) == 21
    assert layout.window_frames.shape == (len(layout.windows), 6)
    for (s, e), rows in zip(layout.windows, layout.window_frames, strict=True):
        np.testing.assert_allclose(times[rows], s + interval_midpoints(e - s, 6), atol=1e-6)
    # every time belongs to a window; the clip view takes the nearest of them
    assert set(layout.window_frames.ravel().tolist()) == set(range(len(times)))
    wanted = interval_midpoints(7.0, 8)
    gaps = np.abs(times[layout.clip] - wanted)
    assert np.all(gaps <= 1 / 6 + 1e-9)  # half the grid's step
    assert np.all(gaps <= np.abs(times[:, None] - wanted[None]).min(axis=0) + 1e-9)
    assert np.all(np.diff(layout.clip) > 0)  # in order, no frame twice
    # 8 frames a window: the grid of 4 a second
    eight = frame_layout(7.0, 8, WindowPlan(frames=8))
    assert len(eight.times) == 28 and eight.window_frames.shape == (len(layout.windows), 8)


def test_overlapping_windows_share_frames() -> None:
    layout = frame_layout(4.0, 8, WindowPlan(frames=8))
    w = layout.window_frames
    # windows (0,2) and (1,3): the second half of one is the first half of the next
    assert list(w[0, 4:]) == list(w[1, :4])
    assert list(w[1, 4:]) == list(w[2, :4])
    assert not set(w[0]) & set(w[2])
    # without overlap nothing is shared between windows
    apart = frame_layout(4.0, 8, WindowPlan(window_s=2.0, stride_s=2.0, frames=8))
    assert not set(apart.window_frames[0]) & set(apart.window_frames[1])
    assert len(apart.times) == 16  # 16 window times on a 0.25 s grid
    assert len(layout.times) == 16  # the overlapping plan samples no more frames


def test_frame_layout_of_a_short_video_reuses_the_clip_times() -> None:
    layout = frame_layout(1.5, 8, WindowPlan(frames=8))
    assert layout.windows == [(0.0, 1.5)]
    # one window spanning the whole clip samples the same times as the clip view
    assert list(layout.window_frames[0]) == list(layout.clip)
    assert len(layout.times) == 8
    # a window of fewer frames than the clip view: the view takes each of them once
    fewer = frame_layout(1.5, 8, WindowPlan())
    assert len(fewer.times) == 6 and list(fewer.clip) == list(range(6))


def test_window_frames_must_be_a_positive_integer() -> None:
    for bad in (0, -2):
        with pytest.raises(InvalidInput, match="frames must be at least 1"):
            WindowPlan(frames=bad)
    for bad in (2.5, True, "6"):
        with pytest.raises(InvalidInput, match="frames must be an integer"):
            WindowPlan(frames=bad)  # type: ignore[arg-type]


def test_layout_times_is_the_layout_and_picklable() -> None:
    import pickle

    lt = LayoutTimes(8, WindowPlan(window_s=3.0, stride_s=1.5))
    np.testing.assert_array_equal(lt(9.0), frame_layout(9.0, 8, lt.plan).times)
    again = pickle.loads(pickle.dumps(lt))
    np.testing.assert_array_equal(again(9.0), lt(9.0))


# --------------------------------------------------------------------------- best moment


WINDOWS = [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (3.0, 5.0), (4.0, 6.0)]  # centres 1..5
EXACT = {"spread": 0.0, "min_margin": 0.0}  # no growth: only ties join the winner


def test_best_moment_is_the_argmax() -> None:
    # a lone winner is its own window
    m = best_moment([0.1, 0.3, 0.9, 0.2, 0.5], WINDOWS, **EXACT)
    assert m == Moment(2, 2.0, 4.0, 0.9)
    assert best_moment(np.array([0.7, 0.1, 0.1, 0.1, 0.1]), WINDOWS, **EXACT) == Moment(
        0, 0.0, 2.0, 0.7
    )
    assert best_moment([0.1, 0.1, 0.1, 0.1, 0.7], WINDOWS, **EXACT) == Moment(4, 4.0, 6.0, 0.7)
    # ties: the first one wins
    assert best_moment([0.5, 0.9, 0.2, 0.9, 0.1], WINDOWS, **EXACT).index == 1
    # one window is the whole video
    assert best_moment([0.3], [(0.0, 1.7)]) == Moment(0, 0.0, 1.7, 0.3)


def test_best_moment_with_uneven_windows() -> None:
    windows = WindowPlan().windows(5.5)  # ..., (3, 5), (3.5, 5.5): the last one shifted
    m = best_moment([0.0, 0.0, 0.0, 0.9, 0.0], windows, **EXACT)
    assert (m.index, m.start_s, m.end_s) == (3, 3.0, 5.0)
    last = best_moment([0.0, 0.0, 0.0, 0.8, 0.9], windows, spread=0.0, min_margin=0.1)
    assert (last.index, last.start_s, last.end_s) == (4, 3.0, 5.5)


def test_a_moment_grows_over_contiguous_near_ties_only() -> None:
    fixed = {"spread": 0.0, "min_margin": 0.02}  # margin 0.02 whatever the scores
    scores = [0.50, 0.89, 0.90, 0.885, 0.40]
    grown = best_moment(scores, WINDOWS, **fixed)
    assert grown == Moment(2, 1.0, 5.0, 0.90)  # windows 1..3, from 1's start to 3's end
    # a dip stops the growth even if a window further away ties again
    dipped = best_moment([0.90, 0.50, 0.90, 0.89, 0.10], WINDOWS, **fixed)
    assert (dipped.index, dipped.start_s, dipped.end_s) == (0, 0.0, 2.0)
    dipped = best_moment([0.10, 0.89, 0.95, 0.50, 0.94], WINDOWS, **fixed)
    assert (dipped.index, dipped.start_s, dipped.end_s) == (2, 2.0, 4.0)
    # the margin is inclusive (exact binary fractions)
    inclusive = best_moment([0.75, 1.0, 0.75, 0.0, 0.0], WINDOWS, spread=0.0, min_margin=0.25)
    assert (inclusive.start_s, inclusive.end_s) == (0.0, 4.0)


def test_the_margin_is_a_share_of_the_gap_to_the_median() -> None:
    scores = [0.1, 0.2, 0.8, 0.7, 0.1]  # median 0.2: gap 0.6
    # spread 0.5 -> margin 0.3 -> windows scoring >= 0.5 join: window 3, not window 1
    m = best_moment(scores, WINDOWS, spread=0.5, min_margin=0.0)
    assert (m.index, m.start_s, m.end_s) == (2, 2.0, 5.0)
    # spread 0.1 -> margin 0.06: the winner alone
    assert best_moment(scores, WINDOWS, spread=0.1, min_margin=0.0).end_s == 4.0
    # spread 1.0 -> margin 0.6: down to 0.2, so window 1 joins but not the 0.1 ends
    wide = best_moment(scores, WINDOWS, spread=1.0, min_margin=0.0)
    assert (wide.start_s, wide.end_s) == (1.0, 5.0)


def test_a_flat_video_is_one_moment() -> None:
    flat = [0.50, 0.52, 0.55, 0.53, 0.51]  # gap to the median 0.03: the floor decides
    m = best_moment(flat, WINDOWS)  # defaults: spread 0.7, min_margin 0.1
    assert (m.index, m.start_s, m.end_s, m.score) == (2, 0.0, 6.0, 0.55)
    # without the floor, a margin of 0.7 x 0.03 takes in window 3 (0.53) only
    loose = best_moment(flat, WINDOWS, min_margin=0.0)
    assert (loose.start_s, loose.end_s) == (2.0, 5.0)
    # the defaults still isolate a clear peak
    peak = best_moment([0.1, 0.1, 0.6, 0.1, 0.1], WINDOWS)
    assert (peak.start_s, peak.end_s) == (2.0, 4.0)
    # and join a neighbour within 0.7 of the gap to the median (0.5 -> margin 0.35)
    shoulder = best_moment([0.1, 0.1, 0.6, 0.3, 0.1], WINDOWS)
    assert (shoulder.start_s, shoulder.end_s) == (2.0, 5.0)


def test_best_moment_needs_one_score_per_window() -> None:
    for scores in ([], [0.1, 0.2], np.zeros((5, 1))):
        with pytest.raises(InvalidInput, match="one score per window"):
            best_moment(scores, WINDOWS)


# --------------------------------------------------------------------------- tIoU and scores


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ((0.0, 2.0), (0.0, 2.0), 1.0),
        ((0.0, 2.0), (1.0, 3.0), 1.0 / 3.0),
        ((0.0, 4.0), (1.0, 2.0), 0.25),
        ((0.0, 1.0), (2.0, 3.0), 0.0),
        ((0.0, 1.0), (1.0, 2.0), 0.0),  # touching
        ((3.0, 5.0), (0.0, 4.0), 0.2),
        ((1.0, 1.0), (1.0, 1.0), 0.0),  # empty spans
    ],
)
def test_temporal_iou(a: tuple[float, float], b: tuple[float, float], iou: float) -> None:
    assert temporal_iou(a, b) == pytest.approx(iou)
    assert temporal_iou(b, a) == pytest.approx(iou)


def test_window_scores_single_and_multi_vector_queries() -> None:
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(5, 16)).astype(np.float32)
    windows /= np.linalg.norm(windows, axis=1, keepdims=True)
    q = rng.normal(size=(3, 16)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)

    single = window_scores(windows, q[0])
    assert single.shape == (5,) and single.dtype == np.float64
    np.testing.assert_allclose(single, windows.astype(np.float64) @ q[0], atol=1e-6)
    multi = window_scores(windows, q)
    assert multi.shape == (5,)
    np.testing.assert_allclose(multi, (windows @ q.T).max(axis=1), atol=1e-6)
    assert np.all(multi >= single - 1e-7)
    # a window equal to a query vector scores 1
    exact = window_scores(np.vstack([windows, q[2]]), q)
    assert exact[-1] == pytest.approx(1.0, abs=1e-6) and int(np.argmax(exact)) == 5
    np.testing.assert_allclose(window_scores(windows, q[None, 1]), windows @ q[1], atol=1e-6)


def test_a_video_scores_its_best_three_neighbouring_windows() -> None:
    assert video_score([0.4]) == pytest.approx(0.4)
    # an end window counts again for the neighbour it lacks
    assert video_score([0.9, 0.3]) == pytest.approx(0.7)
    assert video_score([0.1, 0.2, 0.6]) == pytest.approx((0.2 + 0.6 + 0.6) / 3)
    # a lone high window between low ones counts for a third; a lasting action does not fade
    blip = [0.2, 0.2, 0.9, 0.2, 0.2]
    lasting = [0.2, 0.7, 0.7, 0.7, 0.2]
    assert video_score(blip) == pytest.approx(1.3 / 3)
    assert video_score(lasting) == pytest.approx(0.7)
    assert max(blip) > max(lasting) and video_score(lasting) > video_score(blip)
    # a video never scores above its best window, and a flat one scores its windows
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 7):
        scores = rng.uniform(-1, 1, size=n)
        assert video_score(scores) <= scores.max() + 1e-12
    assert video_score([0.5] * 6) == pytest.approx(0.5)


def test_video_scores_of_many_queries_and_videos_at_once() -> None:
    rng = np.random.default_rng(4)
    for n in (1, 2, 5):
        scores = rng.uniform(-1, 1, size=(n, 3))
        many = video_scores(scores)
        assert many.shape == (1, 3)
        np.testing.assert_allclose(many[0], [video_score(scores[:, j]) for j in range(3)])
    # several videos end to end: each scored alone, no window borrowed from a neighbour
    lengths = [1, 4, 2, 3, 1]
    scores = rng.uniform(-1, 1, size=sum(lengths))
    bounds = np.cumsum([0, *lengths])
    alone = [video_score(scores[a:b]) for a, b in itertools.pairwise(bounds)]
    np.testing.assert_allclose(video_scores(scores, lengths), alone)
    both = video_scores(np.stack([scores, -scores], axis=1), lengths)
    np.testing.assert_allclose(both[:, 0], alone)
    # from window vectors: one product for every video
    q = np.eye(4)[0]
    vectors = [np.outer(scores[a:b], q) for a, b in itertools.pairwise(bounds)]
    np.testing.assert_allclose(score_videos(vectors, q), alone, atol=1e-6)
    for bad in ([], [2, 0, 1]):
        with pytest.raises(InvalidInput):
            video_scores(np.zeros(3), bad)
    with pytest.raises(InvalidInput, match="4 window scores for 3 windows"):
        video_scores(np.zeros(4), [1, 2])
    with pytest.raises(InvalidInput, match="one or more windows"):
        video_scores(np.zeros((0, 3)))
    with pytest.raises(InvalidInput, match="one or more windows"):
        video_score([])


# --------------------------------------------------------------------------- sampling


def test_sample_frames_at_layout_times(clip_path: Path) -> None:
    plan = WindowPlan(frames=8)
    duration = N_FRAMES / FPS
    layout = frame_layout(duration, 8, plan)
    sampled = sample_frames(clip_path, 8, times=LayoutTimes(8, plan))
    assert sampled.duration_s == pytest.approx(duration)
    assert sampled.frames.shape == (len(layout.times), 96, 128, 3)
    assert sampled.timestamps.shape == (len(layout.times),)
    assert np.all(np.diff(sampled.timestamps) >= 0)
    # each sample is the frame showing at its target: at or before it, at most a frame early
    gap = layout.times - sampled.timestamps
    assert np.all(gap >= -1e-6) and np.all(gap <= 1.0 / FPS + 1e-6)
    shown = [read_index(f) for f in sampled.frames]
    assert shown == [round(t * FPS) for t in sampled.timestamps]
    # away from frame boundaries the frame is exactly the one showing at the target
    exact = [math.floor(t * FPS) for t in layout.times]
    off_boundary = [abs(t * FPS - round(t * FPS)) > 1e-3 for t in layout.times]
    assert sum(off_boundary) >= len(layout.times) // 2
    assert [s for s, ok in zip(shown, off_boundary, strict=True) if ok] == [
        e for e, ok in zip(exact, off_boundary, strict=True) if ok
    ]


def test_a_target_on_a_frame_boundary_gets_that_frame(clip_path: Path) -> None:
    plan = WindowPlan(frames=8)
    layout = frame_layout(N_FRAMES / FPS, 8, plan)
    sampled = sample_frames(clip_path, 8, times=LayoutTimes(8, plan))
    shown = [read_index(f) for f in sampled.frames]
    # 1.4 s = frame 35 exactly: the frame showing at 1.4 s is frame 35
    assert shown == [math.floor(t * FPS + 1e-6) for t in layout.times]


def test_the_layout_clip_view_is_near_plain_sampling(clip_path: Path) -> None:
    plan = WindowPlan(frames=8)
    layout = frame_layout(N_FRAMES / FPS, 8, plan)
    sampled = sample_frames(clip_path, 8, times=LayoutTimes(8, plan))
    plain = sample_frames(clip_path, 8)
    assert len(sampled.frames) == len(layout.times)  # no frame beyond the windows'
    # each clip frame is the grid frame nearest its midpoint: within half the 0.25-s step
    # of the grid, plus one frame interval for the frame showing at that time
    gaps = np.abs(sampled.timestamps[layout.clip] - plain.timestamps)
    assert np.all(gaps <= 0.125 + 1 / FPS + 1e-9)


# --------------------------------------------------------------------------- pooling views


def test_embed_views_match_embedding_each_view_alone(encoder: ClipEncoder, clip_path: Path) -> None:
    plan = WindowPlan(frames=8)
    sampled = sample_frames(clip_path, 8, times=LayoutTimes(8, plan))
    layout = frame_layout(sampled.duration_s, 8, plan)
    views = np.concatenate([layout.clip[None], layout.window_frames])
    [(vecs, pooled)] = encoder.embed_views([(sampled.frames, views)])
    assert vecs.shape == (len(layout.times), encoder.dim)
    assert pooled.shape == (1 + len(layout.windows), encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-5)

    whole = encoder.embed_videos([sampled.frames[layout.clip]])[0]
    np.testing.assert_allclose(pooled[0], whole.pooled, atol=1e-5)
    np.testing.assert_allclose(vecs[layout.clip], whole.frames, atol=1e-5)
    alone = encoder.embed_videos([sampled.frames[rows] for rows in layout.window_frames])
    for j, emb in enumerate(alone):
        np.testing.assert_allclose(pooled[1 + j], emb.pooled, atol=1e-5)
    # the views really differ (the clip shows different frames in each window)
    assert not np.allclose(pooled[1], pooled[-1], atol=1e-3)


def test_embed_views_of_several_videos_and_bad_views(encoder: ClipEncoder) -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 255, (6, 40, 56, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (4, 30, 30, 3), dtype=np.uint8)  # another frame size
    va, vb = np.array([[0, 2, 4], [1, 3, 5]]), np.array([[3, 2, 1, 0]])
    (fa, pa), (fb, pb) = encoder.embed_views([(a, va), (b, vb)])
    assert fa.shape == (6, encoder.dim) and pa.shape == (2, encoder.dim)
    assert fb.shape == (4, encoder.dim) and pb.shape == (1, encoder.dim)
    np.testing.assert_allclose(pa[1], encoder.embed_video(a[[1, 3, 5]]).pooled, atol=1e-5)
    np.testing.assert_allclose(pb[0], encoder.embed_video(b).pooled, atol=1e-5)
    assert encoder.embed_views([]) == []
    for bad in (np.array([0, 1]), np.array([[0, 6]]), np.array([[-1, 0]]), np.zeros((1, 0))):
        with pytest.raises(InvalidInput, match="views must be"):
            encoder.embed_views([(a, bad)])


def test_embed_clips_with_a_plan_gives_one_unit_vector_per_window(
    encoder: ClipEncoder, clip_path: Path
) -> None:
    plan = WindowPlan(frames=8)
    [batch] = list(embed_clips(encoder, [clip_path], workers=1, plan=plan))
    [done] = batch
    assert isinstance(done, EmbeddedClip)
    emb = done.embedding
    times = plan.windows(done.frames.duration_s)
    assert emb.window_times == tuple(times) and len(times) == 3
    assert emb.windows is not None and emb.windows.shape == (len(times), encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(emb.windows, axis=1), 1.0, atol=1e-5)
    # the clip's vector: its windows' mean, rescaled (not the 8 frames over the whole clip)
    mean = emb.windows.mean(0)
    np.testing.assert_allclose(emb.pooled, mean / np.linalg.norm(mean), atol=1e-5)
    # the clip view: 8 frames spread over the clip
    assert done.frames.frames.shape[0] == 8 and emb.frames.shape == (8, encoder.dim)
    np.testing.assert_allclose(
        emb.frames, encoder.embed_video(done.frames.frames).frames, atol=1e-5
    )
    [[plain]] = list(embed_clips(encoder, [clip_path], workers=1))
    assert isinstance(plain, EmbeddedClip)
    assert plain.embedding.windows is None and plain.embedding.window_times == ()
    assert plain.frames.frames.shape[0] == 8
    # the clip view: the window frames nearest plain sampling's (a 0.25-s grid)
    gaps = np.abs(done.frames.timestamps - plain.frames.timestamps)
    assert np.all(gaps <= 0.125 + 1 / FPS + 1e-9) and np.all(np.diff(done.frames.timestamps) > 0)
    # only the windows' frames were embedded
    layout = frame_layout(done.frames.duration_s, 8, plan)
    assert done.frames_embedded == len(layout.times) == len(np.unique(layout.window_frames))
    with_midpoints = np.union1d(layout.times, interval_midpoints(done.frames.duration_s, 8))
    assert len(with_midpoints) > len(layout.times)  # the clip's own midpoints: not decoded
    # each window is its window's frames pooled alone
    sampled = sample_frames(clip_path, 8, times=LayoutTimes(8, plan))
    layout = frame_layout(sampled.duration_s, 8, plan)
    for j, rows in enumerate(layout.window_frames):
        expected = encoder.embed_video(sampled.frames[rows]).pooled
        np.testing.assert_allclose(emb.windows[j], expected, atol=1e-5)


def test_a_video_vector_is_the_mean_of_its_windows() -> None:
    windows = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(video_vector(windows), [2**-0.5, 2**-0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(video_vector(windows[:1]), windows[0])
    assert video_vector(np.array([[1.0, 0.0], [-1.0, 0.0]])).tolist() == [0.0, 0.0]


def test_windows_of_more_frames_than_a_temporal_head_pools_are_refused(
    tiny_model_dir: Path, clip_path: Path
) -> None:
    encoder, head = motion_encoder(tiny_model_dir)
    plan = WindowPlan(frames=head.max_frames + 1)
    with pytest.raises(
        InvalidInput, match=f"this model's temporal head pools at most {head.max_frames}"
    ):
        next(embed_clips(encoder, [clip_path], workers=1, plan=plan))
    [[done]] = list(
        embed_clips(encoder, [clip_path], workers=1, plan=WindowPlan(frames=head.max_frames))
    )
    assert isinstance(done, EmbeddedClip)


def test_a_clip_no_longer_than_a_window_keeps_its_whole_clip_vector(
    encoder: ClipEncoder, clip_path: Path
) -> None:
    plan = WindowPlan(window_s=30.0, stride_s=30.0, frames=8)  # one window: the whole clip
    [[done]] = list(embed_clips(encoder, [clip_path], workers=1, plan=plan))
    [[plain]] = list(embed_clips(encoder, [clip_path], workers=1))
    assert isinstance(done, EmbeddedClip) and isinstance(plain, EmbeddedClip)
    assert done.embedding.windows is not None and len(done.embedding.windows) == 1
    np.testing.assert_allclose(done.embedding.pooled, plain.embedding.pooled, atol=1e-5)


def test_nearest_picks_the_closest_time_and_the_earlier_on_a_tie() -> None:
    times = np.array([0.0, 1.0, 2.0])
    assert nearest(times, np.array([-1.0, 0.4, 0.5, 0.6, 1.9, 5.0])).tolist() == [0, 0, 0, 1, 2, 2]
    assert nearest(np.array([3.0]), np.array([0.0, 9.0])).tolist() == [0, 0]


@pytest.mark.parametrize("frames", [6, 8])
@pytest.mark.parametrize("duration", [3.3, 4.2, 7.21, 9.9])
def test_the_last_window_takes_the_grid_frames_nearest_its_own(
    duration: float, frames: int
) -> None:
    plan = WindowPlan(frames=frames)
    layout = frame_layout(duration, 8, plan)
    step = plan.window_s / frames
    # every frame is a grid time; the video costs a grid's frames, no extra 8 for the tail
    np.testing.assert_allclose(
        (layout.times - step / 2) / step,
        np.round((layout.times - step / 2) / step),
        atol=1e-5,  # times are kept to the microsecond
    )
    assert len(layout.times) == math.ceil(duration / step - 0.5)
    (start, end) = layout.windows[-1]
    assert end == pytest.approx(duration) and start == pytest.approx(duration - plan.window_s)
    tail = layout.times[layout.window_frames[-1]]
    wanted = start + interval_midpoints(end - start, frames)
    assert np.all(np.abs(tail - wanted) <= step / 2 + 1e-9)
    assert np.all(np.diff(tail) == pytest.approx(step, abs=2e-6))  # still evenly spaced
