"""Decode many clips in worker processes, in order, while the caller computes.

Used by ingest, training and evaluation alike: the caller iterates results
(in input order) as workers finish them, so decoding overlaps model compute.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import (
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from clipsearch.errors import VideoDecodeError
from clipsearch.video import SampledFrames, sample_frames
from clipsearch.windows import LayoutTimes, WindowPlan

log = logging.getLogger(__name__)

# Frames decoded ahead of the consumer: about this many bytes (16 UCF101 clips take about
# 100 MB at the default layout; a 20-minute video 310 MB on its own).
AHEAD_BYTES = 256 * 1024 * 1024
# A decode holding more than this comes back from its worker through a file.
SPILL_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Decoded:
    """One clip's outcome: its frames, or the decode error naming the file."""

    index: int
    source: Path
    frames: SampledFrames | None
    error: VideoDecodeError | None


@dataclass(frozen=True)
class _Spilled:
    """A decode whose frames came back through the file at ``path`` (``sampled`` holds
    everything else)."""

    path: str
    sampled: SampledFrames


Outcome = SampledFrames | VideoDecodeError | _Spilled


def _decode(
    source: Path,
    num_frames: int,
    plan: WindowPlan | None,
    max_side: int | None,
    max_duration_s: float | None = None,
    spill_dir: str | None = None,
) -> Outcome:
    try:
        times = LayoutTimes(num_frames, plan) if plan is not None else None
        sampled = sample_frames(
            source, num_frames, times=times, max_side=max_side, max_duration_s=max_duration_s
        )
    except VideoDecodeError as exc:
        return exc
    except Exception as exc:  # a decoder bug must not take the whole run down
        return VideoDecodeError(source, f"{type(exc).__name__}: {exc}")
    if spill_dir is None or sampled.frames.nbytes < SPILL_BYTES:
        return sampled
    fd, path = tempfile.mkstemp(suffix=".npy", dir=spill_dir)
    with os.fdopen(fd, "wb") as out:
        np.save(out, sampled.frames)
    return _Spilled(path, replace(sampled, frames=np.empty((0, 0, 0, 3), np.uint8)))


def _taken(outcome: Outcome) -> SampledFrames | VideoDecodeError:
    if not isinstance(outcome, _Spilled):
        return outcome
    try:
        return replace(outcome.sampled, frames=np.load(outcome.path))
    finally:
        os.unlink(outcome.path)


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


Job = tuple[Path, int, WindowPlan | None, int | None, float | None, str | None]


def _alone(job: Job) -> Outcome:
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
    ahead_bytes: int = AHEAD_BYTES,
    plan: WindowPlan | None = None,
    max_side: int | None = None,
    max_duration_s: float | None = None,
) -> Iterator[Decoded]:
    """Yield every clip's sampled frames in input order, decoding up to ``ahead`` in advance,
    or fewer where the clips so far were large: about ``ahead_bytes`` of frames (long
    videos are not piled up ahead of the consumer). It starts with two per worker.

    With a window ``plan``, the frames are those of
    :func:`clipsearch.windows.frame_layout` (the whole video's and every window's).
    ``max_side`` shrinks large frames as they are decoded (never enlarges them). A file
    that kills its decode process (a decoder crash, memory) fails alone; the others are
    decoded again in new processes.
    """
    n_workers = default_workers() if workers is None else workers
    # from worker processes, a long video's frames come back through a file: the result
    # pipe would hold them twice in each process (pickled and unpickled)
    spill = tempfile.TemporaryDirectory(prefix="clipsearch-decode-") if n_workers > 1 else None
    spill_dir = spill.name if spill is not None else None
    jobs: list[Job] = [(s, num_frames, plan, max_side, max_duration_s, spill_dir) for s in sources]
    pool = _executor(n_workers)
    pending: dict[int, Future[Outcome]] = {}
    submitted = taken = taken_bytes = 0
    try:
        for index in range(len(sources)):
            limit = n_workers * 2
            if taken:
                limit = max(limit, min(ahead, ahead_bytes * taken // max(taken_bytes, 1)))
            try:  # a dead worker breaks the pool for submitting and for results alike
                while submitted < len(sources) and submitted < index + limit:
                    pending[submitted] = pool.submit(_decode, *jobs[submitted])
                    submitted += 1
                result = _taken(pending.pop(index).result())
            except BrokenExecutor:
                log.warning("a decode process died; finding the file that killed it")
                pool.shutdown(wait=False, cancel_futures=True)
                pending.pop(index, None)
                result = _taken(_alone(jobs[index]))
                pool = _executor(n_workers)
                pending = {i: pool.submit(_decode, *jobs[i]) for i in pending}
            if isinstance(result, VideoDecodeError):
                log.warning("%s", result)
                yield Decoded(index, sources[index], None, result)
            else:
                taken += 1
                taken_bytes += result.frames.nbytes
                yield Decoded(index, sources[index], result, None)
    finally:  # the caller stopped early: drop the decodes not started yet
        for future in pending.values():
            future.cancel()
        pool.shutdown(wait=True)
        if spill is not None:
            spill.cleanup()
