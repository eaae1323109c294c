"""``clipsearch bench-moments``: one point per video (MaxSim rerank) against one point per
window and the shipped store (its flags and handler). The benchmark itself is
:mod:`clipsearch.bench.moments`; Qdrant and matplotlib load only when it runs."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

from clipsearch.bench.common import cpu_line, parse_int_list
from clipsearch.bench.moments.data import (
    DEFAULT_DIMS,
    DEFAULT_OVERFETCH,
    DEFAULT_PREFETCH,
    DEFAULT_VIDEOS,
    PRODUCT_PREFETCH,
    BenchConfig,
)
from clipsearch.cli.common import output_file, seed_value
from clipsearch.errors import InvalidInput


def add_bench_moments(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "bench-moments",
        parents=[common],
        help="benchmark one point per video (MaxSim rerank) against one point per window "
        "and the shipped store",
    )
    _add_arguments(p)
    p.set_defaults(func=cmd_bench_moments)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--videos",
        default=DEFAULT_VIDEOS,
        help="synthetic collection sizes in videos, comma-separated, k/M allowed "
        "(default %(default)s)",
    )
    p.add_argument(
        "--dim", default=DEFAULT_DIMS, help="vector sizes, comma-separated (default %(default)s)"
    )
    p.add_argument("--queries", type=int, default=200, help="queries per dataset (default 200)")
    p.add_argument("--seed", type=seed_value, default=0)
    p.add_argument("-k", type=int, default=10, help="recall@k of videos (default 10)")
    p.add_argument(
        "--prefetch",
        default=DEFAULT_PREFETCH,
        help="design A: pooled candidates before the MaxSim rerank (default %(default)s)",
    )
    p.add_argument(
        "--product-prefetch",
        default=str(PRODUCT_PREFETCH),
        help="the shipped store's search_windows prefetch, comma-separated (default "
        "%(default)s, SearchLimits' value)",
    )
    p.add_argument(
        "--overfetch",
        default=DEFAULT_OVERFETCH,
        help="design B: windows fetched = k x factor; k x max windows per video is always "
        "added (default %(default)s)",
    )
    p.add_argument(
        "--adaptive-start",
        type=int,
        default=2,
        help="design B adaptive: first limit k x this, doubled until k videos (default 2)",
    )
    p.add_argument(
        "--target-recall",
        type=float,
        default=0.95,
        help="the headline row of a design is its fastest reaching this (default 0.95)",
    )
    p.add_argument(
        "--local-videos",
        type=int,
        default=0,
        help="also run both designs and the shipped QdrantClientStore on qdrant-client "
        "local mode at this size "
        "(slow, exact, pure Python; 0: skip, the default)",
    )
    p.add_argument(
        "--local-queries", type=int, default=50, help="queries in local mode (default 50)"
    )
    p.add_argument("--warmup", type=int, default=20, help="untimed queries first (default 20)")
    p.add_argument("--workdir", default=None, help="where the temporary stores go ($TMPDIR)")
    p.add_argument(
        "--json",
        type=output_file,
        metavar="OUT",
        default=None,
        help="write the results here ('-')",
    )
    p.add_argument("--plot", metavar="PNG", default=None, help="recall-vs-latency plot")


def _command(args: argparse.Namespace) -> str:
    """The canonical command line of this run (recorded with the results)."""
    parts = ["clipsearch", "bench-moments", "--videos", args.videos, "--dim", str(args.dim)]
    parts += ["--queries", str(args.queries), "--seed", str(args.seed), "-k", str(args.k)]
    parts += ["--prefetch", args.prefetch, "--product-prefetch", args.product_prefetch]
    parts += ["--overfetch", args.overfetch]
    parts += ["--adaptive-start", str(args.adaptive_start)]
    parts += ["--target-recall", f"{args.target_recall:g}", "--warmup", str(args.warmup)]
    if args.local_videos:
        parts += ["--local-videos", str(args.local_videos)]
        parts += ["--local-queries", str(args.local_queries)]
    if args.json:
        parts += ["--json", args.json]
    if args.plot:
        parts += ["--plot", args.plot]
    return shlex.join(parts)


def cmd_bench_moments(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed arguments; raises ClipSearchError on bad input."""
    from clipsearch.bench.moments.runner import plot, run_benchmark, table, write_json

    videos = parse_int_list(args.videos, "--videos", example="10k,1000")
    dims = parse_int_list(str(args.dim), "--dim", example="10k,1000")
    cfg = BenchConfig(
        k=args.k,
        prefetch=parse_int_list(args.prefetch, "--prefetch", example="10k,1000"),
        product_prefetch=parse_int_list(
            args.product_prefetch, "--product-prefetch", example="10k,1000"
        ),
        overfetch=parse_int_list(args.overfetch, "--overfetch", example="10k,1000"),
        adaptive_start=args.adaptive_start,
        warmup=args.warmup,
        target_recall=args.target_recall,
        local_videos=args.local_videos,
        local_queries=args.local_queries,
        workdir=args.workdir,
    ).validate()
    if args.queries < 1:
        raise InvalidInput(f"--queries must be at least 1, got {args.queries}")
    for what, out in (("--json", args.json), ("--plot", args.plot)):
        if out and out != "-" and os.path.isdir(out):
            raise InvalidInput(f"{what} {out} is a directory")
    quiet = getattr(args, "quiet", False)

    def progress(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    result = run_benchmark(
        videos,
        dims,
        n_queries=args.queries,
        cfg=cfg,
        seed=args.seed,
        command=_command(args),
        progress=progress,
    )
    # With the JSON on stdout, the table goes to stderr so stdout stays parseable.
    report = sys.stderr if args.json == "-" else sys.stdout
    print(cpu_line(), file=report)
    print(table(result), file=report)
    for note in result["notes"]:
        print(f"note: {note}", file=report)
    if args.json:
        write_json(result, args.json)
        if args.json != "-":
            print(f"wrote {args.json}", file=report)
    if args.plot:
        plot(result, args.plot)
        print(f"wrote {args.plot}", file=report)
    return 0
