"""The offline-built CLIP tokenizer saves and loads as an ordinary CLIPTokenizer."""

from __future__ import annotations

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
