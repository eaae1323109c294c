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
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clipsearch import __version__, indexbench_cli
from clipsearch.errors import ClipSearchError, InvalidInput

log = logging.getLogger("clipsearch")

DEFAULT_STORE = "var/store"
DEFAULT_MEDIA = "var/media"
DEFAULT_CACHE = "var/cache"

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


def _write_json(path: str, data: object) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2) + "\n")


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


def _add_model_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
    default = _env("CLIPSEARCH_MODEL")
    p.add_argument(
        "--model",
        required=required and default is None,
        default=default,
        help="CLIP checkpoint: a local directory or a Hugging Face hub id (env CLIPSEARCH_MODEL)",
    )


def _store_settings(args: argparse.Namespace) -> Any:
    from clipsearch.store.factory import StoreSettings

    return StoreSettings(
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
        )
    print(
        f"wrote {summary.n_clips} clips of {summary.n_classes} classes to {summary.root} "
        f"in {summary.seconds:.1f}s"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
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
    metrics = train(cfg, run)
    test = metrics.get(f"split{cfg.split}_test")
    line = f"saved {metrics['model_id']} to {args.out} ({metrics['total_s']:.0f}s"
    if test:
        line += f"; split {cfg.split} test mAP {test['mAP']:.3f}"
    print(line + ")")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from clipsearch.dataset import load_collection
    from clipsearch.model import load_model
    from clipsearch.store.factory import open_store
    from ingest.pipeline import IngestOptions, ingest

    collection = load_collection(args.root)
    if not collection.clips:
        raise InvalidInput(f"no video files found under {args.root}")
    encoder = load_model(args.model, towers="vision")
    store = open_store(_store_settings(args))
    options = IngestOptions(
        batch_clips=args.batch,
        workers=args.workers,
        force=args.force,
        media_dir=Path(args.media_dir),
        limit=args.limit,
    )
    try:
        total = min(len(collection.clips), args.limit or len(collection.clips))
        with _progress(total, "clip", "ingest", _show_progress(args)) as update:
            report = ingest(collection, encoder, store, options, progress=update)
    finally:
        store.close()
    print(report.summary())
    if args.report:
        _write_json(args.report, report.to_dict())
    if not report.ok:
        print("clipsearch: error: no clip could be ingested", file=sys.stderr)
        return EXIT_ERROR
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from clipsearch.model import load_model
    from clipsearch.search import SearchService
    from clipsearch.store.factory import open_store

    store = open_store(_store_settings(args))
    try:
        service = SearchService(load_model(args.model, towers="text"), store)
        response = service.search(args.query, args.k)
        warning = service.model_mismatch()
    finally:
        store.close()
    if warning:
        print(f"clipsearch: warning: {warning}", file=sys.stderr)
    if args.json:
        results = [
            {
                "id": h.id,
                "path": h.payload.get("path"),
                "class": h.payload.get("class"),
                "score": round(h.score, 6),
                "source": h.payload.get("source"),
            }
            for h in response.hits
        ]
        out = {"query": response.query, "took_ms": round(response.took_ms, 2), "results": results}
        print(json.dumps(out, indent=2))
        return 0
    if not response.hits:
        print("no results (is the store empty? run `clipsearch ingest` first)")
        return 0
    print(f"{'#':>3}  {'score':>7}  {'class':<20} path")
    for rank, h in enumerate(response.hits, 1):
        cls = h.payload.get("class") or "-"
        print(f"{rank:>3}  {h.score:>7.4f}  {cls:<20} {h.payload.get('path')}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from webapp.serve import run
    from webapp.settings import Settings

    settings = Settings(
        model=args.model,
        store=_store_settings(args),
        media_dir=args.media_dir,
        torch_threads=args.torch_threads,
    )
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


def cmd_eval(args: argparse.Namespace) -> int:
    from clipsearch.attributes import read_meta
    from clipsearch.dataset import load_collection
    from clipsearch.evaluate import compare_table, decode_passes, evaluate_models
    from clipsearch.model import load_model

    collection = load_collection(args.data)
    clips = collection.split(args.split, "test") if collection.is_ucf else collection.clips
    if not clips:
        raise InvalidInput(f"split {args.split} of {args.data} has no test clips")
    encoders = [load_model(name) for name in (args.model, args.compare) if name]
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
    if args.json == "-":
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    elif args.json:
        _write_json(args.json, out)
    return 0


# --- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clipsearch", description="Natural-language search over video collections."
    )
    parser.add_argument("--version", action="version", version=f"clipsearch {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log more")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", parents=[common], help="generate the SynthUCF dataset")
    p.add_argument("--out", required=True, help="dataset root to write")
    p.add_argument("--classes", type=positive_int, default=12, help="number of classes (1-12)")
    p.add_argument("--groups", type=positive_int, default=25, help="groups per class (1-25)")
    p.add_argument("--clips", type=positive_int, default=4, help="clips per group")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: CPUs)")
    p.set_defaults(func=cmd_synth)

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
    p.add_argument("--cache-dir", default=DEFAULT_CACHE, help="decoded-frame cache directory")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("ingest", parents=[common], help="embed a folder of videos into Qdrant")
    p.add_argument("root", help="UCF101-layout root or any folder of videos")
    _add_model_arg(p)
    _add_store_args(p)
    p.add_argument("--media-dir", default=_env("CLIPSEARCH_MEDIA_DIR", DEFAULT_MEDIA))
    p.add_argument("--batch", type=positive_int, default=16, help="clips per embed/upsert batch")
    p.add_argument("--workers", type=positive_int, default=None, help="decode processes")
    p.add_argument("--force", action="store_true", help="re-embed clips already up to date")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N clips")
    p.add_argument("--report", metavar="JSON", help="write the ingest report as JSON")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", parents=[common], help="search the index from the shell")
    p.add_argument("query", help='text query, e.g. "a ball bouncing"')
    _add_model_arg(p)
    _add_store_args(p)
    p.add_argument("-k", type=positive_int, default=10, help="number of results")
    p.add_argument("--json", action="store_true", help="print JSON")
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
    p.set_defaults(func=cmd_eval)
    indexbench_cli.add_parser(sub, common)
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
