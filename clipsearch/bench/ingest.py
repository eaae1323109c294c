"""How close ingest comes to the model's own speed (``clipsearch bench-ingest``).

Two runs over the same clips: the ingest pipeline itself (decode processes overlapped
with the vision tower, batched upserts into a throw-away Qdrant Edge store), then the
vision tower alone on the very frames the pipeline embedded, decoded beforehand and held
in memory, in the same batches. ``ingest_efficiency`` is the pipeline's frames/s over the
model's: 1.0 means decoding, posters and upserts cost nothing beside the model.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from clipsearch.bench.common import environment
from clipsearch.data.collection import Collection
from clipsearch.errors import InvalidInput
from clipsearch.model import ClipEncoder
from clipsearch.pipeline.decode import Decoded, decode_many
from clipsearch.pipeline.embed import DECODE_MAX_SIDE, embed_decoded
from clipsearch.windows import WindowPlan, frame_layout

UCF101_CLIPS = 13_320
# UCF101's mean clip length (Soomro et al. 2012: 13,320 clips, 27 hours, 1.06-71.04 s)
UCF101_MEAN_S = 7.21
PACKAGES = {"torch": "torch", "qdrant_edge": "qdrant-edge-py", "av": "av"}


def model_only(
    encoder: ClipEncoder, decoded: Sequence[Decoded], batch_clips: int, plan: WindowPlan | None
) -> tuple[int, float]:
    """(frames, seconds) of the vision tower (and pooling) alone on decoded clips, embedded
    by the same call as ingest's."""
    good = [d for d in decoded if d.frames is not None]
    frames = sum(len(d.frames.frames) for d in good if d.frames is not None)
    started = time.perf_counter()
    for i in range(0, len(good), batch_clips):
        embed_decoded(encoder, good[i : i + batch_clips], plan)
    return frames, time.perf_counter() - started


def bench_ingest(
    collection: Collection,
    encoder: ClipEncoder,
    *,
    limit: int = 96,
    batch_clips: int = 16,
    workers: int | None = None,
    plan: WindowPlan | None = None,
) -> dict[str, Any]:
    """The pipeline's and the model's frames/s on the first ``limit`` clips (path order),
    both counting every frame the vision tower embedded (windows included), and the time
    all of UCF101 would take at the pipeline's frames/s."""
    from clipsearch.pipeline.runner import IngestOptions, scratch_index, selected_clips

    options = IngestOptions(batch_clips=batch_clips, workers=workers, limit=limit, windows=plan)
    clips = selected_clips(collection, options)
    if not clips:
        raise InvalidInput("no clips to ingest")
    subset = replace(collection, clips=clips)
    with tempfile.TemporaryDirectory(prefix="clipsearch-bench-media-") as media:
        # posters written as `clipsearch ingest` writes them
        options = replace(options, media_dir=Path(media))
        with scratch_index(subset, encoder, options) as (_, report):
            pass
    if report.ingested == 0:
        raise InvalidInput(f"none of the {len(clips)} clips could be ingested")
    decoded = list(
        decode_many(
            [c.source for c in clips],
            encoder.video.num_frames,
            workers=workers,
            plan=plan,
            max_side=DECODE_MAX_SIDE,
        )
    )
    frames, model_s = model_only(encoder, decoded, batch_clips, plan)
    pipeline_fps = report.frames / report.wall_s
    model_fps = frames / model_s
    clips_per_s = report.ingested / report.wall_s
    num_frames = encoder.video.num_frames
    ucf_frames = (
        num_frames if plan is None else len(frame_layout(UCF101_MEAN_S, num_frames, plan).times)
    )
    return {
        "model": encoder.model_id,
        "vision_dtype": encoder.vision_dtype,
        "device": str(encoder.device),
        "clips": report.ingested,
        "failed": len(report.failed),
        "frames_per_clip": round(report.frames / report.ingested, 2),
        "segments": None
        if plan is None
        else {"window_s": plan.window_s, "stride_s": plan.stride_s, "frames": plan.frames},
        "batch_clips": batch_clips,
        "pipeline": {
            "wall_s": report.wall_s,
            "frames": report.frames,
            "frames_per_s": round(pipeline_fps, 2),
            "clips_per_s": round(clips_per_s, 3),
            "stage_seconds": report.stage_seconds,
        },
        "model_only": {
            "seconds": round(model_s, 3),
            "frames": frames,
            "frames_per_s": round(model_fps, 2),
        },
        "ingest_efficiency": round(pipeline_fps / model_fps, 3),
        "ucf101": {
            "clips": UCF101_CLIPS,
            "length": f"every clip at UCF101's mean length, {UCF101_MEAN_S} s",
            "frames_per_clip": ucf_frames,
            "projected_s": round(UCF101_CLIPS * ucf_frames / pipeline_fps, 1),
        },
        "environment": environment(PACKAGES),
    }
