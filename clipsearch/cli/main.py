"""``main(argv) -> int``: the parser built from every area's commands, and errors turned
into exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from clipsearch import __version__
from clipsearch.cli import (
    bench,
    bench_index,
    bench_moments,
    data,
    evaluate,
    ingest,
    search,
    serve,
    train,
)
from clipsearch.cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
)
from clipsearch.errors import ClipSearchError
from clipsearch.extras import missing_extra

COMMANDS = (
    data.add_synth,
    data.add_data,
    train.add_train,
    train.add_model,
    bench.add_bench_text,
    bench.add_bench_ingest,
    bench.add_load_store,
    ingest.add_ingest,
    ingest.add_watch,
    search.add_store,
    search.add_search,
    serve.add_serve,
    serve.add_export,
    evaluate.add_eval,
    evaluate.add_parity,
    evaluate.add_eval_moments,
    evaluate.add_calibrate,
    bench_index.add_bench_index,
    bench_moments.add_bench_moments,
)


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
    for add in COMMANDS:
        add(sub, common)
    return parser


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.getLogger("httpx").setLevel(logging.INFO if verbose else logging.WARNING)


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
    except ModuleNotFoundError as exc:
        message = missing_extra(exc)
        if message is None:
            raise
        print(f"clipsearch: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # a file we were asked to read or write
        print(f"clipsearch: error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("clipsearch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
