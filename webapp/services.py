"""The app's long-lived services, built once per process and reached through helpers.

Like flaskr's ``get_db()``: views never touch ``app.extensions`` directly.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from flask import Flask, current_app, g

from clipsearch.batcher import encoding_threads
from clipsearch.cpu import usable_cpus
from clipsearch.errors import ModelLoadError
from clipsearch.live import LiveSearch, follow_store
from clipsearch.search import SearchLimits, SearchService
from clipsearch.store.factory import StoreSettings
from webapp.settings import Settings

log = logging.getLogger(__name__)

EXTENSION = "clipsearch"
WATCH_STOP_S = 8.0
_REQUEST_KEY = "_clipsearch_search"


@dataclass(frozen=True)
class Services:
    """What a request may need: the search service (through ``live``, which follows an alias
    when the store names one), the settings and the media cache; and the folder watcher
    when the app keeps one in step with its index."""

    settings: Settings
    live: LiveSearch
    media_dir: Path
    watcher: Any = None


def _batch_threads(encoder: Any, settings: Settings) -> int:
    """Batches encoded side by side on this worker's share of the CPUs (``clipsearch
    serve`` gives several workers ``torch_threads`` each)."""
    cpus = settings.torch_threads or usable_cpus()
    return encoding_threads(getattr(encoder, "text_dtype", "fp32"), settings.text_threads, cpus)


def build_search(
    settings: Settings,
    store: StoreSettings | None = None,
    *,
    model: str | None = None,
    encoder: Any = None,
) -> SearchService:
    """Load the text tower (``model``, default the settings' one; or reuse ``encoder``) and
    open the vector store (``store``, default the settings' one)."""
    # Imported here so a Gunicorn master never loads a model or opens the store.
    from clipsearch.query_model import load_query_model
    from clipsearch.store.factory import open_store

    if encoder is None:
        towers: Literal["both", "text"] = "both" if settings.image_search else "text"
        encoder = load_query_model(
            model or settings.model,
            towers=towers,
            threads=settings.torch_threads,
            text_dtype=settings.text_dtype,
            cache_dir=settings.cache_dir,
            text_threads=settings.text_threads,
            vision_dtype=settings.vision_dtype,
            device=settings.device,
        )
    opened = open_store(store or settings.store)
    limits = SearchLimits(
        max_query_chars=settings.max_query_chars,
        max_k=settings.max_k,
        query_cache=settings.query_cache,
        batch_queries=settings.batch_queries,
        batch_wait_s=settings.batch_wait_ms / 1000,
        batch_threads=settings.batch_threads or _batch_threads(encoder, settings),
        near_threshold=settings.near_threshold,
    )
    min_score = settings.min_score if settings.min_score is not None else encoder.video.min_score
    log.info(
        "search service ready: model %s, store %s, min_score %s",
        encoder.model_id,
        opened.kind,
        min_score,
    )
    return SearchService(encoder, opened, limits, min_score=min_score)


def build_live(settings: Settings) -> LiveSearch:
    """The search service on the settings' store, following it when it names an alias
    (:func:`clipsearch.live.follow_store`)."""

    def build(
        store: StoreSettings, *, model: str | None = None, encoder: Any = None
    ) -> SearchService:
        return build_search(settings, store, model=model, encoder=encoder)

    return follow_store(settings.store, build, check_s=settings.alias_check_s)


def init_app(app: Flask, settings: Settings, search: SearchService | None = None) -> None:
    """Attach the services to ``app`` (building the search service unless injected)."""
    live = LiveSearch(search) if search is not None else build_live(settings)
    # absolute: Flask resolves relative send_file paths against the package, not the cwd
    media_dir = Path(settings.media_dir).resolve()
    watcher = start_watcher(settings.watch, settings, live, media_dir) if settings.watch else None
    app.extensions[EXTENSION] = Services(settings, live, media_dir, watcher)
    app.teardown_request(_release_search)


def start_watcher(folder: str, settings: Settings, live: LiveSearch, media_dir: Path) -> Any:
    """Keep the index in step with ``folder`` from a thread of this process: new and
    changed videos are searchable at the next poll, with no restart. Each poll uses the
    search service serving now: its store, the vision tower of its model and the window
    plan its videos were cut by."""
    from clipsearch.query_model import watch_problem

    problem = watch_problem(settings.model)
    if problem:
        raise ModelLoadError(problem)
    from clipsearch.pipeline.runner import IngestOptions, stored_window_plan
    from ingest.watch import Watcher

    # decoding in a thread: forking a process that serves requests from threads is unsafe;
    # no graph building: Qdrant Edge keeps the GIL while it builds, which would hold every
    # request (25-48 s at UCF101's size), so new windows are scanned exactly
    options = IngestOptions(workers=1, media_dir=media_dir, prune=True, index=False)
    watcher = Watcher(Path(folder), options, interval_s=settings.watch_interval_s)
    vision: dict[str, Any] = {}

    def lease() -> tuple[Any, Any, Any]:
        search = live.acquire()
        try:
            encoder = _vision_encoder(settings, search, vision)
            plan = stored_window_plan(search.store, options.windows)
        except BaseException:
            live.release(search)
            raise
        watcher.options = replace(watcher.options, windows=plan)
        return encoder, search.store, lambda: live.release(search)

    thread = threading.Thread(
        target=watcher.run_with, args=(lease,), name="clipsearch-watch", daemon=True
    )
    thread.start()
    log.info("watching %s every %g s", folder, settings.watch_interval_s)
    return watcher


def _vision_encoder(settings: Settings, search: SearchService, loaded: dict[str, Any]) -> Any:
    """The vision tower of the model ``search`` serves: its own, or one loaded once (a
    model that turns out to be another is not loaded again)."""
    encoder = search.encoder
    if getattr(encoder, "towers", "text") != "text" and hasattr(encoder, "embed_views"):
        return encoder  # the torch towers, not an ONNX export (which embeds no videos)
    if search.model_id not in loaded:
        from clipsearch.model import load_model

        vision = load_model(
            settings.model,
            towers="vision",
            threads=settings.torch_threads,
            vision_dtype=settings.vision_dtype,
            device=settings.device,
            cache_dir=settings.cache_dir,
        )
        loaded[search.model_id] = (
            vision
            if vision.model_id == search.model_id
            else ValueError(
                f"{settings.model} is {vision.model_id}, but the index holds {search.model_id}"
            )
        )
    found = loaded[search.model_id]
    if isinstance(found, Exception):
        raise found
    return found


def close_app(app: Flask) -> None:
    """Release the vector store of ``app`` (flushes and unlocks an embedded shard)."""
    services: Services | None = app.extensions.pop(EXTENSION, None)
    if services is not None:
        watcher = services.watcher
        if watcher is not None:
            watcher.stop.set()
            # the poll in flight ends its batch (within Gunicorn's graceful timeout)
            if watcher.busy.acquire(timeout=WATCH_STOP_S):
                watcher.busy.release()
        services.live.close()


def get_services() -> Services:
    """The services of the current app."""
    services: Services = current_app.extensions[EXTENSION]
    return services


def get_search() -> SearchService:
    """The search service of this request (the same one for the whole request, even if the
    alias moves meanwhile)."""
    search: SearchService | None = g.get(_REQUEST_KEY)
    if search is None:
        search = get_services().live.acquire()
        setattr(g, _REQUEST_KEY, search)
    return search


def _release_search(_exc: BaseException | None) -> None:
    search: SearchService | None = g.pop(_REQUEST_KEY, None)
    if search is not None:
        services: Services | None = current_app.extensions.get(EXTENSION)
        if services is not None:
            services.live.release(search)


def get_settings() -> Settings:
    return get_services().settings


def get_media_dir() -> Path:
    """Root of the poster/preview cache (``posters/``, ``previews/``)."""
    return get_services().media_dir


def default_k() -> int:
    """The result count used when a request names none (never above the service's max)."""
    return min(get_settings().default_k, get_search().limits.max_k)
