"""Decode many clips in worker processes, in order, while the caller computes.

Used by ingest, training and evaluation alike: the caller iterates results
(in input order) as workers finish them, so decoding overlaps model compute.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import (
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from dataclasses import dataclass
from pathlib import Path

from clipsearch.errors import VideoDecodeError
from clipsearch.segments import LayoutTimes, SegmentPlan
from clipsearch.video import SampledFrames, sample_frames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decoded:
    """One clip's outcome: its frames, or the decode error naming the file."""

    index: int
    source: Path
    frames: SampledFrames | None
    error: VideoDecodeError | None


def _decode(
    source: Path,
    num_frames: int,
    plan: SegmentPlan | None,
    max_side: int | None,
    max_duration_s: float | None = None,
) -> SampledFrames | VideoDecodeError:
    try:
        times = LayoutTimes(num_frames, plan) if plan is not None else None
        return sample_frames(
            source, num_frames, times=times, max_side=max_side, max_duration_s=max_duration_s
        )
    except VideoDecodeError as exc:
        return exc
    except Exception as exc:  # a decoder bug must not take the whole run down
        return VideoDecodeError(source, f"{type(exc).__name__}: {exc}")


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _executor(workers: int) -> Executor:
    if workers <= 1:
        return ThreadPoolExecutor(max_workers=1)
    return _processes(workers)


def _processes(workers: int) -> ProcessPoolExecutor:
    # fork: workers start instantly; they only run PyAV + numpy, never torch.
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method))


Job = tuple[Path, int, SegmentPlan | None, int | None, float | None]


def _alone(job: Job) -> SampledFrames | VideoDecodeError:
    """Decode one file in a process of its own: after a worker died, this tells whether
    this file was what killed it."""
    with _processes(1) as pool:
        try:
            return pool.submit(_decode, *job).result()
        except BrokenExecutor:
            return VideoDecodeError(job[0], "the decoder crashed on this file")


def decode_many(
    sources: Sequence[Path],
    num_frames: int,
    *,
    workers: int | None = None,
    ahead: int = 16,
    plan: SegmentPlan | None = None,
    max_side: int | None = None,
    max_duration_s: float | None = None,
) -> Iterator[Decoded]:
    """Yield every clip's sampled frames in input order, decoding up to ``ahead`` in advance.

    With a segment ``plan``, the frames are those of
    :func:`clipsearch.segments.frame_layout` (the whole video's and every window's).
    ``max_side`` shrinks large frames as they are decoded (never enlarges them). A file
    that kills its decode process (a decoder crash, memory) fails alone; the others are
    decoded again in new processes.
    """
    n_workers = default_workers() if workers is None else workers
    jobs: list[Job] = [(s, num_frames, plan, max_side, max_duration_s) for s in sources]
    pool = _executor(n_workers)
    pending: dict[int, Future[SampledFrames | VideoDecodeError]] = {}
    submitted = 0
    try:
        for index in range(len(sources)):
            while submitted < len(sources) and submitted < index + max(ahead, n_workers * 2):
                pending[submitted] = pool.submit(_decode, *jobs[submitted])
                submitted += 1
            try:
                result = pending.pop(index).result()
            except BrokenExecutor:
                log.warning("a decode process died; finding the file that killed it")
                pool.shutdown(wait=False, cancel_futures=True)
                result = _alone(jobs[index])
                pool = _executor(n_workers)
                pending = {i: pool.submit(_decode, *jobs[i]) for i in pending}
            if isinstance(result, VideoDecodeError):
                log.warning("%s", result)
                yield Decoded(index, sources[index], None, result)
            else:
                yield Decoded(index, sources[index], result, None)
    finally:  # the caller stopped early: drop the decodes not started yet
        for future in pending.values():
            future.cancel()
        pool.shutdown(wait=True)
