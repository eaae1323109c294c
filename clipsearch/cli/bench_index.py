"""``clipsearch bench-index``: Qdrant HNSW against a FAISS exact baseline (its flags and
handler). The benchmark itself is :mod:`clipsearch.bench.index`, imported only when the
command runs (it pulls in FAISS, Qdrant Edge and matplotlib)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

from clipsearch.bench.common import cpu_line, parse_int_list
from clipsearch.cli.common import DEFAULT_STORE, env
from clipsearch.errors import InvalidInput

DEFAULT_OUT = "benchmarks/index"
DEFAULT_SIZES = "100000,1000000"
DEFAULT_EF = "16,32,64,128,256,512"


# Vectors of the largest synthetic dataset: 10M of 512 floats are 20 GB.
MAX_SIZE = 10_000_000


def add_bench_index(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "bench-index",
        parents=[common],
        help="benchmark Qdrant HNSW (float32, int8) against FAISS exact search",
    )
    _add_arguments(p)
    p.set_defaults(func=cmd_bench_index)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        metavar="PATH",
        default=env("CLIPSEARCH_STORE", DEFAULT_STORE),
        help="Qdrant Edge store whose pooled vectors make the 'demo' row; skipped with a note "
        "if there is none (env CLIPSEARCH_STORE; default %(default)s)",
    )
    p.add_argument("--no-store", action="store_true", help="synthetic sizes only")
    p.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help="synthetic set sizes, comma-separated, k/M suffixes allowed "
        "('none' for the store only; default %(default)s)",
    )
    p.add_argument("--dim", type=int, default=512, help="synthetic vector size (default 512)")
    p.add_argument("--queries", type=int, default=1000, help="queries per dataset (default 1000)")
    p.add_argument("--ef", default=DEFAULT_EF, help="hnsw_ef values (default %(default)s)")
    p.add_argument("-k", type=int, default=10, help="recall@k (default 10)")
    p.add_argument("--m", type=int, default=16, help="HNSW m (default 16, Qdrant's)")
    p.add_argument(
        "--ef-construct", type=int, default=100, help="HNSW ef_construct (default 100, Qdrant's)"
    )
    p.add_argument("--no-int8", action="store_true", help="skip the int8-quantized shard")
    p.add_argument(
        "--oversampling",
        type=float,
        default=2.0,
        help="also search the int8 shard with rescoring and this oversampling (0: skip; default 2)",
    )
    p.add_argument(
        "--search-threads",
        type=int,
        default=1,
        help="threads one query may use, in Qdrant's search pool and FAISS's OpenMP "
        "(default 1; 0: each engine's default)",
    )
    p.add_argument(
        "--faiss-latency-queries",
        type=int,
        default=200,
        help="queries timed one by one on FAISS exact (default 200; the ground truth always "
        "uses every query)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--workdir", default=None, help="where the temporary Qdrant shards go (default: $TMPDIR)"
    )
    p.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help="output folder for index.json, index.png, index.md, metrics.json (the headline "
        "figures) and recall_latency.csv (the sweep) (default %(default)s)",
    )


def _command(args: argparse.Namespace) -> str:
    """The canonical command line of this run (recorded with the results)."""
    parts = ["clipsearch", "bench-index"]
    parts += ["--no-store"] if args.no_store else ["--store", args.store]
    parts += ["--sizes", args.sizes, "--dim", str(args.dim), "--queries", str(args.queries)]
    parts += ["--ef", args.ef, "-k", str(args.k), "--m", str(args.m)]
    parts += ["--ef-construct", str(args.ef_construct)]
    if args.no_int8:
        parts.append("--no-int8")
    parts += ["--oversampling", f"{args.oversampling:g}"]
    parts += ["--search-threads", str(args.search_threads)]
    parts += ["--faiss-latency-queries", str(args.faiss_latency_queries)]
    parts += ["--seed", str(args.seed), "--out", args.out]
    return shlex.join(parts)


def cmd_bench_index(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed arguments; raises ClipSearchError on bad input."""
    from clipsearch.bench import index as ib

    sizes = () if args.sizes.strip().lower() == "none" else parse_int_list(args.sizes, "--sizes")
    if any(n > MAX_SIZE for n in sizes):
        raise InvalidInput(f"--sizes: at most {MAX_SIZE:,} vectors a dataset, got {args.sizes}")
    ef = parse_int_list(args.ef, "--ef")
    if args.search_threads < 0:
        raise InvalidInput(
            f"--search-threads must be 0 (engine defaults) or more, got {args.search_threads}"
        )
    if args.oversampling != 0 and not args.oversampling >= 1:
        raise InvalidInput(
            f"--oversampling must be 0 (skip) or at least 1, got {args.oversampling}"
        )
    spec = ib.SynthSpec(dim=args.dim).validate()
    cfg = ib.BenchConfig(
        k=args.k,
        ef=ef,
        m=args.m,
        ef_construct=args.ef_construct,
        int8=not args.no_int8,
        oversampling=args.oversampling or None,
        search_threads=args.search_threads or None,
        faiss_latency_queries=args.faiss_latency_queries,
        workdir=args.workdir,
    ).validate()
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise InvalidInput(f"--out {args.out} exists and is not a directory")
    quiet = getattr(args, "quiet", False)

    def progress(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    result = ib.run_benchmark(
        sizes,
        n_queries=args.queries,
        spec=spec,
        cfg=cfg,
        seed=args.seed,
        store=None if args.no_store else args.store,
        command=_command(args),
        progress=progress,
    )
    if not result["datasets"]:  # the results of an earlier run stay as they are
        raise InvalidInput(
            f"nothing was measured ({'; '.join(result['notes']) or 'no dataset'}): "
            f"{args.out} is left as it was"
        )
    paths = ib.write_outputs(result, args.out)
    print(cpu_line())
    for d in result["datasets"]:
        best = d["headline"].get(ib.FLOAT32)
        line = f"{d['name']}: FAISS exact p50 {d['faiss_exact']['p50_ms']:.3f} ms"
        if best:
            line += (
                f"; Qdrant float32 recall@{cfg.k} {best['recall']:.3f} at ef={best['ef']}, "
                f"p50 {best['p50_ms']:.3f} ms, {best['qps']:.0f} qps"
            )
        else:
            line += f"; Qdrant float32 did not reach recall {cfg.target_recall}"
        print(line)
    for note in result["notes"]:
        print(f"note: {note}")
    print("wrote " + ", ".join(str(path) for path in paths.values()))
    return 0
