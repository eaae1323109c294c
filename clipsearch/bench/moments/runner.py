"""Running the moment-index benchmark: every design on every dataset, the verdict, the
table, the plot and the JSON (the command line: :mod:`clipsearch.cli.bench_moments`)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from clipsearch.bench.common import (
    environment,
    size_label,
)
from clipsearch.bench.moments.data import (
    DESIGN_A,
    DESIGN_B,
    PRODUCT,
    PRODUCT_PREFETCH,
    BenchConfig,
    Found,
    MomentData,
    MomentSpec,
    _positive_int,
    evaluate,
    exact_moments,
    synthetic_moments,
)
from clipsearch.bench.moments.designs import (
    DesignA,
    DesignB,
    LocalA,
    LocalB,
    LocalProduct,
    Product,
    timed_queries,
)
from clipsearch.errors import InvalidInput

Progress = Callable[[str], None]


# --------------------------------------------------------------------------- the benchmark


def _row(
    setting: dict[str, Any], metrics: dict[str, float], latency: dict[str, float]
) -> dict[str, Any]:
    return {**setting, **metrics, **latency}


def headline(rows: Sequence[dict[str, Any]], target: float) -> dict[str, Any]:
    """The fastest row (by p50) reaching ``target`` recall, else the row of best recall."""
    good = [r for r in rows if r["recall"] >= target]
    if good:
        return {"reached_target": True, **min(good, key=lambda r: (r["p50_ms"], -r["recall"]))}
    return {"reached_target": False, **max(rows, key=lambda r: (r["recall"], -r["p50_ms"]))}


def verdict(
    a: dict[str, Any],
    b: dict[str, Any],
    target: float,
    *,
    names: tuple[str, str] = (DESIGN_A, DESIGN_B),
) -> str:
    """Which of two headline rows is better, and on what (derived from the figures)."""
    na, nb = names
    if a["reached_target"] and b["reached_target"]:
        winner = na if a["p50_ms"] <= b["p50_ms"] else nb
        why = (
            f"both reach recall@k >= {target:g}; {winner} is faster there "
            f"(p50 {na} {a['p50_ms']:.3f} ms vs {nb} {b['p50_ms']:.3f} ms)"
        )
    elif a["reached_target"] or b["reached_target"]:
        winner = na if a["reached_target"] else nb
        loser = b if winner == na else a
        why = (
            f"only {winner} reaches recall@k >= {target:g} "
            f"(the other peaks at {loser['recall']:.3f})"
        )
    else:
        winner = na if a["recall"] >= b["recall"] else nb
        why = (
            f"neither reaches recall@k >= {target:g}; {winner} gets closer "
            f"({na} {a['recall']:.3f}, {nb} {b['recall']:.3f})"
        )
    return f"{winner}: {why}"


def _data_summary(data: MomentData) -> dict[str, Any]:
    counts = data.counts
    return {
        "videos": data.n_videos,
        "dim": data.dim,
        "segments": data.n_windows,
        "segments_per_video": {
            "mean": round(float(counts.mean()), 2),
            "min": int(counts.min()),
            "max": int(counts.max()),
        },
        "long_videos": int(data.long.sum()),
        "classes": int(data.video_class.max()) + 1,
        "queries": len(data.queries),
    }


def bench_dataset(
    data: MomentData,
    cfg: BenchConfig,
    *,
    name: str,
    workdir: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Ground truth, both designs on Qdrant Edge, every setting; one JSON-able dict."""
    say = progress or (lambda _msg: None)
    k = cfg.k
    queries = data.queries
    result: dict[str, Any] = {"name": name, **_data_summary(data)}
    t = time.perf_counter()
    truth = exact_moments(data, k)
    result["ground_truth_s"] = round(time.perf_counter() - t, 2)

    warmup = cfg.warmup

    def measure(
        engine: DesignA | DesignB | Product, search: Callable[[np.ndarray], list[Found]]
    ) -> dict[str, Any]:
        found, lat = timed_queries(search, queries, warmup)
        client = engine.client_s[-len(queries) :]
        return {
            **evaluate(found, truth, data, k),
            **lat,
            "client_mean_ms": round(1000 * float(np.mean(client)), 3) if client else None,
            "short_results": sum(len(f) < min(k, data.n_videos) for f in found),
        }

    def prime(search: Callable[[np.ndarray], list[Found]]) -> None:
        """One untimed pass over every query: pages the shard's files in (mmap)."""
        if cfg.prime:
            for q in queries:
                search(q)

    def sweep_prefetch(design: Any, label: str, prefetches: Sequence[int]) -> list[dict[str, Any]]:
        """One row per prefetch of a design searched as ``design.search(q, k, prefetch)``."""
        prime(lambda q: design.search(q, k, max(prefetches)))
        rows = []
        for p in prefetches:
            rows.append({"prefetch": p, **measure(design, partial(design.search, k=k, prefetch=p))})
            r = rows[-1]
            say(f"  {label} prefetch={p}: recall {r['recall']:.4f}, p50 {r['p50_ms']:.3f} ms")
        return rows

    say(f"{name}: design A - building the store ({data.n_videos:,} video points)")
    design_a = DesignA(workdir / "design-a", data, cfg)
    try:
        say(f"  built in {design_a.build['total_s']:.1f} s, {design_a.build['disk_mb']:.1f} MB")
        rows_a = sweep_prefetch(design_a, "A", cfg.prefetch)
    finally:
        design_a.close()

    say(f"{name}: design B - building the shard ({data.n_windows:,} segment points)")
    design_b = DesignB(workdir / "design-b", data, cfg)
    try:
        say(f"  built in {design_b.build['total_s']:.1f} s, {design_b.build['disk_mb']:.1f} MB")
        prime(lambda q: design_b.search(q, k, design_b.max_limit))
        rows_b = []
        for limit in sorted({k * f for f in cfg.overfetch} | {design_b.max_limit}):
            setting = {"mode": "fixed", "limit": limit, "factor": round(limit / k, 2)}
            rows_b.append(
                {**setting, **measure(design_b, partial(design_b.search, k=k, limit=limit))}
            )
            r = rows_b[-1]
            say(f"  B limit={limit}: recall {r['recall']:.4f}, p50 {r['p50_ms']:.3f} ms")
        start = k * cfg.adaptive_start
        for ef in (None, *cfg.hnsw_ef):
            design_b.rounds.clear()
            design_b.limits.clear()
            row = measure(design_b, partial(design_b.search_adaptive, k=k, start=start, ef=ef))
            timed = len(queries)
            setting = {
                "mode": "adaptive",
                "limit": start,
                "factor": cfg.adaptive_start,
                "hnsw_ef": ef,
                "mean_rounds": round(float(np.mean(design_b.rounds[-timed:])), 3),
                "mean_final_limit": round(float(np.mean(design_b.limits[-timed:])), 1),
            }
            rows_b.append({**setting, **row})
            r = rows_b[-1]
            say(
                f"  B adaptive (hnsw_ef {ef or 'default'}): recall {r['recall']:.4f}, "
                f"p50 {r['p50_ms']:.3f} ms"
            )
        # The guaranteed over-fetch with an exact scan: the grouping itself is exact.
        warmup = min(cfg.warmup, 5)
        exact_row = {
            "mode": "exact-scan",
            "limit": design_b.max_limit,
            **measure(design_b, lambda q: design_b.search(q, k, design_b.max_limit, exact=True)),
        }
        say(f"  B exact scan: recall {exact_row['recall']:.4f}, p50 {exact_row['p50_ms']:.3f} ms")
    finally:
        design_b.close()

    warmup = cfg.warmup
    say(f"{name}: product - building the shipped QdrantEdgeStore (both shards)")
    product = Product(workdir / "product", data, cfg)
    try:
        say(f"  built in {product.build['total_s']:.1f} s, {product.build['disk_mb']:.1f} MB")
        rows_p = sweep_prefetch(product, "product", cfg.product_prefetch)
    finally:
        product.close()

    head_a = headline(rows_a, cfg.target_recall)
    head_b = headline(rows_b, cfg.target_recall)
    head_p = headline(rows_p, cfg.target_recall)
    result.update(
        {
            "design_a": {"build": design_a.build, "rows": rows_a, "headline": head_a},
            "design_b": {
                "build": design_b.build,
                "rows": rows_b,
                "exact_scan": exact_row,
                "headline": head_b,
            },
            "product": {"build": product.build, "rows": rows_p, "headline": head_p},
            "verdict": verdict(head_a, head_b, cfg.target_recall),
            "product_verdict": verdict(
                head_a, head_p, cfg.target_recall, names=(DESIGN_A, PRODUCT)
            ),
        }
    )
    return result


def bench_local(
    data: MomentData, cfg: BenchConfig, *, name: str, progress: Progress | None = None
) -> dict[str, Any]:
    """Both designs on qdrant-client local mode (exact, pure Python: a correctness reference)."""
    say = progress or (lambda _msg: None)
    k = cfg.k
    queries = data.queries[: cfg.local_queries]
    sub = dataclasses.replace(data, queries=queries, query_class=data.query_class[: len(queries)])
    truth = exact_moments(sub, k)
    warmup = min(cfg.warmup, 5)
    say(f"{name}: qdrant-client local mode ({data.n_videos:,} videos, {len(queries)} queries)")

    def sweep_prefetch(
        design: LocalA | LocalProduct, prefetch: Sequence[int]
    ) -> list[dict[str, Any]]:
        """One row per first-round limit; ``design`` is closed afterwards."""
        try:
            rows = []
            for p in prefetch:
                found, lat = timed_queries(partial(design.search, k=k, prefetch=p), queries, warmup)
                rows.append(_row({"prefetch": p}, evaluate(found, truth, sub, k), lat))
            return rows
        finally:
            design.close()

    local_a = LocalA(data, cfg)
    rows_a = sweep_prefetch(local_a, cfg.prefetch)
    local_b = LocalB(data, cfg)
    try:
        found, lat = timed_queries(lambda q: local_b.search(q, k), queries, warmup)
        row_b = _row({"mode": "query_points_groups"}, evaluate(found, truth, sub, k), lat)
    finally:
        local_b.close()
    say(f"  local B (groups): recall {row_b['recall']:.4f}, p50 {row_b['p50_ms']:.3f} ms")
    local_p = LocalProduct(data, cfg)
    rows_p = sweep_prefetch(local_p, cfg.product_prefetch)
    return {
        "name": name,
        **_data_summary(sub),
        "design_a": {"build": local_a.build, "rows": rows_a},
        "design_b": {"build": local_b.build, "rows": [row_b]},
        "product": {"build": local_p.build, "rows": rows_p},
    }


def run_benchmark(
    videos: Sequence[int],
    dims: Sequence[int],
    *,
    n_queries: int = 200,
    spec: MomentSpec | None = None,
    cfg: BenchConfig | None = None,
    seed: int = 0,
    command: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every (videos, dim) dataset, plus the optional local-mode run; one JSON-able dict."""
    cfg = (cfg or BenchConfig()).validate()
    base_spec = spec or MomentSpec()
    _positive_int(n_queries, "queries")
    if not videos or not dims:
        raise InvalidInput("give at least one size and one dimension")
    started = time.perf_counter()
    result: dict[str, Any] = {
        "command": command,
        "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "environment": environment(
            {"qdrant_edge": "qdrant-edge-py", "qdrant_client": "qdrant-client"}
        ),
        "config": asdict(cfg),
        "spec": asdict(base_spec),
        "queries": n_queries,
        "seed": seed,
        "datasets": [],
        "local": [],
        "notes": [
            "Qdrant Edge has no group-by: design B over-fetches k * factor segments and "
            "groups them client-side; 'adaptive' doubles the limit until k videos came back; "
            "the largest fixed limit is k * max segments per video, which always yields k "
            "videos (and the exact answer with an exact scan, see exact_scan).",
            "Queries run one at a time from one Python thread, after a warm-up; Qdrant's "
            "search pool is left at its default. Latency includes the binding call and the "
            "client-side work (A and product: re-scoring the returned segment vectors; B: "
            "grouping).",
            "A and B are built and queried with raw Qdrant Edge calls, independent of "
            "clipsearch's store; product is the shipped QdrantEdgeStore (design B: a video "
            "shard plus its moments/ segment shard, search_segments at SearchLimits' "
            f"prefetch {PRODUCT_PREFETCH}, segment queries at its hnsw_ef, the limit doubled "
            "until k videos came back, then the videos' segment vectors read back), built "
            "through its upsert and optimize without payload indexes on filter fields.",
            "disk_mb counts the whole store folder, WAL included (wal_mb of it); the "
            "product's covers both shards (segment_shard_mb of it).",
        ],
    }
    root = Path(tempfile.mkdtemp(prefix="clipsearch-momentbench-", dir=cfg.workdir))
    say = progress or (lambda _msg: None)
    try:
        for dim in dims:
            dspec = MomentSpec(**{**asdict(base_spec), "dim": int(dim)}).validate()
            for n in videos:
                name = f"{size_label(n)}-d{dim}"
                t = time.perf_counter()
                data = synthetic_moments(n, n_queries, dspec, seed)
                say(
                    f"{name}: {data.n_videos:,} videos, {data.n_windows:,} segments "
                    f"(generated in {time.perf_counter() - t:.1f} s)"
                )
                workdir = root / name
                workdir.mkdir()
                try:
                    result["datasets"].append(
                        bench_dataset(data, cfg, name=name, workdir=workdir, progress=say)
                    )
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
            if cfg.local_videos:
                data = synthetic_moments(cfg.local_videos, n_queries, dspec, seed)
                name = f"local-{size_label(cfg.local_videos)}-d{dim}"
                result["local"].append(bench_local(data, cfg, name=name, progress=say))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    if hasattr(os, "getloadavg"):
        result["environment"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if result["local"]:
        result["notes"].append(
            "local = qdrant-client local mode (prod-loc: the shipped QdrantClientStore): an "
            "exact pure-Python implementation, so its recall is a correctness reference and "
            "its latencies are not Qdrant's."
        )
    return result


# --------------------------------------------------------------------------- output


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _setting(design: str, row: dict[str, Any]) -> str:
    if design == DESIGN_A:
        return f"prefetch {row['prefetch']}"
    if design == PRODUCT:
        # the label the committed benchmarks/moments tables carry (the method is search_windows)
        return f"search_segments, prefetch {row['prefetch']}"
    if row["mode"] == "adaptive":
        ef = f"ef {row['hnsw_ef']}, " if row.get("hnsw_ef") else ""
        return (
            f"adaptive from {row['limit']} ({ef}{row['mean_rounds']:.2f} rounds, "
            f"final {row['mean_final_limit']:.0f})"
        )
    if row["mode"] == "exact-scan":
        return f"exact scan, limit {row['limit']}"
    if row["mode"] == "query_points_groups":
        return "query_points_groups"
    return f"limit {row['limit']} (k x {row['factor']:g})"


def table(result: dict[str, Any]) -> str:
    """A plain-text table of every measured row, then build figures and verdicts."""
    k = result["config"]["k"]
    head = (
        f"{'dataset':<15} {'design':<8} {'setting':<50} {f'rec@{k}':>7} {'long':>6} "
        f"{'short':>6} {'seg':>6} {'top1':>6} {'p50 ms':>8} {'p95 ms':>8} {'client':>7}"
    )
    lines = [
        "A: one point per video, prefetch by pooled + MaxSim rerank (raw Qdrant calls); "
        "B: one point per segment, grouped client-side (raw Qdrant calls); product: the "
        "shipped QdrantEdgeStore.search_segments (design B with its video and segment shards)",
        f"rec@{k}: recall of videos vs the exact answer (long/short: of the long untrimmed "
        "videos / short clips among the exact top-k); seg: named segment = exact best one "
        "(of the exact top-k found); top1: first result and its segment both exact; "
        "client: mean ms of client-side work (A, product: re-scoring the returned segment "
        "vectors; B: grouping)",
        "",
        head,
        "-" * len(head),
    ]

    def add(name: str, design: str, row: dict[str, Any], label: str = "") -> None:
        lines.append(
            f"{name:<15} {label or design:<8} {_setting(design, row):<50} "
            f"{_fmt(row['recall'], 4):>7} {_fmt(row['recall_long']):>6} "
            f"{_fmt(row['recall_short']):>6} {_fmt(row['segment_accuracy']):>6} "
            f"{_fmt(row['top1_moment']):>6} {_fmt(row['p50_ms']):>8} {_fmt(row['p95_ms']):>8} "
            f"{_fmt(row.get('client_mean_ms')):>7}"
        )

    for d in result["datasets"]:
        for row in d["design_a"]["rows"]:
            add(d["name"], DESIGN_A, row)
        for row in d["design_b"]["rows"]:
            add(d["name"], DESIGN_B, row)
        add(d["name"], DESIGN_B, d["design_b"]["exact_scan"])
        for row in d["product"]["rows"]:
            add(d["name"], PRODUCT, row)
    for d in result["local"]:
        for row in d["design_a"]["rows"]:
            add(d["name"], DESIGN_A, row, "A-loc")
        for row in d["design_b"]["rows"]:
            add(d["name"], DESIGN_B, row, "B-loc")
        for row in d["product"]["rows"]:
            add(d["name"], PRODUCT, row, "prod-loc")
    lines.append("")
    bhead = (
        f"{'dataset':<15} {'design':<8} {'points':>9} {'indexed':>9} {'segs':>5} "
        f"{'upsert s':>9} {'optimize s':>10} {'disk MB':>9} {'of it WAL':>9} {'seg shard':>9}"
    )
    lines += [
        "indexed: Qdrant's indexed_vectors_count (A counts both named vectors; 0: below "
        "Qdrant's indexing threshold, so searched by a full scan); segs: Qdrant segments; "
        "product: both shards summed (points = videos + segments), seg shard: the MB of "
        "its moments/ segment shard",
        bhead,
        "-" * len(bhead),
    ]
    for d in result["datasets"]:
        for design, key in ((DESIGN_A, "design_a"), (DESIGN_B, "design_b"), (PRODUCT, "product")):
            b = d[key]["build"]
            window_mb = b.get("segment_shard_mb")
            lines.append(
                f"{d['name']:<15} {design:<8} {b['points']:>9,} {b['indexed_vectors']:>9,} "
                f"{b['segments']:>5} {b['upsert_s']:>9.2f} {b['optimize_s']:>10.2f} "
                f"{b['disk_mb']:>9.1f} {b['wal_mb']:>9.1f} "
                f"{'-' if window_mb is None else f'{window_mb:.1f}':>9}"
            )
    lines.append("")
    target = result["config"]["target_recall"]
    for d in result["datasets"]:
        ha, hb, hp = (d[key]["headline"] for key in ("design_a", "design_b", "product"))
        lines.append(
            f"{d['name']}: best A = {_setting(DESIGN_A, ha)} (recall {ha['recall']:.4f}, "
            f"p50 {ha['p50_ms']:.3f} ms); best B = {_setting(DESIGN_B, hb)} "
            f"(recall {hb['recall']:.4f}, p50 {hb['p50_ms']:.3f} ms); product = "
            f"{_setting(PRODUCT, hp)} (recall {hp['recall']:.4f}, p50 {hp['p50_ms']:.3f} ms) "
            f"[target recall {target:g}]"
        )
        builds = {key: d[key]["build"] for key in ("design_a", "design_b", "product")}
        lines.append(
            "  disk: "
            + ", ".join(
                f"{label} {builds[key]['disk_mb']:.1f} MB"
                for label, key in (("A", "design_a"), ("B", "design_b"), (PRODUCT, "product"))
            )
            + "; build: "
            + ", ".join(
                f"{label} {builds[key]['total_s']:.2f} s"
                for label, key in (("A", "design_a"), ("B", "design_b"), (PRODUCT, "product"))
            )
        )
        lines.append(f"  -> A vs B (the design question): {d['verdict']}")
        lines.append(f"  -> A vs product (as shipped): {d['product_verdict']}")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str | Path) -> None:
    """Recall@k against p50 latency, one panel per dataset (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = result["datasets"]
    if not datasets:
        raise InvalidInput("nothing to plot: no Qdrant Edge dataset was measured")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    cols = min(2, len(datasets))
    rows = math.ceil(len(datasets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4.5 * rows), squeeze=False)
    for ax in axes.flat[len(datasets) :]:
        ax.set_visible(False)
    k = result["config"]["k"]
    for ax, d in zip(axes.flat, datasets, strict=False):
        rows_a = d["design_a"]["rows"]
        fixed = [r for r in d["design_b"]["rows"] if r["mode"] == "fixed"]
        adaptive = [r for r in d["design_b"]["rows"] if r["mode"] == "adaptive"]
        ax.plot([r["p50_ms"] for r in rows_a], [r["recall"] for r in rows_a], "o-", label="A")
        for r in rows_a:
            ax.annotate(f"P={r['prefetch']}", (r["p50_ms"], r["recall"]), fontsize=7)
        ax.plot([r["p50_ms"] for r in fixed], [r["recall"] for r in fixed], "s-", label="B fixed")
        for r in fixed:
            ax.annotate(f"x{r['factor']:g}", (r["p50_ms"], r["recall"]), fontsize=7)
        if adaptive:
            ax.plot(
                [r["p50_ms"] for r in adaptive],
                [r["recall"] for r in adaptive],
                "D",
                label="B adaptive",
            )
        shipped = d["product"]["rows"]
        ax.plot(
            [r["p50_ms"] for r in shipped],
            [r["recall"] for r in shipped],
            "*",
            markersize=11,
            label="product (B as shipped)",
        )
        for r in shipped:
            ax.annotate(f"P={r['prefetch']}", (r["p50_ms"], r["recall"]), fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("p50 latency (ms, one query at a time)")
        ax.set_ylabel(f"recall@{k} of videos vs exact")
        ax.set_title(f"{d['name']} ({d['segments']:,} segments)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def write_json(result: dict[str, Any], out: str) -> None:
    """Write the result as JSON to ``out`` ('-': stdout); NaN/inf become null."""
    text = json.dumps(_json_safe(result), indent=2, allow_nan=False)
    if out == "-":
        print(text)
        return
    path = Path(out)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
