"""A CLIP BPE tokenizer learned offline from the training text.

It has the same pipeline as OpenAI CLIP's (lower-casing, CLIP's word regex,
byte-level alphabet, ``</w>`` word ends) so it saves and loads as an ordinary
``CLIPTokenizer``.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable
from typing import Any

from tokenizers import pre_tokenizers, trainers
from transformers import CLIPTokenizer

from clipsearch.errors import InvalidInput

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def build_tokenizer(texts: Iterable[str], vocab_size: int = 1000) -> CLIPTokenizer:
    """Train a CLIP-style BPE on ``texts`` and return it as a ``CLIPTokenizer``."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    bootstrap = CLIPTokenizer(
        vocab={BOS: 0, EOS: 1, **{c: i + 2 for i, c in enumerate(alphabet)}}, merges=[]
    )
    backend = bootstrap.backend_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS],
        initial_alphabet=alphabet,
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    backend.train_from_iterator(list(texts), trainer)
    learned = json.loads(backend.to_str())["model"]
    merges: Any = [
        tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in learned["merges"]
    ]
    # The trainer numbers symbols that tie in its counts in hash order, which changes from
    # run to run (the merges do not): number them again, specials, the byte alphabet, the
    # other symbols sorted, then each merge's result in merge order, so the same texts give
    # the same ids and one seed the same model.
    made = list(dict.fromkeys("".join(m) for m in merges))
    first = [BOS, EOS, *alphabet]
    known = set(first) | set(made)
    ordered = first + sorted(t for t in learned["vocab"] if t not in known) + made
    vocab: dict[str, int] = {t: i for i, t in enumerate(dict.fromkeys(ordered))}
    # every byte also as a word end, as in CLIP's vocabulary: no input maps to <unk>
    for char in alphabet:
        vocab.setdefault(char + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges)


# OpenAI CLIP's vocabulary: 256 byte symbols, the same as word ends, 48,894 merges, BOS, EOS.
OPENAI_MERGES = 49152 - 256 - 2


def _byte_alphabet() -> list[str]:
    """CLIP's byte -> unicode symbols, in the order its vocabulary lists them."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def openai_clip_tokenizer(bpe_path: str | os.PathLike[str]) -> CLIPTokenizer:
    """OpenAI CLIP's own tokenizer (49,408 tokens) from its ``bpe_simple_vocab_16e6.txt.gz``.

    That file ships in OpenAI's ``clip`` repository and in the ``open_clip_torch`` wheel
    (``benchmarks/fetch_clip_vocab.sh`` extracts it); the result tokenizes exactly like
    ``openai/clip-vit-base-patch32``'s tokenizer.
    """
    try:
        with gzip.open(bpe_path, "rt", encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the CLIP BPE vocabulary {bpe_path}: {exc}") from None
    merges: Any = [tuple(line.split()) for line in lines[1 : OPENAI_MERGES + 1]]
    if len(merges) != OPENAI_MERGES or any(len(m) != 2 for m in merges):
        raise InvalidInput(f"{bpe_path} is not CLIP's bpe_simple_vocab_16e6.txt.gz")
    alphabet = _byte_alphabet()
    tokens = [*alphabet, *(c + "</w>" for c in alphabet), *("".join(m) for m in merges), BOS, EOS]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=merges)
