"""Store outages with real sockets, no mocks: a port that refuses connections and a
server that accepts and never answers. The API answers 503 with Retry-After and the one
error shape, /api/health reports degraded, and ingest retries with backoff, then stops
with a message that says how to resume."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RefusingQdrant, free_port
from flask.testing import FlaskClient

from clipsearch.data.collection import load_collection
from clipsearch.errors import StoreUnavailable
from clipsearch.model import load_model
from clipsearch.pipeline.runner import IngestOptions, ingest
from clipsearch.store.factory import StoreSettings, open_store
from webapp import create_app
from webapp.settings import Settings


@pytest.fixture
def stalled() -> Iterator[str]:
    """A server that accepts connections and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


def _app(tiny_model_dir: Path, tmp_path: Path, url: str) -> FlaskClient:
    settings = Settings(
        model=str(tiny_model_dir),
        store=StoreSettings(url=url, collection="clips", timeout_s=1),
        media_dir=str(tmp_path / "media"),
        text_dtype="fp32",
        image_search=False,
        alias_check_s=0,
    )
    return create_app(settings).test_client()


def _assert_unavailable(client: FlaskClient) -> None:
    started = time.monotonic()
    response = client.get("/api/search?q=ball+bouncing")
    assert time.monotonic() - started < 15
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == "store_unavailable"
    assert "Qdrant" in body["error"]["message"]
    health = client.get("/api/health")
    assert health.status_code == 503 and health.headers["Retry-After"] == "5"
    assert health.get_json()["status"] == "degraded"
    page = client.get("/?q=ball+bouncing")
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"


def test_refused_connections(tiny_model_dir: Path, tmp_path: Path) -> None:
    _assert_unavailable(_app(tiny_model_dir, tmp_path, f"http://127.0.0.1:{free_port()}"))


@pytest.mark.slow
def test_a_store_that_never_answers(tiny_model_dir: Path, tmp_path: Path, stalled: str) -> None:
    _assert_unavailable(_app(tiny_model_dir, tmp_path, stalled))


def test_ingest_retries_with_backoff_then_says_how_to_resume(
    tiny_model_dir: Path, tiny_synth: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(StoreSettings(url=f"http://127.0.0.1:{free_port()}", timeout_s=1))
    encoder = load_model(tiny_model_dir, towers="vision")
    options = IngestOptions(store_retries=4, retry_base_s=0.05, workers=1)
    started = time.monotonic()
    gave_up = r"gave up after 4 attempts .* rerun the same"
    with (
        caplog.at_level(logging.WARNING, logger="clipsearch.pipeline.runner"),
        pytest.raises(StoreUnavailable, match=gave_up),
    ):
        ingest(load_collection(tiny_synth), encoder, store, options)
    waits = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(waits) == 3
    assert [w.split("retrying create the collection ")[1][:8] for w in waits] == [
        "in 0.1 s",
        "in 0.1 s",
        "in 0.2 s",
    ]
    assert time.monotonic() - started >= 0.35  # 0.05 + 0.1 + 0.2 s of backoff
    store.close()


def test_qdrant_api_key_is_sent_and_a_refused_one_is_named(
    tiny_model_dir: Path, tmp_path: Path, refusing_qdrant: RefusingQdrant
) -> None:
    settings = Settings(
        model=str(tiny_model_dir),
        store=StoreSettings(
            url=refusing_qdrant.url, collection="clips", api_key="k-123", timeout_s=2
        ),
        media_dir=str(tmp_path / "media"),
        text_dtype="fp32",
        image_search=False,
        alias_check_s=0,
    )
    response = create_app(settings).test_client().get("/api/search?q=ball")
    assert response.status_code == 503
    assert "check the API key" in response.get_json()["error"]["message"]
    seen = refusing_qdrant.api_keys
    assert seen and set(seen) == {"k-123"}  # passed through from the settings
