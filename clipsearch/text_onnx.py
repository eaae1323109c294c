"""The CLIP text tower as an ONNX Runtime dynamic-int8 model: the fast query path.

Every query streams all of the tower's weights through the CPU, so int8 weights (a
quarter of fp32's bytes, int8 matrix products) make a single query several times faster.
The tower is exported once per checkpoint with ``torch.onnx`` (batch and sequence length
dynamic: queries are padded to the longest in their batch, never to 77), quantized with
``onnxruntime.quantization.quantize_dynamic`` and cached under
``<cache_dir>/onnx/<digest>/``; the digest covers the tower's weights and configuration,
the library versions and the export settings, so a changed checkpoint is exported anew.
``clipsearch parity`` reports what int8 changes against fp32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clipsearch.errors import ModelLoadError

log = logging.getLogger(__name__)

OPSET = 17
MODEL_FILE = "text-int8.onnx"
INPUTS = ("input_ids", "attention_mask")


class _TextTower(torch.nn.Module):
    """input_ids, attention_mask (B, L) -> projected text features (B, D), unnormalised."""

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if hasattr(self.model, "get_text_features"):
            out = self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            return out if isinstance(out, torch.Tensor) else out.pooler_output
        return self.model(input_ids=input_ids, attention_mask=attention_mask).text_embeds


def _text_modules(model: Any) -> list[tuple[str, torch.nn.Module]]:
    if hasattr(model, "text_model") and hasattr(model, "text_projection"):
        return [("text_model", model.text_model), ("text_projection", model.text_projection)]
    return [("model", model)]


def tower_digest(model: Any) -> str:
    """A digest of the text tower's weights and configuration and of the export setup."""
    import onnxruntime
    import transformers

    h = hashlib.sha256()
    config = getattr(model.config, "text_config", model.config)
    h.update(json.dumps(config.to_dict(), sort_keys=True, default=str).encode())
    h.update(f"{torch.__version__}/{transformers.__version__}/{onnxruntime.__version__}".encode())
    h.update(f"opset{OPSET}/int8-dynamic".encode())
    for prefix, module in _text_modules(model):
        for name, tensor in sorted(module.state_dict().items()):
            h.update(f"{prefix}.{name}{tuple(tensor.shape)}".encode())
            h.update(tensor.detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def export_int8(model: Any, tokenizer: Any, out: Path) -> None:
    """Export the text tower of ``model`` to ``out`` (fp32 ONNX, then dynamic int8)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    sample = tokenizer(["a person playing tennis", "a dog"], padding=True, return_tensors="pt")
    tower = _TextTower(model).eval()
    root = logging.getLogger()
    quiet = _DropAdvice()
    root.addFilter(quiet)
    # The tracer warns about branches that depend on shapes; the exported graph is checked
    # against torch by `clipsearch parity` and the tests.
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fp32 = Path(tmp) / "text-fp32.onnx"
        with torch.inference_mode():
            torch.onnx.export(
                tower,
                (sample["input_ids"], sample["attention_mask"]),
                str(fp32),
                input_names=list(INPUTS),
                output_names=["text_features"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "text_features": {0: "batch"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
        try:
            quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8)
        finally:
            root.removeFilter(quiet)


class _DropAdvice(logging.Filter):
    """Drops onnxruntime's "consider pre-processing" advice (for static quantization)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def cached_int8(model: Any, tokenizer: Any, cache_dir: str | os.PathLike[str]) -> Path:
    """The int8 ONNX file of ``model``'s text tower, exported on first use."""
    digest = tower_digest(model)
    target = Path(cache_dir) / "onnx" / digest / MODEL_FILE
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("exporting the text tower to ONNX int8 (once per checkpoint): %s", target)
    # Several Gunicorn workers may export at once: each writes its own file, then renames.
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        staged = Path(tmp) / MODEL_FILE
        try:
            export_int8(model, tokenizer, staged)
        except Exception as exc:  # torch.onnx / onnxruntime raise many types
            raise ModelLoadError(f"cannot export the text tower to ONNX: {exc}") from None
        os.replace(staged, target)
    return target


class OnnxTextTower:
    """An ONNX Runtime session of an exported text tower (thread-safe, releases the GIL)."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle pool threads would spin for the next call, taking CPU from request threads.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                os.fspath(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelLoadError(f"cannot load the ONNX text tower {path}: {exc}") from None
        self.path = Path(path)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {
            "input_ids": np.asarray(input_ids, dtype=np.int64),
            "attention_mask": np.asarray(attention_mask, dtype=np.int64),
        }
        (features,) = self.session.run(None, feeds)
        return np.asarray(features, dtype=np.float32)
