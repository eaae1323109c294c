"""The per-window index shared by both Qdrant adapters: its points and its search.

Beside the video index (one point per video), a store keeps one point per window:
its vector (``segment``, cosine, HNSW) and a payload with the video's id, the window's
index and times and a copy of the video's payload, so a filter means the same on both
indexes. :func:`grouped_window_search` ranks videos by their best window: it asks the
index for the best windows, keeps each video's first (best) one and asks for more until
it has enough distinct videos (Qdrant Edge has no group-by, so both adapters group here).
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from clipsearch.store.base import WindowHit
from clipsearch.store.checks import (
    batched,
    canonical_id,
    check_prefetch,
)

# The per-window index: one point per window.
WINDOW_VECTOR = "segment"  # its single dense vector (cosine, HNSW)
VIDEO_KEY = "video"  # payload: the id of the video the window belongs to (keyword index)
INDEX_KEY = "index"  # payload: the window's position in the video's ``segments``
# Fixed namespace: window ids must stay stable across machines and releases.
WINDOW_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://clipsearch.dev/segment")
# Video payload fields not copied to window points: per-frame / per-window lists (the
# window's own times are ``start_s``/``end_s``) and the plan stamp. Everything else is
# copied, so a payload filter means the same on both indexes.
WINDOW_PAYLOAD_OMIT = frozenset({"segment_times", "frame_times", "segment_plan"})
# First round of a window search: at least this many windows per wanted video.
OVERFETCH = 4
# HNSW ef of window queries (the moments benchmark: recall .984 at the default, .989 at 128).
WINDOW_HNSW_EF = 128
# Qdrant keeps only scores strictly above score_threshold; the adapters ask it for a little
# less and keep ``score >= threshold`` themselves, as VectorStore promises.
THRESHOLD_SLACK = 1e-6


def window_id(video_id: str, index: int) -> str:
    """Deterministic id of window ``index`` of a video: UUIDv5 of ``"<video id>/<index>"``."""
    return str(uuid.uuid5(WINDOW_NAMESPACE, f"{canonical_id(video_id)}/{int(index)}"))


def _window_times(times: Any, n: int) -> list[tuple[float | None, float | None]]:
    """(start_s, end_s) of each of ``n`` windows from a payload's ``segment_times``."""
    if isinstance(times, list) and len(times) == n:
        out: list[tuple[float | None, float | None]] = []
        for pair in times:
            if (
                isinstance(pair, list | tuple)
                and len(pair) == 2
                and all(
                    isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                    for v in pair
                )
            ):
                out.append((float(pair[0]), float(pair[1])))
            else:
                out.append((None, None))
        return out
    return [(None, None)] * n


def window_points(
    video_id: str, windows: Sequence[Sequence[float]], payload: Mapping[str, Any]
) -> list[tuple[str, list[float], dict[str, Any]]]:
    """The window-index points of one (checked) video: ``(id, vector, payload)`` each.

    The payload is the video's, minus :data:`WINDOW_PAYLOAD_OMIT`, plus ``video`` (its id),
    ``index`` (0-based position in ``windows``) and ``start_s``/``end_s`` (from the video's
    ``segment_times``, else null); these four win over video fields of the same name.
    """
    vid = canonical_id(video_id)
    base = {k: v for k, v in payload.items() if k not in WINDOW_PAYLOAD_OMIT}
    times = _window_times(payload.get("segment_times"), len(windows))
    out = []
    for i, (vector, (start, end)) in enumerate(zip(windows, times, strict=True)):
        window_payload = {**base, VIDEO_KEY: vid, INDEX_KEY: i, "start_s": start, "end_s": end}
        out.append((window_id(vid, i), list(vector), window_payload))
    return out


def stale_window_groups(counts: Mapping[str, int]) -> list[tuple[list[str], int]]:
    """``(video ids, n)`` groups: window points of these videos with ``index >= n`` are
    left over from an earlier version with more windows and must be deleted."""
    by_count: dict[int, list[str]] = defaultdict(list)
    for vid, n in counts.items():
        by_count[int(n)].append(canonical_id(vid))
    return [(list(chunk), n) for n, vids in sorted(by_count.items()) for chunk in batched(vids)]


def first_window_limit(prefetch: int, k: int, offset: int) -> int:
    """Windows fetched in the first round: ``max(prefetch, OVERFETCH * (offset + k))``."""
    return max(check_prefetch(prefetch, k, offset), OVERFETCH * (int(offset) + int(k)))


def engine_threshold(threshold: float | None) -> float | None:
    """The threshold to hand Qdrant (strictly-above semantics) so that hits scoring exactly
    ``threshold`` come back; the caller then keeps ``score >= threshold``."""
    return None if threshold is None else threshold - THRESHOLD_SLACK


# Window hits ``(window id, score)``, best first, for a limit. A window id is any
# hashable the adapter's ``videos_of`` understands (Qdrant Edge: its UUIDs' integers, which
# spares turning hundreds of them into strings per query).
WindowFetch = Callable[[int], Sequence[tuple[Hashable, float]]]
# The videos of window ids: ``{window id: video id}``, vanished windows left out.
WindowVideos = Callable[[list[Hashable]], Mapping[Hashable, str]]
# Videos by id: ``{id: (payload, (S, D) window vectors)}``, missing ids left out.
VideoLookup = Callable[[list[str]], Mapping[str, tuple[dict[str, Any], np.ndarray]]]
# The subset of video ids that are stored.
VideoExists = Callable[[list[str]], set[str]]


def grouped_window_search(
    fetch: WindowFetch,
    videos_of: WindowVideos,
    lookup: VideoLookup,
    exists: VideoExists,
    count_windows: Callable[[], int],
    *,
    k: int,
    offset: int,
    limit: int,
    threshold: float | None,
) -> list[WindowHit]:
    """Videos ``[offset : offset + k]`` ranked by their best window (design B).

    Fetch ``limit`` window hits (best first) and group them by video: a video's first hit
    is its best window. Hits are mapped to their videos in growing chunks, only as far as
    needed for ``offset + k`` distinct videos (reading a window's payload is what a window
    query mostly costs). While fewer videos came back and the fetch was full (more may
    exist), double the limit and fetch again, up to the number of stored windows. The
    page's videos are then read from the video index; window points whose video is not
    stored (a write interrupted between the two indexes) are skipped, also before
    ``offset`` (those videos are only checked for existence), so pages stay consistent.
    Hits scoring below ``threshold`` are dropped.
    """
    want = int(offset) + int(k)
    owner: dict[Hashable, str | None] = {}  # window id -> video id (None: vanished meanwhile)
    found: dict[str, tuple[dict[str, Any], np.ndarray]] = {}
    stored: set[str] = set()  # videos before the page known to exist
    missing: set[str] = set()
    cap: int | None = None
    while True:
        raw = fetch(limit)
        full = len(raw) >= limit
        hits = [h for h in raw if threshold is None or h[1] >= threshold]
        ranked: list[tuple[str, float]] = []
        seen: set[str] = set()
        pos = 0
        while True:
            live = [r for r in ranked if r[0] not in missing]
            if len(live) < want and pos < len(hits):
                chunk = hits[pos : pos + max(pos, OVERFETCH * (want - len(live)))]
                unknown = [sid for sid, _ in chunk if sid not in owner]
                if unknown:
                    got = videos_of(unknown)
                    owner.update((sid, got.get(sid)) for sid in unknown)
                for sid, score in chunk:
                    video = owner[sid]
                    if video is not None and video not in seen:
                        seen.add(video)
                        ranked.append((video, score))
                pos += len(chunk)
                continue
            head = [v for v, _ in live[:offset] if v not in stored and v not in found]
            if head:
                present = exists(head)
                stored.update(v for v in head if v in present)
                missing.update(v for v in head if v not in present)
                continue
            need = [v for v, _ in live[offset:want] if v not in found]
            if not need:
                break
            got_videos = lookup(need)
            for v in need:
                if v in got_videos:
                    found[v] = got_videos[v]
                else:
                    missing.add(v)
        if len(live) >= want or not full:
            break
        if cap is None:
            cap = int(count_windows())
        if limit >= cap:
            break
        limit = min(limit * 2, cap)
    return [
        WindowHit(id=v, score=float(score), payload=dict(found[v][0]), windows=found[v][1])
        for v, score in live[offset:want]
    ]
