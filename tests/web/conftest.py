"""The web app under test: the tiny CLIP, a tiny video, an in-memory store, the app, its client."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from clipsearch.model import ClipEncoder, load_model
from clipsearch.search import SearchLimits, SearchService
from clipsearch.store.base import ClipPoint
from clipsearch.store.client import QdrantClientStore
from clipsearch.store.factory import StoreSettings
from webapp import create_app
from webapp.settings import Settings


def write_video(path: Path, *, seconds: float = 1.0, fps: int = 10) -> Path:
    """A tiny MPEG-4 AVI (64x48) with a moving bar, like a UCF101 clip in miniature."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuv420p"
        for i in range(round(seconds * fps)):
            img = np.full((48, 64, 3), 30, np.uint8)
            img[:, (i * 5) % 56 : (i * 5) % 56 + 8] = (240, 180, 20)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v / np.linalg.norm(v), dtype=np.float32)


def make_store(dim: int, points: Sequence[ClipPoint]) -> QdrantClientStore:
    """An in-memory Qdrant store holding ``points``."""
    store = QdrantClientStore.in_memory()
    store.ensure_collection(dim)
    store.upsert(points)
    return store


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for the tiny model with its media cache under ``tmp_path``."""
    memory = StoreSettings(url=":memory:")
    settings = Settings(model="tiny-random", store=memory, media_dir=str(tmp_path / "media"))
    return replace(settings, **overrides)


def make_app(
    settings: Settings, encoder: ClipEncoder, store: Any, *, min_score: float | None = None
) -> Flask:
    """The app on a real ``SearchService`` over ``encoder`` and ``store``, limited as
    ``settings`` say."""
    limits = SearchLimits(max_query_chars=settings.max_query_chars, max_k=settings.max_k)
    app = create_app(settings, search=SearchService(encoder, store, limits, min_score=min_score))
    app.config["TESTING"] = True
    return app


@pytest.fixture(scope="session")
def encoder(tiny_model_dir: Path) -> ClipEncoder:
    """The tiny CLIP with both towers."""
    return load_model(tiny_model_dir, towers="both")


@pytest.fixture(scope="session")
def text_encoder(tiny_model_dir: Path) -> ClipEncoder:
    """The tiny CLIP's text tower alone: an app on it has no image queries."""
    return load_model(tiny_model_dir, towers="text")


@pytest.fixture(scope="module")
def video_seconds() -> float:
    """How long ``video`` runs; a module overrides this fixture for a longer clip."""
    return 1.0


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory, video_seconds: float) -> Path:
    return write_video(tmp_path_factory.mktemp("videos") / "clip.avi", seconds=video_seconds)


@pytest.fixture(scope="module")
def store(encoder: ClipEncoder, points: Sequence[ClipPoint]) -> Iterator[QdrantClientStore]:
    """The module's ``points`` in an in-memory store."""
    with make_store(encoder.dim, points) as memory:
        yield memory


@pytest.fixture
def app_settings(tmp_path: Path) -> Settings:
    """The settings of ``app``; a module overrides this fixture for its own limits."""
    return make_settings(tmp_path)


@pytest.fixture
def app(app_settings: Settings, encoder: ClipEncoder, store: QdrantClientStore) -> Flask:
    return make_app(app_settings, encoder, store)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
