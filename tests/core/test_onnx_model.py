"""``clipsearch export`` and the torch-free query model it feeds: the same vectors as the
torch install's int8 path, the same tokens, the same image input; stale or foreign
exports refused; nothing of torch loaded on the serving path."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import PHRASES
from folders import phrase_store

from clipsearch import extras, query_model
from clipsearch.cli import main
from clipsearch.errors import InvalidInput, ModelLoadError
from clipsearch.model import ImagePreprocess, load_model
from clipsearch.onnx_export import export_model
from clipsearch.onnx_model import (
    EXPORT_DIR,
    MANIFEST_NAME,
    OnnxEncoder,
    load_export,
    preprocess_frame,
)
from clipsearch.query_model import load_query_model

ROOT = Path(__file__).resolve().parents[2]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


TEXTS = [
    "a video of ball bouncing",
    "A Red TRIANGLE rising!!",
    "émoji 🎾 and ünïcode",
    "",
    "two  spaces\tand a tab",
    "words " * 120,  # past the token limit: truncated the same way
]


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny checkpoint with its export in ``onnx/``."""
    model = tmp_path_factory.mktemp("exported") / "tiny"
    shutil.copytree(tiny_model_dir, model)
    assert main(["export", str(model)]) == 0
    return model


def test_export_writes_the_towers_tokenizer_settings_and_manifest(exported: Path) -> None:
    out = exported / EXPORT_DIR
    names = {p.name for p in out.iterdir()}
    assert {"text-int8.onnx", "vision-int8.onnx", "tokenizer.json", MANIFEST_NAME} <= names
    assert {"clipsearch.json", "preprocessor_config.json"} <= names
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["model_id"] == load_model(exported, towers="text").model_id
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= set(manifest["source"])
    # readable by the serving user as well as the one who exported (mkdtemp makes 0700)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~_umask()


@pytest.mark.parametrize("towers", ["text", "both"])
def test_the_export_gives_the_torch_installs_int8_vectors(
    exported: Path, tmp_path: Path, towers: str
) -> None:
    torch_int8 = load_model(exported, towers=towers, text_dtype="int8", cache_dir=tmp_path)  # type: ignore[arg-type]
    onnx = load_export(exported, towers=towers)  # type: ignore[arg-type]
    assert isinstance(onnx, OnnxEncoder) and onnx.model_id == torch_int8.model_id
    np.testing.assert_allclose(onnx.encode_text(TEXTS), torch_int8.encode_text(TEXTS), atol=1e-6)
    assert onnx.video == torch_int8.video and onnx.dim == torch_int8.dim


def test_the_tokenizer_pads_and_truncates_as_transformers_does(exported: Path) -> None:
    torch_model = load_model(exported, towers="text")
    onnx = load_export(exported)
    limit = torch_model.video.max_text_tokens
    want = torch_model.tokenizer(TEXTS, padding=True, truncation=True, max_length=limit)
    got = onnx.tokenizer.encode_batch(TEXTS)
    assert [e.ids for e in got] == want["input_ids"]
    assert [e.attention_mask for e in got] == want["attention_mask"]
    assert max(len(e.ids) for e in got) == limit


@pytest.mark.parametrize("shape", [(240, 320, 3), (30, 50, 3), (720, 1280, 3), (64, 64, 3)])
@pytest.mark.parametrize("squash", [False, True])
def test_image_input_matches_the_torch_preprocessing(
    shape: tuple[int, int, int], squash: bool
) -> None:
    config = ImagePreprocess(shortest_edge=48, crop=(48, 48), squash=squash)
    frame = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    want = config(frame[None])[0].numpy()
    got = preprocess_frame(config, frame)
    assert got.shape == want.shape == (3, 48, 48)
    # Pillow's and torch's uint8 resizes round alike but for a pixel here and there
    levels = np.abs(got - want) * np.asarray(config.std, np.float32)[:, None, None] * 255
    assert levels.max() < 1.001 and float(np.mean(levels > 0.01)) < 0.01


def test_image_vectors_match_the_torch_int8_vision_tower(exported: Path, tmp_path: Path) -> None:
    torch_int8 = load_model(exported, towers="both", vision_dtype="int8", cache_dir=tmp_path)
    onnx = load_export(exported, towers="both")
    frames = np.random.default_rng(0).integers(0, 256, (3, 90, 120, 3), dtype=np.uint8)
    cosine = np.sum(onnx.encode_frames(frames) * torch_int8.encode_frames(frames), axis=1)
    assert np.all(cosine > 0.999)


def test_a_changed_checkpoint_makes_its_export_stale(exported: Path, tmp_path: Path) -> None:
    model = tmp_path / "tiny"
    shutil.copytree(exported, model)
    weights = model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="clipsearch export"):
        load_export(model)
    # the export alone, away from its checkpoint, still loads
    alone = tmp_path / "alone"
    shutil.copytree(model / EXPORT_DIR, alone)
    assert load_export(alone).model_id == load_export(exported).model_id
    # and so does the export beside only the settings (no weights on a serving machine)
    slim = tmp_path / "slim"
    shutil.copytree(model / EXPORT_DIR, slim / EXPORT_DIR)
    shutil.copy(model / "clipsearch.json", slim)
    assert load_export(slim).model_id == load_export(exported).model_id
    # a tower file cut short is refused
    text = slim / EXPORT_DIR / "text-int8.onnx"
    text.write_bytes(text.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match="not whole"):
        load_export(slim)


def test_a_failed_swap_keeps_the_earlier_export(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clipsearch import onnx_export

    model = tmp_path / "tiny"
    shutil.copytree(exported, model)
    before = (model / EXPORT_DIR / MANIFEST_NAME).read_text()
    real = os.replace

    def full_disk(src: object, dst: object) -> None:
        if ".export-" in str(src):
            raise OSError(28, "No space left on device")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(onnx_export.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        export_model(model)
    assert (model / EXPORT_DIR / MANIFEST_NAME).read_text() == before
    assert sorted(p.name for p in model.iterdir() if p.name.startswith(".")) == []


def test_a_new_calibration_reaches_the_export(exported: Path, tmp_path: Path) -> None:
    model = tmp_path / "tiny"
    shutil.copytree(exported, model)
    config = json.loads((model / "clipsearch.json").read_text())
    (model / "clipsearch.json").write_text(json.dumps({**config, "min_score": 0.123}))
    assert load_export(model).video.min_score == 0.123


def test_export_replaces_an_export_but_never_other_files(exported: Path, tmp_path: Path) -> None:
    model = tmp_path / "tiny"
    shutil.copytree(exported, model)
    (model / EXPORT_DIR / "stray.txt").write_text("from the last export")
    export_model(model, vision=False)
    assert not (model / EXPORT_DIR / "stray.txt").exists()
    assert not (model / EXPORT_DIR / "vision-int8.onnx").exists()
    assert not list(model.glob(".export-*")) and not list(model.glob(".replaced-*"))
    # image queries off (the server serves text), not a server that will not start
    assert load_export(model, towers="both").towers == "text"
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    assert main(["export", str(model), "--out", str(precious)]) == 2
    assert (precious / "notes.txt").read_text() == "keep me"
    with pytest.raises(InvalidInput, match="--out"):
        export_model("openai/clip-vit-base-patch32")


def test_without_torch_a_checkpoint_is_served_from_its_export(
    exported: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(query_model, "torch_installed", lambda: False)
    assert isinstance(load_query_model(exported, towers="both"), OnnxEncoder)
    with pytest.raises(ModelLoadError, match="clipsearch export"):
        load_query_model(tiny_model_dir)
    assert "clipsearch[ingest]" in (query_model.watch_problem(exported) or "")


def test_the_query_model_serves_an_export_directory_without_torch_dtypes(exported: Path) -> None:
    onnx = load_query_model(exported / EXPORT_DIR, towers="both")
    assert isinstance(onnx, OnnxEncoder) and onnx.towers == "both"
    # with torch installed, the checkpoint itself loads the torch towers
    assert not isinstance(load_query_model(exported), OnnxEncoder)
    with pytest.raises(InvalidInput, match="int8 only"):
        load_query_model(exported / EXPORT_DIR, text_dtype="fp32")
    with pytest.raises(InvalidInput, match="CPU"):
        load_query_model(exported / EXPORT_DIR, device="cuda")
    # an export embeds no videos: a server of one cannot watch a folder
    assert "export" in (query_model.watch_problem(exported / EXPORT_DIR) or "")
    assert query_model.watch_problem(exported) is None


def test_serving_an_export_loads_neither_torch_nor_transformers(
    exported: Path, tmp_path: Path
) -> None:
    store = phrase_store(exported, tmp_path / "store", PHRASES)
    code = f"""
import json, sys
from webapp import create_app
from webapp.settings import Settings
from clipsearch.store.factory import StoreSettings
settings = Settings(model={str(exported / EXPORT_DIR)!r}, media_dir={str(tmp_path)!r},
                    store=StoreSettings(path={str(store)!r}))
app = create_app(settings)
answer = app.test_client().get("/api/search?q=a+video+of+ball+bouncing&min_score=-1")
best = answer.get_json()["results"][0]["path"]
print(json.dumps([answer.status_code, best, sorted(sys.modules)]))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    status, best, modules = json.loads(done.stdout.splitlines()[-1])
    assert (status, best) == (200, "a video of ball bouncing")
    assert [m for m in modules if m.split(".")[0] in ("torch", "transformers")] == []


def test_a_missing_extra_is_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from clipsearch.cli import serve

    def lacks_torch(args: object) -> int:
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(serve, "cmd_export", lacks_torch)
    # torch is installed here: a module of it missing is a real error, not a missing extra
    with pytest.raises(ModuleNotFoundError):
        main(["export", "somewhere"])
    monkeypatch.setattr(extras, "installed", lambda package: package != "torch")
    assert main(["export", "somewhere"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "clipsearch: error: this command needs torch, not installed here: "
        "pip install 'clipsearch[ingest]'"
    )
    assert extras.missing_extra(ModuleNotFoundError(name="yaml")) is None
