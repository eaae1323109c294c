"""Serving with Gunicorn: worker sizing, the config file, and a real server process."""

from __future__ import annotations

import os
import runpy
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import free_port
from folders import get_json, phrase_store, start_group, stop_group, wait_until_up

from clipsearch.errors import InvalidInput
from clipsearch.store.base import clip_id
from clipsearch.store.factory import StoreSettings
from webapp.serve import plan_workers, run
from webapp.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "webapp" / "gunicorn_conf.py"
PHRASES = ["ball bouncing", "box spinning", "a yellow triangle rising"]
START_TIMEOUT_S = 30  # generous: importing torch alone takes seconds on a busy machine


def test_embedded_store_gets_one_worker_with_threads() -> None:
    assert plan_workers(StoreSettings(path="var/store")) == (1, 16)
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


def load_conf(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    names = ("CLIPSEARCH_QDRANT_URL", "QDRANT_URL", "CLIPSEARCH_STORE", "CLIPSEARCH_BIND")
    for name in (*names, "CLIPSEARCH_WATCH"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # on_starting prepares the workers' metrics directory: a scratch one, forgotten after
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="clipsearch-test-"))
    return runpy.run_path(str(CONF))


def test_gunicorn_conf_sizes_for_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    edge = load_conf(monkeypatch, CLIPSEARCH_STORE="var/store")
    assert (edge["workers"], edge["threads"], edge["worker_class"]) == (1, 16, "gthread")
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
    assert health.pop("query_batches")["max_batch"] == 32
    assert set(health.pop("store_cache")) == {"videos", "mb", "capacity_mb", "hit_rate"}
    # the fixture's payloads record no model, so there is nothing to compare against
    assert health == {
        "status": "ok",
        "model": "tiny-random",
        "store": "qdrant-edge",
        "clips": 3,
        "store_model": None,
        "min_score": None,
        "image_queries": True,
        "text_dtype": "int8",
        "alias": None,
    }
    status, body = get_json(f"{server}/api/search?q=box+spinning&k=2")
    assert status == 200
    assert body["results"][0]["id"] == clip_id("box spinning")
    assert len(body["results"]) == 2
    status, error = get_json(f"{server}/api/search?q=")
    assert (status, error["error"]["code"]) == (400, "empty_query")
