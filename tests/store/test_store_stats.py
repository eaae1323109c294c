"""`clipsearch store stats`: counts, scroll counts, duplicates and digests that compare any
two stores, the embedded one and a Qdrant server alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clipsearch.cli import main
from clipsearch.store import ClipPoint, clip_id
from clipsearch.store.client import QdrantClientStore
from clipsearch.store.edge import QdrantEdgeStore
from clipsearch.store.stats import store_stats

DIM = 8


def _points(changed: dict[str, object] | None = None) -> list[ClipPoint]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(5):
        windows = rng.normal(size=(i + 1, DIM)).astype(np.float32)
        payload = {"path": f"c{i}.avi", "class": "A", "duration_s": 1.5 * i, "group": i}
        payload["ingested_at"] = f"2026-12-0{i + 1}T00:00:00+00:00"
        out.append(ClipPoint(clip_id(f"c{i}.avi"), windows.mean(0), windows, payload))
    if changed:
        out[2] = ClipPoint(out[2].id, out[2].pooled, out[2].windows, {**out[2].payload, **changed})
    return out


def _edge(path: Path, points: list[ClipPoint]) -> dict[str, object]:
    with QdrantEdgeStore(path) as store:
        store.ensure_collection(DIM)
        store.upsert(points)
        return store_stats(store)


def test_both_adapters_give_the_same_digests(tmp_path: Path) -> None:
    edge = _edge(tmp_path / "edge", _points())
    memory = QdrantClientStore.in_memory()
    memory.ensure_collection(DIM)
    memory.upsert(_points())
    client = store_stats(memory)
    memory.close()
    assert edge == client
    assert edge["consistent"] and edge["videos"]["count"] == 5  # type: ignore[index]
    assert edge["segments"]["scroll_count"] == 15  # type: ignore[index]


def test_the_digest_sees_payload_and_vectors_but_not_ingest_times(tmp_path: Path) -> None:
    base = _edge(tmp_path / "a", _points())
    later = _edge(tmp_path / "b", _points({"ingested_at": "2027-01-01T00:00:00+00:00"}))
    assert later == base
    other = _edge(tmp_path / "c", _points({"class": "B"}))
    assert other["videos"]["digest"] != base["videos"]["digest"]  # type: ignore[index]
    assert other["segments"]["digest"] != base["segments"]["digest"]  # type: ignore[index]
    moved = _points()
    moved[0] = ClipPoint(moved[0].id, moved[0].pooled + 0.01, moved[0].windows, moved[0].payload)
    assert _edge(tmp_path / "d", moved)["videos"] != base["videos"]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edge(tmp_path / "s", _points())
    assert main(["store", "stats", "--store", str(tmp_path / "s"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["videos"]["count"] == doc["videos"]["scroll_count"] == 5
    assert len(doc["videos"]["digest"]) == 64 and doc["videos"]["duplicate_ids"] == []
    assert main(["store", "stats", "--store", str(tmp_path / "s")]) == 0
    assert "consistent" in capsys.readouterr().out
    assert main(["store", "stats", "--store", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("clipsearch: error: no store at")
