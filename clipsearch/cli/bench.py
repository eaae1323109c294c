"""Benchmarks: ``bench-text``, ``bench-ingest`` and ``load-store`` (``bench-index`` and
``bench-moments`` have their own modules)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from clipsearch.cli.common import (
    MAX_DIM,
    add_device_arg,
    add_model_arg,
    add_onnx_cache_arg,
    add_store_args,
    add_vision_dtype_arg,
    add_window_args,
    int_in,
    output_file,
    positive_int,
    progress,
    seed_value,
    show_progress,
    store_settings,
    window_plan,
    workers_count,
    write_json,
)
from clipsearch.errors import InvalidInput
from clipsearch.settings import (
    DEFAULT_DEVICE,
    TEXT_DTYPES,
)


def cmd_load_store(args: argparse.Namespace) -> int:
    from clipsearch.bench.loadstore import build_load_store
    from clipsearch.store.factory import open_store

    dim = args.dim
    if args.model:
        from transformers import AutoConfig

        try:
            dim = int(AutoConfig.from_pretrained(args.model).projection_dim)
        except Exception as exc:  # transformers raises many types for "cannot read"
            raise InvalidInput(
                f"cannot read the vector size of model {args.model!r}: {exc}"
            ) from None
    store = open_store(store_settings(args))
    try:
        with progress(args.clips, "clip", "load store", show_progress(args)) as update:
            report = build_load_store(store, dim, clips=args.clips, seed=args.seed, progress=update)
    finally:
        store.close()
    print(
        f"wrote {report.clips} synthetic clips ({report.windows} segments, {report.dim}-d) in "
        f"{report.upsert_s + report.optimize_s:.0f} s (upsert {report.upsert_s:.0f} s, "
        f"optimize {report.optimize_s:.0f} s): for load tests only, their answers mean nothing"
    )
    return 0


def cmd_bench_text(args: argparse.Namespace) -> int:
    from clipsearch.bench.common import cpu_line, environment
    from clipsearch.evaluation.parity import text_speed
    from clipsearch.model import load_model

    try:
        texts = [t.strip() for t in Path(args.texts).read_text().splitlines() if t.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read query texts from {args.texts}: {exc}") from None
    texts = texts[: args.queries]
    if len(texts) < 2 * args.batch:
        raise InvalidInput(
            f"{len(texts)} texts to time (of {args.texts}, --queries {args.queries}); "
            f"batches of {args.batch} need at least {2 * args.batch}"
        )
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    for dtype in dtypes:  # all checked before any is timed
        if dtype not in TEXT_DTYPES:
            raise InvalidInput(f"unknown text dtype {dtype!r} (known: {', '.join(TEXT_DTYPES)})")
    print(cpu_line())
    results = []
    for dtype in dtypes:
        encoder = load_model(
            args.model,
            towers="text",
            text_dtype=dtype,
            cache_dir=args.cache_dir,
            threads=args.threads,
        )
        r = text_speed(encoder, texts, args.batch)
        results.append(r)
        print(
            f"{dtype}: one query {r['single_ms']:.2f} ms ({r['single_qps']:.0f}/s); "
            f"batches of {args.batch}: {r[f'batch{args.batch}_qps']:.0f} queries/s"
        )
    if args.json:
        write_json(
            args.json,
            {
                "model": args.model,
                "threads": args.threads,
                "results": results,
                "environment": environment({"torch": "torch", "onnxruntime": "onnxruntime"}),
            },
        )
    return 0


def cmd_bench_ingest(args: argparse.Namespace) -> int:
    from clipsearch.bench.common import cpu_line
    from clipsearch.bench.ingest import UCF101_MEAN_S, bench_ingest
    from clipsearch.data.collection import load_collection
    from clipsearch.model import load_model
    from clipsearch.pipeline.embed import check_pooled_frames

    collection = load_collection(args.data)
    if not collection.clips:
        raise InvalidInput(f"no video files found under {args.data}")
    encoder = load_model(
        args.model,
        towers="vision",
        vision_dtype=args.vision_dtype,
        cache_dir=args.cache_dir,
        device=args.device,
    )
    if args.frames:
        check_pooled_frames(encoder, args.frames, "clips (--frames)")
        encoder.video = replace(encoder.video, num_frames=args.frames)
    plan = window_plan(args) if args.windows else None
    result = bench_ingest(
        collection,
        encoder,
        limit=args.limit,
        batch_clips=args.batch,
        workers=args.workers,
        plan=plan,
    )
    result["command"] = (
        f"clipsearch bench-ingest {args.data} --model {args.model} --limit {args.limit} "
        f"--batch {args.batch} --vision-dtype {args.vision_dtype}"
        + (f" --device {args.device}" if args.device != DEFAULT_DEVICE else "")
        + (f" --frames {args.frames}" if args.frames else "")
        + (
            f" --window-s {args.window_s} --stride-s {args.stride_s}"
            f" --window-frames {args.window_frames}"
            if plan
            else " --no-segments"
        )
    )
    p, m, u = result["pipeline"], result["model_only"], result["ucf101"]
    print(cpu_line(result["environment"]["cpu"]))
    print(
        f"{result['clips']} clips x {result['frames_per_clip']} frames "
        f"({'windows' if plan else 'no windows'}), vision {result['vision_dtype']} "
        f"on {result['device']}: "
        f"pipeline {p['frames_per_s']:.1f} frames/s ({p['clips_per_s']:.2f} clips/s), model alone "
        f"{m['frames_per_s']:.1f} frames/s: ingest_efficiency {result['ingest_efficiency']:.3f}"
    )
    print(
        f"UCF101 projection: 13,320 clips x {u['frames_per_clip']} frames (a clip of the mean "
        f"length, {UCF101_MEAN_S} s) at the pipeline's frames/s: {u['projected_s'] / 3600:.1f} h"
    )
    print("stages (s): " + ", ".join(f"{k} {v}" for k, v in p["stage_seconds"].items()))
    if args.json:
        write_json(args.json, result)
    return 0


def add_bench_text(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "bench-text",
        parents=[common],
        help="queries/s of the text tower alone: one at a time and batched (the ceiling)",
    )
    add_model_arg(p)
    p.add_argument("--texts", required=True, help="query texts, one per line")
    p.add_argument("--queries", type=positive_int, default=1024, help="texts used (default 1024)")
    p.add_argument("--batch", type=positive_int, default=32)
    p.add_argument("--dtypes", default="fp32,bf16,int8", help="comma-separated text dtypes")
    p.add_argument("--threads", type=workers_count, default=None, help="CPU threads")
    add_onnx_cache_arg(p)
    p.add_argument("--json", type=output_file, metavar="OUT", help="write the results as JSON")
    p.set_defaults(func=cmd_bench_text)


def add_bench_ingest(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "bench-ingest",
        parents=[common],
        help="ingest frames/s against the vision tower's own (ingest_efficiency)",
    )
    p.add_argument("data", help="a folder of videos (UCF101 layout or any)")
    add_model_arg(p)
    p.add_argument("--limit", type=positive_int, default=96, help="clips (default 96)")
    p.add_argument("--batch", type=positive_int, default=16, help="clips per batch")
    p.add_argument("--workers", type=workers_count, default=None, help="decode processes")
    p.add_argument("--frames", type=int_in(1, 256), default=None, help="frames per clip")
    p.add_argument(
        "--segments",
        dest="windows",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="embed the moment windows, as `clipsearch ingest` does (the default); "
        "--no-segments: only the clip's own frames",
    )
    add_window_args(p)
    add_vision_dtype_arg(p)
    add_device_arg(p)
    add_onnx_cache_arg(p)
    p.add_argument("--json", type=output_file, metavar="OUT", help="write the result as JSON")
    p.set_defaults(func=cmd_bench_ingest)


def add_load_store(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "load-store",
        parents=[common],
        help="fill a new store with UCF101's number of synthetic clips (load tests)",
    )
    add_store_args(p)
    p.add_argument("--clips", type=positive_int, default=13_320, help="default: UCF101's count")
    p.add_argument("--dim", type=int_in(1, MAX_DIM), default=512, help="vector size (default 512)")
    p.add_argument("--model", help="take the vector size from this CLIP checkpoint instead")
    p.add_argument("--seed", type=seed_value, default=0)
    p.set_defaults(func=cmd_load_store)
