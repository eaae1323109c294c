"""``clipsearch serve``: the web app under Gunicorn; ``clipsearch export``: a checkpoint made
servable without torch."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from clipsearch.cli.common import (
    DEFAULT_MEDIA,
    add_device_arg,
    add_model_arg,
    add_store_args,
    add_text_dtype_arg,
    env,
    int_in,
    port_number,
    positive_float,
    store_settings,
    workers_count,
)
from clipsearch.errors import InvalidInput
from clipsearch.settings import (
    DEFAULT_WATCH_INTERVAL_S,
)


def cmd_serve(args: argparse.Namespace) -> int:
    from webapp.serve import run
    from webapp.settings import Settings

    # CLIPSEARCH_* variables set what has no flag here (query cache, batching, ...).
    settings = replace(
        Settings.from_env({**os.environ, "CLIPSEARCH_MODEL": args.model}),
        store=store_settings(args),
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
    if args.watch:
        from clipsearch.query_model import watch_problem

        problem = watch_problem(args.model)
        if problem:
            raise InvalidInput(f"--watch: {problem}")
    run(
        settings,
        host=args.host,
        port=args.port,
        workers=args.workers,
        threads=args.threads,
        log_level="debug" if args.verbose else "info",
        ready_line=f"serving http://{args.host}:{args.port}/  (Ctrl-C to stop)",
    )
    return 0


def add_serve(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", parents=[common], help="serve the web app with Gunicorn")
    add_model_arg(p)
    add_store_args(p)
    p.add_argument("--media-dir", default=env("CLIPSEARCH_MEDIA_DIR", DEFAULT_MEDIA))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port_number, default=8000)
    p.add_argument(
        "--workers", type=workers_count, default=None, help="default: 1 (Edge), 4 (server)"
    )
    p.add_argument("--threads", type=int_in(1, 256), default=None, help="threads per worker")
    p.add_argument("--torch-threads", type=workers_count, default=None)
    p.add_argument(
        "--watch",
        metavar="FOLDER",
        default=env("CLIPSEARCH_WATCH"),
        help="keep the index in step with FOLDER from the server process itself: new and "
        "changed videos become searchable with no restart, deleted ones go (as `clipsearch "
        "watch`; the way to watch into an embedded store, which one process holds) "
        "(env CLIPSEARCH_WATCH)",
    )
    p.add_argument(
        "--watch-interval",
        type=positive_float,
        default=env("CLIPSEARCH_WATCH_INTERVAL_S", str(DEFAULT_WATCH_INTERVAL_S)),
        metavar="S",
        help="seconds between two looks at the watched folder (default %(default)s; env "
        "CLIPSEARCH_WATCH_INTERVAL_S)",
    )
    add_text_dtype_arg(p)
    add_device_arg(p)
    p.set_defaults(func=cmd_serve)


def cmd_export(args: argparse.Namespace) -> int:
    from clipsearch.onnx_export import export_model

    out = export_model(args.model, args.out, vision=args.vision)
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"exported {args.model} to {out} ({size / 1e6:.1f} MB)")
    return 0


def add_export(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "export",
        parents=[common],
        help="write a checkpoint's int8 ONNX towers and tokenizer for serving without torch",
        description="Export MODEL (hub id or directory) for `pip install 'clipsearch[serve]'`: "
        "the int8 ONNX text tower, the vision tower for image queries, the tokenizer, the "
        "settings and a manifest. `clipsearch serve --model MODEL` then runs without torch.",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint: a directory or a hub id")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="where to write it (default: MODEL/onnx; a hub model needs --out); an earlier "
        "export there is replaced",
    )
    p.add_argument(
        "--no-vision",
        dest="vision",
        action="store_false",
        help="leave the vision tower out (no image queries)",
    )
    p.set_defaults(func=cmd_export)
