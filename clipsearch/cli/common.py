"""What every area of the command line shares: argument types, the flags several
commands take, settings from flags, progress bars and JSON output."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from clipsearch.settings import (
    DEFAULT_CACHE_DIR,
    DEFAULT_DEVICE,
    DEFAULT_TEXT_DTYPE,
    DEFAULT_VISION_DTYPE,
    DEVICES,
    TEXT_DTYPES,
    VISION_DTYPES,
    WINDOW_FRAMES,
    is_device_name,
)

DEFAULT_STORE = "var/store"
DEFAULT_MEDIA = "var/media"

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


# Processes or threads a command may be asked for: more is a slip of the keyboard (each
# decode process holds frames; a million of them took a machine's memory), not a machine.
MAX_WORKERS = max(64, 2 * (os.cpu_count() or 1))


def int_in(low: int, high: int) -> Callable[[str], int]:
    """argparse type: an integer in ``low``..``high``."""

    def integer(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}, got {value}")
        return value

    return integer


# A vector size no CLIP has come near (ViT-bigG: 1280): more is a typo that fills memory.
MAX_DIM = 8192
workers_count = int_in(1, MAX_WORKERS)
port_number = int_in(0, 65535)
seed_value = int_in(0, 2**32 - 1)  # what NumPy's generators take


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


def watch_interval(text: str) -> float:
    """argparse type: seconds between two looks at a folder, more than 0 and at most a day."""
    value = positive_float(text)
    if value > 86_400:
        raise argparse.ArgumentTypeError(f"must be at most 86400 s (a day), got {text}")
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


def output_file(text: str) -> str:
    """argparse type: a file this command can write when its work is done, checked before
    the work starts (a folder in the way, a parent that is a file or not writable)."""
    if text == "-":
        return text
    path = Path(text)
    try:
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
        if path.exists():
            if not os.access(path, os.W_OK):
                raise argparse.ArgumentTypeError(f"cannot write {text}: it is read-only")
            return text
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise argparse.ArgumentTypeError(f"cannot write {text}: {parent} is not a folder")
        if not os.access(parent, os.W_OK):
            raise argparse.ArgumentTypeError(f"cannot write {text}: {parent} is not writable")
    except OSError as exc:  # a parent that cannot be looked into
        raise argparse.ArgumentTypeError(f"cannot write {text}: {exc.strerror or exc}") from None
    return text


def write_json(path: str, data: object) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2) + "\n")


def emit_json(target: str | None, data: object) -> None:
    """``--json`` of the commands that take ``-`` for stdout: nothing, stdout or a file."""
    if target == "-":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif target:
        write_json(target, data)


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or default


def add_store_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("vector store (default: embedded Qdrant Edge at var/store)")
    where = g.add_mutually_exclusive_group()
    where.add_argument(
        "--store",
        metavar="PATH",
        default=env("CLIPSEARCH_STORE", DEFAULT_STORE),
        help="Qdrant Edge directory (env CLIPSEARCH_STORE; default %(default)s)",
    )
    where.add_argument(
        "--qdrant-url",
        metavar="URL",
        default=env("CLIPSEARCH_QDRANT_URL") or env("QDRANT_URL"),
        help="Qdrant server URL instead of the embedded store (env CLIPSEARCH_QDRANT_URL)",
    )
    g.add_argument(
        "--collection",
        default=env("CLIPSEARCH_COLLECTION", "clips"),
        help="collection name on a Qdrant server (default %(default)s)",
    )


def add_model_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
    default = env("CLIPSEARCH_MODEL")
    p.add_argument(
        "--model",
        required=required and default is None,
        default=default,
        help="CLIP checkpoint: a local directory or a Hugging Face hub id (env CLIPSEARCH_MODEL)",
    )


def add_text_dtype_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--text-dtype",
        choices=TEXT_DTYPES,
        default=env("CLIPSEARCH_TEXT_DTYPE", DEFAULT_TEXT_DTYPE),
        help="how the text tower runs: fp32 or bf16 torch, int8 (an ONNX Runtime export, "
        "made once into the cache directory), or auto: the fastest of these on this machine "
        "(bf16 only where the CPU has it), measured once per checkpoint and kept beside the "
        "export (env CLIPSEARCH_TEXT_DTYPE; default %(default)s; `clipsearch parity` reports "
        "what each changes)",
    )
    add_onnx_cache_arg(p)


def add_onnx_cache_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir",
        default=env("CLIPSEARCH_CACHE_DIR", DEFAULT_CACHE_DIR),
        help="where the int8 exports of the towers are kept (env CLIPSEARCH_CACHE_DIR)",
    )


def add_window_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("moments (one vector per window)")
    g.add_argument("--window-s", type=float, default=2.0, help="window length (default 2 s)")
    g.add_argument("--stride-s", type=float, default=1.0, help="window step (default 1 s)")
    g.add_argument(
        "--window-frames",
        type=int,
        default=WINDOW_FRAMES,
        help="frames each window pools (default %(default)s: the demo model's retrieval "
        "figures and moments R@5 / R@1 / tIoU within 0.01 of 8's, a quarter fewer frames to "
        "decode and embed; a change re-embeds)",
    )


def add_vision_dtype_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--vision-dtype",
        choices=VISION_DTYPES,
        default=env("CLIPSEARCH_VISION_DTYPE", DEFAULT_VISION_DTYPE),
        help="how the vision tower runs (env CLIPSEARCH_VISION_DTYPE; default %(default)s: "
        "int8 (an ONNX Runtime export, made once into the cache directory) on CPUs "
        "with VNNI or AMX, else fp32; `clipsearch bench-ingest` "
        "and `clipsearch eval --vision-dtype ...` report what each changes)",
    )


def device_name(text: str) -> str:
    """argparse type for ``--device``: one of DEVICES, or cuda:N (checked when loading)."""
    if not is_device_name(text):
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(DEVICES)} or cuda:N, got {text!r}"
        )
    return text


def add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        type=device_name,
        default=env("CLIPSEARCH_DEVICE", DEFAULT_DEVICE),
        metavar="{auto,cpu,cuda}",
        help="where the vision tower runs (env CLIPSEARCH_DEVICE; default %(default)s: CUDA "
        "when torch sees a GPU, under autocast with --vision-dtype auto, else the CPU; int8 "
        "runs on the CPU)",
    )


def store_settings(args: argparse.Namespace) -> Any:
    from clipsearch.settings import store_settings_from_env

    # cache size and cluster distribution come from CLIPSEARCH_* variables, as for serve
    return replace(
        store_settings_from_env(os.environ),
        path=None if args.qdrant_url else args.store,
        url=args.qdrant_url,
        collection=args.collection,
        api_key=env("QDRANT_API_KEY"),
    )


@contextmanager
def progress(total: int, unit: str, desc: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, desc=desc, disable=not enabled, dynamic_ncols=True)
    try:
        yield bar.update
    finally:
        bar.close()


def announce(line: str) -> None:
    """A line on stderr that leaves a progress bar on screen whole (it is drawn again
    below the line)."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def show_progress(args: argparse.Namespace) -> bool:
    return (not args.quiet and sys.stderr.isatty()) or bool(getattr(args, "progress", False))


def window_plan(args: argparse.Namespace) -> Any:
    from clipsearch.windows import WindowPlan

    return WindowPlan(window_s=args.window_s, stride_s=args.stride_s, frames=args.window_frames)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
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
