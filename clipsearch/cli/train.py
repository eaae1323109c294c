"""Models: ``clipsearch train`` and ``clipsearch model init``."""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path
from typing import Any

from clipsearch.cli.common import (
    output_file,
    positive_int,
    seed_value,
    show_progress,
    write_json,
)
from clipsearch.errors import InvalidInput
from clipsearch.settings import (
    DEFAULT_CACHE_DIR,
)


def _quiet_lightning(verbose: bool) -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    if not verbose:  # deprecations inside Lightning itself, not actionable by users
        warnings.filterwarnings("ignore", message=r".*treespec.*", module=r"lightning\.")


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
        progress_bar=show_progress(args),
    )
    keep_freed_memory()  # a step's large buffers are reused, not faulted in anew
    metrics = train(cfg, run)
    best = (metrics.get("validation") or {}).get("best") or {}
    if args.metrics:
        from clipsearch.bench.common import scalar_metrics

        summary = scalar_metrics(metrics)
        summary.update({k: v for k, v in best.items() if k.startswith("val_")})
        write_json(args.metrics, summary)
    line = f"saved {metrics['model_id']} to {args.out} ({metrics['total_s']:.0f}s"
    if best:
        figures = ", ".join(f"{k[4:]} {v:.3f}" for k, v in best.items() if k.startswith("val_"))
        line += f"; validation groups: {figures}"
    print(line + ")")
    return 0


def cmd_model_init(args: argparse.Namespace) -> int:
    import torch

    from clipsearch.architectures import create_model, get_architecture
    from clipsearch.data.collection import PHRASE_OVERRIDES, class_phrase
    from clipsearch.data.synth import CLASSES
    from clipsearch.model import save_model
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


def add_train(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("train", parents=[common], help="train or fine-tune a CLIP model")
    p.add_argument("--data", required=True, help="UCF101-layout dataset root")
    p.add_argument("--out", required=True, help="directory to save the model to")
    p.add_argument("--config", default="synthucf", help="recipe name or JSON file")
    p.add_argument("--init", default=None, help="pretrained CLIP (hub id or dir) to fine-tune")
    p.add_argument("--epochs", type=positive_int, default=None, help="override the recipe's epochs")
    p.add_argument("--max-steps", type=positive_int, default=None, help="stop after N steps")
    p.add_argument("--batch-size", type=positive_int, default=None)
    p.add_argument("--split", type=int, default=None, choices=(1, 2, 3))
    p.add_argument("--seed", type=seed_value, default=None)
    p.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="decoded-frame cache directory")
    p.add_argument(
        "--metrics",
        type=output_file,
        metavar="JSON",
        help="also write the headline figures here (DVC metrics)",
    )
    p.set_defaults(func=cmd_train)


def add_model(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("model", parents=[common], help="model utilities")
    model_sub = p.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    m = model_sub.add_parser(
        "init",
        parents=[common],
        help="write a randomly initialised CLIP of a standard size (speed benchmarks)",
    )
    m.add_argument("--arch", required=True, help="vit-b-32, vit-b-16, vit-l-14 or tiny")
    m.add_argument("--out", required=True, help="new directory for the checkpoint")
    m.add_argument("--seed", type=seed_value, default=0)
    m.add_argument(
        "--vocab",
        metavar="BPE_GZ",
        help="OpenAI CLIP's bpe_simple_vocab_16e6.txt.gz: use CLIP's own tokenizer, so queries "
        "have their real token counts (benchmarks/fetch_clip_vocab.sh gets the file)",
    )
    m.set_defaults(func=cmd_model_init)
