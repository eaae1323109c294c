"""Web app settings, read from ``CLIPSEARCH_*`` environment variables at the edge.

The core (``clipsearch``) never reads the environment; only this module does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from clipsearch.batcher import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_S
from clipsearch.settings import (
    DEFAULT_CACHE_DIR,
    DEFAULT_DEVICE,
    DEFAULT_TEXT_DTYPE,
    DEFAULT_VISION_DTYPE,
    DEFAULT_WATCH_INTERVAL_S,
    DEVICES,
    TEXT_DTYPES,
    VISION_DTYPES,
    ConfigError,
    env_bool,
    env_float,
    env_int,
    env_optional_float,
    env_optional_int,
    env_text,
    is_device_name,
    store_settings_from_env,
)
from clipsearch.store.factory import StoreSettings

# Variables read by :meth:`Settings.from_env`.
ENV_MODEL = "CLIPSEARCH_MODEL"
ENV_MEDIA_DIR = "CLIPSEARCH_MEDIA_DIR"
ENV_DEFAULT_K = "CLIPSEARCH_DEFAULT_K"
ENV_MAX_K = "CLIPSEARCH_MAX_K"
ENV_MAX_QUERY_CHARS = "CLIPSEARCH_MAX_QUERY_CHARS"
ENV_TORCH_THREADS = "CLIPSEARCH_TORCH_THREADS"
ENV_MIN_SCORE = "CLIPSEARCH_MIN_SCORE"
ENV_NEAR_THRESHOLD = "CLIPSEARCH_NEAR_THRESHOLD"
ENV_IMAGE_SEARCH = "CLIPSEARCH_IMAGE_SEARCH"
ENV_QUERY_CACHE = "CLIPSEARCH_QUERY_CACHE"
ENV_TEXT_DTYPE = "CLIPSEARCH_TEXT_DTYPE"
ENV_CACHE_DIR = "CLIPSEARCH_CACHE_DIR"
ENV_VISION_DTYPE = "CLIPSEARCH_VISION_DTYPE"
ENV_DEVICE = "CLIPSEARCH_DEVICE"
ENV_BATCH_QUERIES = "CLIPSEARCH_BATCH_QUERIES"
ENV_BATCH_WAIT_MS = "CLIPSEARCH_BATCH_WAIT_MS"
ENV_TEXT_THREADS = "CLIPSEARCH_TEXT_THREADS"
ENV_BATCH_THREADS = "CLIPSEARCH_BATCH_THREADS"
ENV_ALIAS_CHECK_S = "CLIPSEARCH_ALIAS_CHECK_S"
ENV_APP_API_KEY = "CLIPSEARCH_API_KEY"
ENV_WATCH = "CLIPSEARCH_WATCH"
ENV_WATCH_INTERVAL_S = "CLIPSEARCH_WATCH_INTERVAL_S"
ENV_METRICS_AUTH = "CLIPSEARCH_METRICS_AUTH"
ENV_LOG_FORMAT = "CLIPSEARCH_LOG_FORMAT"
ENV_LOG_QUERIES = "CLIPSEARCH_LOG_QUERIES"
# Where Gunicorn's workers write their Prometheus series (prometheus_client's multiprocess
# mode); `clipsearch serve` makes and wipes it, so a fresh start never adds up old counts.
ENV_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Settings:
    """Everything the web app needs to build its services."""

    model: str
    store: StoreSettings = field(default_factory=StoreSettings)
    media_dir: str = "var/media"
    default_k: int = 12
    max_k: int = 100
    max_query_chars: int = 500
    torch_threads: int | None = None
    # "no good match" threshold; None takes the model's calibrated one (if any)
    min_score: float | None = None
    # cosine at which ``collapse=near`` folds two results; None finds it from the store's
    # vectors (see clipsearch.collapse)
    near_threshold: float | None = None
    # load the vision tower too, for image queries
    image_search: bool = True
    # query embeddings cached per worker process (0: no cache)
    query_cache: int = 4096
    # how the text tower runs: "int8" (ONNX Runtime export), "bf16" or "fp32" (torch)
    text_dtype: str = DEFAULT_TEXT_DTYPE
    # where the int8 exports of the towers are cached
    cache_dir: str = DEFAULT_CACHE_DIR
    # how the vision tower runs (image queries, --watch): as `clipsearch ingest
    # --vision-dtype` ("auto": bf16, int8 or fp32, the fastest this CPU has)
    vision_dtype: str = DEFAULT_VISION_DTYPE
    # where the torch towers run: auto (CUDA when torch sees a GPU), cpu, cuda or cuda:N;
    # the int8 text tower runs on the CPU whatever this is
    device: str = DEFAULT_DEVICE
    # concurrent queries encoded in one batch (1: no micro-batching), and how long the
    # first query of a batch waits for company
    batch_queries: int = DEFAULT_MAX_BATCH
    batch_wait_ms: float = DEFAULT_MAX_WAIT_S * 1000
    # threads of the int8 text tower. One: requests bring the concurrency, and one thread
    # encodes a batch with the least CPU (a second thread adds ~30 % CPU for ~30 % speed)
    text_threads: int = 1
    # batches encoded side by side (None: one per text_threads cores for the int8 tower,
    # which leaves the GIL while it runs; one for torch)
    batch_threads: int | None = None
    # how often a store named by an alias is checked for a move (0: never)
    alias_check_s: float = 2.0
    # when set, /api requests (but health and the OpenAPI document) must carry this key
    api_key: str | None = field(default=None, repr=False)
    # a folder the app keeps its index in step with, polled every watch_interval_s
    # (`clipsearch serve --watch`: the way to watch a folder into the embedded store,
    # which only the serving process may open)
    watch: str | None = None
    watch_interval_s: float = DEFAULT_WATCH_INTERVAL_S
    # /metrics is open like /api/health, or (True) behind api_key like the rest of /api
    metrics_auth: bool = False
    # one log line per request: "text" (human) or "json" (JSON lines); the query text is
    # logged only with log_queries (queries can be personal)
    log_format: str = "text"
    log_queries: bool = False

    def __post_init__(self) -> None:
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(
                f"log_format must be one of {', '.join(LOG_FORMATS)}, got {self.log_format!r}"
            )
        if self.metrics_auth and not self.api_key:
            raise ConfigError(f"{ENV_METRICS_AUTH}=1 needs {ENV_APP_API_KEY} (the key it asks for)")
        if not 0 <= self.alias_check_s <= 3600:
            raise ConfigError(f"alias_check_s must be within 0..3600, got {self.alias_check_s}")
        if self.text_dtype not in TEXT_DTYPES:
            raise ConfigError(
                f"text_dtype must be one of {', '.join(TEXT_DTYPES)}, got {self.text_dtype!r}"
            )
        if self.vision_dtype not in VISION_DTYPES:
            raise ConfigError(
                f"vision_dtype must be one of {', '.join(VISION_DTYPES)}, got {self.vision_dtype!r}"
            )
        if not is_device_name(self.device):
            raise ConfigError(
                f"device must be one of {', '.join(DEVICES)} or cuda:N, got {self.device!r}"
            )
        if self.text_threads < 1:
            raise ConfigError(f"text_threads must be >= 1, got {self.text_threads}")
        if self.batch_threads is not None and self.batch_threads < 1:
            raise ConfigError(f"batch_threads must be >= 1, got {self.batch_threads}")
        if self.batch_queries < 1:
            raise ConfigError(f"batch_queries must be >= 1, got {self.batch_queries}")
        if not 0 <= self.batch_wait_ms <= 1000:
            raise ConfigError(f"batch_wait_ms must be within 0..1000, got {self.batch_wait_ms}")
        if self.query_cache < 0:
            raise ConfigError(f"query_cache must be >= 0, got {self.query_cache}")
        if self.min_score is not None and not -1.0 <= self.min_score <= 1.0:
            raise ConfigError(f"min_score must be in -1..1, got {self.min_score}")
        if self.near_threshold is not None and not -1.0 <= self.near_threshold <= 1.0:
            raise ConfigError(f"near_threshold must be in -1..1, got {self.near_threshold}")
        if self.max_k < 1:
            raise ConfigError(f"max_k must be >= 1, got {self.max_k}")
        if not 1 <= self.default_k <= self.max_k:
            raise ConfigError(f"default_k must be in 1..{self.max_k}, got {self.default_k}")
        if not self.watch_interval_s > 0:
            raise ConfigError(f"watch_interval_s must be > 0, got {self.watch_interval_s}")
        if self.max_query_chars < 1:
            raise ConfigError(f"max_query_chars must be >= 1, got {self.max_query_chars}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Settings from ``CLIPSEARCH_*`` variables (``CLIPSEARCH_MODEL`` is required)."""
        model = environ.get(ENV_MODEL, "").strip()
        if not model:
            raise ConfigError(f"{ENV_MODEL} is not set (a CLIP checkpoint directory or hub id)")
        defaults = cls(model=model)
        return cls(
            model=model,
            store=store_settings_from_env(environ),
            media_dir=env_text(environ, ENV_MEDIA_DIR) or defaults.media_dir,
            default_k=env_int(environ, ENV_DEFAULT_K, defaults.default_k),
            max_k=env_int(environ, ENV_MAX_K, defaults.max_k),
            max_query_chars=env_int(environ, ENV_MAX_QUERY_CHARS, defaults.max_query_chars),
            torch_threads=env_optional_int(environ, ENV_TORCH_THREADS),
            min_score=env_optional_float(environ, ENV_MIN_SCORE),
            near_threshold=env_optional_float(environ, ENV_NEAR_THRESHOLD),
            image_search=env_bool(environ, ENV_IMAGE_SEARCH, defaults.image_search),
            query_cache=env_int(environ, ENV_QUERY_CACHE, defaults.query_cache),
            text_dtype=env_text(environ, ENV_TEXT_DTYPE) or defaults.text_dtype,
            cache_dir=env_text(environ, ENV_CACHE_DIR) or defaults.cache_dir,
            vision_dtype=env_text(environ, ENV_VISION_DTYPE) or defaults.vision_dtype,
            device=env_text(environ, ENV_DEVICE) or defaults.device,
            batch_queries=env_int(environ, ENV_BATCH_QUERIES, defaults.batch_queries),
            batch_wait_ms=env_float(environ, ENV_BATCH_WAIT_MS, defaults.batch_wait_ms),
            text_threads=env_int(environ, ENV_TEXT_THREADS, defaults.text_threads),
            batch_threads=env_optional_int(environ, ENV_BATCH_THREADS),
            alias_check_s=env_float(environ, ENV_ALIAS_CHECK_S, defaults.alias_check_s),
            api_key=env_text(environ, ENV_APP_API_KEY),
            watch=env_text(environ, ENV_WATCH),
            watch_interval_s=env_float(environ, ENV_WATCH_INTERVAL_S, defaults.watch_interval_s),
            metrics_auth=env_bool(environ, ENV_METRICS_AUTH, defaults.metrics_auth),
            log_format=(env_text(environ, ENV_LOG_FORMAT) or defaults.log_format).lower(),
            log_queries=env_bool(environ, ENV_LOG_QUERIES, defaults.log_queries),
        )
