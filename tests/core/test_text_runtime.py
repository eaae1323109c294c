"""``--text-dtype auto``: the text tower's fastest runtime on this machine, measured once
per checkpoint and machine and cached beside the int8 export."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

from clipsearch import text_runtime
from clipsearch.model import load_model
from clipsearch.text_onnx import tower_digest


class FakeTower:
    """Encodes at a set speed; ``skew`` turns its vectors away from the reference."""

    def __init__(self, seconds_per_query: float, skew: float = 0.0):
        self.seconds_per_query = seconds_per_query
        self.skew = skew

    def encode_text(self, texts: list[str]) -> np.ndarray:
        time.sleep(self.seconds_per_query * len(texts))
        vectors = np.zeros((len(texts), 4), np.float32)
        vectors[:, 0] = np.cos(self.skew)
        vectors[:, 1] = np.sin(self.skew)
        return vectors


def test_the_fastest_close_candidate_is_picked() -> None:
    fast_but_wrong = {"qps": 900.0, "min_cosine": 0.95}
    assert text_runtime.pick({"fp32": {"qps": 30.0, "min_cosine": 1.0}}) == "fp32"
    measured = {
        "fp32": {"qps": 30.0, "min_cosine": 1.0},
        "int8": {"qps": 250.0, "min_cosine": 0.9998},
        "bf16": fast_but_wrong,
    }
    assert text_runtime.pick(measured) == "int8"
    assert text_runtime.pick({"int8": fast_but_wrong}) == "fp32"


def test_bf16_is_a_candidate_only_where_the_cpu_has_it() -> None:
    assert text_runtime.candidates({"native_bf16": True}) == ["int8", "fp32", "bf16"]
    assert text_runtime.candidates({"native_bf16": False}) == ["int8", "fp32"]


def test_measured_once_then_read_from_the_cache(tmp_path: Path) -> None:
    towers = {"fp32": FakeTower(0.004), "int8": FakeTower(0.0005), "bf16": FakeTower(0.0001, 0.5)}
    asked: list[str] = []

    def encoders(dtype: str) -> FakeTower:
        asked.append(dtype)
        return towers[dtype]

    def choose(threads: int = 1) -> str:
        return text_runtime.choose(
            "d1", tmp_path, encoders, torch_threads=2, text_threads=threads,
            dtypes=["int8", "fp32", "bf16"],
        )  # fmt: skip

    assert choose() == "int8"  # bf16 is faster, but its vectors stray (cosine 0.88)
    assert asked == ["fp32", "int8", "bf16"]
    record = json.loads(next((tmp_path / "onnx" / "d1").glob("text-auto-*.json")).read_text())
    assert record["choice"] == "int8" and record["measured"]["bf16"]["min_cosine"] < 0.9
    assert record["measured"]["int8"]["qps"] > record["measured"]["fp32"]["qps"]
    assert choose() == "int8" and len(asked) == 3  # cached
    choose(threads=2)  # another thread count is another measurement
    assert len(asked) == 6


def test_workers_starting_together_measure_once(tmp_path: Path) -> None:
    calls: list[str] = []

    def encoders(dtype: str) -> FakeTower:
        calls.append(dtype)
        return FakeTower(0.001 if dtype == "int8" else 0.002)

    answers: list[str] = []

    def worker() -> None:
        answers.append(
            text_runtime.choose(
                "d2", tmp_path, encoders, torch_threads=2, text_threads=1, dtypes=["int8", "fp32"]
            )
        )

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == ["int8"] * 3
    assert calls == ["fp32", "int8"]


def test_a_checkpoint_loads_with_auto_and_keeps_its_vectors(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    encoder = load_model(tiny_model_dir, towers="text", text_dtype="auto", cache_dir=tmp_path)
    assert encoder.text_dtype in text_runtime.candidates()
    digest = tower_digest(load_model(tiny_model_dir, towers="text", text_dtype="fp32").model)
    (record_path,) = (tmp_path / "onnx" / digest).glob("text-auto-*.json")
    record = json.loads(record_path.read_text())
    assert record["choice"] == encoder.text_dtype
    assert set(record["measured"]) == set(text_runtime.candidates())
    assert (tmp_path / "onnx" / digest / "text-int8.onnx").is_file()  # beside the export
    reference = load_model(tiny_model_dir, towers="text", text_dtype="fp32")
    texts = ["a ball bouncing", "a box"]
    cosine = np.sum(encoder.encode_text(texts) * reference.encode_text(texts), axis=1)
    assert cosine.min() > 0.99
    again = load_model(tiny_model_dir, towers="text", text_dtype="auto", cache_dir=tmp_path)
    assert again.text_dtype == encoder.text_dtype


def test_auto_is_the_default() -> None:
    from clipsearch.settings import DEFAULT_TEXT_DTYPE
    from webapp.settings import Settings

    assert DEFAULT_TEXT_DTYPE == "auto"
    assert Settings.from_env({"CLIPSEARCH_MODEL": "m"}).text_dtype == "auto"
