"""Ingest: ``clipsearch ingest`` and ``clipsearch watch``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from clipsearch.cli.common import (
    DEFAULT_MEDIA,
    EXIT_ERROR,
    add_device_arg,
    add_model_arg,
    add_onnx_cache_arg,
    add_store_args,
    add_vision_dtype_arg,
    add_window_args,
    announce,
    env,
    non_negative_float,
    output_file,
    positive_int,
    progress,
    show_progress,
    stop_on_signals,
    store_settings,
    watch_interval,
    window_plan,
    workers_count,
    write_json,
)
from clipsearch.errors import InvalidInput
from clipsearch.settings import (
    DEFAULT_MAX_VIDEO_S,
    DEFAULT_WATCH_INTERVAL_S,
)


def cmd_ingest(args: argparse.Namespace) -> int:
    from clipsearch.data.collection import load_collection
    from clipsearch.model import load_model
    from clipsearch.pipeline.runner import describe_ignored, selected_clips

    options = _ingest_options(args)
    _serve_metrics(args)
    if args.force and not args.prune:
        raise InvalidInput(
            "--force only applies with --prune (to remove more than half of a folder's "
            "videos, or all of an empty folder's); to embed up-to-date clips again, use --reembed"
        )
    if args.prune and Path(args.root).is_file():
        raise InvalidInput(f"--prune needs a folder, and {args.root} is a file")
    collection = load_collection(args.root)
    if not collection.clips and not args.prune:
        ignored = f" (ignored {describe_ignored(collection.ignored)})" if collection.ignored else ""
        raise InvalidInput(f"no video files found under {args.root}{ignored}")
    if (args.no_swap or args.drop_old) and not args.alias:
        raise InvalidInput("--no-swap and --drop-old only apply with --alias")
    if args.alias and options.shard is not None:
        raise InvalidInput(
            "--alias with --shard is not supported: parallel workers would each start their "
            "own version; fill one collection with --shard, or build the version in one ingest"
        )
    encoder = load_model(
        args.model,
        towers="vision",
        vision_dtype=args.vision_dtype,
        cache_dir=args.cache_dir,
        device=args.device,
    )
    from ingest import job

    total = len(selected_clips(collection, options))
    with progress(total, "clip", "ingest", show_progress(args)) as update:
        done = job.run(
            collection,
            encoder,
            store_settings(args),
            options,
            model=args.model,
            alias=args.alias,
            swap=not args.no_swap,
            drop_old=args.drop_old,
            progress=update,
            announce=announce,
        )
    report, swapped = done.report, done.swapped
    print(report.summary())
    for line in swapped:
        print(line)
    if args.report:
        write_json(args.report, report.to_dict())
    if not report.ok:
        print("clipsearch: error: no clip could be ingested", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _ingest_options(args: argparse.Namespace) -> Any:
    """IngestOptions from the flags `ingest` and `watch` share."""
    from clipsearch.pipeline.runner import IngestOptions, Shard

    return IngestOptions(
        batch_clips=args.batch,
        workers=args.workers,
        reembed=args.reembed,
        prune=args.prune,
        force=args.force,
        settle_s=args.settle_s,
        media_dir=Path(args.media_dir),
        limit=args.limit,
        windows=window_plan(args),
        shard=Shard.parse(args.shard) if args.shard else None,
        max_video_s=args.max_video_s or None,
    )


def cmd_watch(args: argparse.Namespace) -> int:
    from clipsearch.model import load_model
    from clipsearch.store.factory import open_store
    from ingest.watch import Watcher

    for flag, given in (("--reembed", args.reembed), ("--alias", args.alias)):
        if given:
            raise InvalidInput(
                f"watch does not take {flag}: it keeps the store it is given in step with the "
                "folder (run `clipsearch ingest` for a one-off re-embedding)"
            )
    if args.force and not args.prune:
        raise InvalidInput("--force only applies to pruning, which --no-prune turns off")
    if args.shard and args.prune:
        raise InvalidInput(
            "watch prunes, which a share of the folder cannot judge: add --no-prune to --shard"
        )
    root = Path(args.root)
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a folder")
    _serve_metrics(args)
    watcher = Watcher(
        root,
        _ingest_options(args),
        interval_s=args.interval,
        report_path=Path(args.report) if args.report else None,
    )
    encoder = load_model(
        args.model,
        towers="vision",
        vision_dtype=args.vision_dtype,
        cache_dir=args.cache_dir,
        device=args.device,
    )
    store = open_store(store_settings(args))
    try:  # a store of another vector size is refused now, not at every poll
        store.ensure_collection(encoder.dim)
    except BaseException:
        store.close()
        raise
    if not args.quiet:
        logging.getLogger("clipsearch.changes").setLevel(logging.INFO)
    print(
        f"watching {root} every {args.interval:g} s (stop with Ctrl-C or SIGTERM)",
        file=sys.stderr,
    )
    try:
        with stop_on_signals(watcher.stop):
            polls = watcher.run(encoder, store)
    finally:
        store.close()
    print(f"stopped after {polls} polls", file=sys.stderr)
    return 0


def _serve_metrics(args: argparse.Namespace) -> None:
    if args.metrics_port is None:
        return
    from ingest.metrics import serve_metrics

    try:
        serve_metrics(args.metrics_port)
    except OSError as exc:
        raise InvalidInput(f"--metrics-port {args.metrics_port}: {exc.strerror or exc}") from None


def _add_ingest_args(p: argparse.ArgumentParser) -> None:
    """The flags of `ingest`, which `watch` shares."""
    p.add_argument("root", help="UCF101-layout root or any folder of videos")
    add_model_arg(p)
    add_store_args(p)
    p.add_argument("--media-dir", default=env("CLIPSEARCH_MEDIA_DIR", DEFAULT_MEDIA))
    p.add_argument(
        "--metrics-port",
        type=positive_int,
        default=None,
        metavar="PORT",
        help="serve Prometheus counters (videos by outcome, frames, stage seconds) at "
        "http://0.0.0.0:PORT/metrics while it runs (default: off)",
    )
    p.add_argument("--batch", type=positive_int, default=16, help="clips per embed/upsert batch")
    p.add_argument("--workers", type=workers_count, default=None, help="decode processes")
    p.add_argument("--reembed", action="store_true", help="embed again clips already up to date")
    p.add_argument(
        "--prune",
        action="store_true",
        help="also remove the videos of ROOT whose files are gone (refused when ROOT holds "
        "no videos or more than half of its videos would go, unless --force)",
    )
    p.add_argument(
        "--force", action="store_true", help="with --prune: remove them however many they are"
    )
    p.add_argument(
        "--settle-s",
        type=non_negative_float,
        default=2.0,
        metavar="S",
        help="files changed in the last minute are looked at again S seconds later and "
        "skipped as still being written if they changed (default %(default)g; 0: no check)",
    )
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N clips")
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="only share I (0-based) of N, split by clip id: N workers fill one store "
        "without overlap (e.g. a Kubernetes Indexed Job: --shard $JOB_COMPLETION_INDEX/N)",
    )
    p.add_argument(
        "--report", type=output_file, metavar="JSON", help="write the ingest report as JSON"
    )
    p.add_argument(
        "--max-video-s",
        type=non_negative_float,
        default=DEFAULT_MAX_VIDEO_S,
        help="skip videos longer than this (default %(default)g s; 0: no limit)",
    )
    g = p.add_argument_group("zero-downtime re-embedding (collections versioned by model)")
    g.add_argument(
        "--alias",
        metavar="NAME",
        help="fill the collection NAME__<model>__<UTC time> (or resume this model's "
        "unfinished one), then point alias NAME at it atomically; apps serving NAME keep "
        "answering and move over by themselves. Edge: versions are folders under --store and "
        "NAME a link beside them (serve --store <store>/NAME); server: a Qdrant alias "
        "(serve --collection NAME)",
    )
    g.add_argument(
        "--no-swap",
        action="store_true",
        help="with --alias: leave the alias where it is (add another folder next time)",
    )
    g.add_argument(
        "--drop-old",
        action="store_true",
        help="with --alias: delete the previous collection after the swap (default: keep it)",
    )
    add_window_args(p)
    add_vision_dtype_arg(p)
    add_device_arg(p)
    add_onnx_cache_arg(p)


def add_ingest(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "ingest",
        parents=[common],
        help="embed a folder of videos into Qdrant (or bring it up to date)",
    )
    _add_ingest_args(p)
    p.set_defaults(func=cmd_ingest)


def add_watch(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "watch",
        parents=[common],
        help="keep the index in step with a folder: poll it, ingest new and changed files, "
        "remove deleted ones (the flags of ingest)",
    )
    _add_ingest_args(p)
    p.add_argument(
        "--interval",
        type=watch_interval,
        default=DEFAULT_WATCH_INTERVAL_S,
        metavar="S",
        help="seconds between two looks at the folder (default %(default)g)",
    )
    p.add_argument(
        "--no-prune",
        dest="prune",
        action="store_false",
        help="leave the videos of deleted files in the index (default: remove them)",
    )
    p.set_defaults(func=cmd_watch, prune=True)
