"""The app's long-lived services, built once per process and reached through helpers.

Like flaskr's ``get_db()``: views never touch ``app.extensions`` directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from flask import Flask, current_app

from clipsearch.search import SearchLimits, SearchService
from webapp.settings import Settings

log = logging.getLogger(__name__)

EXTENSION = "clipsearch"


@dataclass(frozen=True)
class Services:
    """What a request may need: the search service, the settings and the media cache."""

    settings: Settings
    search: SearchService
    media_dir: Path


def build_search(settings: Settings) -> SearchService:
    """Load the text tower and open the vector store named by ``settings``."""
    # Imported here so a Gunicorn master never loads torch or opens the store.
    from clipsearch.model import load_model
    from clipsearch.store.factory import open_store

    towers: Literal["both", "text"] = "both" if settings.image_search else "text"
    encoder = load_model(
        settings.model,
        towers=towers,
        threads=settings.torch_threads,
        text_dtype=settings.text_dtype,
        cache_dir=settings.cache_dir,
        text_threads=settings.text_threads,
    )
    store = open_store(settings.store)
    limits = SearchLimits(
        max_query_chars=settings.max_query_chars,
        max_k=settings.max_k,
        query_cache=settings.query_cache,
        batch_queries=settings.batch_queries,
        batch_wait_s=settings.batch_wait_ms / 1000,
    )
    min_score = settings.min_score if settings.min_score is not None else encoder.video.min_score
    log.info(
        "search service ready: model %s, store %s, min_score %s",
        encoder.model_id,
        store.kind,
        min_score,
    )
    return SearchService(encoder, store, limits, min_score=min_score)


def init_app(app: Flask, settings: Settings, search: SearchService | None = None) -> None:
    """Attach the services to ``app`` (building the search service unless injected)."""
    app.extensions[EXTENSION] = Services(
        settings=settings,
        search=search if search is not None else build_search(settings),
        # absolute: Flask resolves relative send_file paths against the package, not the cwd
        media_dir=Path(settings.media_dir).resolve(),
    )


def close_app(app: Flask) -> None:
    """Release the vector store of ``app`` (flushes and unlocks an embedded shard)."""
    services: Services | None = app.extensions.pop(EXTENSION, None)
    if services is not None:
        services.search.close()


def get_services() -> Services:
    """The services of the current app."""
    services: Services = current_app.extensions[EXTENSION]
    return services


def get_search() -> SearchService:
    """The search service (query encoder + vector store) of the current app."""
    return get_services().search


def get_settings() -> Settings:
    return get_services().settings


def get_media_dir() -> Path:
    """Root of the poster/preview cache (``posters/``, ``previews/``)."""
    return get_services().media_dir


def default_k() -> int:
    """The result count used when a request names none (never above the service's max)."""
    return min(get_settings().default_k, get_search().limits.max_k)
