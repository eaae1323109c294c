"""How the two towers can run, by name. Torch-free, so the CLI parser and the web app's
settings check these names without loading torch."""

from __future__ import annotations

# The text tower: fp32 torch; bf16 torch (about 2x faster on CPUs with AMX/AVX-512 BF16);
# int8, an ONNX Runtime dynamic-int8 export (clipsearch.text_onnx); auto, the fastest of
# these on this machine, measured once (clipsearch.text_runtime). `clipsearch parity`
# reports what each changes against fp32.
TEXT_DTYPES = ("auto", "fp32", "bf16", "int8")
# The default: int8 and bf16 keep the demo model's mAP within 0.01 (`clipsearch parity`),
# so auto may take either.
DEFAULT_TEXT_DTYPE = "auto"
# The vision tower (ingest): fp32; bf16 (fast on CPUs with AVX-512 BF16 or AMX only, and
# emulated, slower than fp32, elsewhere); int8, an ONNX Runtime dynamic-int8 export
# (clipsearch.vision_onnx); auto: bf16 with AMX, else int8 where the CPU has VNNI, else fp32.
VISION_DTYPES = ("auto", "fp32", "bf16", "int8")
# The recommended setting: bf16 and int8 keep the demo model's figures (RESULTS.md, "Ingest").
DEFAULT_VISION_DTYPE = "auto"
# Where the torch towers run: auto is CUDA when torch sees a GPU, else the CPU. The int8
# exports run on the CPU (ONNX Runtime) whatever the device.
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_DEVICE = "auto"


def is_device_name(text: str) -> bool:
    """Whether ``text`` names a device: one of :data:`DEVICES`, or ``cuda:N``."""
    base, sep, index = text.partition(":")
    return base in DEVICES and (not sep or (base == "cuda" and index.isdigit()))


# Where the int8 export (and the decoded-frame cache of training) is kept.
DEFAULT_CACHE_DIR = "var/cache"
# Ingest skips videos longer than this (seconds): at an hour the segment plan's 120
# windows already lie 30 s apart; longer videos are better split into scenes.
DEFAULT_MAX_VIDEO_S = 3600.0
# `clipsearch watch` looks at its folder this often (seconds).
DEFAULT_WATCH_INTERVAL_S = 10.0
