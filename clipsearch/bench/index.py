"""Offline ANN benchmark: Qdrant Edge HNSW against a FAISS exact inner-product baseline.

For each dataset (the ``pooled`` vectors exported from a clipsearch store, and synthetic
sets of any size shaped like CLIP embeddings) the benchmark

1. builds a FAISS ``IndexFlatIP`` (exact search) and takes its top-k as ground truth;
2. builds Qdrant Edge shards in a temporary directory - HNSW without quantization, and
   HNSW with scalar int8 quantization - runs the optimizer so that the graph is really
   built, and checks that it is (indexed vector count; exact vs graph search);
3. searches every shard sequentially, one query at a time, at several ``hnsw_ef`` and
   reports recall@k against the exact top-k, p50/p95 latency, queries/s and build times.

Vectors are L2-normalised, so FAISS inner product and Qdrant cosine rank identically.
The result is a JSON-able dict; :func:`write_outputs` adds a recall-vs-latency PNG and a
Markdown table.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clipsearch.bench.common import disk_mb, environment, latency_summary, size_label
from clipsearch.errors import InvalidInput
from clipsearch.store.base import POOLED

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

# Variant names: float32 vectors; int8 with Qdrant's default search parameters (rescore on,
# no oversampling); int8 with rescoring and oversampling (see BenchConfig.oversampling).
FLOAT32 = "float32"
INT8 = "int8"


def int8_oversampled(oversampling: float) -> str:
    """Variant name of the int8 shard searched with oversampling."""
    return f"int8-os{oversampling:g}"


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class SynthSpec:
    """Shape of the synthetic embeddings (see :func:`synthetic_embeddings`).

    Each vector is ``mean + U (centre_c + A_c z) + noise``, L2-normalised: ``U`` spans a
    ``rank``-dimensional subspace of ``dim``; ``clusters`` centres of unequal popularity
    with a decaying spectrum (total variance ``between``); a random anisotropic
    within-cluster covariance per cluster (total variance ``within``); isotropic noise
    over all ``dim`` coordinates (total variance ``noise``); and a shared offset of norm
    ``mean_norm`` (CLIP embeddings share a common direction, so random pairs have cosine
    ~0.2 rather than 0). Queries are fresh draws (never base points) with
    ``1 + query_noise`` times the noise variance.
    """

    dim: int = 512
    rank: int | None = None  # None: min(64, dim // 2)
    clusters: int = 256
    mean_norm: float = 0.6
    between: float = 1.0
    within: float = 0.35
    noise: float = 0.25
    query_noise: float = 1.0

    def resolved_rank(self) -> int:
        """The subspace rank actually used."""
        return self.rank if self.rank is not None else min(64, max(1, self.dim // 2))

    def validate(self) -> SynthSpec:
        """Raise InvalidInput on an impossible spec; return self."""
        _positive_int(self.dim, "dim")
        _positive_int(self.clusters, "clusters")
        rank = _positive_int(self.resolved_rank(), "rank")
        if rank > self.dim:
            raise InvalidInput(f"rank must be at most dim ({self.dim}), got {rank}")
        for name in ("mean_norm", "between", "within", "noise", "query_noise"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise InvalidInput(f"{name} must be a non-negative number, got {value!r}")
        if self.between + self.within + self.noise <= 0:
            raise InvalidInput("between, within and noise cannot all be zero")
        return self


@dataclass(frozen=True)
class BenchConfig:
    """What to measure and how the Qdrant shards are built."""

    k: int = 10
    ef: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    m: int = 16  # Qdrant's default
    ef_construct: int = 100  # Qdrant's default
    int8: bool = True  # also build a shard with scalar int8 quantization
    int8_quantile: float | None = 0.99
    # An extra search of the int8 shard with rescoring and this oversampling (None: skip).
    oversampling: float | None = 2.0
    # Qdrant only builds a graph for segments above indexing_threshold_kb and only uses it
    # above full_scan_threshold_kb (defaults 10000 KB, ~5k 512-d vectors): lowered so that
    # every size, the demo store included, measures the HNSW graph and not a scan.
    indexing_threshold_kb: int = 1
    full_scan_threshold_kb: int = 1
    # Threads one query may use: Qdrant's search pool (the shard is reopened with it after
    # the build) and FAISS's OpenMP threads in the single-query timings. None: each engine's
    # default (CPU-derived). 1 makes both single-threaded, which is also what FAISS runs
    # best with on a busy 2-core machine (OpenMP oversubscription).
    search_threads: int | None = 1
    faiss_latency_queries: int | None = 200  # single-query FAISS timings (None: all)
    exact_check_queries: int = 100  # Qdrant exact=True searches, to compare with the graph
    warmup: int = 20
    target_recall: float = 0.99
    upsert_batch: int = 1000
    workdir: str | None = None  # where the temporary shards go (None: system temp dir)

    def validate(self) -> BenchConfig:
        """Raise InvalidInput on a bad setting; return self."""
        _positive_int(self.k, "k")
        if not self.ef:
            raise InvalidInput("give at least one ef value")
        for ef in self.ef:
            _positive_int(ef, "ef")
        _positive_int(self.m, "m")
        _positive_int(self.ef_construct, "ef_construct")
        _positive_int(self.indexing_threshold_kb, "indexing_threshold_kb")
        _positive_int(self.full_scan_threshold_kb, "full_scan_threshold_kb")
        _positive_int(self.upsert_batch, "upsert_batch")
        _positive_int(self.exact_check_queries, "exact_check_queries")
        if self.search_threads is not None:
            _positive_int(self.search_threads, "search_threads")
        if self.faiss_latency_queries is not None:
            _positive_int(self.faiss_latency_queries, "faiss_latency_queries")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise InvalidInput(f"warmup must be a non-negative integer, got {self.warmup!r}")
        if self.oversampling is not None and not (
            isinstance(self.oversampling, int | float)
            and math.isfinite(self.oversampling)
            and self.oversampling >= 1
        ):
            raise InvalidInput(f"oversampling must be at least 1, got {self.oversampling!r}")
        if self.int8_quantile is not None and not 0.5 <= self.int8_quantile <= 1:
            raise InvalidInput(f"int8 quantile must be in [0.5, 1], got {self.int8_quantile!r}")
        if not 0 < self.target_recall <= 1:
            raise InvalidInput(f"target recall must be in (0, 1], got {self.target_recall!r}")
        return self


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InvalidInput(f"seed must be a non-negative integer, got {value!r}")
    return int(value)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidInput(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class _SynthModel:
    basis: np.ndarray  # (dim, rank), orthonormal columns
    offset: np.ndarray  # (dim,)
    centres: np.ndarray  # (clusters, rank)
    factors: np.ndarray  # (clusters, rank, rank): z @ factors[c] ~ within-cluster spread
    weights: np.ndarray  # (clusters,) cluster popularity
    sigma: float  # per-coordinate noise standard deviation


def _synth_model(spec: SynthSpec, seed: int) -> _SynthModel:
    rng = np.random.default_rng([seed, 0])
    dim, rank, clusters = spec.dim, spec.resolved_rank(), spec.clusters
    basis, _ = np.linalg.qr(rng.normal(size=(dim, rank)))
    offset = rng.normal(size=dim)
    offset *= spec.mean_norm / np.linalg.norm(offset)
    spectrum = np.arange(1, rank + 1, dtype=np.float64) ** -0.5
    spectrum /= np.linalg.norm(spectrum)
    centres = rng.normal(size=(clusters, rank)) * spectrum * math.sqrt(spec.between)
    factors = np.empty((clusters, rank, rank))
    for c in range(clusters):
        scales = np.exp(rng.normal(scale=0.5, size=rank)) * spectrum
        scales *= math.sqrt(spec.within) / np.linalg.norm(scales)
        rotation, _ = np.linalg.qr(rng.normal(size=(rank, rank)))
        factors[c] = scales[:, None] * rotation
    weights = rng.dirichlet(np.full(clusters, 2.0))
    return _SynthModel(basis, offset, centres, factors, weights, math.sqrt(spec.noise / dim))


def _draw(
    model: _SynthModel, n: int, rng: np.random.Generator, noise_scale: float, chunk: int = 50_000
) -> np.ndarray:
    dim, rank = model.basis.shape
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        cluster = rng.choice(len(model.weights), size=m, p=model.weights)
        z = rng.standard_normal(size=(m, rank))
        low = model.centres[cluster]
        order = np.argsort(cluster, kind="stable")
        bounds = np.flatnonzero(np.diff(cluster[order])) + 1
        for rows in np.split(order, bounds):
            low[rows] += z[rows] @ model.factors[cluster[rows[0]]]
        x = (low @ model.basis.T + model.offset).astype(np.float32)
        x += rng.standard_normal(size=(m, dim), dtype=np.float32) * np.float32(
            model.sigma * noise_scale
        )
        out[start : start + m] = normalize(x)
    return out


def synthetic_embeddings(
    n: int, n_queries: int, spec: SynthSpec | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` base vectors and ``n_queries`` held-out query vectors, float32, unit norm.

    The same ``seed`` gives the same embedding space (clusters, subspace) at every ``n``;
    the base and query draws depend on ``(seed, n)``. See :class:`SynthSpec`.
    """
    spec = (spec or SynthSpec()).validate()
    _positive_int(n, "n")
    _positive_int(n_queries, "queries")
    seed = _seed(seed)
    model = _synth_model(spec, seed)
    base = _draw(model, n, np.random.default_rng([seed, 1, n]), 1.0)
    queries = _draw(
        model, n_queries, np.random.default_rng([seed, 2, n]), math.sqrt(1 + spec.query_noise)
    )
    return base, queries


def perturbed_queries(
    base: np.ndarray, n_queries: int, seed: int = 0, noise_norm: float = 0.5
) -> np.ndarray:
    """Queries for a real (exported) set: random base vectors plus isotropic noise of
    expected norm ``noise_norm``, renormalised (cosine to their source ~0.9 at 0.5)."""
    _positive_int(n_queries, "queries")
    rng = np.random.default_rng([_seed(seed), 3, len(base)])
    rows = rng.choice(len(base), size=n_queries, replace=n_queries > len(base))
    dim = base.shape[1]
    noise = rng.standard_normal(size=(n_queries, dim), dtype=np.float32)
    return normalize(base[rows] + noise * np.float32(noise_norm / math.sqrt(dim)))


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32); zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def embedding_stats(
    x: np.ndarray, rank: int = 64, sample: int = 20_000, seed: int = 0
) -> dict[str, float]:
    """How embedding-like a set is: variance share of its top ``rank`` principal
    components (uniform noise: ~rank/dim) and the mean pairwise cosine."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(x), size=min(sample, len(x)), replace=False)
    s = x[rows].astype(np.float64)
    centred = s - s.mean(axis=0)
    var = np.clip(np.linalg.eigvalsh(centred.T @ centred)[::-1], 0.0, None)  # descending
    pairs = s[: min(2000, len(s))]
    cos = pairs @ pairs.T
    off_diag = (cos.sum() - np.trace(cos)) / max(1, len(pairs) * (len(pairs) - 1))
    return {
        "pca_rank": int(min(rank, len(var))),
        "pca_top_rank_variance_share": float(var[:rank].sum() / var.sum()),
        "mean_pairwise_cosine": float(off_diag),
    }


def export_store_vectors(path: str | Path) -> np.ndarray | None:
    """The ``pooled`` vectors of the Qdrant Edge store at ``path`` (read only), unit norm;
    None if there is no store there."""
    from clipsearch.store.edge import CONFIG_FILE, QdrantEdgeStore

    path = Path(path)
    if not (path / CONFIG_FILE).exists():
        return None
    with QdrantEdgeStore(path, payload_indexes=()) as store:
        _, vectors = store.export_vectors()
    return normalize(vectors) if len(vectors) else None


# --------------------------------------------------------------------------- metrics


def recall_at_k(found: Sequence[Sequence[int]] | np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean over queries of |found top-k ∩ true top-k| / k (short result lists count as misses)."""
    truth = np.asarray(truth)
    if len(found) != len(truth):
        raise InvalidInput(f"{len(found)} result lists for {len(truth)} queries")
    if truth.ndim != 2 or truth.shape[1] < k:
        raise InvalidInput(f"ground truth must have shape (Q, >= {k}), got {truth.shape}")
    if len(truth) == 0:
        raise InvalidInput("no queries")
    pairs = zip(found, truth, strict=True)
    hits = sum(len(set(list(f)[:k]) & set(t[:k].tolist())) for f, t in pairs)
    return hits / (k * len(truth))


def _sequential(
    search: Callable[[int], list[int]], n: int, warmup: int
) -> tuple[list[list[int]], list[float], float]:
    """Run ``search(i)`` for i in range(n), one at a time: results, latencies, wall time."""
    for i in range(min(warmup, n)):
        search(i)
    results: list[list[int]] = []
    latencies: list[float] = []
    clock = time.perf_counter
    start = clock()
    for i in range(n):
        t = clock()
        results.append(search(i))
        latencies.append(clock() - t)
    return results, latencies, clock() - start


# --------------------------------------------------------------------------- engines


def faiss_exact(
    base: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    latency_queries: int | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Exact top-k ids by inner product (``IndexFlatIP``) and its timings.

    The ground truth comes from one batched search (all OpenMP threads); latency and qps
    from single-query searches of the first ``latency_queries`` queries (None: all) on
    ``threads`` OpenMP threads (None: FAISS's default).
    """
    import faiss

    t = time.perf_counter()
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(np.ascontiguousarray(base, dtype=np.float32))
    build_s = time.perf_counter() - t
    q = np.ascontiguousarray(queries, dtype=np.float32)
    t = time.perf_counter()
    _, truth = index.search(q, k)
    batch_s = time.perf_counter() - t
    n_lat = len(q) if latency_queries is None else min(latency_queries, len(q))

    def one(i: int) -> list[int]:
        return [int(j) for j in index.search(q[i : i + 1], k)[1][0]]

    default_threads = int(faiss.omp_get_max_threads())
    used_threads = default_threads if threads is None else threads
    faiss.omp_set_num_threads(used_threads)
    try:
        found, latencies, wall = _sequential(one, n_lat, warmup=min(5, n_lat))
    finally:
        faiss.omp_set_num_threads(default_threads)
    if recall_at_k(found, truth[:n_lat], k) < 1.0 - 1e-9:
        logger.warning("FAISS single-query and batched results differ (ties?)")
    metrics = {
        "engine": "faiss IndexFlatIP (exact)",
        "build_s": round(build_s, 3),
        "batch_search_s": round(batch_s, 3),
        "batch_qps": round(len(q) / batch_s, 1) if batch_s > 0 else None,
        "latency_queries": n_lat,
        "latency_omp_threads": used_threads,
        "recall": 1.0,
        **latency_summary(latencies, wall),
    }
    return np.asarray(truth, dtype=np.int64), metrics


def _edge_config(
    cfg: BenchConfig, dim: int, quantized: bool, search_threads: int | None = None
) -> Any:
    import qdrant_edge as qe

    quantization = (
        qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=cfg.int8_quantile, always_ram=True)
        if quantized
        else None
    )
    return qe.EdgeConfig(
        vectors={
            POOLED: qe.EdgeVectorParams(
                size=dim, distance=qe.Distance.Cosine, quantization_config=quantization
            )
        },
        hnsw_config=qe.HnswIndexConfig(
            m=cfg.m, ef_construct=cfg.ef_construct, full_scan_threshold=cfg.full_scan_threshold_kb
        ),
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=cfg.indexing_threshold_kb),
        max_search_threads=search_threads,
        wal_enabled=False,  # a throw-away shard: no durability needed, faster upserts
    )


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def qdrant_hnsw(
    base: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    cfg: BenchConfig,
    *,
    quantized: bool,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Build one Qdrant Edge shard (float32 or int8) and search it at every ef.

    Returns one result per variant searched on that shard (float32; or int8 and, with
    ``cfg.oversampling``, int8 oversampled), each with the shared build figures.
    """
    import qdrant_edge as qe

    say = progress or (lambda _msg: None)
    n, dim = base.shape
    k = cfg.k
    label = INT8 if quantized else FLOAT32
    workdir = tempfile.mkdtemp(prefix=f"clipsearch-bench-{label}-", dir=cfg.workdir)
    shard_path = Path(workdir) / "shard"
    shard = None
    try:
        shard = qe.EdgeShard.create(str(shard_path), _edge_config(cfg, dim, quantized))
        say(f"  qdrant {label}: upserting {n:,} vectors")
        t = time.perf_counter()
        for start in range(0, n, cfg.upsert_batch):
            stop = min(n, start + cfg.upsert_batch)
            shard.update(
                qe.UpdateOperation.upsert_points(
                    [qe.Point(i, {POOLED: base[i]}) for i in range(start, stop)]
                )
            )
        shard.flush()
        upsert_s = time.perf_counter() - t
        say(f"  qdrant {label}: building the HNSW graph (optimize)")
        t, cpu = time.perf_counter(), _cpu_s()
        shard.optimize()
        optimize_s, optimize_cpu_s = time.perf_counter() - t, _cpu_s() - cpu
        info = shard.info()
        if cfg.search_threads is not None:
            # Built with the default pool; searched with the requested one.
            shard.close()
            shard = None
            shard = qe.EdgeShard.load(
                str(shard_path), _edge_config(cfg, dim, quantized, cfg.search_threads)
            )
        build = {
            "upsert_s": round(upsert_s, 2),
            "index_s": round(optimize_s, 2),
            "index_cpu_s": round(optimize_cpu_s, 2),
            "total_s": round(upsert_s + optimize_s, 2),
            "points": int(info.points_count),
            "indexed_vectors": int(info.indexed_vectors_count),
            "segments": int(info.segments_count),
            "disk_mb": disk_mb(shard_path),
        }
        if build["indexed_vectors"] < n:
            logger.warning("%s: only %d of %d vectors indexed", label, build["indexed_vectors"], n)
        qlists = queries.tolist()
        searched = shard

        def searcher(params: Any) -> Callable[[int], list[int]]:
            def one(i: int) -> list[int]:
                request = qe.QueryRequest(
                    limit=k, query=qe.Query.Nearest(qlists[i], using=POOLED), params=params
                )
                return [int(p.id) for p in searched.query(request)]

            return one

        # Exact (brute-force) search on the same shard: if the graph is used, graph search
        # must be much faster than this at large n, and this must match FAISS.
        n_exact = min(cfg.exact_check_queries, len(queries))
        found, lat, wall = _sequential(
            searcher(qe.SearchParams(exact=True)), n_exact, min(5, n_exact)
        )
        exact_check = {
            "queries": n_exact,
            "recall": round(recall_at_k(found, truth[:n_exact], k), 4),
            **latency_summary(lat, wall),
        }

        variants: list[tuple[str, Any]] = [(label, None)]
        if quantized and cfg.oversampling is not None:
            variants.append(
                (
                    int8_oversampled(cfg.oversampling),
                    qe.QuantizationSearchParams(rescore=True, oversampling=cfg.oversampling),
                )
            )
        results = []
        for name, quantization in variants:
            rows = []
            for ef in cfg.ef:
                params = qe.SearchParams(hnsw_ef=ef, quantization=quantization)
                found, lat, wall = _sequential(searcher(params), len(queries), cfg.warmup)
                row = {"ef": ef, "recall": round(recall_at_k(found, truth, k), 4)}
                row.update(latency_summary(lat, wall))
                rows.append(row)
                say(
                    f"  qdrant {name} ef={ef}: recall@{k} {row['recall']:.4f}, "
                    f"p50 {row['p50_ms']:.3f} ms"
                )
            results.append(
                {
                    "variant": name,
                    "quantization": _describe_quantization(cfg, name),
                    "build": build,
                    "exact_check": exact_check,
                    "search": rows,
                }
            )
        return results
    finally:
        if shard is not None:
            shard.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _describe_quantization(cfg: BenchConfig, variant: str) -> dict[str, Any] | None:
    if variant == FLOAT32:
        return None
    q: dict[str, Any] = {"type": "scalar int8", "quantile": cfg.int8_quantile, "always_ram": True}
    if variant == INT8:
        q["search"] = "Qdrant defaults (rescore on, no oversampling)"
    else:
        q["search"] = f"rescore=True, oversampling={cfg.oversampling:g}"
    return q


# --------------------------------------------------------------------------- the benchmark


def headline(dataset: dict[str, Any], target: float) -> dict[str, dict[str, Any] | None]:
    """Per variant: the smallest ef reaching ``target`` recall, with its figures (or None)."""
    out: dict[str, dict[str, Any] | None] = {}
    for variant in dataset["qdrant"]:
        best = None
        for row in sorted(variant["search"], key=lambda r: r["ef"]):
            if row["recall"] >= target:
                best = {**row, "build_s": variant["build"]["total_s"]}
                break
        out[variant["variant"]] = best
    return out


def bench_dataset(
    name: str,
    base: np.ndarray,
    queries: np.ndarray,
    cfg: BenchConfig,
    *,
    source: str,
    progress: Progress | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Benchmark one dataset: FAISS exact, then each Qdrant shard."""
    cfg = cfg.validate()
    say = progress or (lambda _msg: None)
    base = np.ascontiguousarray(base, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if base.ndim != 2 or queries.ndim != 2 or base.shape[1] != queries.shape[1]:
        raise InvalidInput(f"base {base.shape} and queries {queries.shape} do not match")
    if len(base) < cfg.k:
        raise InvalidInput(f"{name}: {len(base)} vectors is fewer than k={cfg.k}")
    say(f"{name}: {len(base):,} x {base.shape[1]} vectors, {len(queries):,} queries")
    stats = embedding_stats(base, rank=max(1, base.shape[1] // 8))
    say("  faiss exact: ground truth and single-query timings")
    truth, exact = faiss_exact(
        base,
        queries,
        cfg.k,
        latency_queries=cfg.faiss_latency_queries,
        threads=cfg.search_threads,
    )
    qdrant = qdrant_hnsw(base, queries, truth, cfg, quantized=False, progress=say)
    if cfg.int8:
        qdrant += qdrant_hnsw(base, queries, truth, cfg, quantized=True, progress=say)
    dataset: dict[str, Any] = {
        "name": name,
        "source": source,
        "n": len(base),
        "dim": int(base.shape[1]),
        "queries": len(queries),
        **(extra or {}),
        "stats": stats,
        "faiss_exact": exact,
        "qdrant": qdrant,
    }
    dataset["headline"] = headline(dataset, cfg.target_recall)
    return dataset


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def run_benchmark(
    sizes: Sequence[int],
    *,
    n_queries: int = 1000,
    spec: SynthSpec | None = None,
    cfg: BenchConfig | None = None,
    seed: int = 0,
    store: str | Path | None = None,
    command: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The whole benchmark: the store's vectors (if ``store`` holds one) and each synthetic
    size. Returns a JSON-able dict (see :func:`write_outputs`)."""
    spec = (spec or SynthSpec()).validate()
    cfg = (cfg or BenchConfig()).validate()
    _positive_int(n_queries, "queries")
    _seed(seed)
    for n in sizes:
        if _positive_int(n, "size") < cfg.k:
            raise InvalidInput(f"size {n} is smaller than k={cfg.k}")
    if not sizes and store is None:
        raise InvalidInput("nothing to benchmark: give synthetic sizes or a store")
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    notes: list[str] = []
    datasets: list[dict[str, Any]] = []
    result: dict[str, Any] = {
        "benchmark": "clipsearch bench-index",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "environment": environment({"faiss": "faiss-cpu", "qdrant_edge": "qdrant-edge-py"}),
        "config": {**asdict(cfg), "ef": list(cfg.ef), "seed": seed, "queries": n_queries},
        "synthetic": {**asdict(spec), "rank": spec.resolved_rank()},
        "datasets": datasets,
        "notes": notes,
    }
    if store is not None:
        vectors = export_store_vectors(store)
        if vectors is None:
            notes.append(f"demo size skipped: no clipsearch store at {store}")
            say(notes[-1])
        elif len(vectors) < cfg.k:
            notes.append(f"demo size skipped: store {store} holds only {len(vectors)} vectors")
            say(notes[-1])
        else:
            queries = perturbed_queries(vectors, n_queries, seed)
            datasets.append(
                bench_dataset(
                    "demo",
                    vectors,
                    queries,
                    cfg,
                    source=f"store {store} ({POOLED!r} vectors)",
                    progress=say,
                    extra={"query_kind": "stored vectors + isotropic noise of norm 0.5"},
                )
            )
    for n in sizes:
        say(f"synthetic-{size_label(n)}: generating")
        t = time.perf_counter()
        base, queries = synthetic_embeddings(n, n_queries, spec, seed)
        gen_s = time.perf_counter() - t
        datasets.append(
            bench_dataset(
                f"synthetic-{size_label(n)}",
                base,
                queries,
                cfg,
                source="synthetic (SynthSpec)",
                progress=say,
                extra={"generate_s": round(gen_s, 2), "query_kind": "held-out draws, noisier"},
            )
        )
        del base, queries
    result["total_s"] = round(time.perf_counter() - started, 1)
    result["peak_rss_mb"] = _peak_rss_mb()
    if hasattr(os, "getloadavg"):
        result["environment"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


# --------------------------------------------------------------------------- outputs


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(result: dict[str, Any]) -> str:
    """The benchmark as Markdown: headline, build times and every (variant, ef) setting."""
    cfg = result["config"]
    env = result["environment"]
    k, target = cfg["k"], cfg["target_recall"]
    lines = [
        f"# Qdrant Edge HNSW vs FAISS exact: recall@{k}, latency, build time",
        "",
        f"Command: `{result.get('command') or 'run_benchmark(...)'}`  ",
        f"Run: {result['created']}, {result.get('total_s')} s in all.  ",
        f"Machine: {env.get('cpus')} CPUs, {env.get('mem_total_gib')} GiB, "
        f"{env.get('platform')}; Python {env.get('python')}, "
        f"qdrant-edge-py {env.get('qdrant_edge')}, faiss-cpu {env.get('faiss')}, "
        f"numpy {env.get('numpy')}; load average at start {env.get('loadavg_at_start')}, "
        f"at end {env.get('loadavg_at_end')}.  ",
        f"Qdrant Edge shards: cosine, HNSW m={cfg['m']}, ef_construct={cfg['ef_construct']}, "
        f"indexing and full-scan thresholds {cfg['indexing_threshold_kb']} KB (the graph is "
        "built and used at every size), WAL off, graph built by `optimize()`. int8 = scalar "
        f"int8 (quantile {cfg['int8_quantile']}, in RAM) searched with Qdrant's defaults "
        "(rescore on, no oversampling); "
        f"int8-os{_fmt(cfg['oversampling'], 0) if cfg['oversampling'] else '-'} = the same "
        "shard searched with rescore and oversampling. Queries run one at a time from one "
        "Python thread, each engine limited to "
        f"{cfg['search_threads'] or 'its default number of'} search thread(s); latency "
        "includes the Python binding call; qps = queries / wall time of the sequential loop.",
        "",
        f"## Smallest ef with recall@{k} >= {target}",
        "",
        f"| dataset | n | engine | ef | recall@{k} | p50 ms | p95 ms | qps | build s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for d in result["datasets"]:
        e = d["faiss_exact"]
        lines.append(
            f"| {d['name']} | {d['n']:,} | FAISS exact | - | 1.000 | {_fmt(e['p50_ms'])} | "
            f"{_fmt(e['p95_ms'])} | {_fmt(e['qps'], 1)} | {_fmt(e['build_s'], 2)} |"
        )
        for variant, best in d["headline"].items():
            if best is None:
                lines.append(
                    f"| {d['name']} | {d['n']:,} | Qdrant {variant} | not reached up to ef "
                    f"{max(cfg['ef'])} | - | - | - | - | - |"
                )
            else:
                lines.append(
                    f"| {d['name']} | {d['n']:,} | Qdrant {variant} | {best['ef']} | "
                    f"{best['recall']:.3f} | {_fmt(best['p50_ms'])} | {_fmt(best['p95_ms'])} | "
                    f"{_fmt(best['qps'], 1)} | {_fmt(best['build_s'], 1)} |"
                )
    lines += [
        "",
        "## Build",
        "",
        "| dataset | n | engine | upsert s | index build s (CPU s) | total s | segments | "
        "indexed vectors | disk MB | exact-scan p50 ms | graph used |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for d in result["datasets"]:
        lines.append(
            f"| {d['name']} | {d['n']:,} | FAISS IndexFlatIP | - | "
            f"{_fmt(d['faiss_exact']['build_s'], 2)} | {_fmt(d['faiss_exact']['build_s'], 2)} "
            "| - | - | - | - | - |"
        )
        for v in d["qdrant"]:
            if v["variant"] not in (FLOAT32, INT8):
                continue  # int8 searched with oversampling: the same shard as int8
            b = v["build"]
            fastest = min(r["p50_ms"] for r in v["search"])
            used = "yes" if b["indexed_vectors"] >= d["n"] else "NO"
            lines.append(
                f"| {d['name']} | {d['n']:,} | Qdrant {v['variant']} | {_fmt(b['upsert_s'], 1)} | "
                f"{_fmt(b['index_s'], 1)} ({_fmt(b['index_cpu_s'], 1)}) | {_fmt(b['total_s'], 1)} "
                f"| {b['segments']} | {b['indexed_vectors']:,} | {_fmt(b['disk_mb'], 0)} | "
                f"{_fmt(v['exact_check']['p50_ms'])} (graph: {_fmt(fastest)} at best) | "
                f"{used} |"
            )
    lines += [
        "",
        "## Every setting",
        "",
        f"| dataset | variant | ef | recall@{k} | p50 ms | p95 ms | qps |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for d in result["datasets"]:
        e = d["faiss_exact"]
        lines.append(
            f"| {d['name']} | FAISS exact | - | 1.000 | {_fmt(e['p50_ms'])} | "
            f"{_fmt(e['p95_ms'])} | {_fmt(e['qps'], 1)} |"
        )
        for v in d["qdrant"]:
            for r in v["search"]:
                lines.append(
                    f"| {d['name']} | {v['variant']} | {r['ef']} | {r['recall']:.4f} | "
                    f"{_fmt(r['p50_ms'])} | {_fmt(r['p95_ms'])} | {_fmt(r['qps'], 1)} |"
                )
    if result.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: str | Path) -> None:
    """Recall@k against p50 latency (log scale): one line per dataset and variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = result["config"]["k"]
    styles = {FLOAT32: ("-", "o"), INT8: ("--", "s")}
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    for i, d in enumerate(result["datasets"]):
        colour = colours(i % 10)
        for v in d["qdrant"]:
            line, marker = styles.get(v["variant"], (":", "^"))
            xs = [r["p50_ms"] for r in v["search"]]
            ys = [r["recall"] for r in v["search"]]
            ax.plot(
                xs,
                ys,
                line,
                marker=marker,
                color=colour,
                label=f"{d['name']} Qdrant {v['variant']}",
            )
            if v["variant"] == FLOAT32:
                for r in v["search"]:
                    ax.annotate(
                        str(r["ef"]),
                        (r["p50_ms"], r["recall"]),
                        textcoords="offset points",
                        xytext=(3, -9),
                        fontsize=7,
                        color=colour,
                    )
        ax.plot(
            [d["faiss_exact"]["p50_ms"]],
            [1.0],
            "*",
            markersize=13,
            color=colour,
            label=f"{d['name']} FAISS exact",
        )
    ax.axhline(result["config"]["target_recall"], color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("p50 latency per query (ms, log scale)")
    ax.set_ylabel(f"recall@{k} vs FAISS exact")
    ax.set_title("Qdrant Edge HNSW (labels: hnsw_ef) vs FAISS exact")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def headline_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """Per dataset: FAISS exact against each Qdrant variant at its smallest ef reaching the
    target recall (a flat document for ``dvc metrics show``)."""
    metrics: dict[str, Any] = {}
    for d in result["datasets"]:
        row: dict[str, Any] = {
            "n": d["n"],
            "faiss_exact_p50_ms": d["faiss_exact"]["p50_ms"],
            "faiss_exact_qps": d["faiss_exact"]["qps"],
        }
        for variant, best in d["headline"].items():
            key = variant.replace("-", "_")
            if best is None:
                row[f"qdrant_{key}_recall"] = None
                continue
            row[f"qdrant_{key}_ef"] = best["ef"]
            row[f"qdrant_{key}_recall"] = best["recall"]
            row[f"qdrant_{key}_p50_ms"] = best["p50_ms"]
            row[f"qdrant_{key}_qps"] = best["qps"]
        metrics[d["name"]] = row
    return metrics


def recall_latency_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (dataset, variant, ef) point of the sweep, one row each (a DVC plot's data)."""
    rows = []
    for d in result["datasets"]:
        for q in d["qdrant"]:
            for point in q["search"]:
                rows.append(
                    {
                        "dataset": d["name"],
                        "variant": q["variant"],
                        "ef": point["ef"],
                        "recall": point["recall"],
                        "p50_ms": point["p50_ms"],
                        "qps": point["qps"],
                    }
                )
    return rows


def write_outputs(result: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``index.json``, ``index.png``, ``index.md``, the headline ``metrics.json`` and
    the sweep as ``recall_latency.csv`` into ``out_dir``."""
    import csv
    import json

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"output path {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "index.json",
        "png": out / "index.png",
        "md": out / "index.md",
        "metrics": out / "metrics.json",
        "csv": out / "recall_latency.csv",
    }
    paths["json"].write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    plot(result, paths["png"])
    paths["md"].write_text(markdown_table(result))
    paths["metrics"].write_text(json.dumps(headline_metrics(result), indent=2) + "\n")
    rows = recall_latency_rows(result)
    with paths["csv"].open("w", newline="") as f:
        writer = csv.DictWriter(
            f, fieldnames=["dataset", "variant", "ef", "recall", "p50_ms", "qps"]
        )
        writer.writeheader()
        writer.writerows(rows)
    return paths
