"""The ``clipsearch`` command line: argument parsing and exit codes only.

Each subcommand builds settings from its flags (and ``CLIPSEARCH_*`` variables
for the store), calls into the library, and turns a ``ClipSearchError`` into a
one-line message and a non-zero exit code. Heavy packages (torch, Flask,
Lightning) are imported only by the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from clipsearch import __version__, indexbench_cli, momentbench
from clipsearch.errors import ClipSearchError, InvalidInput
from clipsearch.runmodes import (
    DEFAULT_CACHE_DIR,
    DEFAULT_DEVICE,
    DEFAULT_MAX_VIDEO_S,
    DEFAULT_TEXT_DTYPE,
    DEFAULT_VISION_DTYPE,
    DEFAULT_WATCH_INTERVAL_S,
    DEVICES,
    TEXT_DTYPES,
    VISION_DTYPES,
    is_device_name,
)

log = logging.getLogger("clipsearch")

DEFAULT_STORE = "var/store"
DEFAULT_MEDIA = "var/media"

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _write_json(path: str, data: object) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2) + "\n")


def _emit_json(target: str | None, data: object) -> None:
    """``--json`` of the commands that take ``-`` for stdout: nothing, stdout or a file."""
    if target == "-":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif target:
        _write_json(target, data)


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or default


def _add_store_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("vector store (default: embedded Qdrant Edge at var/store)")
    where = g.add_mutually_exclusive_group()
    where.add_argument(
        "--store",
        metavar="PATH",
        default=_env("CLIPSEARCH_STORE", DEFAULT_STORE),
        help="Qdrant Edge directory (env CLIPSEARCH_STORE; default %(default)s)",
    )
    where.add_argument(
        "--qdrant-url",
        metavar="URL",
        default=_env("CLIPSEARCH_QDRANT_URL") or _env("QDRANT_URL"),
        help="Qdrant server URL instead of the embedded store (env CLIPSEARCH_QDRANT_URL)",
    )
    g.add_argument(
        "--collection",
        default=_env("CLIPSEARCH_COLLECTION", "clips"),
        help="collection name on a Qdrant server (default %(default)s)",
    )


def _add_synth_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--classes", type=positive_int, default=12, help="number of classes (1-12)")
    p.add_argument("--groups", type=positive_int, default=25, help="groups per class (1-25)")
    p.add_argument("--clips", type=positive_int, default=4, help="clips per group")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: CPUs)")
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


def _add_model_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
    default = _env("CLIPSEARCH_MODEL")
    p.add_argument(
        "--model",
        required=required and default is None,
        default=default,
        help="CLIP checkpoint: a local directory or a Hugging Face hub id (env CLIPSEARCH_MODEL)",
    )


def _add_text_dtype_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--text-dtype",
        choices=TEXT_DTYPES,
        default=_env("CLIPSEARCH_TEXT_DTYPE", DEFAULT_TEXT_DTYPE),
        help="how the text tower runs: fp32 or bf16 torch, int8 (an ONNX Runtime export, "
        "made once into the cache directory), or auto: the fastest of these on this machine "
        "(bf16 only where the CPU has it), measured once per checkpoint and kept beside the "
        "export (env CLIPSEARCH_TEXT_DTYPE; default %(default)s; `clipsearch parity` reports "
        "what each changes)",
    )
    _add_onnx_cache_arg(p)


def _add_onnx_cache_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir",
        default=_env("CLIPSEARCH_CACHE_DIR", DEFAULT_CACHE_DIR),
        help="where the int8 exports of the towers are kept (env CLIPSEARCH_CACHE_DIR)",
    )


def _add_segment_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("moments (one segment vector per window)")
    g.add_argument("--window-s", type=float, default=2.0, help="window length (default 2 s)")
    g.add_argument("--stride-s", type=float, default=1.0, help="window step (default 1 s)")


def _add_vision_dtype_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--vision-dtype",
        choices=VISION_DTYPES,
        default=_env("CLIPSEARCH_VISION_DTYPE", DEFAULT_VISION_DTYPE),
        help="how the vision tower runs (env CLIPSEARCH_VISION_DTYPE; default %(default)s: "
        "bf16 on CPUs with AMX, else int8 (an ONNX Runtime export, made once "
        "into the cache directory) on CPUs with VNNI, else fp32; `clipsearch bench-ingest` "
        "and `clipsearch eval --vision-dtype ...` report what each changes)",
    )


def device_name(text: str) -> str:
    """argparse type for ``--device``: one of DEVICES, or cuda:N (checked when loading)."""
    if not is_device_name(text):
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(DEVICES)} or cuda:N, got {text!r}"
        )
    return text


def _add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        type=device_name,
        default=_env("CLIPSEARCH_DEVICE", DEFAULT_DEVICE),
        metavar="{auto,cpu,cuda}",
        help="where the vision tower runs (env CLIPSEARCH_DEVICE; default %(default)s: CUDA "
        "when torch sees a GPU, under autocast with --vision-dtype auto, else the CPU; int8 "
        "runs on the CPU)",
    )


def _store_settings(args: argparse.Namespace) -> Any:
    from webapp.settings import store_settings_from_env

    # cache size and cluster distribution come from CLIPSEARCH_* variables, as for serve
    return replace(
        store_settings_from_env(os.environ),
        path=None if args.qdrant_url else args.store,
        url=args.qdrant_url,
        collection=args.collection,
        api_key=_env("QDRANT_API_KEY"),
    )


@contextmanager
def _progress(total: int, unit: str, desc: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, desc=desc, disable=not enabled, dynamic_ncols=True)
    try:
        yield bar.update
    finally:
        bar.close()


def _show_progress(args: argparse.Namespace) -> bool:
    return (not args.quiet and sys.stderr.isatty()) or bool(getattr(args, "progress", False))


# --- subcommands -------------------------------------------------------------------------------


def cmd_synth(args: argparse.Namespace) -> int:
    from clipsearch import synth

    total = args.classes * args.groups * args.clips
    with _progress(total, "clip", "synth", _show_progress(args)) as update:
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
    from clipsearch import ucf101

    with _progress(0, "B", "download", _show_progress(args)) as update:
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


def cmd_train(args: argparse.Namespace) -> int:
    from clipsearch.heap import keep_freed_memory
    from training.config import TrainConfig
    from training.train import TrainRun, train

    _quiet_lightning(args.verbose)  # Lightning sets its own log level when imported

    cfg = TrainConfig.load(
        args.config,
        init=args.init,
        max_epochs=args.epochs,
        max_steps=args.max_steps,
        split=args.split,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    run = TrainRun(
        data=Path(args.data),
        out=Path(args.out),
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        progress_bar=_show_progress(args),
    )
    keep_freed_memory()  # a step's large buffers are reused, not faulted in anew
    metrics = train(cfg, run)
    best = (metrics.get("validation") or {}).get("best") or {}
    if args.metrics:
        from clipsearch.benchutil import scalar_metrics

        summary = scalar_metrics(metrics)
        summary.update({k: v for k, v in best.items() if k.startswith("val_")})
        _write_json(args.metrics, summary)
    line = f"saved {metrics['model_id']} to {args.out} ({metrics['total_s']:.0f}s"
    if best:
        figures = ", ".join(f"{k[4:]} {v:.3f}" for k, v in best.items() if k.startswith("val_"))
        line += f"; validation groups: {figures}"
    print(line + ")")
    return 0


def cmd_model_init(args: argparse.Namespace) -> int:
    import torch

    from clipsearch.architectures import create_model, get_architecture
    from clipsearch.dataset import PHRASE_OVERRIDES, class_phrase
    from clipsearch.model import save_model
    from clipsearch.synth import CLASSES
    from training.tokenizer import build_tokenizer, openai_clip_tokenizer

    arch = get_architecture(args.arch)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise InvalidInput(f"{out} is not empty; give a new directory for the model")
    torch.manual_seed(args.seed)
    if args.vocab:
        tokenizer = openai_clip_tokenizer(args.vocab)
    else:
        # A small BPE learned from SynthUCF's phrases: the tower's size is the architecture's,
        # but free-form queries split into more tokens than with CLIP's vocabulary.
        texts = [class_phrase(c) for c in CLASSES] + list(PHRASE_OVERRIDES.values())
        tokenizer = build_tokenizer([f"a video of {t}" for t in texts] * 4, vocab_size=600)
    encoder = create_model(arch, tokenizer, model_id=f"random-{args.arch}")
    save_model(encoder, out)
    params = sum(p.numel() for p in encoder.model.parameters())
    print(
        f"wrote a randomly initialised {args.arch} CLIP ({params / 1e6:.1f}M parameters) to "
        f"{out}: for speed measurements only, its vectors mean nothing"
    )
    return 0


def cmd_load_store(args: argparse.Namespace) -> int:
    from clipsearch.loadstore import build_load_store
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
    store = open_store(_store_settings(args))
    try:
        with _progress(args.clips, "clip", "load store", _show_progress(args)) as update:
            report = build_load_store(store, dim, clips=args.clips, seed=args.seed, progress=update)
    finally:
        store.close()
    print(
        f"wrote {report.clips} synthetic clips ({report.segments} segments, {report.dim}-d) in "
        f"{report.upsert_s + report.optimize_s:.0f} s (upsert {report.upsert_s:.0f} s, "
        f"optimize {report.optimize_s:.0f} s): for load tests only, their answers mean nothing"
    )
    return 0


def cmd_bench_text(args: argparse.Namespace) -> int:
    from clipsearch.benchutil import cpu_line, environment
    from clipsearch.model import load_model
    from clipsearch.parity import text_speed

    try:
        texts = [t.strip() for t in Path(args.texts).read_text().splitlines() if t.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read query texts from {args.texts}: {exc}") from None
    if len(texts) < 2 * args.batch:
        raise InvalidInput(f"{args.texts} holds {len(texts)} texts; give at least {2 * args.batch}")
    texts = texts[: args.queries]
    print(cpu_line())
    results = []
    for dtype in args.dtypes.split(","):
        if dtype not in TEXT_DTYPES:
            raise InvalidInput(f"unknown text dtype {dtype!r} (known: {', '.join(TEXT_DTYPES)})")
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
        _write_json(
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
    from clipsearch.benchutil import cpu_line
    from clipsearch.dataset import load_collection
    from clipsearch.ingestbench import UCF101_MEAN_S, bench_ingest
    from clipsearch.model import load_model

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
        encoder.video = replace(encoder.video, num_frames=args.frames)
    plan = _segment_plan(args) if args.segments else None
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
        + (f" --window-s {args.window_s} --stride-s {args.stride_s}" if plan else " --no-segments")
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
        _write_json(args.json, result)
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from clipsearch.dataset import load_collection
    from clipsearch.model import load_model
    from clipsearch.store.factory import open_store
    from ingest.pipeline import describe_ignored, ingest, selected_clips

    options = _ingest_options(args)
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
    build = None
    if args.alias:
        from ingest.versioned import VersionBuild

        build = VersionBuild.open(_store_settings(args), args.alias, encoder.model_id)
        verb = "resuming" if build.plan.resumed else "building"
        print(f"{verb} {build.plan.version} for alias {args.alias!r}", file=sys.stderr)
        store = build.store
    else:
        store = open_store(_store_settings(args))
    try:
        total = len(selected_clips(collection, options))
        with _progress(total, "clip", "ingest", _show_progress(args)) as update:
            report = ingest(collection, encoder, store, options, progress=update)
        swapped: list[str] = []
        if build is not None and report.ok:
            from clipsearch.store.aliases import ModelRef
            from ingest.versioned import model_reference

            swapped = build.finish(
                ModelRef(model_reference(args.model), encoder.model_id),
                swap=not args.no_swap,
                drop_old=args.drop_old,
            )
    finally:
        if build is not None:
            build.close()
        else:
            store.close()
    print(report.summary())
    for line in swapped:
        print(line)
    if args.report:
        _write_json(args.report, report.to_dict())
    if not report.ok:
        print("clipsearch: error: no clip could be ingested", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _ingest_options(args: argparse.Namespace) -> Any:
    """IngestOptions from the flags `ingest` and `watch` share."""
    from ingest.pipeline import IngestOptions, Shard

    return IngestOptions(
        batch_clips=args.batch,
        workers=args.workers,
        reembed=args.reembed,
        prune=args.prune,
        force=args.force,
        settle_s=args.settle_s,
        media_dir=Path(args.media_dir),
        limit=args.limit,
        segments=_segment_plan(args),
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
    store = open_store(_store_settings(args))
    if not args.quiet:
        logging.getLogger("clipsearch.changes").setLevel(logging.INFO)
    print(
        f"watching {root} every {args.interval:g} s (stop with Ctrl-C or SIGTERM)",
        file=sys.stderr,
    )
    try:
        with _stop_on_signals(watcher.stop):
            polls = watcher.run(encoder, store)
    finally:
        store.close()
    print(f"stopped after {polls} polls", file=sys.stderr)
    return 0


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (the work in flight ends cleanly); a second one
    interrupts at once."""

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        print(f"{signal.Signals(signum).name}: stopping after the batch in flight", file=sys.stderr)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _segment_plan(args: argparse.Namespace) -> Any:
    from clipsearch.segments import SegmentPlan

    return SegmentPlan(window_s=args.window_s, stride_s=args.stride_s)


def _search_filter(args: argparse.Namespace) -> dict[str, Any]:
    from clipsearch.store.base import Range

    flt: dict[str, Any] = {}
    if args.classes:
        flt["class"] = args.classes
    if args.split:
        number, _, side = args.split.partition(":")
        if number not in ("1", "2", "3") or side not in ("train", "test"):
            raise InvalidInput(f"--split must look like 1:test or 2:train, got {args.split!r}")
        flt[f"split_{number}"] = side
    if args.min_duration is not None or args.max_duration is not None:
        flt["duration_s"] = Range(gte=args.min_duration, lte=args.max_duration)
    return flt


def _read_image(path: str) -> Any:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"))
    except UnidentifiedImageError:
        raise InvalidInput(f"{path} is not an image PIL can read") from None


def cmd_store_stats(args: argparse.Namespace) -> int:
    from clipsearch.store.factory import open_store
    from clipsearch.store.stats import store_stats

    settings = _store_settings(args)
    if settings.path and not settings.url and not Path(settings.path).exists():
        raise InvalidInput(f"no store at {settings.path}")
    store = open_store(settings)
    try:
        stats = store_stats(store)  # type: ignore[arg-type]
    finally:
        store.close()
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        for name in ("videos", "segments"):
            s = stats[name]
            print(
                f"{name}: count {s['count']}, scroll {s['scroll_count']}, "
                f"duplicates {len(s['duplicate_ids'])}, digest {s['digest']}"
            )
        print("consistent" if stats["consistent"] else "NOT consistent")
    return 0 if stats["consistent"] else EXIT_ERROR


def cmd_search(args: argparse.Namespace) -> int:
    from clipsearch.collapse import validate_collapse, validate_near_threshold
    from clipsearch.model import load_model
    from clipsearch.search import SearchLimits, SearchService
    from clipsearch.store.factory import open_store

    collapse = validate_collapse(args.collapse)
    validate_near_threshold(args.near_threshold)
    given = [x for x in (args.query, args.image, args.like) if x is not None]
    if len(given) != 1:
        raise InvalidInput("give exactly one of: a text QUERY, --image FILE or --like CLIP_ID")
    if args.then and args.query is None:
        raise InvalidInput('--then follows a text QUERY: search "A" --then "B"')
    flt = _search_filter(args)
    image = _read_image(args.image) if args.image else None
    towers: Literal["both", "text"] = "both" if image is not None else "text"
    store = open_store(_store_settings(args))
    try:
        encoder = load_model(
            args.model, towers=towers, text_dtype=args.text_dtype, cache_dir=args.cache_dir
        )
        min_score = args.min_score if args.min_score is not None else encoder.video.min_score
        limits = SearchLimits(near_threshold=args.near_threshold)
        service = SearchService(encoder, store, limits, min_score=min_score)
        page: dict[str, Any] = {"filter": flt, "offset": args.offset, "collapse": collapse}
        if image is not None or args.like:  # the calibration is for text queries only
            page["min_score"] = args.min_score
        if image is not None:
            response = service.search_image(image, args.k, name=args.image, **page)
        elif args.like:
            response = service.more_like(args.like, args.k, **page)
        else:
            response = service.search(args.query, args.k, then=args.then or (), **page)
        warning = service.model_mismatch()
    finally:
        store.close()
    if warning:
        print(f"clipsearch: warning: {warning}", file=sys.stderr)
    if args.json:
        results = [
            {
                "id": r.id,
                "path": r.payload.get("path"),
                "class": r.payload.get("class"),
                "score": round(r.score, 6),
                "start_s": round(r.moment.start_s, 3),
                "end_s": round(r.moment.end_s, 3),
                "source": r.payload.get("source"),
            }
            for r in response.results
        ]
        if response.collapse != "none":
            for entry, r in zip(results, response.results, strict=True):
                entry["collapsed"] = len(r.folded)
                entry["collapsed_ids"] = list(r.folded)
        for entry, r in zip(results, response.results, strict=True):
            if r.moments:
                entry["moments"] = [
                    {
                        "step": step,
                        "start_s": round(m.start_s, 3),
                        "end_s": round(m.end_s, 3),
                        "score": round(m.score, 6),
                    }
                    for step, m in zip(r.steps, r.moments, strict=True)
                ]
        out = {
            "query": response.query,
            "took_ms": round(response.took_ms, 2),
            "min_score": response.min_score,
            "no_good_match": response.no_good_match,
            "next_offset": response.next_offset,
            "results": results,
        }
        if response.steps:
            out["steps"] = list(response.steps)
        if response.collapse != "none":
            out["collapse"] = response.collapse
        if response.collapse == "near":
            out["near_threshold"] = response.near_threshold
        print(json.dumps(out, indent=2))
        return 0
    if response.no_good_match:
        print(
            f"no good match: the best score {response.best_score:.3f} is below this model's "
            f"threshold {response.min_score:.3f} (--min-score -1 shows everything)"
        )
        return 0
    if not response.results:
        print("no results (is the store empty? run `clipsearch ingest` first)")
        return 0
    if response.steps:
        print(" -> ".join(f"{i}. {step}" for i, step in enumerate(response.steps, 1)))
    heading = "moments" if response.steps else "moment"
    print(f"{'#':>3}  {'score':>7}  {heading:>13}  {'class':<20} path")
    for rank, r in enumerate(response.results, 1 + response.offset):
        cls = r.payload.get("class") or "-"
        span = " -> ".join(f"{m.start_s:5.1f}-{m.end_s:5.1f}s" for m in r.moments or [r.moment])
        more = f"  (+{len(r.folded)} more like this)" if r.folded else ""
        print(f"{rank:>3}  {r.score:>7.4f}  {span:>13}  {cls:<20} {r.payload.get('path')}{more}")
    if response.collapse == "near":
        threshold = response.near_threshold
        print(
            f"near-duplicates: cosine >= {threshold:.4f}"
            if threshold is not None
            else "near-duplicates: the store has too few videos to tell; nothing collapsed"
        )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from webapp.serve import run
    from webapp.settings import Settings

    # CLIPSEARCH_* variables set what has no flag here (query cache, batching, ...).
    settings = replace(
        Settings.from_env({**os.environ, "CLIPSEARCH_MODEL": args.model}),
        store=_store_settings(args),
        media_dir=args.media_dir,
        torch_threads=args.torch_threads,
        text_dtype=args.text_dtype,
        cache_dir=args.cache_dir,
        device=args.device,
        watch=args.watch,
        watch_interval_s=args.watch_interval,
    )
    if args.watch and not Path(args.watch).is_dir():
        raise InvalidInput(f"--watch {args.watch} is not a folder")
    print(f"serving http://{args.host}:{args.port}/  (Ctrl-C to stop)", flush=True)
    run(
        settings,
        host=args.host,
        port=args.port,
        workers=args.workers,
        threads=args.threads,
        log_level="debug" if args.verbose else "info",
    )
    return 0


def _test_clips(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """The dataset of ``--data`` and its ``--split`` test clips (all clips of a plain folder)."""
    from clipsearch.dataset import load_collection

    collection = load_collection(args.data)
    clips = collection.split(args.split, "test") if collection.is_ucf else collection.clips
    if not clips:
        raise InvalidInput(f"split {args.split} of {args.data} has no test clips")
    return collection, clips


def cmd_eval(args: argparse.Namespace) -> int:
    from clipsearch.attributes import read_meta
    from clipsearch.evaluate import compare_table, decode_passes, evaluate_models
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
    with _progress(total, "clip", "eval", _show_progress(args)) as update:
        reports = evaluate_models(encoders, collection.classes, clips, meta=meta, progress=update)
    for encoder, report in zip(encoders, reports, strict=True):
        where = {"model": encoder.model_id, "data": str(args.data), "split": args.split}
        report.metrics.update(where)
    if args.compare:
        print(compare_table(reports))
        out: dict[str, Any] = {"models": [r.metrics for r in reports]}
    else:
        print(reports[0].table())
        out = reports[0].metrics
    _emit_json(args.json, out)
    if args.metrics:
        from clipsearch.benchutil import scalar_metrics

        _write_json(args.metrics, scalar_metrics(reports[0].metrics))
    return 0


def cmd_eval_moments(args: argparse.Namespace) -> int:
    from clipsearch.model import load_model
    from clipsearch.moments_eval import evaluate_moments, moments_table
    from clipsearch.synth import read_moments

    total = len(read_moments(Path(args.data)))
    encoder = load_model(
        args.model,
        towers="both",
        text_dtype=args.text_dtype,
        cache_dir=args.cache_dir,
        vision_dtype=args.vision_dtype,
        device=args.device,
    )
    with _progress(total, "video", "eval-moments", _show_progress(args)) as update:
        metrics = evaluate_moments(
            encoder, args.data, plan=_segment_plan(args), workers=args.workers, progress=update
        )
    metrics.update({"model": encoder.model_id, "data": str(args.data)})
    print(moments_table(metrics))
    _emit_json(args.json, metrics)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from clipsearch.calibrate import calibrate, save_calibration
    from clipsearch.dataset import load_collection, validation_split
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
    with _progress(len(clips), "clip", "calibrate", _show_progress(args)) as update:
        result = calibrate(
            encoder,
            collection,
            clips,
            fpr=args.fpr,
            plan=_segment_plan(args),
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
        _write_json(args.out, result)
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
    from clipsearch.attributes import read_meta
    from clipsearch.model import load_model
    from clipsearch.parity import FAST_PATHS, text_parity

    collection, clips = _test_clips(args)
    if args.tower == "vision":
        return _vision_parity(args, collection, clips)
    encoder = load_model(args.model)
    with _progress(len(clips), "clip", "parity", _show_progress(args)) as update:
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
        _write_json(args.json, report)
    return 0


def _vision_parity(args: argparse.Namespace, collection: Any, clips: list[Any]) -> int:
    from clipsearch.attributes import read_meta
    from clipsearch.parity import VISION_PATHS, vision_parity

    moments = args.moments
    if moments is None and (Path(args.data) / "moments" / "moments.jsonl").is_file():
        moments = Path(args.data) / "moments"
    elif moments is not None and not (Path(moments) / "moments.jsonl").is_file():
        raise InvalidInput(f"--moments {moments}: no moments.jsonl there")
    with _progress(len(clips), "clip", "parity", _show_progress(args)) as update:
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
        _write_json(args.json, report)
    return 0


# --- parser ------------------------------------------------------------------------------------


def _add_ingest_args(p: argparse.ArgumentParser) -> None:
    """The flags of `ingest`, which `watch` shares."""
    p.add_argument("root", help="UCF101-layout root or any folder of videos")
    _add_model_arg(p)
    _add_store_args(p)
    p.add_argument("--media-dir", default=_env("CLIPSEARCH_MEDIA_DIR", DEFAULT_MEDIA))
    p.add_argument("--batch", type=positive_int, default=16, help="clips per embed/upsert batch")
    p.add_argument("--workers", type=positive_int, default=None, help="decode processes")
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
    p.add_argument("--report", metavar="JSON", help="write the ingest report as JSON")
    p.add_argument(
        "--max-video-s",
        type=float,
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
    _add_segment_args(p)
    _add_vision_dtype_arg(p)
    _add_device_arg(p)
    _add_onnx_cache_arg(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clipsearch", description="Natural-language search over video collections."
    )
    parser.add_argument("--version", action="version", version=f"clipsearch {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log more")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    common.add_argument(
        "--progress", action="store_true", help="progress bars even when stderr is not a terminal"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", parents=[common], help="generate the SynthUCF dataset")
    p.add_argument("--out", required=True, help="dataset root to write")
    _add_synth_args(p)
    p.set_defaults(func=cmd_synth)

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
    d.add_argument("--timeout", type=float, default=60.0, help="network timeout, seconds")
    d.set_defaults(func=cmd_data_ucf101)

    p = sub.add_parser("train", parents=[common], help="train or fine-tune a CLIP model")
    p.add_argument("--data", required=True, help="UCF101-layout dataset root")
    p.add_argument("--out", required=True, help="directory to save the model to")
    p.add_argument("--config", default="synthucf", help="recipe name or JSON file")
    p.add_argument("--init", default=None, help="pretrained CLIP (hub id or dir) to fine-tune")
    p.add_argument("--epochs", type=positive_int, default=None, help="override the recipe's epochs")
    p.add_argument("--max-steps", type=positive_int, default=None, help="stop after N steps")
    p.add_argument("--batch-size", type=positive_int, default=None)
    p.add_argument("--split", type=int, default=None, choices=(1, 2, 3))
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="decoded-frame cache directory")
    p.add_argument(
        "--metrics", metavar="JSON", help="also write the headline figures here (DVC metrics)"
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("model", parents=[common], help="model utilities")
    model_sub = p.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    m = model_sub.add_parser(
        "init",
        parents=[common],
        help="write a randomly initialised CLIP of a standard size (speed benchmarks)",
    )
    m.add_argument("--arch", required=True, help="vit-b-32, vit-b-16, vit-l-14 or tiny")
    m.add_argument("--out", required=True, help="new directory for the checkpoint")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument(
        "--vocab",
        metavar="BPE_GZ",
        help="OpenAI CLIP's bpe_simple_vocab_16e6.txt.gz: use CLIP's own tokenizer, so queries "
        "have their real token counts (benchmarks/fetch_clip_vocab.sh gets the file)",
    )
    m.set_defaults(func=cmd_model_init)

    p = sub.add_parser(
        "bench-text",
        parents=[common],
        help="queries/s of the text tower alone: one at a time and batched (the ceiling)",
    )
    _add_model_arg(p)
    p.add_argument("--texts", required=True, help="query texts, one per line")
    p.add_argument("--queries", type=positive_int, default=1024, help="texts used (default 1024)")
    p.add_argument("--batch", type=positive_int, default=32)
    p.add_argument("--dtypes", default="fp32,bf16,int8", help="comma-separated text dtypes")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads")
    _add_onnx_cache_arg(p)
    p.add_argument("--json", metavar="OUT", help="write the results as JSON")
    p.set_defaults(func=cmd_bench_text)

    p = sub.add_parser(
        "bench-ingest",
        parents=[common],
        help="ingest frames/s against the vision tower's own (ingest_efficiency)",
    )
    p.add_argument("data", help="a folder of videos (UCF101 layout or any)")
    _add_model_arg(p)
    p.add_argument("--limit", type=positive_int, default=96, help="clips (default 96)")
    p.add_argument("--batch", type=positive_int, default=16, help="clips per batch")
    p.add_argument("--workers", type=positive_int, default=None, help="decode processes")
    p.add_argument("--frames", type=positive_int, default=None, help="frames per clip")
    p.add_argument(
        "--segments",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="embed the moment windows, as `clipsearch ingest` does (the default); "
        "--no-segments: only the clip's own frames",
    )
    _add_segment_args(p)
    _add_vision_dtype_arg(p)
    _add_device_arg(p)
    _add_onnx_cache_arg(p)
    p.add_argument("--json", metavar="OUT", help="write the result as JSON")
    p.set_defaults(func=cmd_bench_ingest)

    p = sub.add_parser(
        "load-store",
        parents=[common],
        help="fill a new store with UCF101's number of synthetic clips (load tests)",
    )
    _add_store_args(p)
    p.add_argument("--clips", type=positive_int, default=13_320, help="default: UCF101's count")
    p.add_argument("--dim", type=positive_int, default=512, help="vector size (default 512)")
    p.add_argument("--model", help="take the vector size from this CLIP checkpoint instead")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_load_store)

    p = sub.add_parser(
        "ingest",
        parents=[common],
        help="embed a folder of videos into Qdrant (or bring it up to date)",
    )
    _add_ingest_args(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser(
        "watch",
        parents=[common],
        help="keep the index in step with a folder: poll it, ingest new and changed files, "
        "remove deleted ones (the flags of ingest)",
    )
    _add_ingest_args(p)
    p.add_argument(
        "--interval",
        type=positive_float,
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

    p = sub.add_parser("store", help="inspect a vector store")
    store_sub = p.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    st = store_sub.add_parser(
        "stats",
        parents=[common],
        help="point counts, scroll counts, duplicate ids and a digest of both indexes "
        "(two stores with the same digests hold the same points)",
    )
    _add_store_args(st)
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=cmd_store_stats)

    p = sub.add_parser("search", parents=[common], help="search the index from the shell")
    p.add_argument(
        "query",
        nargs="?",
        help='text query, e.g. "a ball bouncing"; "A then B" finds A followed later by B',
    )
    p.add_argument(
        "--then",
        action="append",
        metavar="TEXT",
        help="a later step of a sequence query (repeatable): QUERY, then TEXT",
    )
    p.add_argument("--image", metavar="FILE", help="search by an image (a photo or a frame)")
    p.add_argument("--like", metavar="CLIP_ID", help="clips like this indexed clip")
    _add_model_arg(p)
    _add_store_args(p)
    p.add_argument("-k", type=positive_int, default=10, help="number of results")
    p.add_argument("--offset", type=int, default=0, help="skip this many results (paging)")
    p.add_argument(
        "--class", dest="classes", action="append", metavar="CLASS", help="only this class"
    )
    p.add_argument("--split", metavar="N:SIDE", help="only one side of a split, e.g. 1:test")
    p.add_argument("--min-duration", type=float, default=None, metavar="S")
    p.add_argument("--max-duration", type=float, default=None, metavar="S")
    p.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="hide results below this score (default: the model's calibrated threshold)",
    )
    p.add_argument(
        "--collapse",
        default="none",
        metavar="{group,near,none}",
        help="fold near-duplicates into the best-ranked one: same class and group (group), "
        "pooled vectors closer than a threshold found from the store (near), or not at "
        "all (none, the default)",
    )
    p.add_argument(
        "--near-threshold",
        type=float,
        default=None,
        metavar="COS",
        help="cosine for --collapse near (default: found from the store's vectors)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_text_dtype_arg(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("serve", parents=[common], help="serve the web app with Gunicorn")
    _add_model_arg(p)
    _add_store_args(p)
    p.add_argument("--media-dir", default=_env("CLIPSEARCH_MEDIA_DIR", DEFAULT_MEDIA))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--workers", type=positive_int, default=None, help="default: 1 (Edge), 4 (server)"
    )
    p.add_argument("--threads", type=positive_int, default=None, help="threads per worker")
    p.add_argument("--torch-threads", type=positive_int, default=None)
    p.add_argument(
        "--watch",
        metavar="FOLDER",
        default=_env("CLIPSEARCH_WATCH"),
        help="keep the index in step with FOLDER from the server process itself: new and "
        "changed videos become searchable with no restart, deleted ones go (as `clipsearch "
        "watch`; the way to watch into an embedded store, which one process holds) "
        "(env CLIPSEARCH_WATCH)",
    )
    p.add_argument(
        "--watch-interval",
        type=positive_float,
        default=_env("CLIPSEARCH_WATCH_INTERVAL_S", str(DEFAULT_WATCH_INTERVAL_S)),
        metavar="S",
        help="seconds between two looks at the watched folder (default %(default)s; env "
        "CLIPSEARCH_WATCH_INTERVAL_S)",
    )
    _add_text_dtype_arg(p)
    _add_device_arg(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("eval", parents=[common], help="retrieval metrics on a dataset split")
    p.add_argument("--data", required=True, help="UCF101-layout dataset root")
    _add_model_arg(p)
    p.add_argument("--split", type=int, default=1, choices=(1, 2, 3))
    p.add_argument(
        "--compare",
        metavar="MODEL2",
        help="also evaluate this checkpoint on the same clips and print both side by side",
    )
    p.add_argument("--json", metavar="OUT", help="write metrics JSON here ('-' for stdout)")
    p.add_argument(
        "--metrics",
        metavar="JSON",
        help="also write the headline figures, without per-class tables (DVC metrics)",
    )
    _add_text_dtype_arg(p)
    _add_vision_dtype_arg(p)
    _add_device_arg(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "parity",
        parents=[common],
        help="what the int8 and bf16 towers change against fp32 (vectors, figures, speed)",
    )
    p.add_argument("--data", required=True, help="labelled dataset (UCF101 layout: test split)")
    _add_model_arg(p)
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
    p.add_argument("--json", metavar="OUT", help="write the report as JSON")
    _add_onnx_cache_arg(p)
    p.set_defaults(func=cmd_parity)

    p = sub.add_parser(
        "eval-moments", parents=[common], help="moment retrieval figures on a moments folder"
    )
    p.add_argument(
        "--data", required=True, help="folder with moments.jsonl (SynthUCF: ROOT/moments)"
    )
    _add_model_arg(p)
    p.add_argument("--workers", type=positive_int, default=None, help="decode processes")
    p.add_argument("--json", metavar="OUT", help="write metrics JSON here ('-' for stdout)")
    _add_segment_args(p)
    _add_text_dtype_arg(p)
    _add_vision_dtype_arg(p)
    _add_device_arg(p)
    p.set_defaults(func=cmd_eval_moments)

    p = sub.add_parser(
        "calibrate", parents=[common], help="set a model's 'no good match' score threshold"
    )
    p.add_argument("--data", required=True, help="labelled dataset (UCF101 layout)")
    _add_model_arg(p)
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
    p.add_argument("--out", metavar="JSON", help="write here instead of into the model folder")
    p.add_argument("--workers", type=positive_int, default=None, help="decode processes")
    _add_segment_args(p)
    _add_text_dtype_arg(p)
    _add_vision_dtype_arg(p)
    _add_device_arg(p)
    p.set_defaults(func=cmd_calibrate)
    indexbench_cli.add_parser(sub, common)
    momentbench.add_parser(sub, common)
    return parser


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.getLogger("httpx").setLevel(logging.INFO if verbose else logging.WARNING)


def _quiet_lightning(verbose: bool) -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    if not verbose:  # deprecations inside Lightning itself, not actionable by users
        warnings.filterwarnings("ignore", message=r".*treespec.*", module=r"lightning\.")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return int(args.func(args))
    except ClipSearchError as exc:
        print(f"clipsearch: error: {exc.message}", file=sys.stderr)
        # the caller's input was at fault (HTTP 4xx) -> 2, anything else -> 1
        return EXIT_USAGE if 400 <= exc.status < 500 else EXIT_ERROR
    except OSError as exc:  # a file we were asked to read or write
        print(f"clipsearch: error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("clipsearch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
