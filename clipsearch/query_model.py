"""The model a query path loads (``clipsearch serve``, ``clipsearch search``): the torch
checkpoint where torch is installed, else its ONNX export (:mod:`clipsearch.onnx_model`).

A directory holding an export itself (``MODEL/onnx``) is served from the export
whatever is installed.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Literal

from clipsearch.errors import InvalidInput, ModelLoadError
from clipsearch.onnx_model import EXPORT_DIR, MANIFEST_NAME, find_export, load_export
from clipsearch.settings import DEFAULT_CACHE_DIR

# What the export runs: its towers are int8 on the CPU.
EXPORT_DTYPES = ("auto", "int8")
EXPORT_DEVICES = ("auto", "cpu")


def torch_installed() -> bool:
    """Whether the torch towers can load here (the ``ingest`` extra is installed)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers"))


def load_query_model(
    name: str | os.PathLike[str],
    *,
    towers: Literal["both", "text"] = "text",
    threads: int | None = None,
    text_dtype: str = "auto",
    cache_dir: str | os.PathLike[str] = DEFAULT_CACHE_DIR,
    text_threads: int | None = None,
    vision_dtype: str | None = None,
    device: str = "cpu",
) -> Any:
    """The encoder for queries of checkpoint ``name``: see the module's docstring; the
    arguments are :func:`clipsearch.model.load_model`'s (``vision_dtype`` None: fp32 for
    the torch tower, int8 for the export's)."""
    export = find_export(name)
    if torch_installed() and not _is_export(name, export):
        from clipsearch.model import load_model

        return load_model(
            name,
            towers=towers,
            threads=threads,
            text_dtype=text_dtype,
            cache_dir=cache_dir,
            text_threads=text_threads,
            vision_dtype=vision_dtype or "fp32",
            device=device,
        )
    if export is None:
        raise ModelLoadError(
            f"{os.fspath(name)!r} has no ONNX export ({EXPORT_DIR}/{MANIFEST_NAME}) and torch "
            "is not installed: export it where torch is (`clipsearch export MODEL`, with "
            "--out DIR for a hub id, then serve DIR), or pip install 'clipsearch[ingest]'"
        )
    asked = {"text dtype": text_dtype}
    if towers == "both" and vision_dtype is not None:
        asked["vision dtype"] = vision_dtype
    for what, dtype in asked.items():
        if dtype not in EXPORT_DTYPES:
            raise InvalidInput(
                f"{what} {dtype!r} needs the torch towers: the ONNX export in {export} runs "
                "int8 only (auto or int8), or pip install 'clipsearch[ingest]'"
            )
    if device.split(":")[0] not in EXPORT_DEVICES:
        raise InvalidInput(f"the ONNX export runs on the CPU, not on {device}")
    return load_export(export, towers=towers, threads=threads, text_threads=text_threads)


def watch_problem(name: str | os.PathLike[str]) -> str | None:
    """Why a server of model ``name`` cannot watch a folder (it embeds the new videos
    with the torch vision tower), or None."""
    if not torch_installed():
        return "watching a folder embeds its videos, which needs pip install 'clipsearch[ingest]'"
    if _is_export(name, find_export(name)):
        return (
            f"{os.fspath(name)} is an ONNX export, which embeds no videos: to watch a folder, "
            "give the checkpoint itself"
        )
    return None


def _is_export(name: str | os.PathLike[str], export: Path | None) -> bool:
    """Whether ``name`` is the export folder itself (not a checkpoint with one inside)."""
    return export is not None and export == Path(name).expanduser()
