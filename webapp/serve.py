"""Serve the web app with Gunicorn, started from Python (``clipsearch serve``).

Each worker builds its own app with :func:`webapp.create_app` (no preload), so
the model is loaded and an embedded Qdrant Edge shard is opened only inside the
worker that uses it, never in the master.
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import shutil
import tempfile
from dataclasses import replace
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from clipsearch.errors import ClipSearchError, InvalidInput
from clipsearch.extras import missing_extra
from clipsearch.store.factory import StoreSettings
from webapp import create_app, requestlog
from webapp.services import close_app
from webapp.settings import ENV_METRICS_DIR, Settings

log = logging.getLogger(__name__)

EDGE_THREADS = 32
SERVER_THREADS = 2
MAX_SERVER_WORKERS = 4
TIMEOUT_S = 60


def is_embedded(store: StoreSettings) -> bool:
    """True for a Qdrant Edge directory (single-process), False for a URL."""
    return store.embedded


def plan_workers(
    store: StoreSettings,
    workers: int | None = None,
    threads: int | None = None,
    *,
    watch: bool = False,
) -> tuple[int, int]:
    """``(workers, threads)`` for ``store``, filling in defaults.

    Embedded Edge store: 1 worker (more is refused), 32 threads. Server URL:
    ``min(4, CPUs)`` workers, 2 threads each. A server that ``watch``-es a folder runs one
    worker: each would watch it.
    """
    embedded = is_embedded(store)
    if workers is None:
        workers = 1 if embedded or watch else min(MAX_SERVER_WORKERS, os.cpu_count() or 1)
    if threads is None:
        threads = EDGE_THREADS if embedded else SERVER_THREADS
    if workers < 1 or threads < 1:
        raise InvalidInput(f"workers and threads must be >= 1, got {workers} and {threads}")
    if watch and workers > 1:
        raise InvalidInput(
            f"a server that watches a folder runs 1 worker, not {workers} (each would watch "
            "it); with a Qdrant server, run `clipsearch watch` beside the app instead"
        )
    if embedded and workers > 1:
        raise InvalidInput(
            f"the embedded Qdrant Edge store ({store.path}) is single-process: it can be "
            f"served by 1 worker only, not {workers}; raise threads instead, or index into "
            "a Qdrant server and pass its URL to run several workers"
        )
    return workers, threads


METRICS_LOCK = "server.lock"


class MetricsDir:
    """The workers' Prometheus directory, held by one server: locked while it runs (a second
    server on it would empty the first one's counts), removed at the end when it was made
    here."""

    def __init__(self, path: str, made: bool, lock: Any):
        self.path = path
        self.made = made
        self._lock = lock

    def close(self) -> None:
        if self._lock is None:
            return
        self._lock.close()  # the workers' inherited copies went with them
        self._lock = None
        if self.made:
            shutil.rmtree(self.path, ignore_errors=True)


def prepare_metrics_dir(environ: Any = os.environ) -> MetricsDir:
    """The workers' Prometheus directory (``PROMETHEUS_MULTIPROC_DIR``, else a new temporary
    one, set in ``environ`` for the workers), emptied: counts start at zero with the server.
    A directory another running server holds is refused."""
    given = environ.get(ENV_METRICS_DIR)
    path = given or tempfile.mkdtemp(prefix="clipsearch-metrics-")
    os.makedirs(path, exist_ok=True)
    lock = open(os.path.join(path, METRICS_LOCK), "a")  # noqa: SIM115 (held while serving)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise InvalidInput(
            f"{ENV_METRICS_DIR}={path} is in use by another running server: give each "
            "server a directory of its own (or leave it unset for a fresh one)"
        ) from None
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))
    environ[ENV_METRICS_DIR] = path
    return MetricsDir(str(path), not given, lock)


def mark_worker_dead(server: Any, worker: Any) -> None:
    """Gunicorn ``child_exit`` hook: the worker's live gauges leave the sums."""
    if os.environ.get(ENV_METRICS_DIR):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def close_worker_app(server: Any, worker: Any) -> None:
    """Gunicorn ``worker_exit`` hook: close the worker's store (releases an Edge shard)."""
    app = getattr(worker, "wsgi", None)
    if isinstance(app, Flask):
        close_app(app)


# Gunicorn's exit status for a worker that could not boot (``Arbiter.WORKER_BOOT_ERROR``)
WORKER_BOOT_ERROR = 3


class Startup:
    """What the workers tell the process that started them (shared memory, made before
    Gunicorn forks): that one is ready, announced once with ``ready_line``, and why the
    first that could not boot failed."""

    def __init__(self, ready_line: str | None = None):
        self.ready_line = ready_line
        self._ready = multiprocessing.Value("b", 0)
        self._status = multiprocessing.Value("i", 0)
        self._message: Any = multiprocessing.Array("c", 2048)  # .value: bytes

    def worker_ready(self, worker: Any) -> None:
        """Gunicorn ``post_worker_init`` hook: the first worker to load the app says so."""
        with self._ready.get_lock():
            first = not self._ready.value
            self._ready.value = 1
        if first and self.ready_line:
            print(self.ready_line, flush=True)

    def failed(self, message: str, status: int) -> None:
        with self._status.get_lock():
            if not self._status.value:
                self._message.value = message.encode("utf-8", "replace")[:2047]
                self._status.value = status

    def error(self) -> ClipSearchError:
        """The first worker's reason as the error it was (its message and status)."""
        message = self._message.value.decode("utf-8", "replace")
        if not message:
            return ClipSearchError("the web app's worker could not start (see its log above)")
        return ClipSearchError(message, status=self._status.value)


class ClipSearchServer(BaseApplication):
    """Gunicorn application that builds ``create_app(settings)`` in each worker."""

    def __init__(self, settings: Settings, options: dict[str, Any], startup: Startup | None = None):
        self.settings = settings
        self.options = options
        self.startup = startup
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings newer than the installed Gunicorn are skipped
                self.cfg.set(key, value)

    def load(self) -> Flask:
        try:
            return create_app(self.settings)
        except (ClipSearchError, ModuleNotFoundError) as exc:
            # a reason the user can act on: one line, not Gunicorn's traceback
            if isinstance(exc, ClipSearchError):
                message, status = exc.message, exc.status
            else:
                extra = missing_extra(exc)
                if extra is None:
                    raise
                message, status = extra, 500
            log.error("cannot start: %s", message)
            if self.startup is not None:
                self.startup.failed(message, status)
            raise SystemExit(WORKER_BOOT_ERROR) from None


def gunicorn_options(
    host: str, port: int, workers: int, threads: int, log_level: str
) -> dict[str, Any]:
    """Gunicorn settings for :func:`run` (the same as ``gunicorn_conf.py`` uses)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": TIMEOUT_S,
        "graceful_timeout": 10,
        "keepalive": 5,
        # Gunicorn's most (4094 by default): a query at the longest the API takes, in
        # a script of three UTF-8 bytes a character, is over 4 KB once percent-encoded
        "limit_request_line": 8190,
        "preload_app": False,
        # the app logs one line per request itself (webapp.requestlog), with its request id
        "accesslog": None,
        "errorlog": "-",
        "loglevel": log_level,
        "worker_exit": close_worker_app,
        "child_exit": mark_worker_dead,
        # Gunicorn >= 25.1 otherwise opens a control socket per user, shared by all servers.
        "control_socket_disable": True,
    }


def run(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int | None = None,
    threads: int | None = None,
    log_level: str = "info",
    ready_line: str | None = None,
) -> None:
    """Serve until interrupted (blocks). See :func:`plan_workers` for the defaults.

    ``ready_line`` is printed once the first worker has loaded the app. When no worker
    can boot, the first one's reason is raised as a :class:`ClipSearchError`.
    """
    workers, threads = plan_workers(settings.store, workers, threads, watch=bool(settings.watch))
    if settings.torch_threads is None and workers > 1:
        # Workers share the CPUs: keep torch from starting one thread per core in each.
        settings = replace(settings, torch_threads=max(1, (os.cpu_count() or 1) // workers))
    requestlog.configure(log_level, settings.log_format)
    metrics_dir = prepare_metrics_dir()
    log.info(
        "serving on http://%s:%d with %d worker(s) x %d thread(s)", host, port, workers, threads
    )
    startup = Startup(ready_line)
    options = gunicorn_options(host, port, workers, threads, log_level)
    options["post_worker_init"] = startup.worker_ready
    master = os.getpid()
    try:
        ClipSearchServer(settings, options, startup).run()
    except SystemExit as exc:
        # A worker is a fork of this process: its exit comes up this stack too, and it
        # must leave as Gunicorn says (the master counts boot failures by exit status).
        if exc.code == WORKER_BOOT_ERROR and os.getpid() == master:
            raise startup.error() from None
        raise
    finally:
        if os.getpid() == master:  # not a worker's exit: the master and the others go on
            metrics_dir.close()
