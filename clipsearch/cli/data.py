"""Datasets: ``clipsearch synth`` and ``clipsearch data synthucf|ucf101``."""

from __future__ import annotations

import argparse
from typing import Any

from clipsearch.cli.common import (
    positive_float,
    positive_int,
    progress,
    seed_value,
    show_progress,
    workers_count,
)


def _add_synth_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--classes", type=positive_int, default=12, help="number of classes (1-12)")
    p.add_argument("--groups", type=positive_int, default=25, help="groups per class (1-25)")
    p.add_argument("--clips", type=positive_int, default=4, help="clips per group")
    p.add_argument("--seed", type=seed_value, default=0)
    p.add_argument("--workers", type=workers_count, default=None, help="processes (default: CPUs)")
    p.add_argument(
        "--moments-per-class",
        type=int,
        default=4,
        help="short moments clips holding each class (0: no moments set)",
    )
    p.add_argument("--long-videos", type=int, default=2, help="60-s multi-class videos")
    p.add_argument(
        "--rendering",
        default="synthucf",
        metavar="{synthucf,alt}",
        help="how the classes are drawn: synthucf (default) or alt, a held-out look (other "
        "frame sizes and rates, textures, distractors, motion curves, H.264) to test on",
    )


def cmd_synth(args: argparse.Namespace) -> int:
    from clipsearch.data import synth

    total = args.classes * args.groups * args.clips
    with progress(total, "clip", "synth", show_progress(args)) as update:
        seen = [0]

        def advance(done: int, _total: int) -> None:
            update(done - seen[0])
            seen[0] = done

        summary = synth.generate(
            args.out,
            classes=args.classes,
            groups=args.groups,
            clips=args.clips,
            seed=args.seed,
            workers=args.workers,
            progress=advance,
            moments=args.moments_per_class > 0,
            moments_per_class=max(args.moments_per_class, 1),
            long_videos=args.long_videos,
            rendering=args.rendering,
        )
    print(
        f"wrote {summary.n_clips} clips of {summary.n_classes} classes to {summary.root} "
        f"in {summary.seconds:.1f}s"
    )
    return 0


def cmd_data_ucf101(args: argparse.Namespace) -> int:
    from clipsearch.data import ucf101

    with progress(0, "B", "download", show_progress(args)) as update:
        verified, changed = ucf101.prepare(
            args.dest,
            source=args.source,
            videos_archive=args.videos_archive,
            splits_archive=args.splits_archive,
            keep_archives=args.keep_archives,
            timeout=args.timeout,
            progress=update,
        )
    state = "ready" if changed else "already complete"
    print(
        f"UCF101 {state} at {verified.root}: {verified.clips:,} clips, {verified.classes} "
        "classes, 3 splits verified"
    )
    return 0


def add_synth(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("synth", parents=[common], help="generate the SynthUCF dataset")
    p.add_argument("--out", required=True, help="dataset root to write")
    _add_synth_args(p)
    p.set_defaults(func=cmd_synth)


def add_data(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("data", help="get a dataset: SynthUCF (generated) or UCF101 (download)")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="DATASET")
    d = data_sub.add_parser(
        "synthucf", parents=[common], help="generate SynthUCF (the same as `clipsearch synth`)"
    )
    d.add_argument("--dest", dest="out", required=True, help="dataset root to write")
    _add_synth_args(d)
    d.set_defaults(func=cmd_synth)
    d = data_sub.add_parser(
        "ucf101",
        parents=[common],
        help="download, extract and verify UCF101 (13,320 clips, 101 classes, 3 splits)",
    )
    d.add_argument("--dest", required=True, help="dataset root (UCF-101/, ucfTrainTestlist/)")
    d.add_argument(
        "--source",
        choices=["official", "huggingface"],
        default="official",
        help="official: crcv.ucf.edu (a RAR: needs bsdtar, unrar or 7z); huggingface: a ZIP "
        "mirror of the same files (default %(default)s)",
    )
    d.add_argument("--videos-archive", metavar="FILE", help="use this UCF101.rar / .zip")
    d.add_argument("--splits-archive", metavar="FILE", help="use this split-files ZIP")
    d.add_argument("--keep-archives", action="store_true", help="keep downloaded archives")
    d.add_argument("--timeout", type=positive_float, default=60.0, help="network timeout, seconds")
    d.set_defaults(func=cmd_data_ucf101)
