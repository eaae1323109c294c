"""The fast text paths (int8 ONNX Runtime export, bf16 weights): close to fp32, and
`clipsearch parity` says how close."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from motionhead import motion_encoder, train_stand_in

from clipsearch import cpu as cpu_module
from clipsearch import model as model_module
from clipsearch import text_runtime
from clipsearch.cli import build_parser, main
from clipsearch.cpu import cpu_info
from clipsearch.errors import InvalidInput, ModelLoadError
from clipsearch.model import ClipEncoder, load_model
from clipsearch.onnx_session import VisionSession
from clipsearch.text_onnx import MODEL_FILE, tower_digest
from clipsearch.vision_onnx import PatchesAsMatMul, export_vision_int8
from webapp.settings import ConfigError, Settings

TEXTS = ["a video of ball bouncing", "a red triangle rising", "box spinning"]


@pytest.mark.parametrize("towers", ["text", "both"])
def test_bf16_text_vectors_stay_close_to_fp32(tiny_model_dir: Path, towers: str) -> None:
    fp32 = load_model(tiny_model_dir, towers=towers).encode_text(TEXTS)  # type: ignore[arg-type]
    encoder = load_model(tiny_model_dir, towers=towers, text_dtype="bf16")  # type: ignore[arg-type]
    bf16 = encoder.encode_text(TEXTS)
    assert encoder.text_dtype == "bf16" and bf16.dtype == np.float32
    cosine = np.sum(fp32 * bf16, axis=1)
    assert np.all(cosine > 0.99) and not np.array_equal(fp32, bf16)
    if towers == "both":  # the vision tower keeps its fp32 weights
        weight = encoder.model.vision_model.embeddings.patch_embedding.weight
        assert weight.dtype == torch.float32


@pytest.mark.parametrize("towers", ["text", "both"])
def test_int8_export_is_cached_and_close_to_fp32(
    tiny_model_dir: Path, tmp_path: Path, towers: str
) -> None:
    fp32 = load_model(tiny_model_dir, towers=towers).encode_text(TEXTS)  # type: ignore[arg-type]
    encoder = load_model(tiny_model_dir, towers=towers, text_dtype="int8", cache_dir=tmp_path)  # type: ignore[arg-type]
    int8 = encoder.encode_text(TEXTS)
    assert encoder.text_dtype == "int8" and int8.dtype == np.float32
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(fp32 * int8, axis=1)
    assert np.all(cosine > 0.98) and not np.array_equal(fp32, int8)
    exported = list(tmp_path.glob(f"onnx/*/{MODEL_FILE}"))
    assert [p.parent.name for p in exported] == [tower_digest(encoder.model)]
    # Dynamic int8 scales activations per call, so a text's vector moves a little with the
    # batch it is encoded in (micro-batching), but only a little.
    one_by_one = np.concatenate([encoder.encode_text([t]) for t in TEXTS])
    assert np.all(np.sum(one_by_one * int8, axis=1) > 0.995)
    mtime = exported[0].stat().st_mtime_ns
    load_model(tiny_model_dir, towers=towers, text_dtype="int8", cache_dir=tmp_path)  # type: ignore[arg-type]
    assert exported[0].stat().st_mtime_ns == mtime  # reused, not exported again


def test_the_export_does_not_log_a_line_per_tensor(
    tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # a server logs at INFO
    load_model(tiny_model_dir, towers="text", text_dtype="int8", cache_dir=tmp_path)
    assert list(tmp_path.glob(f"onnx/*/{MODEL_FILE}"))
    chatter = [r for r in caplog.records if "onnxruntime" in r.pathname]
    assert chatter == []
    assert any("exporting the text tower" in r.getMessage() for r in caplog.records)


def test_int8_digest_follows_the_weights(tiny_model_dir: Path) -> None:
    encoder = load_model(tiny_model_dir, towers="text")
    before = tower_digest(encoder.model)
    with torch.no_grad():
        encoder.model.text_projection.weight[0, 0] += 1.0
    assert tower_digest(encoder.model) != before


def test_a_fast_path_starts_from_fp32(tiny_model_dir: Path, tmp_path: Path) -> None:
    encoder = load_model(tiny_model_dir, towers="text", text_dtype="bf16")
    with pytest.raises(ModelLoadError, match="starts from fp32"):
        encoder.text_to_int8(tmp_path)


def test_unknown_dtypes_are_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(InvalidInput, match="text dtype must be one of auto, fp32, bf16, int8"):
        load_model(tiny_model_dir, text_dtype="fp16")
    with pytest.raises(InvalidInput, match="vision dtype must be one of auto, fp32, bf16, int8"):
        load_model(tiny_model_dir, vision_dtype="fp16")
    with pytest.raises(ConfigError):
        Settings(model="m", text_dtype="int4")
    env = {"CLIPSEARCH_MODEL": "m", "CLIPSEARCH_TEXT_DTYPE": "bf16"}
    assert Settings.from_env(env).text_dtype == "bf16"
    assert Settings(model="m").text_dtype == "auto"  # the fastest here of those parity allows


def test_bf16_vision_tower_keeps_clip_vectors_close(tiny_model_dir: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 255, (8, 40, 56, 3), dtype=np.uint8)
    fp32 = load_model(tiny_model_dir, towers="vision").embed_video(frames)
    encoder = load_model(tiny_model_dir, towers="vision", vision_dtype="bf16")
    bf16 = encoder.embed_video(frames)
    assert encoder.vision_dtype == "bf16" and bf16.pooled.dtype == np.float32
    assert float(fp32.pooled @ bf16.pooled) > 0.99 and not np.array_equal(fp32.pooled, bf16.pooled)
    assert np.all(np.sum(fp32.frames * bf16.frames, axis=1) > 0.98)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8", "int8"),  # beats AMX bf16
        ("avx2 avx512f avx512_vnni", "int8"),
        ("avx2 avx512f avx512_vnni avx512_bf16", "int8"),
        ("avx2 avx_vnni", "int8"),
        ("avx2 fma", "fp32"),
    ],
)
def test_auto_vision_dtype_follows_the_cpu(
    monkeypatch: pytest.MonkeyPatch, flags: str, expected: str
) -> None:
    info = cpu_info(f"model name\t: some CPU\nflags\t: {flags}\n")
    monkeypatch.setattr(cpu_module, "_this_cpu", lambda: info)
    assert cpu_module.fastest_vision_dtype() == expected


def test_a_process_refused_amx_measures_its_text_tower_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    info = cpu_info("model name\t: Xeon\nflags\t: avx2 avx512f avx512_vnni amx_int8 amx_bf16\n")
    keys = []
    for granted in (True, False):
        usable = cpu_module.without_denied(info, amx_granted=granted)
        monkeypatch.setattr(cpu_module, "_this_cpu", lambda usable=usable: usable)
        keys.append(text_runtime.machine_key(2, 1))
    assert keys[0] != keys[1]  # a choice measured with AMX is not reused without it


@pytest.mark.parametrize("chosen", ["bf16", "int8", "fp32"])
def test_load_model_auto_runs_what_the_cpu_runs_fastest(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chosen: str
) -> None:
    monkeypatch.setattr(model_module, "fastest_vision_dtype", lambda: chosen)
    encoder = load_model(
        tiny_model_dir, towers="vision", vision_dtype="auto", cache_dir=tmp_path / "cache"
    )
    assert encoder.vision_dtype == chosen
    dtype = next(encoder.model.parameters()).dtype
    assert dtype == (torch.bfloat16 if chosen == "bf16" else torch.float32)
    # the library's own default stays fp32 (training loads through it)
    assert load_model(tiny_model_dir, towers="vision").vision_dtype == "fp32"


def test_the_cli_default_vision_dtype_is_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIPSEARCH_VISION_DTYPE", raising=False)
    parser = build_parser()
    for argv in (
        ["ingest", "DATA", "--model", "M"],
        ["eval", "--data", "D", "--model", "M"],
        ["eval-moments", "--data", "D", "--model", "M"],
        ["calibrate", "--data", "D", "--model", "M"],
        ["bench-ingest", "D", "--model", "M"],
    ):
        assert parser.parse_args(argv).vision_dtype == "auto", argv


def test_parity_reports_cosine_map_and_speed(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "parity.json"
    args = ["parity", "--data", str(tiny_synth), "--model", str(tiny_model_dir)]
    assert main([*args, "--json", str(out), "--cache-dir", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out
    assert "int8: cosine to fp32" in printed and "bf16: cosine to fp32" in printed
    report = json.loads(out.read_text())
    assert report["n_queries"] >= 4 and report["n_clips"] > 0
    assert report["fp32"]["query_ms"]["single"] > 0
    for path in ("int8", "bf16"):
        r = report[path]
        assert 0.98 < r["cosine_to_fp32"]["min"] <= r["cosine_to_fp32"]["mean"] <= 1.0
        assert r["mAP_delta"] == pytest.approx(
            r["metrics"]["mAP"] - report["fp32"]["metrics"]["mAP"], abs=1e-6
        )
        assert r["ok_as_default"] == (r["mAP_delta"] >= -0.01)
        assert r["query_ms"]["single"] > 0 and r["query_ms"]["batched"] > 0


def test_int8_vision_tower_keeps_vectors_close_and_is_exported_once(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    frames = np.random.default_rng(1).integers(0, 255, (8, 40, 56, 3), dtype=np.uint8)
    fp32 = load_model(tiny_model_dir, towers="vision").embed_video(frames)
    cache = tmp_path / "cache"
    encoder = load_model(tiny_model_dir, towers="vision", vision_dtype="int8", cache_dir=cache)
    int8 = encoder.embed_video(frames)
    assert encoder.vision_dtype == "int8" and int8.pooled.dtype == np.float32
    assert float(fp32.pooled @ int8.pooled) > 0.99 and not np.array_equal(fp32.pooled, int8.pooled)
    assert np.all(np.sum(fp32.frames * int8.frames, axis=1) > 0.98)
    image = encoder.encode_frames(frames[:2])  # image queries too (activations are scaled
    assert np.all(np.sum(image * int8.frames[:2], axis=1) > 0.995)  # per call: per batch)
    [export] = list(cache.glob("onnx/*/vision-int8.onnx"))
    stamp = export.stat().st_mtime_ns
    again = load_model(tiny_model_dir, towers="vision", vision_dtype="int8", cache_dir=cache)
    assert export.stat().st_mtime_ns == stamp  # the cached export, not a new one
    np.testing.assert_allclose(again.embed_video(frames).pooled, int8.pooled, atol=1e-6)
    with pytest.raises(ModelLoadError, match="starts from fp32"):
        load_model(tiny_model_dir, towers="vision", vision_dtype="bf16").vision_to_int8(cache)


@pytest.mark.parametrize("bias", [True, False])
def test_the_patch_embedding_as_a_matrix_product_is_the_convolution(bias: bool) -> None:
    conv = torch.nn.Conv2d(3, 16, kernel_size=4, stride=4, bias=bias)
    x = torch.randn(2, 3, 8, 12)
    with torch.no_grad():
        torch.testing.assert_close(PatchesAsMatMul(conv)(x), conv(x), atol=1e-5, rtol=1e-5)
    assert PatchesAsMatMul(conv).weight.shape == (16, 48)


def test_the_int8_vision_export_has_no_integer_convolution(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import onnx

    encoder = load_model(tiny_model_dir, towers="vision")
    conv = encoder.model.vision_model.embeddings.patch_embedding
    export_vision_int8(encoder.model, encoder.preprocess.crop, None, tmp_path / "v.onnx")
    ops = {node.op_type for node in onnx.load(str(tmp_path / "v.onnx")).graph.node}
    assert not ops & {"Conv", "ConvInteger"} and "MatMulInteger" in ops
    assert encoder.model.vision_model.embeddings.patch_embedding is conv  # put back


@pytest.mark.parametrize("tokens", [False, True])
def test_the_int8_vision_tower_runs_parts_of_a_call_side_by_side(
    tiny_model_dir: Path, tmp_path: Path, tokens: bool
) -> None:
    encoder = load_model(tiny_model_dir, towers="vision")
    path = tmp_path / "v.onnx"
    export_vision_int8(encoder.model, encoder.preprocess.crop, 1 if tokens else None, path)
    pixels = np.random.default_rng(4).normal(size=(7, 3, *encoder.preprocess.crop))
    alone = VisionSession(path, threads=1)
    feats, grid = VisionSession(path, threads=3)(pixels.astype(np.float32))
    # array_split's parts, in order, each exactly what one run on it gives
    parts = [alone(part.astype(np.float32)) for part in np.array_split(pixels, 3)]
    np.testing.assert_array_equal(feats, np.concatenate([f for f, _ in parts]))
    assert not np.array_equal(feats, alone(pixels.astype(np.float32))[0])  # not one run
    if tokens:
        assert grid is not None and len(grid) == 7
        np.testing.assert_array_equal(grid, np.concatenate([g for _, g in parts]))
    else:
        assert grid is None
    one = VisionSession(path, threads=3)(pixels[:1].astype(np.float32))[0]
    np.testing.assert_array_equal(one, alone(pixels[:1].astype(np.float32))[0])


def test_int8_vision_tower_gives_a_motion_head_its_patch_tokens(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    fp32, head = motion_encoder(tiny_model_dir)
    train_stand_in(head)
    frames = np.random.default_rng(3).integers(0, 255, (6, 120, 160, 3), dtype=np.uint8)
    expected = fp32.embed_video(frames).pooled
    int8 = ClipEncoder(fp32.model, fp32.tokenizer, fp32.preprocess, fp32.video, "m", temporal=head)
    int8.vision_to_int8(tmp_path / "cache")
    got = int8.embed_video(frames).pooled
    assert float(got @ expected) > 0.98 and not np.array_equal(got, expected)
    # order still matters: the head sees the int8 tower's tokens
    backward = int8.embed_video(frames[::-1].copy()).pooled
    assert not np.allclose(got, backward, atol=1e-3)
