"""Zero-downtime re-embedding: versioned collections behind an alias, on both adapters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipsearch.cli import main
from clipsearch.errors import InvalidInput, StoreError
from clipsearch.live import LiveSearch
from clipsearch.search import SearchService
from clipsearch.store import ClipPoint, clip_id
from clipsearch.store.aliases import (
    ClientCatalog,
    EdgeCatalog,
    ModelRef,
    check_alias,
    version_name,
)
from clipsearch.store.client import QdrantClientStore
from clipsearch.store.edge import QdrantEdgeStore
from clipsearch.store.factory import StoreSettings
from ingest.versioned import VersionBuild, plan_version
from webapp import create_app
from webapp.settings import Settings

DIM = 8
WHEN = datetime(2026, 12, 2, 10, 15, 0, tzinfo=UTC)


def _point(name: str, seed: int) -> ClipPoint:
    rng = np.random.default_rng(seed)
    windows = rng.normal(size=(3, DIM)).astype(np.float32)
    return ClipPoint(clip_id(name), windows.mean(0), windows, {"path": name, "model": "m"})


@pytest.fixture
def other_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny checkpoint (another model id and other weights)."""
    import torch
    from conftest import PHRASES

    from clipsearch.architectures import create_model
    from clipsearch.model import save_model
    from training.tokenizer import build_tokenizer

    torch.manual_seed(1)
    tokenizer = build_tokenizer(PHRASES * 4, vocab_size=300)
    encoder = create_model("tiny", tokenizer, model_id="tiny-other")
    return save_model(encoder, tmp_path_factory.mktemp("models") / "tiny-other")


# ------------------------------------------------------------------------------ names


def test_version_names_and_alias_checks() -> None:
    assert version_name("videos", "openai/clip-vit-base-patch32", WHEN) == (
        "videos__openai-clip-vit-base-patch32__20261202T101500"
    )
    for bad in ("", "a__b", "has space", "-x", "x_moments", "é"):
        with pytest.raises(InvalidInput, match="alias"):
            check_alias(bad)


# ------------------------------------------------------------------------------ catalogs


@pytest.fixture(params=["edge", "client"])
def catalog_env(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Any:  # (catalog, open a version's store)
    if request.param == "edge":
        catalog = EdgeCatalog(tmp_path / "stores")
        (tmp_path / "stores").mkdir()

        def open_version(name: str) -> Any:
            return QdrantEdgeStore(tmp_path / "stores" / name)

        yield catalog, open_version
    else:
        base = QdrantClientStore.in_memory("unused")
        catalog_c = ClientCatalog(base.client)

        def open_client(name: str) -> Any:
            return base.with_collection(name)

        yield catalog_c, open_client
        base.close()


def _fill(open_version: Callable[[str], Any], name: str, n: int, seed: int) -> None:
    store = open_version(name)
    store.ensure_collection(DIM)
    store.upsert([_point(f"{name}/{i}", seed + i) for i in range(n)])
    store.close()


def test_swap_points_the_alias_at_one_version_at_a_time(catalog_env: Any) -> None:
    catalog, open_version = catalog_env
    v1 = version_name("videos", "m1", WHEN)
    v2 = version_name("videos", "m2", WHEN.replace(hour=11))
    assert catalog.target("videos") is None
    _fill(open_version, v1, 2, 0)
    _fill(open_version, v2, 3, 10)
    assert catalog.versions("videos") == [v1, v2]
    assert catalog.swap("videos", v1) is None
    assert catalog.target("videos") == v1
    assert catalog.swap("videos", v2) == v1
    assert catalog.target("videos") == v2
    catalog.write_model(v2, ModelRef("/models/m2", "m2"))
    assert catalog.read_model(v2) == ModelRef("/models/m2", "m2")
    assert catalog.read_model(v1) is None
    with pytest.raises(StoreError, match="no"):
        catalog.swap("videos", "videos__m3__20261202T120000")
    assert catalog.target("videos") == v2
    catalog.drop(v1)
    assert catalog.versions("videos") == [v2]
    store = open_version(v2)
    assert store.count() == 3  # the served version is untouched
    store.close()


def test_plan_resumes_an_unfinished_build_of_the_same_model(catalog_env: Any) -> None:
    catalog, open_version = catalog_env
    first = plan_version(catalog, "videos", "m1", WHEN)
    assert not first.resumed and first.current is None
    _fill(open_version, first.version, 1, 0)  # filled, not swapped: unfinished
    again = plan_version(catalog, "videos", "m1", WHEN.replace(hour=12))
    assert again.resumed and again.version == first.version
    other = plan_version(catalog, "videos", "m2", WHEN.replace(hour=12))
    assert not other.resumed and other.version != first.version
    catalog.write_model(first.version, ModelRef("m1", "m1"))
    catalog.swap("videos", first.version)
    fresh = plan_version(catalog, "videos", "m1", WHEN.replace(hour=13))
    assert not fresh.resumed and fresh.current == first.version


def test_edge_drop_waits_for_the_server_to_let_go(tmp_path: Path) -> None:
    catalog = EdgeCatalog(tmp_path)
    name = version_name("videos", "m1", WHEN)
    served = QdrantEdgeStore(tmp_path / name)
    served.ensure_collection(DIM)
    with pytest.raises(StoreError, match="still open"):
        catalog.drop(name)
    assert (tmp_path / name).is_dir()
    served.close()
    catalog.drop(name)
    assert not (tmp_path / name).exists() and list(tmp_path.iterdir()) == []


def test_edge_alias_needs_a_folder_of_versions(tmp_path: Path) -> None:
    store = QdrantEdgeStore(tmp_path / "store")
    store.ensure_collection(DIM)
    store.close()
    with pytest.raises(InvalidInput, match="not a folder of collections"):
        EdgeCatalog(tmp_path / "store")
    (tmp_path / "stores" / "videos").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="not an alias link"):
        EdgeCatalog(tmp_path / "stores").target("videos")


def test_client_alias_name_taken_by_a_collection(memory_store: Any) -> None:
    memory_store.ensure_collection(DIM)  # the collection "clips"
    with pytest.raises(InvalidInput, match="is a collection, not an alias"):
        ClientCatalog(memory_store.client).target("clips")


# ------------------------------------------------------------------------------ no downtime


class Hammer:
    """Searches ``search()`` from a thread until stopped; records every outcome."""

    def __init__(self, search: Callable[[], tuple[int, Any]]):
        self.search = search
        self.outcomes: list[tuple[float, int, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            status, answer = self.search()
            self.outcomes.append((time.monotonic(), status, answer))

    def __enter__(self) -> Hammer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def between(self, start: float, end: float) -> list[tuple[float, int, Any]]:
        return [o for o in self.outcomes if start <= o[0] <= end]


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_app_keeps_answering_while_a_new_models_collection_is_built_edge(
    tmp_path: Path,
    tiny_model_dir: Path,
    other_model_dir: Path,
    tiny_synth: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stores = tmp_path / "stores"
    media = str(tmp_path / "media")
    common = ["--store", str(stores), "--alias", "videos", "--media-dir", media, "-q"]
    assert main(["ingest", str(tiny_synth), "--model", str(tiny_model_dir), *common]) == 0
    first = (stores / "videos").resolve().name
    assert first.startswith("videos__tiny-random__") and "alias 'videos' ->" in (
        capsys.readouterr().out
    )

    # the app is started with the other model: the collection's recorded one wins
    settings = Settings(
        model=str(other_model_dir),
        store=StoreSettings(path=str(stores / "videos")),
        media_dir=media,
        text_dtype="fp32",
        image_search=False,
        alias_check_s=0.1,
    )
    app = create_app(settings)
    client = app.test_client()
    assert client.get("/api/health").get_json()["model"] == "tiny-random"

    def search() -> tuple[int, Any]:
        response = client.get("/api/search?q=ball+bouncing&k=3&min_score=-1")
        results = response.get_json().get("results") or []
        top = (results[0]["id"], round(results[0]["score"], 4)) if results else None
        return response.status_code, top

    try:
        with Hammer(search) as hammer:
            _wait_for(lambda: len(hammer.outcomes) >= 3)
            old_answer = hammer.outcomes[0][2]
            started = time.monotonic()
            argv = ["ingest", str(tiny_synth), "--model", str(other_model_dir), *common]
            assert main([*argv, "--drop-old"]) == 0
            built = time.monotonic()
            _wait_for(lambda: client.get("/api/health").get_json()["model"] == "tiny-other")
            _wait_for(lambda: len(hammer.outcomes) >= 3 + len(hammer.between(0, built)))
        new_answer = hammer.outcomes[-1][2]
        during = hammer.between(started, built)
        assert len(during) >= 3, "the app answered while the new collection was built"
        assert {status for _, status, _ in hammer.outcomes} == {200}
        assert old_answer is not None and new_answer is not None and old_answer != new_answer
        # every answer came from one model and its own collection, never a mix, and once
        # the new one answered the old one never did again
        answers = [answer for _, _, answer in hammer.outcomes]
        switch = answers.index(new_answer)
        assert set(answers[:switch]) == {old_answer} and set(answers[switch:]) == {new_answer}
        health = client.get("/api/health").get_json()
        second = (stores / "videos").resolve().name
        assert second.startswith("videos__tiny-other__")
        assert health["alias"] == {
            "alias": "videos",
            "collection": second,
            "switches": 1,
            "error": None,
        }
        assert health["store_model"] == "tiny-other" and health["clips"] == 32
        # the info series names the model served now; the one before drops to 0
        from prometheus_client.parser import text_string_to_metric_families

        scrape = client.get("/metrics").get_data(as_text=True)
        info = {
            sample.labels["model"]: sample.value
            for family in text_string_to_metric_families(scrape)
            for sample in family.samples
            if sample.name == "clipsearch_info" and sample.labels["store"] == "edge"
        }
        assert info["tiny-other"] == 1 and info["tiny-random"] == 0
        out = capsys.readouterr().out
        assert f"dropped {first}" in out
        assert not (stores / first).exists()
    finally:
        from webapp.services import close_app

        close_app(app)


def test_live_search_follows_a_qdrant_alias(tiny_model_dir: Path, other_model_dir: Path) -> None:
    from clipsearch.model import load_model

    base = QdrantClientStore.in_memory("videos")
    encoders = {m.model_id: m for m in (load_model(tiny_model_dir), load_model(other_model_dir))}
    clips = ["a video of ball bouncing", "a video of box spinning"]

    def build(model_id: str) -> None:
        encoder = encoders[model_id]
        build = VersionBuild.on_client(base, "videos", model_id)
        build.store.ensure_collection(encoder.dim)
        vectors = encoder.encode_text(clips)
        build.store.upsert(
            [
                ClipPoint(clip_id(t), v, v[None, :], {"path": t, "model": model_id})
                for t, v in zip(clips, vectors, strict=True)
            ]
        )
        build.finish(ModelRef(model_id, model_id))

    build("tiny-random")
    catalog = ClientCatalog(base.client)

    def rebuild(name: str, model: ModelRef | None, now: SearchService) -> SearchService:
        assert model is not None
        return SearchService(encoders[model.model_id], base.with_collection(name))

    first = catalog.target("videos")
    assert first is not None
    live = LiveSearch(
        SearchService(encoders["tiny-random"], base.with_collection(first)),
        follow=(catalog, "videos"),
        collection=first,
        rebuild=rebuild,
        check_s=0,
    )
    held = live.acquire()  # a request in flight across the switch
    build("tiny-other")
    assert live.check() and not live.check()
    assert live.current.model_id == "tiny-other"
    assert live.current.store_model() == "tiny-other"
    # the old service still answers its request, then is closed on release
    assert held.search("ball bouncing", 1, min_score=-1.0).results[0].payload["model"] == (
        "tiny-random"
    )
    live.release(held)
    with pytest.raises(StoreError, match="closed"):
        held.store.count()
    assert live.stats() == {
        "alias": "videos",
        "collection": catalog.target("videos"),
        "switches": 1,
        "error": None,
    }
    live.close()
    base.close()


def test_ingest_alias_flag_checks(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["ingest", str(tiny_synth), "--model", str(tiny_model_dir), "-q"]
    assert main([*base, "--store", str(tmp_path / "s"), "--drop-old"]) == 2
    assert "only apply with --alias" in capsys.readouterr().err
    assert main([*base, "--store", str(tmp_path / "s"), "--alias", "v", "--shard", "0/2"]) == 2
    assert "--alias with --shard is not supported" in capsys.readouterr().err
    assert main([*base, "--store", str(tmp_path / "s"), "--alias", "bad__name"]) == 2
    assert "alias 'bad__name' must be" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
