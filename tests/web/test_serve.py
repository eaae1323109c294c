"""Serving with Gunicorn: worker sizing, the config file, and a real server process."""

from __future__ import annotations

import os
import runpy
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import free_port
from folders import get_json, phrase_store, start_group, stop_group, wait_until_up

from clipsearch import text_runtime
from clipsearch.batcher import DEFAULT_MAX_BATCH
from clipsearch.errors import InvalidInput
from clipsearch.search import SearchLimits
from clipsearch.store.base import clip_id
from clipsearch.store.factory import StoreSettings
from webapp.serve import plan_workers, run
from webapp.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "webapp" / "gunicorn_conf.py"
PHRASES = ["ball bouncing", "box spinning", "a yellow triangle rising"]
START_TIMEOUT_S = 30  # generous: importing torch alone takes seconds on a busy machine


def test_embedded_store_gets_one_worker_with_threads() -> None:
    assert plan_workers(StoreSettings(path="var/store")) == (1, 32)
    assert plan_workers(StoreSettings(path="var/store"), threads=8) == (1, 8)


def test_server_store_scales_workers_with_cpus() -> None:
    expected = min(4, os.cpu_count() or 1)
    assert plan_workers(StoreSettings(url="http://qdrant:6333")) == (expected, 2)
    assert plan_workers(StoreSettings(url="http://qdrant:6333"), 3, 1) == (3, 1)


def test_a_server_that_watches_a_folder_runs_one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    server = StoreSettings(url="http://qdrant:6333")
    assert plan_workers(server, watch=True) == (1, 2)
    with pytest.raises(InvalidInput, match="each would watch"):
        plan_workers(server, 2, watch=True)
    conf = load_conf(monkeypatch, QDRANT_URL="http://qdrant:6333", CLIPSEARCH_WATCH="/videos")
    assert conf["workers"] == 1
    with pytest.raises(RuntimeError, match="each would watch"):
        conf["on_starting"](SimpleNamespace(cfg=SimpleNamespace(workers=4)))


@pytest.mark.parametrize(("workers", "threads"), [(2, None), (0, None), (None, 0)])
def test_bad_sizing_is_refused(workers: int | None, threads: int | None) -> None:
    with pytest.raises(InvalidInput):
        plan_workers(StoreSettings(path="var/store"), workers, threads)


def test_run_refuses_several_workers_on_an_edge_store(tmp_path: Path) -> None:
    settings = Settings(model="unused", store=StoreSettings(path=str(tmp_path / "store")))
    with pytest.raises(InvalidInput, match="single-process"):
        run(settings, workers=2)
    assert not (tmp_path / "store").exists()


@pytest.fixture(autouse=True)
def scratch_metrics_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """on_starting prepares the workers' metrics directory: a scratch one per test."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))


def load_conf(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    names = ("CLIPSEARCH_QDRANT_URL", "QDRANT_URL", "CLIPSEARCH_STORE", "CLIPSEARCH_BIND")
    for name in (*names, "CLIPSEARCH_WATCH"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_gunicorn_conf_sizes_for_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    edge = load_conf(monkeypatch, CLIPSEARCH_STORE="var/store")
    assert (edge["workers"], edge["threads"], edge["worker_class"]) == (1, 32, "gthread")
    assert (edge["timeout"], edge["accesslog"], edge["preload_app"]) == (60, None, False)
    assert edge["bind"] == "127.0.0.1:8000"
    server = load_conf(monkeypatch, QDRANT_URL="http://qdrant:6333", CLIPSEARCH_BIND="0.0.0.0:80")
    assert (server["workers"], server["threads"]) == (min(4, os.cpu_count() or 1), 2)
    assert server["bind"] == "0.0.0.0:80"


def test_gunicorn_conf_refuses_several_workers_on_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load_conf(monkeypatch, CLIPSEARCH_STORE="var/store")
    arbiter = SimpleNamespace(cfg=SimpleNamespace(workers=3))
    with pytest.raises(RuntimeError, match="single-process"):
        conf["on_starting"](arbiter)
    conf["on_starting"](SimpleNamespace(cfg=SimpleNamespace(workers=1)))


@pytest.fixture
def edge_store(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return phrase_store(tiny_model_dir, tmp_path / "store", PHRASES)


@pytest.fixture
def server(tiny_model_dir: Path, edge_store: Path, tmp_path: Path) -> Iterator[str]:
    """``webapp.serve.run`` in a child process; yields its base URL and always kills it."""
    port = free_port()
    settings = (
        f"Settings(model={str(tiny_model_dir)!r}, store=StoreSettings(path={str(edge_store)!r}), "
        f"media_dir={str(tmp_path / 'media')!r})"
    )
    code = (
        "from clipsearch.store.factory import StoreSettings\n"
        "from webapp.serve import run\n"
        "from webapp.settings import Settings\n"
        f"run({settings}, port={port}, log_level='warning')\n"
    )
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    log_path = tmp_path / "server.log"
    proc = start_group([sys.executable, "-c", code], log_path, env)  # workers die with it
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/api/health", proc, log_path, "server", START_TIMEOUT_S)
        yield base
    finally:
        stop_group(proc)


def test_gunicorn_serves_search_from_an_edge_store(server: str, edge_store: Path) -> None:
    status, health = get_json(f"{server}/api/health")
    assert status == 200
    assert set(health.pop("query_cache")) == {"size", "capacity", "hits", "misses", "hit_rate"}
    assert health.pop("query_batches")["max_batch"] == DEFAULT_MAX_BATCH
    assert set(health.pop("store_cache")) == {"videos", "mb", "capacity_mb", "hit_rate"}
    # `auto` measures the text runtimes here: which one wins depends on the CPU
    assert health.pop("text_dtype") in text_runtime.candidates()
    # the fixture's payloads record no model, so there is nothing to compare against
    assert health == {
        "status": "ok",
        "model": "tiny-random",
        "store": "qdrant-edge",
        "clips": 3,
        "store_model": None,
        "min_score": None,
        "image_queries": True,
        "alias": None,
    }
    status, body = get_json(f"{server}/api/search?q=box+spinning&k=2")
    assert status == 200
    assert body["results"][0]["id"] == clip_id("box spinning")
    assert len(body["results"]) == 2
    status, error = get_json(f"{server}/api/search?q=")
    assert (status, error["error"]["code"]) == (400, "empty_query")
    # the longest query the API takes, in a script of 3 UTF-8 bytes a character: 4.3 KB
    # of URL once percent-encoded, over Gunicorn's default line limit
    longest = urllib.parse.quote("\u7403" * SearchLimits().max_query_chars)
    status, body = get_json(f"{server}/api/search?k=1&q={longest}")
    assert status == 200 and len(body["results"]) == 1


def children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def serve_argv(model: Path, store: Path, port: int, tmp_path: Path) -> list[str]:
    return [
        sys.executable, "-m", "clipsearch.cli", "serve", "--model", str(model),
        "--store", str(store), "--port", str(port), "--media-dir", str(tmp_path / "media"),
    ]  # fmt: skip


def test_a_worker_that_cannot_start_stops_the_server_with_its_reason(
    tiny_model_dir: Path, edge_store: Path, tmp_path: Path
) -> None:
    import subprocess

    from clipsearch.store.edge import QdrantEdgeStore

    held = QdrantEdgeStore(str(edge_store))  # this process holds the store: no worker can
    try:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
        argv = serve_argv(tiny_model_dir, edge_store, free_port(), tmp_path)
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    finally:
        held.close()
    assert done.returncode == 1  # Gunicorn's boot-error status is not the CLI's
    assert "serving" not in done.stdout  # nothing announced before a worker was ready
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"clipsearch: error: store {edge_store} is in use by another process "
        "(Qdrant Edge is single-process: stop the server or use a Qdrant server URL)"
    )
    assert "Traceback" not in done.stderr


def test_a_reload_keeps_serving_and_counting(
    tiny_model_dir: Path, edge_store: Path, tmp_path: Path
) -> None:
    """SIGHUP (Gunicorn's reload) replaces the worker; the old one leaving must not take the
    master's metrics directory with it (it once did, and the new worker could not boot)."""
    import signal

    port = free_port()
    log = tmp_path / "serve.log"
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    proc = start_group(serve_argv(tiny_model_dir, edge_store, port, tmp_path), log, env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/api/health", proc, log, "clipsearch serve", START_TIMEOUT_S)
        first = children(proc.pid)
        assert len(first) == 1
        os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (children(proc.pid) and children(proc.pid).isdisjoint(first)):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no new worker:\n{log.read_text()}"
            time.sleep(0.2)
        wait_until_up(f"{base}/api/health", proc, log, "clipsearch serve", START_TIMEOUT_S)
        status, body = get_json(f"{base}/api/search?q=box+spinning&k=1")
        assert status == 200 and body["results"][0]["id"] == clip_id("box spinning")
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            assert 'route="/api/search",status="200"} 1.0' in response.read().decode()
        assert proc.poll() is None
    finally:
        stop_group(proc, 10.0)
    assert log.read_text().count("serving http://") == 1  # announced once, not per worker
