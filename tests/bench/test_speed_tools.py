"""What the speed benchmarks stand on: the load-test store, CLIP's own tokenizer for random
models, the ingest benchmark and the serving settings."""

from __future__ import annotations

import errno
import gzip
import itertools
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipsearch.bench.common import cpu_line
from clipsearch.bench.loadstore import build_load_store
from clipsearch.cli import main
from clipsearch.cpu import cpu_info, without_denied
from clipsearch.data.collection import load_collection
from clipsearch.errors import InvalidInput
from clipsearch.store.edge import QdrantEdgeStore
from clipsearch.video import sample_frames
from clipsearch.windows import WindowPlan, frame_layout
from training.tokenizer import OPENAI_MERGES, _byte_alphabet, openai_clip_tokenizer
from webapp.settings import ConfigError, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_load_store_holds_searchable_clips_with_ingest_payloads(tmp_path: Path) -> None:
    with QdrantEdgeStore(tmp_path / "store") as store:
        report = build_load_store(store, 16, clips=60, seed=1)
        assert store.count() == report.clips == 60
        assert 3 * 60 <= report.windows <= 10 * 60
        q = np.random.default_rng(0).normal(size=16).astype(np.float32)
        hits = store.search_windows(q / np.linalg.norm(q), 5, prefetch=20)
        assert len(hits) == 5
        for hit in hits:
            p = hit.payload
            assert p["path"].endswith(".avi") and p["class"].startswith("Synthetic")
            assert len(p["segment_times"]) == len(hit.windows)
            assert p["duration_s"] == len(hit.windows) + 1
        with pytest.raises(InvalidInput, match="must start empty"):
            build_load_store(store, 16, clips=5)


def test_load_store_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    assert main(["load-store", "--store", str(store), "--clips", "30", "--dim", "8"]) == 0
    assert "30 synthetic clips" in capsys.readouterr().out
    with QdrantEdgeStore(store) as s:
        assert s.count() == 30 and s.dim() == 8


def fake_bpe_file(path: Path, merges: int = OPENAI_MERGES) -> Path:
    """A vocabulary file shaped like CLIP's (a header, then ``merges`` merge lines)."""
    alphabet = _byte_alphabet()
    pairs = itertools.islice(itertools.product(alphabet, alphabet), merges)
    text = "#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in pairs) + "\n"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(text)
    return path


def test_openai_tokenizer_has_clips_layout(tmp_path: Path) -> None:
    tok = openai_clip_tokenizer(fake_bpe_file(tmp_path / "bpe.txt.gz"))
    assert len(tok) == 49408
    assert tok.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"]) == [49406, 49407]
    ids = tok("a b")["input_ids"]
    assert ids[0] == 49406 and ids[-1] == 49407 and len(ids) == 4
    assert len(_byte_alphabet()) == 256 == len(set(_byte_alphabet()))


def test_openai_tokenizer_refuses_other_files(tmp_path: Path) -> None:
    short = fake_bpe_file(tmp_path / "short.txt.gz", merges=100)
    with pytest.raises(InvalidInput, match="is not CLIP's"):
        openai_clip_tokenizer(short)
    plain = tmp_path / "plain.txt.gz"
    plain.write_text("not gzip")
    with pytest.raises(InvalidInput, match="cannot read"):
        openai_clip_tokenizer(plain)


def test_model_init_with_clips_vocabulary(tmp_path: Path) -> None:
    vocab = fake_bpe_file(tmp_path / "bpe.txt.gz")
    out = tmp_path / "model"
    assert main(["model", "init", "--arch", "tiny", "--out", str(out), "--vocab", str(vocab)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["text_config"]["vocab_size"] == 49408
    assert (
        main(
            [
                "model",
                "init",
                "--arch",
                "tiny",
                "--out",
                str(tmp_path / "m2"),
                "--vocab",
                str(tmp_path / "missing.gz"),
            ]
        )
        == 2
    )


def test_bench_ingest_reports_efficiency(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ingest.json"
    args = ["bench-ingest", str(tiny_synth), "--model", str(tiny_model_dir), "--limit", "6"]
    args += ["--batch", "3", "--workers", "1"]
    # the default: what `clipsearch ingest` does, windows included
    assert main([*args, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("CPU: ") and "ingest_efficiency" in printed
    r = json.loads(out.read_text())
    assert r["segments"] == {"window_s": 2.0, "stride_s": 1.0, "frames": 6}
    assert r["environment"]["cpu"]["model"] and isinstance(r["environment"]["cpu"]["flags"], list)
    clips = load_collection(tiny_synth).clips[:6]
    durations = [sample_frames(c.source, 1).duration_s for c in clips]
    expected = sum(len(frame_layout(d, 8, WindowPlan()).times) for d in durations)
    assert r["clips"] == 6 and r["pipeline"]["frames"] == r["model_only"]["frames"] == expected
    assert r["frames_per_clip"] == pytest.approx(expected / 6, abs=0.01) and expected > 6 * 8
    assert r["ingest_efficiency"] == pytest.approx(
        r["pipeline"]["frames_per_s"] / r["model_only"]["frames_per_s"], rel=0.01
    )
    ucf = r["ucf101"]
    assert ucf["frames_per_clip"] == len(frame_layout(7.21, 8, WindowPlan()).times)
    assert ucf["projected_s"] == pytest.approx(
        13320 * ucf["frames_per_clip"] / r["pipeline"]["frames_per_s"], rel=0.01
    )
    assert {"decode_wait", "embed", "upsert"} <= set(r["pipeline"]["stage_seconds"])
    # --no-segments: the clip's own frames only
    assert main([*args, "--no-segments", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["clips"] == 6 and r["frames_per_clip"] == 8 and r["segments"] is None
    assert r["pipeline"]["frames"] == r["model_only"]["frames"] == 48
    assert r["ucf101"]["frames_per_clip"] == 8


def test_serving_settings_from_the_environment() -> None:
    env = {
        "CLIPSEARCH_MODEL": "m",
        "CLIPSEARCH_BATCH_QUERIES": "8",
        "CLIPSEARCH_BATCH_WAIT_MS": "0.5",
        "CLIPSEARCH_TEXT_THREADS": "2",
        "CLIPSEARCH_CACHE_DIR": "/tmp/x",
        "CLIPSEARCH_BATCH_THREADS": "3",
    }
    s = Settings.from_env(env)
    assert (s.batch_queries, s.batch_wait_ms, s.text_threads, s.cache_dir) == (8, 0.5, 2, "/tmp/x")
    assert s.batch_threads == 3
    assert Settings.from_env({"CLIPSEARCH_MODEL": "m"}).batch_threads is None  # chosen at load
    with pytest.raises(ConfigError):
        Settings(model="m", batch_queries=0)
    with pytest.raises(ConfigError):
        Settings(model="m", text_threads=0)
    with pytest.raises(ConfigError):
        Settings(model="m", batch_threads=0)


def test_bench_text_reports_single_and_batched_rates(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = tmp_path / "queries.txt"
    texts.write_text("\n".join(f"a ball bouncing number {i}" for i in range(20)) + "\n")
    out = tmp_path / "text.json"
    args = ["bench-text", "--model", str(tiny_model_dir), "--texts", str(texts), "--batch", "4"]
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main([*args, *cache, "--dtypes", "fp32,int8", "--json", str(out)]) == 0
    assert "batches of 4" in capsys.readouterr().out
    results = json.loads(out.read_text())["results"]
    assert [r["text_dtype"] for r in results] == ["fp32", "int8"]
    for r in results:
        assert r["single_qps"] > 0 and r["batch4_qps"] > 0
        assert r["queries"] == 16 + 20 // 4 * 4  # 16 singles after the warm-up batch, 5 batches
    assert main([*args, *cache, "--dtypes", "fp16"]) == 2
    assert main([*args, "--texts", str(tmp_path / "missing.txt")]) == 2


def test_cpu_info_names_the_model_and_the_flags_that_pick_kernels() -> None:
    block = (
        "processor\t: 0\nmodel name\t: AMD EPYC 7B13\n"
        "flags\t\t: fpu sse2 avx avx2 fma bmi2\n\nprocessor\t: 1\nmodel name\t: other\n"
    )
    info = cpu_info(block)
    assert info == {
        "model": "AMD EPYC 7B13",
        "flags": ["avx2"],
        "native_bf16": False,
        "int8_dot": False,
    }
    assert cpu_line(info).endswith("(avx2)") and "AMD EPYC 7B13" in cpu_line(info)
    xeon = cpu_info("model name\t: Xeon\nflags\t: avx2 avx512f avx512_vnni amx_int8 amx_bf16\n")
    assert xeon["flags"] == ["avx2", "avx512f", "avx512_vnni", "amx_bf16", "amx_int8"]
    assert xeon["native_bf16"] is True and xeon["int8_dot"] is True
    assert "none of avx2" in cpu_line(cpu_info("model name\t: Arm\nflags\t: neon\n"))


def test_amx_the_kernel_refuses_is_not_reported_as_usable() -> None:
    xeon = cpu_info("model name\t: Xeon\nflags\t: avx2 avx512f avx512_vnni amx_int8 amx_bf16\n")
    assert without_denied(xeon, amx_granted=True) == xeon
    refused = without_denied(xeon, amx_granted=False)
    assert refused["flags"] == ["avx2", "avx512f", "avx512_vnni"]
    assert refused["denied"] == ["amx_bf16", "amx_int8"]
    assert refused["native_bf16"] is False and refused["int8_dot"] is True
    assert cpu_line(refused).endswith(
        "(avx2, avx512f, avx512_vnni); denied to this process: amx_bf16, amx_int8"
    )
    epyc = cpu_info("model name\t: EPYC\nflags\t: avx2 avx512f avx512_vnni avx512_bf16\n")
    assert without_denied(epyc, amx_granted=False) == epyc


@pytest.mark.skipif(
    sys.platform != "linux" or platform.machine() != "x86_64", reason="Linux on x86-64 only"
)
def test_without_amx_makes_the_kernel_refuse_the_tiles_to_the_command() -> None:
    probe = (
        "import ctypes, errno, json; from clipsearch.cpu import cpu_info\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "answer = libc.syscall(158, 0x1023, 18)\n"
        "print(json.dumps([answer, ctypes.get_errno(), cpu_info()]))"
    )
    wrapper = ROOT / "benchmarks" / "without_amx.py"

    def run(*prefix: str) -> list[Any]:
        done = subprocess.run(
            [*prefix, sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout))

    answer, error, info = run(sys.executable, str(wrapper))
    assert (answer, error) == (-1, errno.EPERM)
    assert not any(flag.startswith("amx") for flag in info["flags"])
    answer, error, plain = run()
    assert error != errno.EPERM  # granted (0) on a CPU with AMX, unsupported elsewhere
    assert set(info["flags"]) | set(info.get("denied", [])) == set(plain["flags"])
    done = subprocess.run([sys.executable, str(wrapper)], capture_output=True, text=True)
    assert done.returncode != 0 and "usage" in done.stderr
