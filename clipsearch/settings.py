"""Settings every part shares: how the towers can run and where, the defaults, and the
parsers of ``CLIPSEARCH_*`` variables (for the store, here; the web app's own in
``webapp.settings``), which the edges feed a mapping: nothing in the library reads the
environment. Torch-free, so the CLI parser and the web app's settings check these names
without loading torch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from clipsearch.errors import ClipSearchError

if TYPE_CHECKING:
    from clipsearch.store.factory import StoreSettings

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
# (clipsearch.vision_onnx); auto: int8 where the CPU has VNNI or AMX, else fp32.
VISION_DTYPES = ("auto", "fp32", "bf16", "int8")
# The recommended setting: bf16 and int8 keep the demo model's figures (RESULTS.md, "Ingest").
DEFAULT_VISION_DTYPE = "auto"
# Where the torch towers run: auto is CUDA when torch sees a GPU, else the CPU. The int8
# exports run on the CPU (ONNX Runtime) whatever the device.
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_DEVICE = "auto"
# Frames a 2-s window pools (clipsearch.windows): with 6 the demo model's retrieval figures
# and moments R@5 / R@1 / mean tIoU stay within 0.01 of the 8 a clip of it is trained on,
# and a quarter fewer frames are decoded and embedded (RESULTS.md, "Ingest": every figure).
WINDOW_FRAMES = 6


def is_device_name(text: str) -> bool:
    """Whether ``text`` names a device: one of :data:`DEVICES`, or ``cuda:N``."""
    base, sep, index = text.partition(":")
    return base in DEVICES and (not sep or (base == "cuda" and index.isdigit()))


# Where the int8 export (and the decoded-frame cache of training) is kept.
DEFAULT_CACHE_DIR = "var/cache"
# Ingest skips videos longer than this (seconds): at an hour the window plan's 120
# windows already lie 30 s apart; longer videos are better split into scenes.
DEFAULT_MAX_VIDEO_S = 3600.0
# `clipsearch watch` looks at its folder this often (seconds).
DEFAULT_WATCH_INTERVAL_S = 10.0


# The environment: the edges (the command line, the web app) read it and hand the mapping
# to these parsers; nothing below them reads os.environ.
ENV_STORE = "CLIPSEARCH_STORE"
ENV_QDRANT_URL = "CLIPSEARCH_QDRANT_URL"
ENV_QDRANT_URL_FALLBACK = "QDRANT_URL"
ENV_COLLECTION = "CLIPSEARCH_COLLECTION"
ENV_API_KEY = "QDRANT_API_KEY"
ENV_STORE_CACHE_MB = "CLIPSEARCH_STORE_CACHE_MB"
ENV_QDRANT_TIMEOUT_S = "CLIPSEARCH_QDRANT_TIMEOUT_S"
ENV_SHARD_NUMBER = "CLIPSEARCH_SHARD_NUMBER"
ENV_REPLICATION_FACTOR = "CLIPSEARCH_REPLICATION_FACTOR"
ENV_WRITE_CONSISTENCY = "CLIPSEARCH_WRITE_CONSISTENCY_FACTOR"


class ConfigError(ClipSearchError):
    """A setting is missing or malformed."""

    status = 500
    code = "config_error"


def store_settings_from_env(environ: Mapping[str, str]) -> StoreSettings:
    """The vector store part of the settings: an embedded path or a Qdrant server URL."""
    from clipsearch.store.factory import StoreSettings

    defaults = StoreSettings()
    return StoreSettings(
        path=env_text(environ, ENV_STORE) or defaults.path,
        url=env_text(environ, ENV_QDRANT_URL) or env_text(environ, ENV_QDRANT_URL_FALLBACK),
        collection=env_text(environ, ENV_COLLECTION) or defaults.collection,
        api_key=env_text(environ, ENV_API_KEY),
        timeout_s=env_int(environ, ENV_QDRANT_TIMEOUT_S, defaults.timeout_s),
        cache_mb=env_float(environ, ENV_STORE_CACHE_MB, defaults.cache_mb),
        shard_number=env_optional_int(environ, ENV_SHARD_NUMBER),
        replication_factor=env_optional_int(environ, ENV_REPLICATION_FACTOR),
        write_consistency_factor=env_optional_int(environ, ENV_WRITE_CONSISTENCY),
    )


def env_text(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = env_optional_int(environ, name)
    return default if value is None else value


def env_optional_int(environ: Mapping[str, str], name: str) -> int | None:
    value = env_text(environ, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def env_optional_float(environ: Mapping[str, str], name: str) -> float | None:
    value = env_text(environ, name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None


def env_float(environ: Mapping[str, str], name: str, default: float) -> float:
    value = env_optional_float(environ, name)
    return default if value is None else value


def env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = env_text(environ, name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")
