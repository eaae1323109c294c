"""Prometheus metrics at ``GET /metrics``, right under Gunicorn with several workers.

Every worker writes its series to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode), which ``clipsearch serve`` creates and wipes at start and from which
each scrape sums all workers; a worker that exits is marked dead (``child_exit``) so its
gauges drop out. Without that variable (one process, tests) the series live in the
process's default registry. prometheus_client is imported only once the app is built,
so the variable set by the master is seen by every worker.

``/metrics`` is open like ``/api/health`` unless ``CLIPSEARCH_METRICS_AUTH=1``, which puts
it behind ``CLIPSEARCH_API_KEY`` (scrapers send it as a bearer token).
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from flask import Flask, Response, g, request

from clipsearch import __version__, telemetry
from clipsearch.errors import StoreError
from clipsearch.search import SearchResponse
from webapp.settings import ENV_METRICS_DIR, Settings

PREFIX = "clipsearch"
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
UNMATCHED = "unmatched"  # the route label of a request no route matched (404s)
# a client may send any method: the label keeps these, the rest count as OTHER
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"
SEARCH_STAGES = ("tokenize", "text_encode", "store_search", "moment_naming", "render")
CACHES = ("query_cache", "store_cache")
STORE_ERRORS = ("StoreError", "StoreUnavailable")
VIDEOS_TTL_S = 15.0  # the store is counted at most this often (an exact count, on a server)


@dataclass(frozen=True)
class Series:
    requests: Any
    duration: Any
    in_flight: Any
    stages: Any
    batch: Any
    cache: Any
    no_match: Any
    store_errors: Any
    searches: Any
    info: Any
    videos: Any


@cache
def series() -> Series:
    """The process's series, made on first use (after the multiprocess directory is set)."""
    from prometheus_client import Counter, Gauge, Histogram

    return Series(
        requests=Counter(
            f"{PREFIX}_requests", "HTTP requests answered", ["method", "route", "status"]
        ),
        duration=Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time to answer a request",
            ["route"],
            buckets=REQUEST_BUCKETS,
        ),
        in_flight=Gauge(
            f"{PREFIX}_in_flight_requests", "Requests being answered", multiprocess_mode="livesum"
        ),
        stages=Histogram(
            f"{PREFIX}_stage_duration_seconds",
            "Time spent per stage of a search: tokenize, text_encode (batch wait included), "
            "store_search, moment_naming, render",
            ["stage"],
            buckets=STAGE_BUCKETS,
        ),
        batch=Histogram(
            f"{PREFIX}_text_batch_size",
            "Queries per text-tower call of the micro-batcher",
            buckets=BATCH_BUCKETS,
        ),
        cache=Counter(
            f"{PREFIX}_cache_lookups",
            "Query-vector cache (query_cache) and store read cache (store_cache) lookups",
            ["cache", "result"],
        ),
        no_match=Counter(
            f"{PREFIX}_no_good_match", "Searches whose hits all scored under the threshold"
        ),
        searches=Counter(f"{PREFIX}_searches", "Searches answered (text, image, similar)"),
        store_errors=Counter(
            f"{PREFIX}_store_errors", "Store failures by kind (the error class)", ["kind"]
        ),
        info=Gauge(
            f"{PREFIX}_info",
            "What is served: 1 per model, store and version",
            ["model", "store", "version"],
            multiprocess_mode="livemax",
        ),
        videos=Gauge(
            f"{PREFIX}_indexed_videos",
            "Videos in the store (read at scrape, at most every 15 s)",
            multiprocess_mode="livemostrecent",
        ),
    )


def _known_children(s: Series) -> None:
    """Series for every known label value from the start, at 0: a series born at its first
    event hides that event from ``rate()`` and ``increase()``."""
    for stage in SEARCH_STAGES:
        s.stages.labels(stage)
    for cache_name in CACHES:
        for result in ("hit", "miss"):
            s.cache.labels(cache_name, result)
    for kind in STORE_ERRORS:
        s.store_errors.labels(kind)


class PrometheusSink:
    """The library's stage timings, cache lookups and batch sizes as series."""

    def stage(self, name: str, seconds: float) -> None:
        # a watching server's ingest stages are not a search's
        if name in SEARCH_STAGES:
            series().stages.labels(name).observe(seconds)

    def event(self, name: str, result: str, amount: float = 1.0) -> None:
        if name in CACHES:
            series().cache.labels(name, result).inc(amount)

    def batch(self, size: int) -> None:
        series().batch.observe(size)


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED


def _start() -> None:
    g.metrics_start = time.perf_counter()
    series().in_flight.inc()


def _record(response: Response) -> Response:
    start = g.pop("metrics_start", None)
    if start is not None:
        route = _route()
        method = request.method if request.method in METHODS else OTHER
        s = series()
        s.requests.labels(method, route, str(response.status_code)).inc()
        s.duration.labels(route).observe(time.perf_counter() - start)
        s.in_flight.dec()
    return response


def _finish(_exc: BaseException | None) -> None:
    # a request that ended without a response leaves in-flight too
    if g.pop("metrics_start", None) is not None:
        series().in_flight.dec()


def answered(response: SearchResponse) -> None:
    """Count a search's answer (its results for the request log, a no-good-match)."""
    g.result_count = len(response.results)
    series().searches.inc()
    if response.no_good_match:
        series().no_match.inc()


def store_failed(exc: StoreError) -> None:
    series().store_errors.labels(type(exc).__name__).inc()


def _registry() -> Any:
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    if not os.environ.get(ENV_METRICS_DIR):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def init_app(
    app: Flask,
    settings: Settings,
    served: Callable[[], str],
    store_name: str,
    count_videos: Any,
) -> None:
    """``served()``: the model answering queries now (it changes when the store's alias
    moves to a collection another model embedded); ``count_videos()``: the store's number
    of videos, read at each scrape."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    s = series()
    _known_children(s)
    shown = [served()]
    s.info.labels(shown[0], store_name, __version__).set(1)

    def relabel() -> None:
        """``clipsearch_info`` names the model served now: the one before drops to 0."""
        model_id = served()
        if model_id != shown[0]:
            s.info.labels(shown[0], store_name, __version__).set(0)
            s.info.labels(model_id, store_name, __version__).set(1)
            shown[0] = model_id

    telemetry.set_sink(PrometheusSink())
    app.before_request(relabel)
    app.before_request(_start)
    app.after_request(_record)
    app.teardown_request(_finish)
    key = settings.api_key.encode() if settings.metrics_auth and settings.api_key else None
    counted = [-VIDEOS_TTL_S]  # when the store was last counted

    @app.get("/metrics")
    def metrics() -> Response:
        if key is not None:
            from webapp.auth import Unauthorized, presented_key

            given = presented_key()
            if given is None or not hmac.compare_digest(given.encode(), key):
                raise Unauthorized("/metrics needs the API key (CLIPSEARCH_METRICS_AUTH=1)")
        now = time.monotonic()
        if now - counted[0] >= VIDEOS_TTL_S:
            counted[0] = now
            try:
                s.videos.set(count_videos())
            except StoreError as exc:
                store_failed(exc)
        return Response(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
