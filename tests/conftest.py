"""Shared fixtures: a tiny CLIP checkpoint, stores, and (lazily) a tiny SynthUCF set."""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

PHRASES = [
    "a video of ball bouncing",
    "a video of box spinning",
    "a small red ball bouncing fast on a gradient background",
    "a large blue box spinning slowly on a noise background",
    "a yellow triangle rising on a flat background",
]


def free_port() -> int:
    """A local TCP port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RefusingQdrant:
    """A local HTTP server answering every request 403 "Invalid API key", as a Qdrant
    server with another key does; ``api_keys`` holds the ``api-key`` header of each."""

    url: str
    api_keys: list[str | None] = field(default_factory=list)


@pytest.fixture
def refusing_qdrant() -> Iterator[RefusingQdrant]:
    seen: list[str | None] = []

    class Refuse(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(self.headers.get("api-key"))
            body = json.dumps({"status": {"error": "Invalid API key"}}).encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield RefusingQdrant(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny CLIP saved with ``save_pretrained`` (loads like a hub checkpoint)."""
    import torch

    from clipsearch.architectures import create_model
    from clipsearch.model import save_model
    from training.tokenizer import build_tokenizer

    torch.manual_seed(0)
    tokenizer = build_tokenizer(PHRASES * 4, vocab_size=300)
    encoder = create_model("tiny", tokenizer, model_id="tiny-random")
    return save_model(encoder, tmp_path_factory.mktemp("models") / "tiny-random")


@pytest.fixture
def memory_store() -> Iterator[object]:
    from clipsearch.store.client import QdrantClientStore

    store = QdrantClientStore.in_memory()
    yield store
    store.close()


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SynthUCF build: 4 classes x 8 groups x 1 clip (split 1 trains on group 8)."""
    from clipsearch.data.synth import generate

    root = tmp_path_factory.mktemp("data") / "synthucf"
    generate(root, classes=4, groups=8, clips=1, seed=0, workers=2, moments=False)
    return root
