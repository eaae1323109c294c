"""Which torch device the towers run on (``--device auto|cpu|cuda``), and what follows
from it: the vision tower's batch and, on a GPU, its autocast precision."""

from __future__ import annotations

import torch

from clipsearch.errors import InvalidInput
from clipsearch.settings import DEVICES, is_device_name

# Frames per vision-tower call. CPU: measured with ViT-B/32 on a 2-core Xeon (AMX), 32 runs
# bf16 at 1.48x and int8 at 1.1x the speed of 128 and holds a tenth of the memory
# (benchmarks/RESULTS.md, "Ingest"). A GPU wants large batches to fill its cores.
CPU_VISION_BATCH = 32
CUDA_VISION_BATCH = 256


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the first CUDA device when torch sees one, else the CPU; ``cpu``;
    ``cuda`` or ``cuda:N``, which must exist."""
    if not is_device_name(name):
        raise InvalidInput(f"device must be one of {', '.join(DEVICES)} or cuda:N, got {name!r}")
    base = name.partition(":")[0]
    if base == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if base == "cpu":
        return torch.device("cpu")
    device = torch.device(name)
    if not torch.cuda.is_available():
        raise InvalidInput(
            f"device {name!r}: torch sees no CUDA GPU here (torch {torch.__version__}, "
            f"CUDA build {torch.version.cuda or 'none'}); use --device cpu or auto"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise InvalidInput(
            f"device {name!r}: torch sees {torch.cuda.device_count()} CUDA device(s)"
        )
    return device


def vision_batch(device: torch.device) -> int:
    """Frames per vision-tower call on ``device``."""
    return CUDA_VISION_BATCH if device.type == "cuda" else CPU_VISION_BATCH


def cuda_autocast_dtype() -> torch.dtype:
    """The reduced precision autocast uses on the GPU: bf16 where it has it, else fp16."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
