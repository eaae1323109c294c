"""The per-segment index shared by both Qdrant adapters: its points and its search.

Beside the video index (one point per video), a store keeps one point per segment window:
its vector (``segment``, cosine, HNSW) and a payload with the video's id, the window's
index and times and a copy of the video's payload, so a filter means the same on both
indexes. :func:`grouped_segment_search` ranks videos by their best segment: it asks the
index for the best segments, keeps each video's first (best) one and asks for more until
it has enough distinct videos (Qdrant Edge has no group-by, so both adapters group here).
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from clipsearch.store.base import SegmentHit
from clipsearch.store.checks import (
    batched,
    canonical_id,
    check_prefetch,
)

# The per-segment index: one point per segment window.
SEGMENT = "segment"  # its single dense vector (cosine, HNSW)
VIDEO_KEY = "video"  # payload: the id of the video the segment belongs to (keyword index)
INDEX_KEY = "index"  # payload: the segment's position in the video's ``segments``
# Fixed namespace: segment ids must stay stable across machines and releases.
SEGMENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://clipsearch.dev/segment")
# Video payload fields not copied to segment points: per-frame / per-segment lists (the
# segment's own span is ``start_s``/``end_s``) and the plan stamp. Everything else is
# copied, so a payload filter means the same on both indexes.
SEGMENT_PAYLOAD_OMIT = frozenset({"segment_times", "frame_times", "segment_plan"})
# First round of a segment search: at least this many segments per wanted video.
OVERFETCH = 4
# HNSW ef of segment queries (the moments benchmark: recall .984 at the default, .989 at 128).
SEGMENT_HNSW_EF = 128
# Qdrant keeps only scores strictly above score_threshold; the adapters ask it for a little
# less and keep ``score >= threshold`` themselves, as VectorStore promises.
THRESHOLD_SLACK = 1e-6


def segment_id(video_id: str, index: int) -> str:
    """Deterministic id of segment ``index`` of a video: UUIDv5 of ``"<video id>/<index>"``."""
    return str(uuid.uuid5(SEGMENT_NAMESPACE, f"{canonical_id(video_id)}/{int(index)}"))


def _segment_spans(times: Any, n: int) -> list[tuple[float | None, float | None]]:
    """(start_s, end_s) of each of ``n`` segments from a payload's ``segment_times``."""
    if isinstance(times, list) and len(times) == n:
        spans: list[tuple[float | None, float | None]] = []
        for span in times:
            if (
                isinstance(span, list | tuple)
                and len(span) == 2
                and all(
                    isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                    for v in span
                )
            ):
                spans.append((float(span[0]), float(span[1])))
            else:
                spans.append((None, None))
        return spans
    return [(None, None)] * n


def segment_points(
    video_id: str, segments: Sequence[Sequence[float]], payload: Mapping[str, Any]
) -> list[tuple[str, list[float], dict[str, Any]]]:
    """The segment-index points of one (checked) video: ``(id, vector, payload)`` each.

    The payload is the video's, minus :data:`SEGMENT_PAYLOAD_OMIT`, plus ``video`` (its id),
    ``index`` (0-based position in ``segments``) and ``start_s``/``end_s`` (from the video's
    ``segment_times``, else null); these four win over video fields of the same name.
    """
    vid = canonical_id(video_id)
    base = {k: v for k, v in payload.items() if k not in SEGMENT_PAYLOAD_OMIT}
    spans = _segment_spans(payload.get("segment_times"), len(segments))
    out = []
    for i, (vector, (start, end)) in enumerate(zip(segments, spans, strict=True)):
        seg_payload = {**base, VIDEO_KEY: vid, INDEX_KEY: i, "start_s": start, "end_s": end}
        out.append((segment_id(vid, i), list(vector), seg_payload))
    return out


def stale_segment_groups(counts: Mapping[str, int]) -> list[tuple[list[str], int]]:
    """``(video ids, n)`` groups: segment points of these videos with ``index >= n`` are
    left over from an earlier version with more segments and must be deleted."""
    by_count: dict[int, list[str]] = defaultdict(list)
    for vid, n in counts.items():
        by_count[int(n)].append(canonical_id(vid))
    return [(list(chunk), n) for n, vids in sorted(by_count.items()) for chunk in batched(vids)]


def first_segment_limit(prefetch: int, k: int, offset: int) -> int:
    """Segments fetched in the first round: ``max(prefetch, OVERFETCH * (offset + k))``."""
    return max(check_prefetch(prefetch, k, offset), OVERFETCH * (int(offset) + int(k)))


def engine_threshold(threshold: float | None) -> float | None:
    """The threshold to hand Qdrant (strictly-above semantics) so that hits scoring exactly
    ``threshold`` come back; the caller then keeps ``score >= threshold``."""
    return None if threshold is None else threshold - THRESHOLD_SLACK


# Segment hits ``(segment id, score)``, best first, for a limit. A segment id is any
# hashable the adapter's ``videos_of`` understands (Qdrant Edge: its UUID objects, which
# spares turning hundreds of them into strings per query).
SegmentFetch = Callable[[int], Sequence[tuple[Hashable, float]]]
# The videos of segment ids: ``{segment id: video id}``, vanished segments left out.
SegmentVideos = Callable[[list[Hashable]], Mapping[Hashable, str]]
# Videos by id: ``{id: (payload, (S, D) segment vectors)}``, missing ids left out.
VideoLookup = Callable[[list[str]], Mapping[str, tuple[dict[str, Any], np.ndarray]]]
# The subset of video ids that are stored.
VideoExists = Callable[[list[str]], set[str]]


def grouped_segment_search(
    fetch: SegmentFetch,
    videos_of: SegmentVideos,
    lookup: VideoLookup,
    exists: VideoExists,
    count_segments: Callable[[], int],
    *,
    k: int,
    offset: int,
    limit: int,
    threshold: float | None,
) -> list[SegmentHit]:
    """Videos ``[offset : offset + k]`` ranked by their best segment (design B).

    Fetch ``limit`` segment hits (best first) and group them by video: a video's first hit
    is its best segment. Hits are mapped to their videos in growing chunks, only as far as
    needed for ``offset + k`` distinct videos (reading a segment's payload is what a segment
    query mostly costs). While fewer videos came back and the fetch was full (more may
    exist), double the limit and fetch again, up to the number of stored segments. The
    page's videos are then read from the video index; segment points whose video is not
    stored (a write interrupted between the two indexes) are skipped, also before
    ``offset`` (those videos are only checked for existence), so pages stay consistent.
    Hits scoring below ``threshold`` are dropped.
    """
    want = int(offset) + int(k)
    owner: dict[Hashable, str | None] = {}  # segment id -> video id (None: vanished meanwhile)
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
            cap = int(count_segments())
        if limit >= cap:
            break
        limit = min(limit * 2, cap)
    return [
        SegmentHit(id=v, score=float(score), payload=dict(found[v][0]), segments=found[v][1])
        for v, score in live[offset:want]
    ]
