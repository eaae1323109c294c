"""The window query of a store's own windows: outside the graph, on a float32 graph, on int8.

    .venv/bin/python benchmarks/index/window_query.py STORE MODEL QUERIES [--n 300] [--json OUT]

Reads every window vector of the embedded store STORE (stop its server first) and builds
two fresh window shards from them in a temporary folder, with the store's own
configuration (``window_shard_config``): float32, and with the int8 copies that
``clipsearch ingest`` builds now. The first is timed before its ``optimize`` too: that is
what a store filled by ``clipsearch ingest`` was searched with before ingest optimized
(an exact scan). Queries are the first ``--n`` lines of QUERIES embedded by MODEL's
text tower; each is asked as the store asks it (the window search's first round: limit
128 at its ``hnsw_ef``, the int8 shard rescored), one at a time on one thread. Printed:
CPU ms a query and recall@10 of windows against a NumPy exact scan of the same vectors.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from clipsearch.bench.common import cpu_line
from clipsearch.cpu import cpu_info
from clipsearch.query_model import load_query_model
from clipsearch.store.edge import (
    WINDOW_SEARCH_PARAMS,
    QdrantEdgeStore,
    window_shard_config,
)
from clipsearch.store.window_index import WINDOW_HNSW_EF, WINDOW_VECTOR

LIMIT = 128  # the first round of a page of 10: four windows for each of 32 candidates
UPSERT_BATCH = 1024


def window_vectors(store_path: str) -> np.ndarray:
    with QdrantEdgeStore(store_path) as store:
        vectors = [v[WINDOW_VECTOR] for _, v, _ in store.scroll_points(windows=True)]
    x = np.asarray(vectors, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def query_vectors(model: str, path: str, n: int) -> np.ndarray:
    encoder = load_query_model(model)
    texts = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()][:n]
    q = np.stack([np.asarray(encoder.encode_text([t]), dtype=np.float32)[0] for t in texts])
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def build(path: Path, x: np.ndarray, *, quantized: bool) -> qe.EdgeShard:
    shard = qe.EdgeShard.create(str(path), window_shard_config(x.shape[1], quantized=quantized))
    for start in range(0, len(x), UPSERT_BATCH):
        stop = min(len(x), start + UPSERT_BATCH)
        shard.update(
            qe.UpdateOperation.upsert_points(
                [qe.Point(i, {WINDOW_VECTOR: x[i].tolist()}) for i in range(start, stop)]
            )
        )
    return shard


def timed_queries(shard: qe.EdgeShard, q: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    asked = [v.tolist() for v in q]

    def ask(v: list[float]) -> list[int]:
        request = qe.QueryRequest(
            limit=LIMIT,
            query=qe.Query.Nearest(v, using=WINDOW_VECTOR),
            with_payload=False,
            params=WINDOW_SEARCH_PARAMS,
        )
        return [int(p.id) for p in shard.query(request)]

    for v in asked[:20]:  # warm-up
        ask(v)
    cpu = time.process_time()
    found = [ask(v) for v in asked]
    cpu_ms = (time.process_time() - cpu) / len(asked) * 1000
    recall = float(
        np.mean([len(set(f[:10]) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    )
    info = shard.info()
    return {
        "cpu_ms_per_query": round(cpu_ms, 3),
        "recall_at_10": round(recall, 3),
        "indexed_vectors": int(info.indexed_vectors_count),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("model")
    parser.add_argument("queries", help="a text file, one query a line")
    parser.add_argument("--n", type=int, default=300, help="queries asked (default 300)")
    parser.add_argument("--json", metavar="OUT", help="also write the figures here")
    args = parser.parse_args(argv)
    x = window_vectors(args.store)
    q = query_vectors(args.model, args.queries, args.n)
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="window-query-") as tmp:
        for name, quantized in (("float32", False), ("int8", True)):
            shard = build(Path(tmp) / name, x, quantized=quantized)
            if not quantized:
                rows["outside the graph"] = timed_queries(shard, q, truth)
            started = time.perf_counter()
            shard.optimize()
            optimize_s = time.perf_counter() - started
            rows[f"{name} graph"] = {
                **timed_queries(shard, q, truth),
                "optimize_s": round(optimize_s, 1),
            }
            shard.close()
    print(cpu_line())
    print(
        f"{len(x):,} windows of {x.shape[1]}, {len(q)} queries, limit {LIMIT}, ef {WINDOW_HNSW_EF}"
    )
    for name, row in rows.items():
        print(f"  {name:18} {row}")
    if args.json:
        doc = {"windows": len(x), "queries": len(q), "cpu": cpu_info(), "rows": rows}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
