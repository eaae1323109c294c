"""The offline-built CLIP tokenizer saves and loads as an ordinary CLIPTokenizer."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoTokenizer

from training.tokenizer import build_tokenizer


def test_tokenizer_round_trips_through_save_pretrained(tmp_path: Path) -> None:
    tok = build_tokenizer(["a red ball bouncing", "a blue box spinning"] * 5, vocab_size=300)
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    text = "A red BALL bouncing!"
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert "ball</w>" in tok.convert_ids_to_tokens(ids)


def test_unseen_text_never_maps_to_unknown() -> None:
    tok = build_tokenizer(["ball"], vocab_size=300)
    ids = tok("zebra ümlaut 42 ?!")["input_ids"][1:-1]
    assert tok.unk_token_id not in ids


def test_the_same_texts_give_the_same_ids_numbered_in_merge_order() -> None:
    # many symbols tie in count here; the trainer numbers ties in hash order
    texts = [f"a {c} {s} {o} {m}" for c in ("red", "blue", "green", "pink")
             for s in ("small", "large") for o in ("ball", "box", "ring")
             for m in ("bouncing", "spinning", "falling", "rising")]  # fmt: skip
    builds = [build_tokenizer(texts, vocab_size=400) for _ in range(4)]
    vocab = builds[0].get_vocab()
    assert all(b.get_vocab() == vocab for b in builds[1:])
    assert vocab["<|startoftext|>"] == 0 and vocab["<|endoftext|>"] == 1
    merges = json.loads(builds[0].backend_tokenizer.to_str())["model"]["merges"]
    merged = ["".join(m) if isinstance(m, list) else m.replace(" ", "") for m in merges]
    ids = [vocab[t] for t in dict.fromkeys(merged)]
    assert ids == sorted(ids) and len(ids) > 20
