"""Gunicorn configuration: ``gunicorn -c webapp/gunicorn_conf.py 'webapp:create_app()'``.

Settings come from the environment (see ``webapp/settings.py``): ``CLIPSEARCH_MODEL``
and either ``CLIPSEARCH_STORE`` (an embedded Qdrant Edge directory) or
``CLIPSEARCH_QDRANT_URL`` (a Qdrant server). ``CLIPSEARCH_BIND`` (default
``127.0.0.1:8000``) and ``CLIPSEARCH_LOG_LEVEL`` (default ``info``) set the rest.
``webapp.serve.run`` uses the same values.

Sizing. A search request spends its time in three places: the text tower (int8 ONNX
Runtime, GIL released; concurrent queries of a worker are micro-batched into one call),
the vector store (Qdrant Edge runs in-process and holds the GIL while it searches) and
Flask itself. Workers are ``gthread``: each thread serves one request; video range
requests are cheap file reads.

- Embedded Qdrant Edge store (no URL): the shard is a single-process directory (it is
  locked), so exactly **one worker** opens it; concurrency comes from threads, **32** by
  default: most of a request's time is the wait for its query's batch, and with 16
  threads only about 12 queries could wait at once, in batches of 4.3 at 32 users; with
  32 (and batches of at most 12, ``CLIPSEARCH_BATCH_QUERIES``) they hold 7 and the
  server does 10 % more at the same p95 (2-core Xeon, 2026-12-07; benchmarks/RESULTS.md,
  "Served"). The text tower gets one thread
  (``CLIPSEARCH_TEXT_THREADS``): a batch is encoded with the least CPU on one, and one
  batch per core is encoded side by side (``CLIPSEARCH_BATCH_THREADS``), since a single
  encoding thread left a core idle while the request threads waited on it (2 cores:
  105 against 136 requests/s at 32 users). Asking for more workers stops the server at
  start-up with an explanation.
- Qdrant server (URL): the store is shared over the network and the search runs in the
  server, so workers scale with the CPUs: ``min(4, CPUs)`` workers x 2 threads. Each
  worker loads its own text tower (about 250 MB for ViT-B/32 in fp32 plus its int8 copy)
  and batches its own queries; its torch thread count is capped by
  ``CLIPSEARCH_TORCH_THREADS`` (``run`` sets it to ``CPUs // workers`` when unset).

The 60 s timeout leaves room for the first transcode of a long clip.
"""

from __future__ import annotations

import os
from typing import Any

from clipsearch.errors import InvalidInput
from webapp import requestlog
from webapp.serve import (
    TIMEOUT_S,
    MetricsDir,
    close_worker_app,
    gunicorn_options,
    is_embedded,
    mark_worker_dead,
    plan_workers,
    prepare_metrics_dir,
)
from webapp.settings import ENV_LOG_FORMAT, ENV_WATCH, store_settings_from_env

_store = store_settings_from_env(os.environ)
_watch = bool(os.environ.get(ENV_WATCH, "").strip())
_workers, _threads = plan_workers(_store, watch=_watch)
_options = gunicorn_options(
    host="127.0.0.1",
    port=8000,
    workers=_workers,
    threads=_threads,
    log_level=os.environ.get("CLIPSEARCH_LOG_LEVEL", "info"),
)

bind = os.environ.get("CLIPSEARCH_BIND", _options["bind"])
workers = _options["workers"]
threads = _options["threads"]
worker_class = _options["worker_class"]
timeout = TIMEOUT_S
graceful_timeout = _options["graceful_timeout"]
keepalive = _options["keepalive"]
preload_app = False  # the model and an Edge shard belong in the worker, never the master
accesslog = _options["accesslog"]
errorlog = _options["errorlog"]
loglevel = _options["loglevel"]
worker_exit = close_worker_app
child_exit = mark_worker_dead
_held: list[MetricsDir] = []  # the master's metrics directory, from on_starting to on_exit
control_socket_disable = _options["control_socket_disable"]


def on_starting(server: Any) -> None:
    """Refuse ``-w N`` (N > 1) on the command line when the store is an Edge directory;
    then empty the workers' metrics directory."""
    if _watch and server.cfg.workers > 1:
        raise RuntimeError(
            f"{ENV_WATCH} is set: run 1 worker (each would watch the folder), or run "
            "`clipsearch watch` beside the app"
        )
    if is_embedded(_store) and server.cfg.workers > 1:
        # Gunicorn prints a RuntimeError raised here as "Error: ..." and exits with 1.
        raise RuntimeError(
            f"the embedded Qdrant Edge store ({_store.path}) is single-process: "
            "run 1 worker (raise --threads instead) or use a Qdrant server URL"
        )
    try:
        _held.append(prepare_metrics_dir())
    except InvalidInput as exc:
        raise RuntimeError(exc.message) from None


def on_exit(server: Any) -> None:
    """Let go of the metrics directory (removed when it was a temporary one)."""
    while _held:
        _held.pop().close()


def post_fork(server: Any, worker: Any) -> None:
    """Each worker logs one line per request, with request ids, in the format asked for."""
    level = server.cfg.loglevel or loglevel  # a --log-level on the command line wins
    requestlog.configure(level, os.environ.get(ENV_LOG_FORMAT, "text").strip().lower())
