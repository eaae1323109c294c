"""One loading path for CLIP checkpoints: saved tiny model, text-only tower, hub ids offline."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from motionhead import motion_encoder, train_stand_in

from clipsearch.errors import ModelLoadError
from clipsearch.model import ImagePreprocess, load_model


def test_factory_loads_saved_checkpoint(tiny_model_dir: Path) -> None:
    enc = load_model(tiny_model_dir)
    assert enc.model_id == "tiny-random"
    text = enc.encode_text(["a video of ball bouncing", "box spinning"])
    assert text.shape == (2, enc.dim) and text.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    raw = enc.encode_text(["box spinning"], normalize=False)
    assert not np.isclose(np.linalg.norm(raw), 1.0)


def test_video_embedding_is_frames_plus_pooled(tiny_model_dir: Path) -> None:
    enc = load_model(tiny_model_dir)
    frames = np.random.default_rng(0).integers(0, 255, (8, 240, 320, 3), dtype=np.uint8)
    emb = enc.embed_video(frames)
    assert emb.frames.shape == (8, enc.dim) and emb.pooled.shape == (enc.dim,)
    expected = emb.frames.mean(0) / np.linalg.norm(emb.frames.mean(0))
    np.testing.assert_allclose(emb.pooled, expected, atol=1e-5)


def test_text_tower_alone_matches_full_model(tiny_model_dir: Path) -> None:
    full = load_model(tiny_model_dir)
    text_only = load_model(tiny_model_dir, towers="text")
    assert not hasattr(text_only.model, "vision_model")
    np.testing.assert_allclose(
        full.encode_text(["a red ball"]), text_only.encode_text(["a red ball"]), atol=1e-5
    )
    with pytest.raises(ModelLoadError, match="without its vision tower"):
        text_only.encode_frames(np.zeros((1, 64, 64, 3), np.uint8))


def test_preprocessing_matches_transformers_image_processor(tiny_model_dir: Path) -> None:
    from transformers import CLIPImageProcessorPil

    proc = CLIPImageProcessorPil.from_pretrained(tiny_model_dir)
    ours = load_model(tiny_model_dir).preprocess
    frame = np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    frame[60:180, 100:220] = (250, 30, 30)  # a shape, so resampling differences show
    theirs = proc(images=[frame], return_tensors="np")["pixel_values"]
    mine = ours(frame[None]).numpy()
    assert mine.shape == theirs.shape
    # PIL and torch bicubic antialiasing differ slightly; the images must agree closely
    assert np.abs(mine - theirs).mean() < 0.05


def test_uint8_frames_resize_as_bytes_within_a_grey_level_or_so_of_floats() -> None:
    pre = ImagePreprocess.from_dict({"size": 48, "crop_size": 48})
    frames = np.random.default_rng(2).integers(0, 255, (3, 240, 320, 3), dtype=np.uint8)
    frames[:, 60:180, 100:220] = (250, 30, 30)  # sharp edges, where bicubic overshoots
    as_bytes = pre.resize_crop(frames)
    as_floats = pre.resize_crop(torch.from_numpy(frames).float())  # the float path
    assert as_bytes.dtype == as_floats.dtype == torch.float32
    assert as_bytes.shape == as_floats.shape == (3, 3, 48, 48)
    assert float(as_bytes.min()) >= 0.0 and float(as_bytes.max()) <= 1.0
    diff = (as_bytes - as_floats).abs() * 255
    assert float(diff.mean()) < 0.5 and float(diff.max()) < 8


def test_preprocess_defaults_are_openai_clip() -> None:
    pre = ImagePreprocess.from_dict({})
    assert pre.shortest_edge == 224 and pre.crop == (224, 224)


def test_hub_id_offline_fails_fast_with_clear_error() -> None:
    started = time.perf_counter()
    with pytest.raises(ModelLoadError, match=r"Hugging Face Hub id 'openai/clip-vit-base-patch32'"):
        load_model("openai/clip-vit-base-patch32")
    assert time.perf_counter() - started < 30


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a directory holding a CLIP checkpoint"):
        load_model(tmp_path / "no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="cannot load CLIP directory"):
        load_model(tmp_path / "empty")


def test_temporal_head_saves_loads_and_sees_order(tiny_model_dir: Path, tmp_path: Path) -> None:
    import dataclasses

    import torch

    from clipsearch.model import ClipEncoder, save_model
    from clipsearch.temporal import HEAD_FILE, TemporalPooling

    base = load_model(tiny_model_dir)
    torch.manual_seed(0)
    head = TemporalPooling(base.dim, layers=1)
    frames = np.random.default_rng(2).normal(size=(8, base.dim)).astype(np.float32)
    frames /= np.linalg.norm(frames, axis=1, keepdims=True)
    # an untrained head is exactly mean pooling
    np.testing.assert_allclose(
        head(torch.from_numpy(frames)[None])[0].detach().numpy(),
        frames.mean(0) / np.linalg.norm(frames.mean(0)),
        atol=1e-5,
    )
    for p in head.parameters():  # stand-in for training: any non-zero weights
        torch.nn.init.normal_(p, std=0.2)
    video = dataclasses.replace(base.video, pooling="temporal", temporal=head.config())
    enc = ClipEncoder(base.model, base.tokenizer, base.preprocess, video, "t", temporal=head)
    out = save_model(enc, tmp_path / "temporal")
    assert (out / HEAD_FILE).exists()

    loaded = load_model(out)
    assert loaded.temporal is not None
    forward, backward = loaded.pool(frames), loaded.pool(frames[::-1].copy())
    np.testing.assert_allclose(forward, enc.pool(frames), atol=1e-5)
    assert not np.allclose(forward, backward, atol=1e-3)  # order matters
    np.testing.assert_allclose(np.linalg.norm(forward), 1.0, atol=1e-5)
    # the text tower alone needs no head
    assert load_model(out, towers="text").temporal is None


def test_motion_head_reads_patch_tokens_and_sees_order(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from clipsearch.model import save_model

    enc, head = motion_encoder(tiny_model_dir)
    assert enc.pools_tokens
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 255, (6, 120, 160, 3), dtype=np.uint8)
    # an untrained head (output layers at zero) is exactly mean pooling
    emb = enc.embed_video(frames)
    mean = emb.frames.mean(0) / np.linalg.norm(emb.frames.mean(0))
    np.testing.assert_allclose(emb.pooled, mean, atol=1e-5)
    train_stand_in(head)
    forward, backward = enc.embed_video(frames), enc.embed_video(frames[::-1].copy())
    np.testing.assert_allclose(forward.frames[::-1], backward.frames, atol=1e-5)
    assert not np.allclose(forward.pooled, backward.pooled, atol=1e-3)  # order matters
    # clips of different sizes batch together and pool as they would alone
    small = rng.integers(0, 255, (4, 90, 90, 3), dtype=np.uint8)
    both = enc.embed_videos([frames, small])
    np.testing.assert_allclose(both[0].pooled, forward.pooled, atol=1e-5)
    np.testing.assert_allclose(both[1].pooled, enc.embed_video(small).pooled, atol=1e-5)
    with pytest.raises(ModelLoadError, match="pools from the frames"):
        enc.pool(forward.frames)

    loaded = load_model(save_model(enc, tmp_path / "motion"))
    assert loaded.pools_tokens and loaded.video.temporal == head.config()
    np.testing.assert_allclose(loaded.embed_video(frames).pooled, forward.pooled, atol=1e-5)


def test_temporal_pooling_without_its_head_is_an_error(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import json
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    cfg = json.loads((broken / "clipsearch.json").read_text())
    cfg["pooling"] = "temporal"
    (broken / "clipsearch.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="temporal head"):
        load_model(broken)


def test_non_clip_checkpoint_is_refused(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(tmp_path / "bert")
    with pytest.raises(ModelLoadError, match="'bert' checkpoint, not a CLIP model"):
        load_model(tmp_path / "bert", towers="vision")


def test_corrupt_video_config_is_a_load_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "clipsearch.json").write_text("{bad")
    with pytest.raises(ModelLoadError, match=r"clipsearch\.json is unreadable"):
        load_model(broken)


def test_load_errors_are_one_line() -> None:
    with pytest.raises(ModelLoadError) as info:
        load_model("nonexistent/model")
    assert "\n" not in str(info.value) and "not a local directory either" in str(info.value)
