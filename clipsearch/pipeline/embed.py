"""The decode -> embed stages shared by ingest and evaluation.

Clips are decoded in worker processes (``clipsearch.pipeline.decode``) while this
process runs the vision tower on batches of several clips' frames at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clipsearch import telemetry
from clipsearch.errors import InvalidInput, VideoDecodeError
from clipsearch.model import ClipEncoder, VideoEmbedding
from clipsearch.pipeline.decode import Decoded, decode_many
from clipsearch.video import SampledFrames
from clipsearch.windows import WindowPlan, frame_layout, video_vector

# Frames are shrunk to this longest side as they are decoded: the model sees ~224 px,
# and a long HD video's hundreds of frames would not fit in memory at full size.
DECODE_MAX_SIDE = 448
# A batch of clips is embedded once it holds this many frames, even if short of clips.
BATCH_FRAMES = 512


@dataclass
class StageTimes:
    """Seconds spent in (or waiting on) each stage; filled in as clips flow."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - started
        telemetry.stage(stage, now - started)
        return now

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.seconds.items()}


@dataclass(frozen=True)
class EmbeddedClip:
    """A clip's whole-clip view (``frames``), its vectors, and how many distinct frames the
    vision tower embedded for it (windows included)."""

    index: int
    source: Path
    frames: SampledFrames
    embedding: VideoEmbedding
    frames_embedded: int


@dataclass(frozen=True)
class FailedClip:
    index: int
    source: Path
    error: VideoDecodeError


def embed_clips(
    encoder: ClipEncoder,
    sources: Sequence[Path],
    *,
    batch_clips: int = 16,
    batch_frames: int = BATCH_FRAMES,
    workers: int | None = None,
    times: StageTimes | None = None,
    on_decoded: Callable[[Decoded], None] | None = None,
    plan: WindowPlan | None = None,
    max_side: int | None = DECODE_MAX_SIDE,
    max_duration_s: float | None = None,
) -> Iterator[list[EmbeddedClip | FailedClip]]:
    """Yield batches of embedded (or failed) clips, in input order: ``batch_clips`` clips,
    or fewer when they hold ``batch_frames`` frames (a long video is a batch of its own).

    With a window ``plan`` each clip also gets one vector per window of the plan, its
    vector is their mean, and ``EmbeddedClip.frames`` holds the frames of its whole-clip
    view (``num_frames`` spread over the clip)."""
    if plan is not None:
        check_window_frames(encoder, plan)
    times = times if times is not None else StageTimes()
    num_frames = encoder.video.num_frames
    pending: list[Decoded] = []

    def flush() -> list[EmbeddedClip | FailedClip]:
        started = time.perf_counter()
        good = [d for d in pending if d.frames is not None]
        out: dict[int, EmbeddedClip | FailedClip] = {
            d.index: FailedClip(d.index, d.source, d.error) for d in pending if d.error is not None
        }
        if good:
            out.update((done.index, done) for done in embed_decoded(encoder, good, plan))
        times.add("embed", started)
        pending.clear()
        return [out[i] for i in sorted(out)]

    started = time.perf_counter()
    decoded_clips = decode_many(
        sources,
        num_frames,
        workers=workers,
        plan=plan,
        max_side=max_side,
        max_duration_s=max_duration_s,
    )
    for decoded in decoded_clips:
        started = times.add("decode_wait", started)
        if on_decoded is not None:
            on_decoded(decoded)
            started = times.add("decoded_hook", started)
        pending.append(decoded)
        held = sum(len(d.frames.frames) for d in pending if d.frames is not None)
        if len(pending) >= batch_clips or held >= batch_frames:
            yield flush()
            started = time.perf_counter()
    if pending:
        yield flush()


def check_window_frames(encoder: ClipEncoder, plan: WindowPlan) -> None:
    """The model's temporal head can pool a window of ``plan.frames`` frames."""
    check_pooled_frames(encoder, plan.frames, "windows")


def check_pooled_frames(encoder: ClipEncoder, frames: int, what: str) -> None:
    """The model's temporal head can pool ``frames`` frames (of each of ``what``)."""
    head = encoder.temporal
    if head is not None and frames > head.max_frames:
        raise InvalidInput(
            f"{what} of {frames} frames: this model's temporal head pools at most {head.max_frames}"
        )


def embed_decoded(
    encoder: ClipEncoder, decoded: Sequence[Decoded], plan: WindowPlan | None
) -> list[EmbeddedClip]:
    """Embed decoded clips (none failed) in one batch: their frames and whole-clip vectors,
    and with a window ``plan`` one vector per window too."""
    if plan is not None:
        check_window_frames(encoder, plan)
        return _embed_windowed(encoder, decoded, plan)
    clips = [d.frames.frames for d in decoded if d.frames is not None]
    out = []
    for d, emb in zip(decoded, encoder.embed_videos(clips), strict=True):
        assert d.frames is not None
        out.append(EmbeddedClip(d.index, d.source, d.frames, emb, len(d.frames.frames)))
    return out


def _embed_windowed(
    encoder: ClipEncoder, decoded: Sequence[Decoded], plan: WindowPlan
) -> list[EmbeddedClip]:
    """Pool each clip's windows from one pass over its frames; the clip's vector is their
    mean (:func:`clipsearch.windows.video_vector`)."""
    num_frames = encoder.video.num_frames
    videos, layouts = [], []
    for d in decoded:
        assert d.frames is not None
        layout = frame_layout(d.frames.duration_s, num_frames, plan)
        videos.append((d.frames.frames, layout.window_frames))
        layouts.append(layout)
    out = []
    for d, layout, (vecs, pooled) in zip(
        decoded, layouts, encoder.embed_views(videos), strict=True
    ):
        assert d.frames is not None
        clip_view = SampledFrames(
            frames=d.frames.frames[layout.clip],
            timestamps=d.frames.timestamps[layout.clip],
            duration_s=d.frames.duration_s,
            fps=d.frames.fps,
            width=d.frames.width,
            height=d.frames.height,
        )
        embedding = VideoEmbedding(
            frames=vecs[layout.clip],
            pooled=video_vector(pooled),
            windows=pooled,
            window_times=tuple(layout.windows),
        )
        out.append(EmbeddedClip(d.index, d.source, clip_view, embedding, len(d.frames.frames)))
    return out
