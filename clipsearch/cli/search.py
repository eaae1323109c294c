"""Search from the shell: ``clipsearch search`` and ``clipsearch store stats``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Literal

from clipsearch.cli.common import (
    EXIT_ERROR,
    add_model_arg,
    add_store_args,
    add_text_dtype_arg,
    positive_int,
    store_settings,
)
from clipsearch.errors import InvalidInput

# What the command line calls each filter of clipsearch.filters (in its messages).
FILTER_FLAGS = {
    "class": "--class",
    "split": "--split",
    "min_duration": "--min-duration",
    "max_duration": "--max-duration",
}


def search_filter(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(store filter, filters as given) from the flags, through the API's grammar."""
    from clipsearch.filters import build_filter

    values = {
        "class": args.classes,
        "split": args.split,
        "min_duration": args.min_duration,
        "max_duration": args.max_duration,
    }
    return build_filter(values, FILTER_FLAGS)


def _read_image(path: str) -> Any:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.thumbnail((1024, 1024))  # the model sees ~224 px
            return np.array(img.convert("RGB"))
    except UnidentifiedImageError:
        raise InvalidInput(f"{path} is not an image PIL can read") from None
    except Image.DecompressionBombError as exc:  # a huge picture, or a file made to look like one
        raise InvalidInput(f"{path}: {exc}") from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # the file itself: missing, unreadable (main says so)
        raise InvalidInput(f"{path} cannot be read as an image ({exc})") from None  # truncated


def cmd_store_stats(args: argparse.Namespace) -> int:
    from clipsearch.store.factory import open_store
    from clipsearch.store.stats import store_stats

    settings = store_settings(args)
    if settings.embedded and settings.path and not Path(settings.path).exists():
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
    from clipsearch.query_model import load_query_model
    from clipsearch.search import SearchLimits, SearchService
    from clipsearch.store.factory import open_store

    collapse = validate_collapse(args.collapse)
    validate_near_threshold(args.near_threshold)
    asked = [x for x in (args.query, args.image, args.like) if x is not None]
    if len(asked) != 1:
        raise InvalidInput("give exactly one of: a text QUERY, --image FILE or --like CLIP_ID")
    if args.then and args.query is None:
        raise InvalidInput('--then follows a text QUERY: search "A" --then "B"')
    flt, given = search_filter(args)
    image = _read_image(args.image) if args.image else None
    towers: Literal["both", "text"] = "both" if image is not None else "text"
    store = open_store(store_settings(args))
    try:
        encoder = load_query_model(
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
        from clipsearch.responses import response_dict

        out = response_dict(response, args.k, given)
        # the command line runs beside the files, so it also names them (the API never does)
        for entry, r in zip(out["results"], response.results, strict=True):
            entry["source"] = r.payload.get("source")
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


def add_store(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("store", help="inspect a vector store")
    store_sub = p.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    st = store_sub.add_parser(
        "stats",
        parents=[common],
        help="point counts, scroll counts, duplicate ids and a digest of both indexes "
        "(two stores with the same digests hold the same points)",
    )
    add_store_args(st)
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=cmd_store_stats)


def add_search(sub: Any, common: argparse.ArgumentParser) -> None:
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
    add_model_arg(p)
    add_store_args(p)
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
    add_text_dtype_arg(p)
    p.set_defaults(func=cmd_search)
