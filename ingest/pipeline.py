"""Ingest: decode -> embed -> upsert, resumable and idempotent.

Point ids are UUIDv5 of each clip's relative path, so a rerun upserts the same
points. Clips already stored with the same model and the same source file
(size and modification time) are skipped unless ``force`` is set.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from clipsearch.dataset import Clip, Collection, class_phrase
from clipsearch.embed import EmbeddedClip, FailedClip, StageTimes, embed_clips
from clipsearch.errors import InvalidInput, StoreUnavailable, VideoDecodeError
from clipsearch.media import poster_path, write_poster
from clipsearch.model import ClipEncoder
from clipsearch.runmodes import DEFAULT_MAX_VIDEO_S
from clipsearch.segments import SegmentPlan
from clipsearch.store.base import ClipPoint, VectorStore, clip_id

log = logging.getLogger(__name__)

LOOKUP_CHUNK = 256
# Every upsert is in the store's WAL as soon as it returns (it survives a killed process);
# a flush every so often also writes the segments, so a power loss replays little WAL.
FLUSH_EVERY_S = 30.0
RETRY_MAX_S = 30.0
T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (0-based) of ``count``: the clips whose id falls in it.

    Ids are UUIDv5 of the clips' relative paths, so every worker of an ``N``-way ingest
    (e.g. a Kubernetes Indexed Job, ``index`` = ``JOB_COMPLETION_INDEX``) picks the same
    disjoint share on any machine, and together they cover every clip once.
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise InvalidInput(f"shard must be i/N with 0 <= i < N, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"i/N"``, e.g. ``"0/4"`` for the first of four."""
        head, sep, tail = text.partition("/")
        try:
            if not sep:
                raise ValueError
            return cls(int(head), int(tail))
        except ValueError:
            raise InvalidInput(f"shard must look like i/N (e.g. 0/4), got {text!r}") from None

    def owns(self, relative_path: str) -> bool:
        return uuid.UUID(clip_id(relative_path)).int % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class IngestOptions:
    batch_clips: int = 16  # clips embedded and upserted together
    workers: int | None = None  # decode processes (default: CPU count, at most 8)
    force: bool = False  # re-embed clips that are already up to date
    media_dir: Path | None = None  # posters go to <media_dir>/posters/<id>.jpg
    limit: int | None = None  # only the first N clips (in path order)
    shard: Shard | None = None  # only this share of the clips (applied before ``limit``)
    # moments: one segment vector per window; None stores per-frame vectors instead
    segments: SegmentPlan | None = field(default_factory=SegmentPlan)
    # videos whose headers say they are longer are skipped (None: no limit)
    max_video_s: float | None = DEFAULT_MAX_VIDEO_S
    # a store call that fails (server down, timing out) is tried this many times in all,
    # waiting retry_base_s, then twice as long each time (at most 30 s): about a minute
    store_retries: int = 6
    retry_base_s: float = 1.0


class _Retry:
    """Call a store operation, retrying while the store is unavailable, with exponential
    backoff. Every call ingest makes is idempotent (upserts by deterministic id), so a retry
    never duplicates."""

    def __init__(self, attempts: int, base_s: float):
        self.attempts, self.base_s = max(1, attempts), base_s

    def __call__(self, action: str, fn: Callable[[], T]) -> T:
        for attempt in range(1, self.attempts):
            try:
                return fn()
            except StoreUnavailable as exc:
                wait = min(RETRY_MAX_S, self.base_s * 2 ** (attempt - 1))
                log.warning(
                    "store unavailable (%s); retrying %s in %.1f s (attempt %d of %d)",
                    exc.message,
                    action,
                    wait,
                    attempt + 1,
                    self.attempts,
                )
                time.sleep(wait)
        try:
            return fn()
        except StoreUnavailable as exc:
            raise StoreUnavailable(
                f"{exc.message} (gave up after {self.attempts} attempts to {action}; "
                "rerun the same command to resume)"
            ) from None


@dataclass
class IngestReport:
    found: int = 0
    ingested: int = 0
    up_to_date: int = 0
    # stored points that came from another file with the same relative path (ids are
    # UUIDv5 of the path relative to the dataset root, so such a clip replaces them)
    replaced_other_source: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    frames: int = 0
    store_count: int = 0
    model: str = ""
    shard: str | None = None  # "i/N" when only that share of the folder was ingested

    @property
    def ok(self) -> bool:
        """False only when there was work to do and none of it succeeded."""
        return self.ingested > 0 or self.found == self.up_to_date

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["clips_per_s"] = round(self.ingested / self.wall_s, 2) if self.wall_s else 0.0
        d["frames_per_s"] = round(self.frames / self.wall_s, 1) if self.wall_s else 0.0
        return d

    def summary(self) -> str:
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.stage_seconds.items())
        lines = [
            f"found {self.found} clips{f' in shard {self.shard}' if self.shard else ''}: "
            f"ingested {self.ingested}, up to date {self.up_to_date}, "
            f"failed {len(self.failed)}; store now holds {self.store_count} clips",
            f"{self.wall_s:.1f}s wall ({self.to_dict()['clips_per_s']} clips/s); {stages}",
        ]
        if self.replaced_other_source:
            lines.append(
                f"warning: {self.replaced_other_source} clips replaced points that came from "
                "another file with the same relative path (another dataset root?)"
            )
        lines += [f"  skipped {f['path']}: {f['reason']}" for f in self.failed]
        return "\n".join(lines)


def source_stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"source_size": st.st_size, "source_mtime_ns": st.st_mtime_ns}


def plan_stamp(plan: SegmentPlan | None) -> dict[str, float] | None:
    """How the stored segments were cut (a changed plan re-embeds the clip)."""
    return None if plan is None else {"window_s": plan.window_s, "stride_s": plan.stride_s}


def segment_times(done: EmbeddedClip) -> list[list[float]]:
    """(start_s, end_s) of each stored segment vector: the plan's windows, or one span
    per sampled frame when the clip was stored frame by frame."""
    windows = done.embedding.windows
    if windows:
        return [[round(s, 3), round(e, 3)] for s, e in windows]
    times = [float(t) for t in done.frames.timestamps]
    ends = [*times[1:], float(done.frames.duration_s)]
    return [[round(s, 3), round(max(e, s), 3)] for s, e in zip(times, ends, strict=True)]


def clip_payload(
    clip: Clip, done: EmbeddedClip, model_id: str, plan: SegmentPlan | None = None
) -> dict[str, Any]:
    """What is stored with each clip; every field is plain JSON."""
    frames = done.frames
    payload: dict[str, Any] = {
        "path": clip.path,
        "source": str(clip.source),
        "class": clip.label,
        "label": class_phrase(clip.label) if clip.label else None,
        "group": clip.group,
        "clip": clip.clip,
        "duration_s": round(float(frames.duration_s), 3),
        "fps": round(float(frames.fps), 3),
        "width": frames.width,
        "height": frames.height,
        "frame_times": [round(float(t), 3) for t in frames.timestamps],
        "segment_times": segment_times(done),
        "segment_plan": plan_stamp(plan),
        "model": model_id,
        "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **source_stamp(clip.source),
    }
    for number, side in clip.splits.items():
        payload[f"split_{number}"] = side
    return payload


def _up_to_date(
    store: VectorStore, clips: Sequence[Clip], model_id: str, plan: SegmentPlan | None
) -> tuple[set[str], int]:
    """Ids of clips already stored from the same file with the same model and segment
    plan, and how many stored points came from a different file."""
    done: set[str] = set()
    other_source = 0
    for i in range(0, len(clips), LOOKUP_CHUNK):
        chunk = clips[i : i + LOOKUP_CHUNK]
        stored = store.retrieve([clip_id(c.path) for c in chunk])
        for c in chunk:
            point = stored.get(clip_id(c.path))
            if point is None:
                continue
            if point.payload.get("source") != str(c.source):
                other_source += 1
                continue
            if point.payload.get("model") != model_id:
                continue
            if point.payload.get("segment_plan") != plan_stamp(plan):
                continue
            try:
                stamp = source_stamp(c.source)
            except OSError:
                continue
            if all(point.payload.get(k) == v for k, v in stamp.items()):
                done.add(point.id)
    return done, other_source


def selected_clips(collection: Collection, opts: IngestOptions) -> list[Clip]:
    """The clips an ingest with ``opts`` takes on: in path order, its shard's, at most
    ``limit`` of them."""
    clips = sorted(collection.clips, key=lambda c: c.path)
    if opts.shard is not None:
        clips = [c for c in clips if opts.shard.owns(c.path)]
    return clips[: opts.limit]


def ingest(
    collection: Collection,
    encoder: ClipEncoder,
    store: VectorStore,
    options: IngestOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Embed every clip of ``collection`` into ``store``; never raises for a bad video."""
    opts = options or IngestOptions()
    started = time.perf_counter()
    clips = selected_clips(collection, opts)
    report = IngestReport(
        found=len(clips),
        model=encoder.model_id,
        shard=None if opts.shard is None else str(opts.shard),
    )
    retry = _Retry(opts.store_retries, opts.retry_base_s)
    retry("create the collection", lambda: store.ensure_collection(encoder.dim))

    skip, report.replaced_other_source = retry(
        "look up stored clips", lambda: _up_to_date(store, clips, encoder.model_id, opts.segments)
    )
    if opts.force:
        skip = set()
    todo = [c for c in clips if clip_id(c.path) not in skip]
    report.up_to_date = len(clips) - len(todo)
    if progress and report.up_to_date:
        progress(report.up_to_date)
    times = StageTimes()
    flushed = time.perf_counter()
    for batch in embed_clips(
        encoder,
        [c.source for c in todo],
        batch_clips=opts.batch_clips,
        workers=opts.workers,
        times=times,
        plan=opts.segments,
        max_duration_s=opts.max_video_s,
    ):
        points = []
        t0 = time.perf_counter()
        for item in batch:
            clip = todo[item.index]
            if isinstance(item, FailedClip):
                report.failed.append({"path": clip.path, "reason": item.error.reason})
                continue
            pid = clip_id(clip.path)
            if opts.media_dir is not None:
                _write_poster(item, opts.media_dir, pid)
            emb = item.embedding
            segments = emb.segments if emb.segments is not None else emb.frames
            payload = clip_payload(clip, item, encoder.model_id, opts.segments)
            points.append(ClipPoint(pid, emb.pooled, segments, payload))
            report.frames += len(emb.frames)
        t0 = times.add("posters", t0)
        if points:
            retry("upsert", functools.partial(store.upsert, points))
            report.ingested += len(points)
            if time.perf_counter() - flushed >= FLUSH_EVERY_S:  # a checkpoint
                retry("flush", store.flush)
                flushed = time.perf_counter()
        times.add("upsert", t0)
        if progress:
            progress(len(batch))
    t0 = time.perf_counter()
    retry("flush", store.flush)
    times.add("upsert", t0)
    report.store_count = retry("count", store.count)
    report.stage_seconds = times.rounded()
    report.wall_s = round(time.perf_counter() - started, 3)
    return report


@contextmanager
def scratch_index(
    collection: Collection,
    encoder: ClipEncoder,
    options: IngestOptions,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[VectorStore, IngestReport]]:
    """``collection`` ingested into a throw-away embedded Qdrant Edge store, deleted on exit
    (how evaluation and calibration measure the product's own ingest and search)."""
    from clipsearch.store.edge import QdrantEdgeStore

    with tempfile.TemporaryDirectory(prefix="clipsearch-scratch-") as tmp:
        store = QdrantEdgeStore(Path(tmp) / "store")
        try:
            yield store, ingest(collection, encoder, store, options, progress)
        finally:
            store.close()


def _write_poster(item: EmbeddedClip, media_dir: Path, pid: str) -> None:
    frames = item.frames.frames
    try:
        write_poster(frames[len(frames) // 2], poster_path(media_dir / "posters", pid))
    except (OSError, VideoDecodeError) as exc:  # a poster is rebuilt on demand later
        log.warning("poster for %s not written: %s", item.source, exc)
