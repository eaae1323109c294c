"""A CLIP BPE tokenizer learned offline from the training text.

It has the same pipeline as OpenAI CLIP's (lower-casing, CLIP's word regex,
byte-level alphabet, ``</w>`` word ends) so it saves and loads as an ordinary
``CLIPTokenizer``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tokenizers import pre_tokenizers, trainers
from transformers import CLIPTokenizer

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
    vocab: dict[str, int] = dict(learned["vocab"])
    # every byte also as a word end, as in CLIP's vocabulary: no input maps to <unk>
    for char in alphabet:
        vocab.setdefault(char + "</w>", len(vocab))
    merges: Any = [
        tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in learned["merges"]
    ]
    return CLIPTokenizer(vocab=vocab, merges=merges)
