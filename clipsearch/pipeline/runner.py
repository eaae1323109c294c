"""Ingest: keep a store in step with a folder of videos; resumable, idempotent, crash-safe.

Point ids are UUIDv5 of each clip's relative path (its bytes), so a rerun upserts the same
points. :mod:`clipsearch.pipeline.sync` plans what a run does by comparing the folder with
the store's videos of this root; then, in this order:

1. files whose content did not change (a ``touch``) get their payload rewritten;
2. new paths with the content of a stored video get its vectors, with no embedding;
3. new and changed files are decoded -> embedded -> upserted, a batch at a time (files
   changed in the last minute are looked at twice first: one still being written is
   left for the next run);
4. stored videos of this root whose file is gone are removed when their content lives on
   at another path (a move), and with ``prune`` otherwise too (their cached media too).

Every store call is an idempotent upsert or delete, and an old id goes only once its
content is stored under the new one, so a killed run leaves a consistent store
(``clipsearch store stats``) that the next run completes.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from clipsearch import telemetry
from clipsearch.data.collection import SYSTEM, Clip, Collection, class_phrase
from clipsearch.errors import InvalidInput, StoreUnavailable, VideoDecodeError
from clipsearch.filenames import display, source_fields
from clipsearch.media import POSTERS, forget_media, move_media, poster_path, write_poster
from clipsearch.model import ClipEncoder
from clipsearch.pipeline.embed import EmbeddedClip, FailedClip, StageTimes, embed_clips
from clipsearch.pipeline.sync import (
    LOOKUP_CHUNK,
    STILL_WRITTEN,
    PruneRefused,
    Stamp,
    Work,
    check_prune,
    plan_sync,
    wait_settled,
    with_frames,
)
from clipsearch.settings import DEFAULT_MAX_VIDEO_S
from clipsearch.store.base import ClipPoint, VectorStore, clip_id
from clipsearch.video import DECODER
from clipsearch.windows import WindowPlan

log = logging.getLogger(__name__)
# One line per change to the index (added, updated, moved, copied, removed): `clipsearch
# watch` shows them.
changes = logging.getLogger("clipsearch.changes")

# Every upsert is in the store's WAL as soon as it returns (it survives a killed process);
# a flush every so often also writes Qdrant's segments, so a power loss replays little WAL.
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
        return self.owns_id(clip_id(relative_path))

    def owns_id(self, point_id: str) -> bool:
        return uuid.UUID(point_id).int % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class IngestOptions:
    batch_clips: int = 16  # clips embedded and upserted together
    workers: int | None = None  # decode processes (default: CPU count, at most 8)
    reembed: bool = False  # embed again clips that are up to date
    # remove the videos of this root whose file is gone (refused for an empty root or more
    # than half of its videos, unless ``force``)
    prune: bool = False
    force: bool = False
    # files changed in the last minute are looked at again this much later; those still
    # changing are skipped as still being written (0: no second look)
    settle_s: float = 2.0
    # once set (SIGTERM, SIGINT), the run stops after the batch in flight
    stop: threading.Event | None = None
    # a refused prune: go on without it (the report says why) instead of raising
    keep_on_refusal: bool = False

    def __post_init__(self) -> None:
        if self.prune and self.shard is not None:
            raise InvalidInput(
                "--prune with --shard is not supported: each worker sees only its share, so "
                "the safety rules cannot judge the folder; prune in one unsharded run"
            )
        if not self.settle_s >= 0:
            raise InvalidInput(f"settle_s must be >= 0, got {self.settle_s}")

    media_dir: Path | None = None  # posters go to <media_dir>/posters/<id>.jpg
    limit: int | None = None  # only the first N clips (in path order)
    shard: Shard | None = None  # only this share of the clips (applied before ``limit``)
    # moments: one vector per window; None stores per-frame vectors instead
    windows: WindowPlan | None = field(default_factory=WindowPlan)
    # videos whose headers say they are longer are skipped (None: no limit)
    max_video_s: float | None = DEFAULT_MAX_VIDEO_S
    # a store call that fails (server down, timing out) is tried this many times in all,
    # waiting retry_base_s, then twice as long each time (at most 30 s): about a minute
    store_retries: int = 6
    retry_base_s: float = 1.0
    # build the store's search graphs at the end of the run (Qdrant Edge never does on its
    # own; until then it scans new windows exactly). The engine keeps the GIL meanwhile.
    index: bool = True


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
    """What a run did with every file under the root: each video file found was ingested
    (embedded), moved or copied (vectors reused), up to date, or skipped with its reason
    (``failed``); other files are counted in ``ignored`` by extension."""

    found: int = 0
    ingested: int = 0
    up_to_date: int = 0
    moved: list[dict[str, str]] = field(default_factory=list)  # {"path", "from"}
    copied: list[dict[str, str]] = field(default_factory=list)  # {"path", "from"}
    removed: list[str] = field(default_factory=list)  # paths whose videos were removed
    # stored points that came from another file with the same relative path (ids are
    # UUIDv5 of the path relative to the dataset root, so such a clip replaces them)
    replaced_other_source: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)  # skipped: {"path", "reason"}
    ignored: dict[str, int] = field(default_factory=dict)  # other files, by extension
    problems: list[dict[str, str]] = field(default_factory=list)  # links, folders not read
    stage_seconds: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    frames: int = 0
    store_count: int = 0
    model: str = ""
    shard: str | None = None  # "i/N" when only that share of the folder was ingested
    stopped: bool = False  # asked to stop before the end
    prune_refused: str | None = None  # why a prune was not done (keep_on_refusal)

    @property
    def stored(self) -> int:
        """Videos this run wrote: embedded, moved or copied."""
        return self.ingested + len(self.moved) + len(self.copied)

    @property
    def ok(self) -> bool:
        """False only when files failed and none is in the store: none written by this run
        nor up to date from an earlier one."""
        broken = [f for f in self.failed if f["reason"] != STILL_WRITTEN]
        return self.stored > 0 or self.up_to_date > 0 or not broken

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["clips_per_s"] = round(self.ingested / self.wall_s, 2) if self.wall_s else 0.0
        d["frames_per_s"] = round(self.frames / self.wall_s, 1) if self.wall_s else 0.0
        return d

    def summary(self) -> str:
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.stage_seconds.items())
        counts = [
            f"ingested {self.ingested}",
            *([f"moved {len(self.moved)}"] if self.moved else []),
            *([f"copied {len(self.copied)}"] if self.copied else []),
            f"up to date {self.up_to_date}",
            f"skipped {len(self.failed)}",
            *([f"removed {len(self.removed)}"] if self.removed else []),
        ]
        shard = f" in shard {self.shard}" if self.shard else ""
        lines = [
            f"found {self.found} video files{shard}: {', '.join(counts)}; "
            f"store now holds {self.store_count} clips"
            + (" (stopped early)" if self.stopped else ""),
        ]
        if self.ignored:
            lines.append(f"ignored {describe_ignored(self.ignored)}")
        lines.append(f"{self.wall_s:.1f}s wall ({self.to_dict()['clips_per_s']} clips/s); {stages}")
        if self.replaced_other_source:
            lines.append(
                f"warning: {self.replaced_other_source} clips replaced points that came from "
                "another file with the same relative path (another dataset root?)"
            )
        lines += [f"  moved {m['from']} -> {m['path']}" for m in self.moved]
        lines += [f"  copied {m['from']} -> {m['path']} (vectors reused)" for m in self.copied]
        lines += [f"  removed {path} (file gone)" for path in self.removed]
        lines += [f"  skipped {f['path']}: {f['reason']}" for f in self.failed]
        lines += [f"  not read {p['path']}: {p['reason']}" for p in self.problems]
        return "\n".join(lines)


def describe_ignored(ignored: dict[str, int]) -> str:
    """``7 system files, 2 .jpg files, 1 .txt file``: the most common first."""
    kinds = sorted(ignored.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(_files(n, ext) for ext, n in kinds)


def _files(n: int, ext: str) -> str:
    """``3 .jpg files``, ``1 system file``, ``2 files without an extension``."""
    files = "file" if n == 1 else "files"
    if ext == SYSTEM:
        return f"{n} system {files}"
    return f"{n} {ext} {files}" if ext else f"{n} {files} without an extension"


# How a windowed video's own vector is made from its windows (stored in the plan stamp:
# videos stored with another rule are embedded again).
VIDEO_VECTOR = "window_mean"


def plan_stamp(plan: WindowPlan | None) -> dict[str, Any] | None:
    """How the stored windows were cut and the video vector made (a change re-embeds)."""
    if plan is None:
        return None
    return {
        "window_s": plan.window_s,
        "stride_s": plan.stride_s,
        "frames": plan.frames,
        "video": VIDEO_VECTOR,
    }


def window_times(done: EmbeddedClip) -> list[list[float]]:
    """(start_s, end_s) of each stored window vector: the plan's windows, or one span
    per sampled frame when the clip was stored frame by frame."""
    planned = done.embedding.window_times
    if planned:
        return [[round(s, 3), round(e, 3)] for s, e in planned]
    times = [float(t) for t in done.frames.timestamps]
    ends = [*times[1:], float(done.frames.duration_s)]
    return [[round(s, 3), round(max(e, s), 3)] for s, e in zip(times, ends, strict=True)]


# Payload fields that come from a video's pictures (and the model): the same for any file
# with the same content, so a moved or copied file takes them from the stored video.
MEDIA_KEYS = (
    "duration_s",
    "fps",
    "width",
    "height",
    "frame_times",
    "segment_times",
    "segment_plan",
    "model",
    "decoder",
    "ingested_at",
)


def stored_window_plan(store: VectorStore, default: WindowPlan | None = None) -> WindowPlan | None:
    """The window plan a store's videos were cut by (None: frame by frame), read from one
    of them; ``default`` for an empty store."""
    for _, payload in store.payloads(keys=["segment_plan"]):
        stamp = payload.get("segment_plan")
        if isinstance(stamp, dict):
            stamp = with_frames(stamp)
            return WindowPlan(
                window_s=float(stamp["window_s"]),
                stride_s=float(stamp["stride_s"]),
                frames=int(stamp["frames"]),
            )
        return None
    return default


def root_key(collection: Collection) -> str:
    """How a store names the folder a collection's paths are relative to."""
    return display(collection.video_root)


def file_payload(clip: Clip, root: str, stamp: Stamp, digest: str) -> dict[str, Any]:
    """The payload fields that come from the file: where it is, how it is labelled, its
    size, modification time and content hash."""
    label = display(clip.label) if clip.label else None
    payload: dict[str, Any] = {
        "path": display(clip.path),
        **source_fields(clip.source),
        "root": root,
        "class": label,
        "label": class_phrase(label) if label else None,
        "group": clip.group,
        "clip": clip.clip,
        **stamp.fields(),
        "content_hash": digest,
    }
    for number, side in clip.splits.items():
        payload[f"split_{number}"] = side
    return payload


def media_payload(done: EmbeddedClip, model_id: str, plan: WindowPlan | None) -> dict[str, Any]:
    """The payload fields that come from the decoded video (see ``MEDIA_KEYS``)."""
    frames = done.frames
    return {
        "duration_s": round(float(frames.duration_s), 3),
        "fps": round(float(frames.fps), 3),
        "width": frames.width,
        "height": frames.height,
        "frame_times": [round(float(t), 3) for t in frames.timestamps],
        "segment_times": window_times(done),
        "segment_plan": plan_stamp(plan),
        "model": model_id,
        "decoder": DECODER,
        "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


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
    announce: Callable[[str], None] | None = None,
) -> IngestReport:
    """Bring ``store`` in step with ``collection``; never raises for a bad video.

    ``progress`` is told how many more clips are done as they are; ``announce`` gets a line
    before a step that shows no progress (building the search index, which can take a
    minute on a large store and is not interrupted once started).

    Raises :class:`clipsearch.pipeline.sync.PruneRefused` (before changing anything) for a
    prune that looks like a missing folder rather than deleted files, unless ``keep_on_refusal``
    (then the run goes on without pruning and the report says why).
    """
    opts = options or IngestOptions()
    started = time.perf_counter()
    clips = selected_clips(collection, opts)
    report = IngestReport(
        found=len(clips),
        model=encoder.model_id,
        shard=None if opts.shard is None else str(opts.shard),
        ignored=dict(collection.ignored),
        problems=[{"path": display(p), "reason": r} for p, r in collection.problems],
    )
    retry = _Retry(opts.store_retries, opts.retry_base_s)
    retry("create the collection", lambda: store.ensure_collection(encoder.dim))
    root = root_key(collection)
    plan = plan_sync(
        clips,
        collection.clips,
        store,
        root=root,
        model_id=encoder.model_id,
        plan_stamp=plan_stamp(opts.windows),
        reembed=opts.reembed,
        unread=[path for path, _ in collection.problems],
        call=retry,
    )
    prune = opts.prune
    if prune:
        try:
            check_prune(plan, root, root_has_files=bool(collection.clips), force=opts.force)
        except PruneRefused as exc:
            if not opts.keep_on_refusal:
                raise
            report.prune_refused, prune = exc.message, False
    report.replaced_other_source = plan.replaced_other_source
    report.up_to_date = len(plan.up_to_date)
    telemetry.event("ingest_videos", "up_to_date", report.up_to_date)
    settled, moving = wait_settled(plan.work, looked_at=plan.looked_at, settle_s=opts.settle_s)
    for clip, reason in [*plan.skipped, *((w.clip, STILL_WRITTEN) for w in moving)]:
        _skip(report, clip, reason)
    if progress:
        progress(report.up_to_date + len(report.failed))
    ready = {id(w) for w in settled}
    run = _Run(encoder, store, opts, report, retry, root, progress)
    run.stored_hashes.update(plan.present_hashes[clip_id(c.path)] for c in plan.up_to_date)
    run.rewrite_payloads([w for w in plan.touched if id(w) in ready])
    not_reused = run.reuse([w for w in plan.reuse if id(w) in ready], plan.gone)
    run.embed([w for w in plan.embed if id(w) in ready] + not_reused)
    if not run.stopping():
        moved = {
            i: p for i, p in plan.moved_away().items() if p["content_hash"] in run.stored_hashes
        }
        run.remove(moved | (plan.to_prune() if prune else {}), reported=run.moved_from)
    t0 = time.perf_counter()
    retry("flush", store.flush)
    run.times.add("upsert", t0)
    if opts.index and not run.stopping():
        if announce is not None and (report.stored or report.removed):
            announce("building the search index")
        t0 = time.perf_counter()
        if retry("index", store.optimize):
            log.info("built the search index in %.1f s", time.perf_counter() - t0)
        run.times.add("index", t0)
    report.store_count = retry("count", store.count)
    report.stage_seconds = run.times.rounded()
    report.wall_s = round(time.perf_counter() - started, 3)
    return report


def _skip(report: IngestReport, clip: Clip, reason: str) -> None:
    report.failed.append({"path": display(clip.path), "reason": reason})
    telemetry.event("ingest_videos", "skipped")


class _Run:
    """The store writes of one ingest run, with their report and timings."""

    def __init__(
        self,
        encoder: ClipEncoder,
        store: VectorStore,
        opts: IngestOptions,
        report: IngestReport,
        retry: _Retry,
        root: str,
        progress: Callable[[int], None] | None,
    ):
        self.encoder, self.store, self.opts, self.report = encoder, store, opts, report
        self.retry, self.root, self.progress = retry, root, progress
        self.times = StageTimes()
        self.stored_hashes: set[str] = set()  # content now stored under a present path
        self.moved_from: set[str] = set()  # old ids of the moves made (reported as moves)
        self.flushed = time.perf_counter()

    def stopping(self) -> bool:
        """True once asked to stop (the report says so)."""
        if self.opts.stop is not None and self.opts.stop.is_set():
            self.report.stopped = True
        return self.report.stopped

    def _advance(self, n: int) -> None:
        if self.progress and n:
            self.progress(n)

    def _upsert(self, points: list[ClipPoint]) -> None:
        if not points:
            return
        self.retry("upsert", functools.partial(self.store.upsert, points))
        if time.perf_counter() - self.flushed >= FLUSH_EVERY_S:  # a checkpoint
            self.retry("flush", self.store.flush)
            self.flushed = time.perf_counter()

    def _stored(self, ids: Sequence[str]) -> dict[str, ClipPoint]:
        return self.retry(
            "read stored vectors", lambda: self.store.retrieve(list(ids), with_vectors=True)
        )

    def _forget_media(self, pid: str) -> None:
        """A stored id gets other pictures: what was cached for it is stale."""
        if self.opts.media_dir is not None:
            forget_media(self.opts.media_dir, pid)

    def _point(self, w: Work, stored: ClipPoint) -> ClipPoint:
        """``w``'s file with the vectors and media fields of a stored point (made by this
        decoder: the plan only reuses such points, or older ones it checked are alike)."""
        media = {k: stored.payload[k] for k in MEDIA_KEYS if k in stored.payload}
        file = file_payload(w.clip, self.root, w.stamp, str(w.content_hash))
        self.stored_hashes.add(str(w.content_hash))
        payload = {**media, "decoder": DECODER, **file}
        return ClipPoint(clip_id(w.clip.path), stored.pooled, stored.windows, payload)

    def rewrite_payloads(self, work: list[Work]) -> None:
        """Touched files (same content): their stored point with the file's new payload."""
        for batch in _chunks(work, LOOKUP_CHUNK):
            if self.stopping():
                return
            t0 = time.perf_counter()
            stored = self._stored([clip_id(w.clip.path) for w in batch])
            points = []
            for w in batch:
                point = stored.get(clip_id(w.clip.path))
                if point is not None:  # else removed meanwhile: the next run embeds it
                    points.append(self._point(w, point))
                    changes.info("unchanged content, payload updated: %s", display(w.clip.path))
            self._upsert(points)
            self.report.up_to_date += len(points)
            telemetry.event("ingest_videos", "up_to_date", len(points))
            self.times.add("payloads", t0)
            self._advance(len(batch))

    def reuse(self, work: list[Work], gone: dict[str, dict[str, Any]]) -> list[Work]:
        """Files with the content of a stored video: its vectors under their own id. The
        first new path of a gone video is its move (the old id is removed with the other
        gone videos, once this is stored); any other is a copy. Returns the files whose
        donor no longer holds their content (replaced by an earlier batch of this run, as
        in a chain of renames): they are embedded instead."""
        instead: list[Work] = []
        for batch in _chunks(work, LOOKUP_CHUNK):
            if self.stopping():
                break
            t0 = time.perf_counter()
            donors = self._stored([str(w.donor) for w in batch])
            points, moves = [], []
            for w in batch:
                donor = donors.get(str(w.donor))
                if donor is None or donor.payload.get("content_hash") != w.content_hash:
                    instead.append(w)
                    continue
                point = self._point(w, donor)
                points.append(point)
                if w.stored and point.id != donor.id:
                    self._forget_media(point.id)
                entry = {"path": point.payload["path"], "from": str(donor.payload.get("path"))}
                if donor.id in gone and donor.id not in self.moved_from:
                    self.moved_from.add(donor.id)
                    moves.append((donor.id, point.id))
                    self.report.moved.append(entry)
                    telemetry.event("ingest_videos", "moved")
                    changes.info("moved %s -> %s", entry["from"], entry["path"])
                else:
                    self.report.copied.append(entry)
                    telemetry.event("ingest_videos", "copied")
                    changes.info("copied %s -> %s (vectors reused)", entry["from"], entry["path"])
            self._upsert(points)
            if self.opts.media_dir is not None:
                for old_id, new_id in moves:
                    move_media(self.opts.media_dir, old_id, new_id)
            self.times.add("reuse", t0)
            self._advance(len(points))  # the others are counted when embedded
        return instead

    def embed(self, work: list[Work]) -> None:
        """New and changed files: decode -> embed -> upsert, a batch at a time."""
        if not work or self.stopping():
            return
        opts, report = self.opts, self.report
        for batch in embed_clips(
            self.encoder,
            [w.clip.source for w in work],
            batch_clips=opts.batch_clips,
            workers=opts.workers,
            times=self.times,
            plan=opts.windows,
            max_duration_s=opts.max_video_s,
        ):
            points = []
            t0 = time.perf_counter()
            for item in batch:
                w = work[item.index]
                if isinstance(item, FailedClip):  # a file changed meanwhile is taken later
                    changed = w.stamp.changed(w.clip.source) and w.clip.source.exists()
                    _skip(report, w.clip, STILL_WRITTEN if changed else item.error.reason)
                    continue
                if w.stamp.changed(w.clip.source):  # read while it was being written
                    _skip(report, w.clip, STILL_WRITTEN)
                    continue
                pid = clip_id(w.clip.path)
                if w.stored:
                    self._forget_media(pid)
                if opts.media_dir is not None:
                    _write_poster(item, opts.media_dir, pid)
                emb = item.embedding
                windows = emb.windows if emb.windows is not None else emb.frames
                payload = {
                    **media_payload(item, self.encoder.model_id, opts.windows),
                    **file_payload(w.clip, self.root, w.stamp, str(w.content_hash)),
                }
                points.append(ClipPoint(pid, emb.pooled, windows, payload))
                report.frames += item.frames_embedded
                telemetry.event("ingest_frames", "embedded", item.frames_embedded)
                self.stored_hashes.add(str(w.content_hash))
                changes.info("%s %s", "updated" if w.stored else "added", display(w.clip.path))
            t0 = self.times.add("posters", t0)
            self._upsert(points)
            report.ingested += len(points)
            telemetry.event("ingest_videos", "ingested", len(points))
            self.times.add("upsert", t0)
            self._advance(len(batch))
            if self.stopping():
                return

    def remove(self, doomed: dict[str, dict[str, Any]], *, reported: set[str]) -> None:
        """Videos whose file is gone: out of both indexes, then out of the media cache
        (those in ``reported``, the old ids of moves, are not listed again as removed)."""
        for batch in _chunks(sorted(doomed), LOOKUP_CHUNK):
            if self.stopping():
                return
            t0 = time.perf_counter()
            self.retry("delete", functools.partial(self.store.delete, batch))
            for pid in batch:
                self._forget_media(pid)
                if pid not in reported:
                    path = str(doomed[pid].get("path"))
                    self.report.removed.append(path)
                    telemetry.event("ingest_videos", "removed")
                    changes.info("removed %s (file gone)", path)
            self.times.add("remove", t0)


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextmanager
def scratch_index(
    collection: Collection,
    encoder: ClipEncoder,
    options: IngestOptions,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[VectorStore, IngestReport]]:
    """``collection`` ingested into a throw-away embedded Qdrant Edge store, deleted on exit
    (how evaluation and calibration measure the product's own ingest and search). The
    files are taken as they are: no second look for files still being written."""
    from clipsearch.store.edge import QdrantEdgeStore

    with tempfile.TemporaryDirectory(prefix="clipsearch-scratch-") as tmp:
        store = QdrantEdgeStore(Path(tmp) / "store")
        try:
            yield store, ingest(collection, encoder, store, replace(options, settle_s=0), progress)
        finally:
            store.close()


def _write_poster(item: EmbeddedClip, media_dir: Path, pid: str) -> None:
    frames = item.frames.frames
    try:
        write_poster(frames[len(frames) // 2], poster_path(media_dir / POSTERS, pid))
    except (OSError, VideoDecodeError) as exc:  # a poster is rebuilt on demand later
        log.warning("poster for %s not written: %s", item.source, exc)
