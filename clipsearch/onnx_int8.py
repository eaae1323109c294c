"""What the int8 ONNX towers share: export through ``torch.onnx``, dynamic int8
quantization, a cache per checkpoint, and a CPU session.

A tower is exported once per checkpoint (fp32 ONNX, then
``onnxruntime.quantization.quantize_dynamic``: int8 weights, activations scaled per call)
and cached under ``<cache_dir>/onnx/<digest>/``; the digest covers the tower's weights and
configuration, the library versions and the export settings, so a changed checkpoint is
exported anew. ``clipsearch parity`` (text) and ``clipsearch eval --vision-dtype`` report
what int8 changes against fp32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from clipsearch.errors import ModelLoadError

log = logging.getLogger(__name__)

OPSET = 17


def weights_digest(
    config: dict[str, Any], modules: Iterable[tuple[str, torch.nn.Module]], setup: str
) -> str:
    """A digest of a tower's configuration and weights, the library versions and ``setup``
    (what the export does beyond the weights)."""
    import onnxruntime
    import transformers

    h = hashlib.sha256()
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    h.update(f"{torch.__version__}/{transformers.__version__}/{onnxruntime.__version__}".encode())
    h.update(f"opset{OPSET}/int8-dynamic/{setup}".encode())
    for prefix, module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            h.update(f"{prefix}.{name}{tuple(tensor.shape)}".encode())
            h.update(tensor.detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def export_quantized(
    module: torch.nn.Module,
    sample: tuple[torch.Tensor, ...],
    out: Path,
    *,
    inputs: list[str],
    outputs: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    """``module`` exported to fp32 ONNX, then quantized to dynamic int8 at ``out``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    quiet = _QuietQuantizer()
    root.addFilter(quiet)
    # The tracer warns about branches that depend on shapes; the exported graph is checked
    # against torch by `clipsearch parity`, `clipsearch eval` and the tests.
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fp32 = Path(tmp) / "fp32.onnx"
        with torch.inference_mode():
            torch.onnx.export(
                module.eval(),
                sample,
                str(fp32),
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=dynamic_axes,
                opset_version=OPSET,
                dynamo=False,
            )
        try:
            quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8)
        finally:
            root.removeFilter(quiet)


class _QuietQuantizer(logging.Filter):
    """Drops what onnxruntime's quantizer logs to the root logger below a warning (a line
    per tensor, which a server logging at INFO would print by the hundred) and its
    "consider pre-processing" advice (for static quantization)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING and "onnxruntime" in record.pathname:
            return False
        return "pre-processing before quantization" not in record.getMessage()


def cached_export(
    cache_dir: str | os.PathLike[str],
    digest: str,
    filename: str,
    export: Callable[[Path], None],
    tower: str,
) -> Path:
    """``<cache_dir>/onnx/<digest>/<filename>``, written by ``export(path)`` on first use."""
    target = Path(cache_dir) / "onnx" / digest / filename
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("exporting the %s tower to ONNX int8 (once per checkpoint): %s", tower, target)
    # Several processes may export at once: each writes its own file, then renames.
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        staged = Path(tmp) / filename
        try:
            export(staged)
        except Exception as exc:  # torch.onnx / onnxruntime raise many types
            raise ModelLoadError(f"cannot export the {tower} tower to ONNX: {exc}") from None
        os.replace(staged, target)
    return target
