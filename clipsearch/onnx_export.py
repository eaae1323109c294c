"""``clipsearch export``: a checkpoint's towers as int8 ONNX, with what serving them
without torch needs (:mod:`clipsearch.onnx_model` reads it).

The text tower is exported as the torch install's int8 query path exports it
(:func:`clipsearch.text_onnx.export_int8`), so both answer with the same vectors; the
vision tower (for image queries) as ingest's int8 path does, without patch tokens.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from clipsearch import __version__
from clipsearch.checkpoint import PREPROCESS_NAME, one_line
from clipsearch.errors import InvalidInput, ModelLoadError
from clipsearch.onnx_int8 import OPSET
from clipsearch.onnx_model import (
    EXPORT_DIR,
    FORMAT,
    MANIFEST_NAME,
    TEXT_FILE,
    TOKENIZER_FILE,
    VISION_FILE,
    file_digest,
    source_files,
)

log = logging.getLogger(__name__)


def default_out(name: str | os.PathLike[str]) -> Path:
    """Where ``clipsearch export`` writes by default: ``onnx/`` in a local checkpoint."""
    local = Path(name).expanduser()
    if not local.is_dir():
        raise InvalidInput(
            f"{os.fspath(name)!r} is not a local checkpoint directory: give --out DIR "
            "for the export of a hub model"
        )
    return local / EXPORT_DIR


def export_model(
    name: str | os.PathLike[str], out: Path | None = None, *, vision: bool = True
) -> Path:
    """Export checkpoint ``name`` (hub id or directory) to ``out`` (default
    :func:`default_out`), replacing an earlier export there; returns ``out``."""
    import onnx
    import onnxruntime
    import torch
    import transformers

    from clipsearch.model import load_model
    from clipsearch.text_onnx import export_int8
    from clipsearch.vision_onnx import export_vision_int8

    target = out or default_out(name)
    if target.exists() and not (target / MANIFEST_NAME).is_file():
        raise InvalidInput(f"{target} exists and is not a clipsearch export: give another --out")
    encoder = load_model(name, towers="both" if vision else "text", device="cpu")
    tokenizer = encoder.tokenizer
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise InvalidInput(f"{os.fspath(name)!r} has no fast tokenizer ({TOKENIZER_FILE})")
    if tokenizer.pad_token_id is None:
        raise InvalidInput(f"the tokenizer of {os.fspath(name)!r} has no padding token")
    local = Path(name).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        os.chmod(staged, 0o777 & ~_umask())  # mkdtemp's 0700 would keep other users out
        try:
            export_int8(encoder.model, tokenizer, staged / TEXT_FILE)
            if vision:
                crop = encoder.preprocess.crop
                export_vision_int8(encoder.model, crop, None, staged / VISION_FILE)
        except Exception as exc:  # torch.onnx and onnxruntime raise many types
            raise ModelLoadError(f"cannot export {encoder.model_id}: {one_line(exc)}") from None
        tokenizer.save_pretrained(staged)
        encoder.video.save(staged)
        (staged / PREPROCESS_NAME).write_text(
            json.dumps(encoder.preprocess.to_processor_dict(), indent=2) + "\n"
        )
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "model_id": encoder.model_id,
            "dim": encoder.dim,
            "text": {**_part(staged / TEXT_FILE), "pad_id": int(tokenizer.pad_token_id)},
            "vision": _part(staged / VISION_FILE) if vision else None,
            "source": source_files(local) if local.is_dir() else {},
            "checkpoint": os.fspath(name) if not local.is_dir() else None,
            "made_with": {
                "clipsearch": __version__,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__,
                "opset": OPSET,
            },
        }
        (staged / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
        _swap_in(staged, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    log.info("exported %s to %s", encoder.model_id, target)
    return target


def _part(path: Path) -> dict[str, Any]:
    return {"file": path.name, "size": path.stat().st_size, "sha256": file_digest(path)}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _swap_in(staged: Path, target: Path) -> None:
    """Put ``staged`` at ``target``; an earlier export there goes only once it has (and
    is put back if it cannot)."""
    if not target.exists():
        os.replace(staged, target)
        return
    old = Path(tempfile.mkdtemp(prefix=".replaced-", dir=target.parent))
    os.replace(target, old / "export")
    try:
        os.replace(staged, target)
    except BaseException:
        os.replace(old / "export", target)
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)
