"""A store the size of UCF101 filled with synthetic clips, for load tests.

A served load test must search as many clips as the system it is compared with (the
seed-style baseline searches 13,320 vectors), but ingesting 13,320 real clips with a
ViT-B/32 takes hours on a CPU. These clips are made of seeded synthetic vectors
(``momentbench.synthetic_moments``: UCF101-like lengths, 3-10 two-second windows) with the
payload ingest writes, and go in through the store's own ``upsert``, so every query pays
the real cost of the window search. Their answers mean nothing: they are for speed only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clipsearch.bench.moments import MomentSpec, synthetic_moments
from clipsearch.errors import InvalidInput
from clipsearch.settings import WINDOW_FRAMES
from clipsearch.store.base import ClipPoint, VectorStore, clip_id

UCF101_CLIPS = 13_320
LOAD_MODEL_ID = "synthetic-load-store"
SOURCE = "synthetic"


@dataclass(frozen=True)
class LoadStoreReport:
    clips: int
    windows: int
    dim: int
    upsert_s: float
    optimize_s: float


def clip_payload(i: int, n_windows: int, klass: int) -> dict[str, Any]:
    """Ingest's payload fields for synthetic clip ``i`` (UCF101-style name, group, split)."""
    group, clip = divmod(i, 7)
    name = f"Synthetic{klass:03d}"
    path = f"{name}/v_{name}_g{group % 25 + 1:02d}_c{clip + 1:02d}.avi"
    duration = float(n_windows + 1)  # 2-s windows every 1 s
    return {
        "path": path,
        "source": SOURCE,
        "class": name,
        "label": f"synthetic class {klass}",
        "group": group % 25 + 1,
        "clip": clip + 1,
        "duration_s": duration,
        "fps": 25.0,
        "width": 320,
        "height": 240,
        "segment_times": [[float(j), float(j + 2)] for j in range(n_windows)],
        "segment_plan": {
            "window_s": 2.0,
            "stride_s": 1.0,
            "frames": WINDOW_FRAMES,
            "video": "window_mean",
        },
        "model": LOAD_MODEL_ID,
        "split_1": "test" if group % 25 < 7 else "train",
    }


def build_load_store(
    store: VectorStore,
    dim: int,
    *,
    clips: int = UCF101_CLIPS,
    seed: int = 0,
    batch: int = 256,
    progress: Callable[[int], None] | None = None,
    optimize: bool = True,
) -> LoadStoreReport:
    """Upsert ``clips`` synthetic clips of ``dim``-d vectors into an empty ``store`` and
    build its search graphs (unless not ``optimize``)."""
    if clips < 1 or dim < 1:
        raise InvalidInput(f"need at least one clip and one dimension, got {clips} and {dim}")
    if store.count() > 0:
        raise InvalidInput("the load-test store must start empty: give a new store directory")
    spec = MomentSpec(dim=dim, long_share=0.0, short_windows=(3, 10))
    data = synthetic_moments(clips, 1, spec, seed=seed)
    store.ensure_collection(dim)
    started = time.perf_counter()
    for lo in range(0, clips, batch):
        hi = min(clips, lo + batch)
        store.upsert(
            [
                ClipPoint(
                    id=clip_id(f"{SOURCE}/{i}"),
                    pooled=data.pooled[i],
                    windows=data.video(i),
                    payload=clip_payload(i, int(data.counts[i]), int(data.video_class[i])),
                )
                for i in range(lo, hi)
            ]
        )
        if progress is not None:
            progress(hi - lo)
    store.flush()
    upsert_s = time.perf_counter() - started
    started = time.perf_counter()
    if optimize:
        store.optimize()  # Qdrant Edge builds its HNSW graphs here
        store.flush()
    return LoadStoreReport(
        clips=clips,
        windows=data.n_windows,
        dim=dim,
        upsert_s=round(upsert_s, 2),
        optimize_s=round(time.perf_counter() - started, 2),
    )
