"""clipsearch web app: a Flask application factory (``flask --app webapp run``)."""

from __future__ import annotations

from flask import Flask

from clipsearch.search import SearchService
from webapp import api, auth, errors, headers, media, metrics, pages, requestlog, services
from webapp.json_provider import OrjsonProvider
from webapp.settings import Settings

# Larger request bodies are refused with 413 before any parsing (image uploads are the
# largest; JSON bodies have their own, smaller limit in ``webapp.api``).
MAX_CONTENT_LENGTH = 8 * 1024 * 1024


def create_app(settings: Settings | None = None, *, search: SearchService | None = None) -> Flask:
    """Build the app: services once (or ``search`` injected), blueprints, error handling.

    Without ``settings``, they are read from the environment (``Settings.from_env``),
    unless ``search`` is injected, which then only needs the default settings.
    """
    if settings is None:
        settings = Settings.from_env() if search is None else Settings(model=search.model_id)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    app.json = OrjsonProvider(app)
    services.init_app(app, settings, search)
    requestlog.init_app(app, settings.log_queries)
    live = app.extensions[services.EXTENSION].live
    metrics.init_app(
        app, settings, lambda: live.current.model_id, _store_name(settings), _count_videos
    )
    errors.init_app(app)
    headers.init_app(app)
    auth.init_app(app, settings.api_key)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(media.bp)
    return app


def _store_name(settings: Settings) -> str:
    return "edge" if settings.store.embedded else "qdrant"  # no paths on an open /metrics


def _count_videos() -> int:
    return int(services.get_search().store.count())
