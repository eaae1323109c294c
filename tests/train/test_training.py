"""Training pieces: freezing, validation by retrieval with best-epoch selection, curves."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from clipsearch.errors import InvalidInput
from training.curves import plot_curves, write_tidy_curves
from training.freeze import apply_freeze, parse_freeze


def _clip_model(tiny_model_dir: Path) -> Any:
    from clipsearch.model import load_model

    return load_model(tiny_model_dir).model


def test_freeze_none_trains_everything(tiny_model_dir: Path) -> None:
    model = _clip_model(tiny_model_dir)
    counts = apply_freeze(model, "none")
    assert counts["frozen"] == 0
    assert counts["trainable"] == sum(p.numel() for p in model.parameters())


def test_freeze_proj_ln_trains_only_projections_and_norms(tiny_model_dir: Path) -> None:
    model = _clip_model(tiny_model_dir)
    counts = apply_freeze(model, "proj_ln")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "visual_projection.weight" in trainable and "text_projection.weight" in trainable
    assert "logit_scale" in trainable
    assert any("layer_norm" in n for n in trainable)
    assert not any("self_attn" in n or "mlp" in n or "embeddings" in n for n in trainable)
    assert 0 < counts["trainable"] < counts["frozen"]


def test_freeze_first_layers(tiny_model_dir: Path) -> None:
    model = _clip_model(tiny_model_dir)
    apply_freeze(model, "layers:1")
    grads = dict((n, p.requires_grad) for n, p in model.named_parameters())
    assert not grads["vision_model.encoder.layers.0.self_attn.q_proj.weight"]
    assert grads["vision_model.encoder.layers.1.self_attn.q_proj.weight"]
    assert not grads["text_model.encoder.layers.0.mlp.fc1.weight"]
    assert grads["text_model.encoder.layers.1.mlp.fc1.weight"]
    assert not grads["vision_model.embeddings.patch_embedding.weight"]
    assert grads["visual_projection.weight"]


@pytest.mark.parametrize("spec", ["all", "layers:", "layers:x", "layers:-1", ""])
def test_bad_freeze_spec_is_an_error(spec: str) -> None:
    with pytest.raises(InvalidInput, match="freeze must be one of"):
        parse_freeze(spec)


def test_curves_png_from_the_csv_log(tmp_path: Path) -> None:
    csv = tmp_path / "metrics.csv"
    csv.write_text(
        "epoch,step,train_loss,val_mAP\n0,4,2.5,\n0,9,2.1,\n0,9,,0.4\n1,14,1.7,\n1,19,,0.7\n"
    )
    png = tmp_path / "curves.png"
    assert plot_curves(csv, png, "m")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "empty.csv").write_text("epoch,step\n")
    assert not plot_curves(tmp_path / "empty.csv", tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_tidy_curves_from_the_csv_log(tmp_path: Path) -> None:
    log = tmp_path / "metrics.csv"
    log.write_text(
        "epoch,step,train_loss,val_mAP\n0,4,2.5,\n0,9,2.1,\n0,9,,0.4\n1,14,1.7,\n1,19,,0.7\n"
    )
    loss, val = write_tidy_curves(log, tmp_path)
    assert loss.read_text().splitlines() == ["step,train_loss", "4,2.5", "9,2.1", "14,1.7"]
    assert val.read_text().splitlines() == ["step,val_mAP", "9,0.4", "19,0.7"]
    assert write_tidy_curves(tmp_path / "missing.csv", tmp_path) == []


def test_validation_keeps_the_best_epoch(tiny_model_dir: Path, monkeypatch: Any) -> None:
    from clipsearch.model import load_model
    from training.data import FrameCache
    from training.validation import RetrievalValidation

    encoder = load_model(tiny_model_dir)
    cache = FrameCache([], np.zeros((0, 8, 3, 48, 48), np.uint8), [])
    val = RetrievalValidation(encoder, cache, ["A", "B"])
    scores = iter([0.5, 0.9, 0.2])
    monkeypatch.setattr(val, "evaluate", lambda: {"mAP": next(scores)})
    weight = encoder.model.visual_projection.weight
    logged: list[tuple[str, float]] = []
    module = SimpleNamespace(log=lambda name, value, **kw: logged.append((name, value)))
    snapshots = []
    for epoch in range(3):
        with torch.no_grad():
            weight.add_(1.0)
        snapshots.append(weight.detach().clone())
        trainer = SimpleNamespace(
            current_epoch=epoch, max_epochs=3, should_stop=False, global_step=epoch * 10
        )
        val.on_train_epoch_end(trainer, module)  # type: ignore[arg-type]
    assert [v for name, v in logged if name == "val_score"] == [0.5, 0.9, 0.2]
    assert [v for name, v in logged if name == "val_mAP"] == [0.5, 0.9, 0.2]
    assert val.best_epoch == 1 and val.best_score == 0.9
    assert [h["epoch"] for h in val.history] == [0, 1, 2]
    val.restore_best()
    assert torch.equal(encoder.model.visual_projection.weight, snapshots[1])


def test_validation_every_n_epochs_still_runs_the_last(
    tiny_model_dir: Path, monkeypatch: Any
) -> None:
    from clipsearch.model import load_model
    from training.data import FrameCache
    from training.validation import RetrievalValidation

    encoder = load_model(tiny_model_dir)
    cache = FrameCache([], np.zeros((0, 8, 3, 48, 48), np.uint8), [])
    val = RetrievalValidation(encoder, cache, ["A"], every=3)
    monkeypatch.setattr(val, "evaluate", lambda: {"mAP": 0.1})
    module = SimpleNamespace(log=lambda *a, **k: None)
    for epoch in range(5):
        trainer = SimpleNamespace(
            current_epoch=epoch, max_epochs=5, should_stop=False, global_step=epoch
        )
        val.on_train_epoch_end(trainer, module)  # type: ignore[arg-type]
    assert [h["epoch"] for h in val.history] == [2, 4]


def test_validation_starts_at_its_epoch_and_still_runs_the_last(
    tiny_model_dir: Path, monkeypatch: Any
) -> None:
    from clipsearch.model import load_model
    from training.data import FrameCache
    from training.validation import RetrievalValidation

    encoder = load_model(tiny_model_dir)
    cache = FrameCache([], np.zeros((0, 8, 3, 48, 48), np.uint8), [])
    val = RetrievalValidation(encoder, cache, ["A"], every=2, start=4)
    scores = iter([0.3, 0.5, 0.4])
    monkeypatch.setattr(val, "evaluate", lambda: {"mAP": next(scores)})
    module = SimpleNamespace(log=lambda *a, **k: None)
    for epoch in range(9):
        trainer = SimpleNamespace(
            current_epoch=epoch, max_epochs=9, should_stop=False, global_step=epoch
        )
        val.on_train_epoch_end(trainer, module)  # type: ignore[arg-type]
    assert [h["epoch"] for h in val.history] == [5, 7, 8]
    assert val.best_epoch == 7


def test_heldout_setting_is_a_count_or_explicit_combos() -> None:
    from training.config import TrainConfig
    from training.train import _heldout_combos

    meta = {
        f"{cls}/v_{g}_{c}.avi": {"class": cls, "color": color, "group": g}
        for cls in ("BallBouncing", "StarBlinking", "RingOrbiting")
        for g, color in zip(range(1, 26), ["red", "blue", "green"] * 9, strict=False)
        for c in (1,)
    }
    assert _heldout_combos(TrainConfig(heldout=0), meta) == []
    assert _heldout_combos(TrainConfig(heldout=2), None) == []
    chosen = _heldout_combos(TrainConfig(heldout=2), meta)
    assert len(chosen) == 2 and len({c.split(":")[0] for c in chosen}) == 2
    assert _heldout_combos(TrainConfig(heldout=["BoxSpinning:red"]), meta) == ["BoxSpinning:red"]
    with pytest.raises(InvalidInput):
        _heldout_combos(TrainConfig(heldout=["BoxSpinning"]), meta)
    with pytest.raises(InvalidInput):
        _heldout_combos(TrainConfig(heldout=-1), meta)


def test_reverse_index_pairs_classes_both_ways() -> None:
    from training.train import reverse_index

    classes = ["BallRollingLeft", "BallRollingRight", "StarBlinking"]
    pairs = (("BallRollingLeft", "BallRollingRight"), ("BoxGrowing", "BoxShrinking"))
    assert reverse_index(classes, pairs) == [1, 0, -1]


def test_reversed_clips_cost_one_vision_pass_and_equal_played_backwards(
    tiny_model_dir: Path,
) -> None:
    from clipsearch.model import load_model, vision_grid
    from clipsearch.temporal import TemporalPooling
    from training.module import ClipVideoModule

    enc = load_model(tiny_model_dir)
    grid, width = vision_grid(enc.model)
    torch.manual_seed(0)
    head = TemporalPooling(enc.dim, layers=1, motion_channels=4, token_width=width, grid=grid)
    for p in head.parameters():  # any trained-looking weights, so order matters
        torch.nn.init.normal_(p, std=0.2)
    module = ClipVideoModule(
        enc.model, enc.preprocess, lr=1e-3, weight_decay=0.0, warmup_steps=1,
        temporal=head, reverse_of=[1, 0, -1],
    )  # fmt: skip
    module.eval()
    frames = torch.randint(0, 255, (3, 5, 3, 48, 48), dtype=torch.uint8)
    mask = torch.tensor([True, False, True])
    with torch.no_grad():
        forward, backwards = module.encode_clips_both_ways(frames, None, mask)
        assert backwards is not None and backwards.shape == (2, enc.dim)
        played_backwards = module.encode_clips(frames[mask].flip(1))
        torch.testing.assert_close(backwards, played_backwards, atol=1e-5, rtol=0)
        torch.testing.assert_close(forward, module.encode_clips(frames), atol=1e-5, rtol=0)
        assert not torch.allclose(forward[mask], backwards, atol=1e-3)


def test_bf16_towers_run_in_bf16_while_vectors_losses_and_grads_stay_fp32(
    tiny_model_dir: Path,
) -> None:
    from clipsearch.model import load_model
    from training.module import ClipVideoModule

    enc = load_model(tiny_model_dir)
    seen: list[torch.dtype] = []
    layer = enc.model.vision_model.encoder.layers[0].mlp.fc1
    hook = layer.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    module = ClipVideoModule(
        enc.model, enc.preprocess, lr=1e-3, weight_decay=0.0, warmup_steps=1,
        tower_dtype=torch.bfloat16,
    )  # fmt: skip
    frames = torch.randint(0, 255, (2, 3, 3, 48, 48), dtype=torch.uint8)
    tokens = enc.tokenizer(["a ball", "a box"], padding=True, return_tensors="pt")
    video = module.encode_clips(frames)
    text = module.encode_texts(tokens["input_ids"], tokens["attention_mask"])
    hook.remove()
    assert seen == [torch.bfloat16]
    assert video.dtype == text.dtype == torch.float32
    (video @ text.t()).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.dtype == torch.float32
    assert bool(layer.weight.grad.abs().sum() > 0)
    # and without a tower dtype nothing is cast
    seen.clear()
    hook = layer.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    plain = ClipVideoModule(enc.model, enc.preprocess, lr=1e-3, weight_decay=0.0, warmup_steps=1)
    plain.encode_clips(frames)
    hook.remove()
    assert seen == [torch.float32]


def test_class_vectors_from_drawn_templates(tiny_model_dir: Path) -> None:
    from clipsearch.model import load_model
    from training.data import class_prompts
    from training.module import ClipVideoModule

    enc = load_model(tiny_model_dir)
    classes = ["BallBouncing", "BoxSpinning", "StarBlinking"]
    prompts = class_prompts(enc.tokenizer, classes, 16)
    per = len(prompts["input_ids"]) // 3
    module = ClipVideoModule(
        enc.model, enc.preprocess, lr=1e-3, weight_decay=0.0, warmup_steps=1,
        class_prompts=prompts,
    )  # fmt: skip
    module.eval()
    with torch.no_grad():
        every = module.encode_texts(prompts["input_ids"], prompts["attention_mask"])
        every = every.view(3, per, -1)
        torch.testing.assert_close(
            module.class_vectors(), torch.nn.functional.normalize(every.mean(1), dim=-1)
        )
        module.class_templates = 1
        torch.manual_seed(0)
        drawn = [module.class_vectors() for _ in range(8)]
    for vectors in drawn:  # each class's vector is one of its own templates'
        for c in range(3):
            assert torch.isclose(every[c] @ vectors[c], torch.tensor(1.0), atol=1e-4).any()
    assert not all(torch.allclose(drawn[0], d) for d in drawn[1:])  # drawn afresh


@pytest.mark.parametrize(
    ("setting", "accelerator", "flags", "expected"),
    [
        ("auto", "cpu", "avx2 avx512f avx512_bf16", "bf16"),
        ("auto", "cpu", "avx2 amx_bf16", "bf16"),
        ("auto", "cpu", "avx2 avx512f avx512_vnni", "fp32"),
        ("auto", "gpu", "avx2 avx512_bf16", "fp32"),
        ("fp32", "cpu", "avx512_bf16", "fp32"),
        ("bf16", "cpu", "avx2", "bf16"),
    ],
)
def test_tower_dtype_auto_is_bf16_only_where_the_cpu_has_it(
    monkeypatch: Any, setting: str, accelerator: str, flags: str, expected: str
) -> None:
    import clipsearch.cpu as cpu_module
    from training.config import TrainConfig
    from training.train import resolve_tower_dtype

    info = cpu_module.cpu_info(f"model name\t: some CPU\nflags\t: {flags}\n")
    monkeypatch.setattr(cpu_module, "_this_cpu", lambda: info)
    cfg = TrainConfig(tower_dtype=setting, accelerator=accelerator)
    assert resolve_tower_dtype(cfg) == expected
