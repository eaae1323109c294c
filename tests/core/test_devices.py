"""``--device auto|cpu|cuda``: which device the towers run on, and the errors when a device
is not there. The tests marked ``gpu`` run only where torch sees a CUDA device
(``pytest -m gpu``); the rest hold everywhere."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from motionhead import motion_encoder, train_stand_in

from clipsearch.devices import CPU_VISION_BATCH, CUDA_VISION_BATCH, resolve_device, vision_batch
from clipsearch.errors import InvalidInput
from clipsearch.model import ClipEncoder, load_model
from webapp.settings import ConfigError, Settings

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")


def _cuda_present(monkeypatch: pytest.MonkeyPatch, count: int = 1) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_auto_is_cuda_when_torch_sees_one_else_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    _cuda_present(monkeypatch, count=2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "cpu:0", "cuda:x", "CUDA", ""])
def test_unknown_device_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="device must be one of auto, cpu, cuda"):
        resolve_device(name)


def test_a_missing_gpu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InvalidInput, match="torch sees no CUDA GPU here"):
        resolve_device("cuda")
    _cuda_present(monkeypatch, count=1)
    with pytest.raises(InvalidInput, match="sees 1 CUDA device"):
        resolve_device("cuda:1")


def test_the_vision_batch_follows_the_device() -> None:
    assert vision_batch(torch.device("cpu")) == CPU_VISION_BATCH == 32
    assert vision_batch(torch.device("cuda")) == CUDA_VISION_BATCH


def test_int8_vision_is_refused_on_a_gpu_before_anything_loads(
    monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
) -> None:
    _cuda_present(monkeypatch)
    with pytest.raises(InvalidInput, match="int8 runs on the CPU"):
        load_model(tiny_model_dir, device="cuda", vision_dtype="int8")


def test_a_cpu_encoder_reports_its_device_and_runs_as_before(tiny_model_dir: Path) -> None:
    encoder = load_model(tiny_model_dir, device="auto" if not torch.cuda.is_available() else "cpu")
    assert encoder.device == torch.device("cpu")
    frames = np.random.default_rng(0).integers(0, 255, (40, 48, 64, 3), dtype=np.uint8)
    whole = encoder.embed_videos([frames])[0]
    small = encoder.embed_videos([frames], batch_size=7)[0]
    np.testing.assert_allclose(whole.frames, small.frames, atol=1e-5)
    with pytest.raises(Exception, match="autocast runs the vision tower on a GPU"):
        encoder.vision_to_autocast()


def test_settings_check_the_device_name() -> None:
    env = {"CLIPSEARCH_MODEL": "m"}
    assert Settings.from_env(env).device == "auto"
    assert Settings.from_env({**env, "CLIPSEARCH_DEVICE": "cuda:0"}).device == "cuda:0"
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda"):
        Settings.from_env({**env, "CLIPSEARCH_DEVICE": "tpu"})


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clipsearch.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_refuses_an_unknown_device(tmp_path: Path) -> None:
    done = _cli("ingest", str(tmp_path), "--device", "tpu", "--model", "m")
    assert done.returncode == 2
    assert "expected one of auto, cpu, cuda or cuda:N, got 'tpu'" in done.stderr


@no_cuda
def test_cli_says_in_one_line_that_there_is_no_gpu(tiny_model_dir: Path, tiny_synth: Path) -> None:
    done = _cli(
        "eval", "--data", str(tiny_synth), "--model", str(tiny_model_dir), "--device", "cuda"
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "torch sees no CUDA GPU here" in lines[0], done.stderr


# --- on a GPU -------------------------------------------------------------------------


def _frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 60, 80, 3), dtype=np.uint8)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(-1))


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("vision_dtype", ["fp32", "auto", "bf16"])
def test_gpu_vectors_match_the_cpu(tiny_model_dir: Path, vision_dtype: str) -> None:
    cpu = load_model(tiny_model_dir, device="cpu", vision_dtype="fp32", text_dtype="fp32")
    gpu = load_model(tiny_model_dir, device="cuda", vision_dtype=vision_dtype, text_dtype="fp32")
    assert gpu.device.type == "cuda"
    if vision_dtype == "auto":
        assert gpu.vision_dtype.startswith("autocast-")
    clips = [_frames(20), _frames(9, seed=1)]
    floor = 0.9999 if vision_dtype == "fp32" else 0.99
    for c, g in zip(cpu.embed_videos(clips), gpu.embed_videos(clips), strict=True):
        assert _cosines(c.frames, g.frames).min() > floor
        assert float(c.pooled @ g.pooled) > floor
    texts = ["a red ball bouncing", "a box"]
    assert _cosines(cpu.encode_text(texts), gpu.encode_text(texts)).min() > 0.9999
    assert _cosines(cpu.encode_frames(clips[0]), gpu.encode_frames(clips[0])).min() > floor


@pytest.mark.gpu
@needs_cuda
def test_gpu_temporal_head_with_motion_branch_matches_the_cpu(tiny_model_dir: Path) -> None:
    cpu, head = motion_encoder(tiny_model_dir)
    train_stand_in(head)
    gpu = ClipEncoder(
        copy.deepcopy(cpu.model).cuda(),
        cpu.tokenizer,
        cpu.preprocess,
        cpu.video,
        "m",
        temporal=copy.deepcopy(head).cuda(),
    )
    videos = [(_frames(12), np.array([[0, 3, 6, 9], [2, 5, 8, 11]]))]
    (c_frames, c_views), (g_frames, g_views) = (
        cpu.embed_views(videos)[0],
        gpu.embed_views(videos)[0],
    )
    assert _cosines(c_frames, g_frames).min() > 0.9999
    assert _cosines(c_views, g_views).min() > 0.9999


@pytest.mark.gpu
@needs_cuda
def test_ingest_on_the_gpu_finds_what_the_cpu_finds(
    tiny_model_dir: Path, tiny_synth: Path, tmp_path: Path
) -> None:
    hits = {}
    for device in ("cpu", "cuda"):
        store = tmp_path / device
        done = _cli(
            "ingest", str(tiny_synth), "--model", str(tiny_model_dir), "--store", str(store),
            "--device", device, "--vision-dtype", "fp32", "-q",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        done = _cli(
            "search", "a ball bouncing", "--model", str(tiny_model_dir), "--store", str(store),
            "--json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        hits[device] = done.stdout
    assert _ids(hits["cpu"]) == _ids(hits["cuda"])


def _ids(answer: str) -> list[str]:
    return [r["id"] for r in json.loads(answer)["results"]]
