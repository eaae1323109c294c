"""Evaluation: ``eval``, ``eval-moments``, ``calibrate`` and ``parity``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from clipsearch.cli.common import (
    add_device_arg,
    add_model_arg,
    add_onnx_cache_arg,
    add_text_dtype_arg,
    add_vision_dtype_arg,
    add_window_args,
    emit_json,
    output_file,
    progress,
    show_progress,
    window_plan,
    workers_count,
    write_json,
)
from clipsearch.errors import InvalidInput


def _test_clips(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """The dataset of ``--data`` and its ``--split`` test clips (all clips of a plain folder)."""
    from clipsearch.data.collection import load_collection

    collection = load_collection(args.data)
    clips = collection.split(args.split, "test") if collection.is_ucf else collection.clips
    if not clips:
        raise InvalidInput(f"split {args.split} of {args.data} has no test clips")
    if not any(c.label for c in clips):
        raise InvalidInput(
            f"{args.data} has no clips of a class to score: it needs videos in class "
            "folders (<class>/<video>, or the UCF101 layout)"
        )
    return collection, clips


def cmd_eval(args: argparse.Namespace) -> int:
    from clipsearch.data.synthucf import read_meta
    from clipsearch.evaluation.retrieval import compare_table, decode_passes, evaluate_models
    from clipsearch.model import load_model

    collection, clips = _test_clips(args)
    encoders = [
        load_model(
            name,
            text_dtype=args.text_dtype,
            cache_dir=args.cache_dir,
            vision_dtype=args.vision_dtype,
            device=args.device,
        )
        for name in (args.model, args.compare)
        if name
    ]
    meta = read_meta(collection.root)
    total = len(clips) * decode_passes(encoders)
    with progress(total, "clip", "eval", show_progress(args)) as update:
        reports = evaluate_models(
            encoders,
            collection.classes,
            clips,
            meta=meta,
            plan=window_plan(args),
            progress=update,
        )
    for encoder, report in zip(encoders, reports, strict=True):
        where = {
            "model": encoder.model_id,
            "data": str(args.data),
            "split": args.split,
            "window_frames": args.window_frames,
        }
        report.metrics.update(where)
    if args.compare:
        print(compare_table(reports))
        out: dict[str, Any] = {"models": [r.metrics for r in reports]}
    else:
        print(reports[0].table())
        out = reports[0].metrics
    emit_json(args.json, out)
    if args.metrics:
        from clipsearch.bench.common import scalar_metrics

        write_json(args.metrics, scalar_metrics(reports[0].metrics))
    return 0


def cmd_eval_moments(args: argparse.Namespace) -> int:
    from clipsearch.data.synthucf import read_moments
    from clipsearch.evaluation.moments import evaluate_moments, moments_table
    from clipsearch.model import load_model

    total = len(read_moments(Path(args.data)))
    encoder = load_model(
        args.model,
        towers="both",
        text_dtype=args.text_dtype,
        cache_dir=args.cache_dir,
        vision_dtype=args.vision_dtype,
        device=args.device,
    )
    with progress(total, "video", "eval-moments", show_progress(args)) as update:
        metrics = evaluate_moments(
            encoder, args.data, plan=window_plan(args), workers=args.workers, progress=update
        )
    metrics.update({"model": encoder.model_id, "data": str(args.data)})
    print(moments_table(metrics))
    emit_json(args.json, metrics)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from clipsearch.data.collection import load_collection, validation_split
    from clipsearch.evaluation.calibrate import calibrate, save_calibration
    from clipsearch.model import load_model

    if not 0.0 < args.fpr < 1.0:
        raise InvalidInput(f"--fpr must be between 0 and 1, got {args.fpr}")
    collection = load_collection(args.data)
    clips = collection.clips
    if collection.is_ucf:
        clips = collection.split(args.split, "test")
        if args.clips == "validation":
            clips = validation_split(collection.split(args.split, "train"))[1]
        if not clips:
            raise InvalidInput(f"split {args.split} of {args.data} has no {args.clips} clips")
    encoder = load_model(
        args.model,
        towers="both",
        text_dtype=args.text_dtype,
        cache_dir=args.cache_dir,
        vision_dtype=args.vision_dtype,
        device=args.device,
    )
    with progress(len(clips), "clip", "calibrate", show_progress(args)) as update:
        result = calibrate(
            encoder,
            collection,
            clips,
            fpr=args.fpr,
            plan=window_plan(args),
            workers=args.workers,
            progress=update,
        )
    result.update(
        {
            "model": encoder.model_id,
            "data": str(args.data),
            "split": args.split,
            "clips": args.clips,
        }
    )
    if args.out:
        write_json(args.out, result)
        where = args.out
    else:
        where = str(save_calibration(args.model, result))
    print(
        f"min_score {result['min_score']:.4f}: {result['fpr']:.1%} of irrelevant and "
        f"{result['tpr']:.1%} of relevant results score at least this; "
        f"the best relevant clip of {result['top_relevant_kept']:.0%} of queries passes "
        f"(written to {where})"
    )
    return 0


def cmd_parity(args: argparse.Namespace) -> int:
    from clipsearch.data.synthucf import read_meta
    from clipsearch.evaluation.parity import FAST_PATHS, text_parity
    from clipsearch.model import load_model

    collection, clips = _test_clips(args)
    if args.tower == "vision":
        return _vision_parity(args, collection, clips)
    encoder = load_model(args.model)
    with progress(len(clips), "clip", "parity", show_progress(args)) as update:
        report = text_parity(
            encoder,
            collection.classes,
            clips,
            meta=read_meta(collection.root),
            progress=update,
            cache_dir=args.cache_dir,
        )
    report.update({"data": str(args.data), "split": args.split})
    fp32 = report["fp32"]
    print(
        f"{report['model']}: {report['n_queries']} queries, fp32 mAP "
        f"{fp32['metrics']['mAP']:.4f}, one query {fp32['query_ms']['single']:.1f} ms"
    )
    for path in FAST_PATHS:
        r = report[path]
        print(
            f"  {path}: cosine to fp32 min {r['cosine_to_fp32']['min']:.5f}; mAP "
            f"{r['metrics']['mAP']:.4f} ({r['mAP_delta']:+.4f}); one query "
            f"{r['query_ms']['single']:.1f} ms; "
            + ("fit to be the default" if r["ok_as_default"] else "NOT fit to be the default")
        )
    if args.json:
        write_json(args.json, report)
    return 0


def _vision_parity(args: argparse.Namespace, collection: Any, clips: list[Any]) -> int:
    from clipsearch.data.synthucf import read_meta
    from clipsearch.evaluation.parity import VISION_PATHS, vision_parity

    moments = args.moments
    if moments is None and (Path(args.data) / "moments" / "moments.jsonl").is_file():
        moments = Path(args.data) / "moments"
    elif moments is not None and not (Path(moments) / "moments.jsonl").is_file():
        raise InvalidInput(f"--moments {moments}: no moments.jsonl there")
    with progress(len(clips), "clip", "parity", show_progress(args)) as update:
        report = vision_parity(
            args.model,
            collection.classes,
            clips,
            meta=read_meta(collection.root),
            moments=moments,
            progress=update,
            cache_dir=args.cache_dir,
        )
    report.update({"data": str(args.data), "split": args.split})

    def figures(metrics: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if v is not None)

    print(
        f"{report['model']}: {report['n_clips']} clips, {report['n_frames']} frames; "
        f"vision fp32: {figures(report['fp32']['metrics'])}"
    )
    for path in VISION_PATHS:
        r = report[path]
        worse = ", ".join(r["beyond_tolerance"])
        print(
            f"  {path}: frame cosine to fp32 min {r['frame_cosine_to_fp32']['min']:.5f}, mean "
            f"{r['frame_cosine_to_fp32']['mean']:.5f}; {figures(r['metrics'])}; "
            + ("fit to be the default" if r["ok_as_default"] else f"NOT fit ({worse} dropped)")
        )
    if args.json:
        write_json(args.json, report)
    return 0


def add_eval(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("eval", parents=[common], help="retrieval metrics on a dataset split")
    p.add_argument("--data", required=True, help="UCF101-layout dataset root")
    add_model_arg(p)
    p.add_argument("--split", type=int, default=1, choices=(1, 2, 3))
    p.add_argument(
        "--compare",
        metavar="MODEL2",
        help="also evaluate this checkpoint on the same clips and print both side by side",
    )
    p.add_argument(
        "--json", type=output_file, metavar="OUT", help="write metrics JSON here ('-' for stdout)"
    )
    p.add_argument(
        "--metrics",
        type=output_file,
        metavar="JSON",
        help="also write the headline figures, without per-class tables (DVC metrics)",
    )
    add_window_args(p)
    add_text_dtype_arg(p)
    add_vision_dtype_arg(p)
    add_device_arg(p)
    p.set_defaults(func=cmd_eval)


def add_parity(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "parity",
        parents=[common],
        help="what the int8 and bf16 towers change against fp32 (vectors, figures, speed)",
    )
    p.add_argument("--data", required=True, help="labelled dataset (UCF101 layout: test split)")
    add_model_arg(p)
    p.add_argument("--split", type=int, default=1, choices=(1, 2, 3))
    p.add_argument(
        "--tower",
        choices=("text", "vision"),
        default="text",
        help="text (default): queries' vectors, mAP and speed; vision: each frame's vector "
        "and every retrieval and moment figure, the clips embedded as ingest does",
    )
    p.add_argument(
        "--moments",
        metavar="DIR",
        help="with --tower vision: a moments folder for the moment figures "
        "(default: DATA/moments when it holds moments.jsonl)",
    )
    p.add_argument("--json", type=output_file, metavar="OUT", help="write the report as JSON")
    add_onnx_cache_arg(p)
    p.set_defaults(func=cmd_parity)


def add_eval_moments(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "eval-moments", parents=[common], help="moment retrieval figures on a moments folder"
    )
    p.add_argument(
        "--data", required=True, help="folder with moments.jsonl (SynthUCF: ROOT/moments)"
    )
    add_model_arg(p)
    p.add_argument("--workers", type=workers_count, default=None, help="decode processes")
    p.add_argument(
        "--json", type=output_file, metavar="OUT", help="write metrics JSON here ('-' for stdout)"
    )
    add_window_args(p)
    add_text_dtype_arg(p)
    add_vision_dtype_arg(p)
    add_device_arg(p)
    p.set_defaults(func=cmd_eval_moments)


def add_calibrate(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "calibrate", parents=[common], help="set a model's 'no good match' score threshold"
    )
    p.add_argument("--data", required=True, help="labelled dataset (UCF101 layout)")
    add_model_arg(p)
    p.add_argument("--split", type=int, default=1, choices=(1, 2, 3))
    p.add_argument(
        "--clips",
        choices=("validation", "test"),
        default="validation",
        help="which labelled clips of the split (default: the validation groups training "
        "carves from its training list, so the test list stays for `clipsearch eval`)",
    )
    p.add_argument(
        "--fpr", type=float, default=0.01, help="share of irrelevant results let through"
    )
    p.add_argument(
        "--out",
        type=output_file,
        metavar="JSON",
        help="write here instead of into the model folder",
    )
    p.add_argument("--workers", type=workers_count, default=None, help="decode processes")
    add_window_args(p)
    add_text_dtype_arg(p)
    add_vision_dtype_arg(p)
    add_device_arg(p)
    p.set_defaults(func=cmd_calibrate)
