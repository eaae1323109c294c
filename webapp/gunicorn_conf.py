"""Gunicorn configuration: ``gunicorn -c webapp/gunicorn_conf.py 'webapp:create_app()'``.

Settings come from the environment (see ``webapp/settings.py``): ``CLIPSEARCH_MODEL``
and either ``CLIPSEARCH_STORE`` (an embedded Qdrant Edge directory) or
``CLIPSEARCH_QDRANT_URL`` (a Qdrant server). ``CLIPSEARCH_BIND`` (default
``127.0.0.1:8000``) and ``CLIPSEARCH_LOG_LEVEL`` (default ``info``) set the rest.
``webapp.serve.run`` uses the same values.

Sizing. A request spends its time embedding the query with the CLIP text tower
(CPU, a few ms to tens of ms) and waiting on the vector store; previews are
transcoded once and then served from disk. Workers are ``gthread``: each thread
serves one request, and video range requests are cheap file reads.

- Embedded Qdrant Edge store (no URL): the shard is a single-process directory
  (it is locked), so exactly **one worker** opens it; concurrency comes from
  threads (4 by default; torch uses all cores for each query). Asking for more
  workers stops the server at start-up with an explanation.
- Qdrant server (URL): the store is shared over the network, so workers scale
  with the CPUs: ``min(4, CPUs)`` workers x 2 threads. Each worker loads its own
  copy of the text tower (about 250 MB for ViT-B/32) and its torch thread
  count is capped by ``CLIPSEARCH_TORCH_THREADS``; ``run`` sets it to
  ``CPUs // workers`` when unset.

The 60 s timeout leaves room for the first transcode of a long clip.
"""

from __future__ import annotations

import os
from typing import Any

from webapp.serve import TIMEOUT_S, close_worker_app, gunicorn_options, is_embedded, plan_workers
from webapp.settings import store_settings_from_env

_store = store_settings_from_env(os.environ)
_workers, _threads = plan_workers(_store)
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
access_log_format = _options["access_log_format"]
loglevel = _options["loglevel"]
worker_exit = close_worker_app
control_socket_disable = _options["control_socket_disable"]


def on_starting(server: Any) -> None:
    """Refuse ``-w N`` (N > 1) on the command line when the store is an Edge directory."""
    if is_embedded(_store) and server.cfg.workers > 1:
        # Gunicorn prints a RuntimeError raised here as "Error: ..." and exits with 1.
        raise RuntimeError(
            f"the embedded Qdrant Edge store ({_store.path}) is single-process: "
            "run 1 worker (raise --threads instead) or use a Qdrant server URL"
        )
