"""A CLIP checkpoint exported for answering queries without torch.

``clipsearch export MODEL`` (:mod:`clipsearch.onnx_export`, which needs torch) writes
``MODEL/onnx/``: the int8 ONNX text tower, the vision tower for image queries, the
tokenizer (``tokenizer.json``), the video and preprocessing settings, and
``manifest.json``. This module serves from it with ONNX Runtime and ``tokenizers``
alone, so ``pip install 'clipsearch[serve]'`` carries neither torch nor
``transformers``. Its vectors are those of the torch install's int8 text tower: the
same graph, exported the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from clipsearch import telemetry
from clipsearch.checkpoint import (
    VIDEO_CONFIG_NAME,
    PreprocessConfig,
    VideoConfig,
    l2_normalize,
    one_line,
)
from clipsearch.errors import InvalidInput, ModelLoadError
from clipsearch.onnx_session import TextSession, VisionSession

log = logging.getLogger(__name__)

EXPORT_DIR = "onnx"
MANIFEST_NAME = "manifest.json"
FORMAT = 1
TEXT_FILE = "text-int8.onnx"
VISION_FILE = "vision-int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
# The checkpoint files an export is made from: a changed one makes the export stale.
SOURCE_PATTERNS = (
    "config.json",
    "model*.safetensors",
    "model.safetensors.index.json",
    "pytorch_model*.bin",
    "pytorch_model.bin.index.json",
    "tokenizer*.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "preprocessor_config.json",
)
_HASH_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """The sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def source_files(checkpoint: Path) -> dict[str, dict[str, Any]]:
    """{name: {"size", "mtime_ns", "sha256"}} of the checkpoint's files an export is made
    from (:data:`SOURCE_PATTERNS`)."""
    found = {}
    for pattern in SOURCE_PATTERNS:
        for path in sorted(checkpoint.glob(pattern)):
            if path.is_file():
                stat = path.stat()
                found[path.name] = {
                    "size": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns,
                    "sha256": file_digest(path),
                }
    return found


def find_export(name: str | os.PathLike[str]) -> Path | None:
    """The export ``name`` names: a directory holding a manifest, or a checkpoint
    directory with one in ``onnx/``; None when it names neither."""
    path = Path(name).expanduser()
    for candidate in (path, path / EXPORT_DIR):
        if (candidate / MANIFEST_NAME).is_file():
            return candidate
    return None


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` says of an export."""

    model_id: str
    dim: int
    pad_id: int
    text_file: str
    vision_file: str | None
    source: dict[str, dict[str, Any]]
    sizes: dict[str, int]

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST_NAME
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, this clipsearch reads {FORMAT}")
            vision = data.get("vision")
            return cls(
                model_id=str(data["model_id"]),
                dim=int(data["dim"]),
                pad_id=int(data["text"]["pad_id"]),
                text_file=str(data["text"]["file"]),
                vision_file=str(vision["file"]) if vision else None,
                source=dict(data.get("source") or {}),
                sizes={
                    str(part["file"]): int(part["size"])
                    for part in (data["text"], vision)
                    if part and "size" in part
                },
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelLoadError(f"{path} is not a clipsearch export: {one_line(exc)}") from None


def check_fresh(export: Path, manifest: Manifest) -> None:
    """Refuse an export whose files are not whole, or one in ``<checkpoint>/onnx`` whose
    checkpoint files changed since (a file no longer there, as on a serving machine given
    only the export and the settings, is not checked)."""
    for name, size in manifest.sizes.items():
        path = export / name
        if not path.is_file() or path.stat().st_size != size:
            raise ModelLoadError(f"{path} is missing or not whole: copy or export it again")
    if export.name != EXPORT_DIR:
        return
    checkpoint = export.parent
    for name, was in manifest.source.items():
        path = checkpoint / name
        try:
            stat = path.stat()
            if stat.st_size == was.get("size") and stat.st_mtime_ns == was.get("mtime_ns"):
                continue
            if stat.st_size == was.get("size") and file_digest(path) == was.get("sha256"):
                continue
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot check %s against the export in %s: %s", path, export, exc)
            continue
        raise ModelLoadError(
            f"the ONNX export in {export} was made from another {name} than the one in "
            f"{checkpoint} now: run `clipsearch export {checkpoint}` again"
        )


class OnnxEncoder:
    """An exported CLIP: text (and image) vectors from ONNX Runtime, no torch."""

    text_dtype = "int8"
    vision_dtype = "int8"

    def __init__(
        self,
        manifest: Manifest,
        video: VideoConfig,
        preprocess: PreprocessConfig,
        tokenizer: Any,
        text: TextSession,
        vision: VisionSession | None,
    ):
        self.model_id = manifest.model_id
        self.dim = manifest.dim
        self.video = video
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.text = text
        self.vision = vision
        self.towers: Literal["both", "text"] = "both" if vision is not None else "text"

    def encode_text(
        self, texts: Sequence[str], *, normalize: bool = True, batch_size: int = 256
    ) -> np.ndarray:
        """Text vectors (N, D) float32; rows unit-length when ``normalize``."""
        out = []
        for i in range(0, len(texts), batch_size):
            with telemetry.timed("tokenize"):
                encodings = self.tokenizer.encode_batch(list(texts[i : i + batch_size]))
                ids = np.array([e.ids for e in encodings], dtype=np.int64)
                mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            out.append(self.text(ids, mask))
        vecs = np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
        return l2_normalize(vecs) if normalize else vecs.astype(np.float32)

    def encode_frames(
        self, frames: np.ndarray, *, normalize: bool = True, batch_size: int = 64
    ) -> np.ndarray:
        """Image vectors (N, D) for uint8 RGB frames (N, H, W, 3)."""
        if self.vision is None:
            raise ModelLoadError(f"the export of {self.model_id} has no vision tower")
        out = []
        for i in range(0, len(frames), batch_size):
            batch = frames[i : i + batch_size]
            feats, _ = self.vision(np.stack([preprocess_frame(self.preprocess, f) for f in batch]))
            out.append(feats)
        vecs = np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
        return l2_normalize(vecs) if normalize else vecs.astype(np.float32)


def preprocess_frame(config: PreprocessConfig, frame: np.ndarray) -> np.ndarray:
    """A uint8 RGB frame (H, W, 3) -> the normalised model input (3, crop_h, crop_w), as
    :class:`clipsearch.model.ImagePreprocess` makes it: antialiased bicubic on the bytes
    (Pillow's, which torch's uint8 resize follows to within a grey level), centre crop,
    mean/std."""
    from PIL import Image

    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise InvalidInput(f"expected a uint8 frame of shape (H, W, 3), got {frame.shape}")
    h, w = frame.shape[:2]
    new_h, new_w = config.resized(h, w)
    if (new_h, new_w) != (h, w):
        frame = np.asarray(Image.fromarray(frame).resize((new_w, new_h), Image.Resampling.BICUBIC))
    top, left = config.crop_origin(new_h, new_w)
    x = frame[top : top + config.crop[0], left : left + config.crop[1]].transpose(2, 0, 1)
    mean = np.asarray(config.mean, np.float32)[:, None, None]
    std = np.asarray(config.std, np.float32)[:, None, None]
    return ((x.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)


def load_export(
    directory: str | os.PathLike[str],
    *,
    towers: Literal["both", "text"] = "text",
    threads: int | None = None,
    text_threads: int | None = None,
) -> OnnxEncoder:
    """The export in ``directory`` (see :func:`find_export`), with the vision tower when
    ``towers`` is ``"both"`` and the export has one (else text only, with a warning); its
    sessions on ``threads`` threads, the text tower's on ``text_threads`` (default:
    ``threads``, else every CPU this process may use)."""
    from tokenizers import Tokenizer

    export = find_export(directory)
    if export is None:
        raise ModelLoadError(f"{directory} holds no clipsearch export ({MANIFEST_NAME})")
    manifest = Manifest.load(export)
    check_fresh(export, manifest)
    if towers == "both" and manifest.vision_file is None:
        log.warning(
            "the export in %s has no vision tower: image queries are off (export it again "
            "without --no-vision to have them)",
            export,
        )
    # a recalibrated checkpoint's threshold holds for its export too
    beside = export.parent if export.name == EXPORT_DIR else export
    video = VideoConfig.load(beside if (beside / VIDEO_CONFIG_NAME).is_file() else export)
    try:
        tokenizer = Tokenizer.from_file(str(export / TOKENIZER_FILE))
        pad = tokenizer.id_to_token(manifest.pad_id)
        if pad is None:
            raise ValueError(f"its pad id {manifest.pad_id} is not in the vocabulary")
        tokenizer.enable_truncation(max_length=int(video.max_text_tokens))
        tokenizer.enable_padding(pad_id=manifest.pad_id, pad_token=pad)
    except Exception as exc:  # tokenizers raises its own exception types
        raise ModelLoadError(f"cannot read {export / TOKENIZER_FILE}: {one_line(exc)}") from None
    text = TextSession(export / manifest.text_file, text_threads or threads)
    vision = None
    if towers == "both" and manifest.vision_file is not None:
        vision = VisionSession(export / manifest.vision_file, threads)
    log.info("loaded the ONNX export of %s from %s (%s towers)", manifest.model_id, export, towers)
    return OnnxEncoder(manifest, video, PreprocessConfig.load(export), tokenizer, text, vision)
