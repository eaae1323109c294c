"""Disk, memory and query speed of Qdrant Edge stores built by `clipsearch load-store`.

    python benchmarks/capacity/measure.py STORE [STORE ...] --out benchmarks/capacity/capacity.json

For each store: bytes on disk by part (video shard, window shard, their WALs), the resident
memory the process gains by opening it and by running the queries, the open time, and the
latency of the product's two searches with random unit queries, one at a time on one thread:
the window search (``search_windows``, prefetch 64, k 10: what /api/search runs) and the
pooled search (``search``, k 10: more-like-this). Its figures feed docs/capacity.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from clipsearch.bench.common import disk_bytes, latency_summary
from clipsearch.store.edge import QdrantEdgeStore


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def disk_parts(store: Path) -> dict[str, int]:
    moments = store / "moments"
    return {
        "video_segments": disk_bytes(store / "segments"),
        "video_wal": disk_bytes(store / "wal"),
        "segment_segments": disk_bytes(moments / "segments"),
        "segment_wal": disk_bytes(moments / "wal"),
        "total": disk_bytes(store),
    }


def measure(path: Path, queries: int, seed: int) -> dict[str, object]:
    parts = disk_parts(path)
    before = rss_bytes()
    started = time.perf_counter()
    store = QdrantEdgeStore(path, video_cache_mb=0)  # no result cache: every query pays
    open_s = time.perf_counter() - started
    opened = rss_bytes()
    try:
        dim = store.dim()
        assert dim, f"{path} holds no collection"
        clips = store.count()
        n_windows = store.window_count() if hasattr(store, "window_count") else None
        rng = np.random.default_rng(seed)
        q = rng.normal(size=(queries + 20, dim)).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        results: dict[str, object] = {}
        for name, run in (
            ("segment_search", lambda v: store.search_windows(v, 10, prefetch=64)),
            ("pooled_search", lambda v: store.search(v, 10)),
        ):
            for v in q[:20]:  # warm-up
                run(v)
            times = []
            wall = time.perf_counter()
            for v in q[20:]:
                t = time.perf_counter()
                run(v)
                times.append(time.perf_counter() - t)
            results[name] = latency_summary(times, time.perf_counter() - wall, digits=3)
        after = rss_bytes()
    finally:
        store.close()
    return {
        "store": str(path),
        "clips": clips,
        "segments": n_windows,
        "dim": dim,
        "disk_bytes": parts,
        "disk_bytes_per_clip": round(parts["total"] / clips),
        "open_s": round(open_s, 2),
        "rss_gain_open_bytes": opened - before,
        "rss_gain_after_queries_bytes": after - before,
        "queries": queries,
        **results,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stores", nargs="+", type=Path)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    rows = []
    for path in args.stores:
        if not (path / "edge_config.json").exists():
            print(f"error: {path} is not a Qdrant Edge store", file=sys.stderr)
            return 2
        row = measure(path, args.queries, args.seed)
        rows.append(row)
        win, pooled = row["segment_search"], row["pooled_search"]
        print(
            f"{path}: {row['clips']:,} clips, {row['segments'] or '?'} segments, "
            f"{row['disk_bytes']['total'] / 1e6:,.0f} MB on disk "
            f"({row['disk_bytes_per_clip']:,} B/clip), open {row['open_s']} s, "
            f"RSS +{row['rss_gain_after_queries_bytes'] / 1e6:,.0f} MB; "
            f"segment search p50 {win['p50_ms']} ms p95 {win['p95_ms']} ms ({win['qps']} q/s), "
            f"pooled p50 {pooled['p50_ms']} ms"
        )
    if args.out:
        doc = {
            "command": "python benchmarks/capacity/measure.py " + " ".join(argv or sys.argv[1:]),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "stores": rows,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
