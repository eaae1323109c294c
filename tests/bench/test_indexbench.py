"""The FAISS-exact vs Qdrant HNSW benchmark: data generator, metrics, a small run, the CLI."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from clipsearch.bench import index as ib
from clipsearch.bench.common import parse_int_list
from clipsearch.cli.bench_index import add_bench_index, cmd_bench_index
from clipsearch.cli.main import main
from clipsearch.errors import InvalidInput
from clipsearch.store import ClipPoint, VectorExporter, clip_id
from clipsearch.store.client import QdrantClientStore
from clipsearch.store.edge import QdrantEdgeStore

SMALL = ib.SynthSpec(dim=32)


def small_points(n: int, dim: int = 16, seed: int = 0) -> list[ClipPoint]:
    rng = np.random.default_rng(seed)
    pooled = ib.normalize(rng.normal(size=(n, dim)))
    return [
        ClipPoint(clip_id(f"c/{i}.avi"), pooled[i], pooled[i][None, :], {"path": f"c/{i}.avi"})
        for i in range(n)
    ]


# --------------------------------------------------------------------------- data


def test_synthetic_is_seeded_unit_norm_and_held_out() -> None:
    base, queries = ib.synthetic_embeddings(3000, 200, SMALL, seed=7)
    again, again_q = ib.synthetic_embeddings(3000, 200, SMALL, seed=7)
    other, _ = ib.synthetic_embeddings(3000, 200, SMALL, seed=8)
    assert base.shape == (3000, 32) and queries.shape == (200, 32)
    assert base.dtype == np.float32
    np.testing.assert_array_equal(base, again)
    np.testing.assert_array_equal(queries, again_q)
    assert not np.allclose(base, other)
    np.testing.assert_allclose(np.linalg.norm(base, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    # Queries are fresh draws, never copies of base points.
    assert float((queries @ base.T).max()) < 0.9999


def test_synthetic_is_clustered_and_low_rank_unlike_noise() -> None:
    spec = ib.SynthSpec(dim=128, rank=16, clusters=64)
    base, queries = ib.synthetic_embeddings(3000, 100, spec, seed=0)
    rng = np.random.default_rng(0)
    noise = ib.normalize(rng.normal(size=(3000, 128)))
    noise_queries = ib.normalize(rng.normal(size=(100, 128)))
    rank = spec.resolved_rank()
    shaped = ib.embedding_stats(base, rank=rank)
    uniform = ib.embedding_stats(noise, rank=rank)
    assert shaped["pca_top_rank_variance_share"] > 0.7
    assert uniform["pca_top_rank_variance_share"] < 0.3
    # A shared direction, as CLIP embeddings have: random pairs are positively correlated.
    assert 0.05 < shaped["mean_pairwise_cosine"] < 0.5
    assert abs(uniform["mean_pairwise_cosine"]) < 0.02
    # Neighbourhoods exist: a query's nearest base vector is much closer than for noise.
    nearest = (queries @ base.T).max(axis=1).mean()
    nearest_noise = (noise_queries @ noise.T).max(axis=1).mean()
    assert nearest > nearest_noise + 0.2


def test_synthetic_rejects_bad_specs() -> None:
    with pytest.raises(InvalidInput, match="rank"):
        ib.synthetic_embeddings(10, 2, ib.SynthSpec(dim=8, rank=16))
    with pytest.raises(InvalidInput, match="dim"):
        ib.synthetic_embeddings(10, 2, ib.SynthSpec(dim=0))
    with pytest.raises(InvalidInput, match="seed"):
        ib.synthetic_embeddings(10, 2, SMALL, seed=-1)


# --------------------------------------------------------------------------- metrics


def test_recall_at_k_by_hand() -> None:
    truth = np.array([[0, 1, 2], [3, 4, 5]])
    assert ib.recall_at_k([[0, 1, 2], [5, 4, 3]], truth, 3) == 1.0
    assert ib.recall_at_k([[0, 1, 9], [5, 8, 7]], truth, 3) == pytest.approx(3 / 6)
    assert ib.recall_at_k([[2], []], truth, 3) == pytest.approx(1 / 6)  # short lists miss
    assert ib.recall_at_k([[9, 0], [3, 9]], truth, 1) == pytest.approx(1 / 2)  # top-1 only
    with pytest.raises(InvalidInput):
        ib.recall_at_k([[0, 1, 2]], truth, 3)
    with pytest.raises(InvalidInput):
        ib.recall_at_k([[0], [3]], truth, 4)


def test_latency_summary() -> None:
    s = ib.latency_summary([0.001] * 19 + [0.1], wall_s=0.2)
    assert s["p50_ms"] == pytest.approx(1.0)
    assert s["p95_ms"] > 1.0
    assert s["qps"] == pytest.approx(100.0)


def test_faiss_exact_matches_numpy() -> None:
    base, queries = ib.synthetic_embeddings(1500, 40, SMALL, seed=1)
    truth, metrics = ib.faiss_exact(base, queries, 10, latency_queries=10)
    expected = np.argsort(-(queries @ base.T), axis=1)[:, :10]
    assert ib.recall_at_k(truth, expected, 10) == 1.0
    assert metrics["latency_queries"] == 10
    assert metrics["p50_ms"] > 0


# --------------------------------------------------------------------------- store export


@pytest.mark.parametrize("kind", ["edge", "client"])
def test_export_vectors(kind: str, tmp_path: Path) -> None:
    store = (
        QdrantEdgeStore(tmp_path / "s", payload_indexes=())
        if kind == "edge"
        else QdrantClientStore.in_memory("bench")
    )
    with store:
        assert isinstance(store, VectorExporter)
        ids, vectors = store.export_vectors()
        assert ids == [] and vectors.shape[0] == 0
        points = small_points(150)
        store.ensure_collection(16)
        store.upsert(points)
        ids, vectors = store.export_vectors(batch=32)  # several scroll pages
        assert sorted(ids) == sorted(p.id for p in points) and len(set(ids)) == 150
        assert vectors.shape == (150, 16) and vectors.dtype == np.float32
        by_id = {p.id: p.pooled for p in points}
        np.testing.assert_allclose(vectors, np.stack([by_id[i] for i in ids]), atol=1e-6)
        with pytest.raises(InvalidInput):
            store.export_vectors(batch=0)


# --------------------------------------------------------------------------- a small run


def test_small_run_end_to_end(tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    with QdrantEdgeStore(store_path, payload_indexes=()) as store:
        store.ensure_collection(16)
        store.upsert(small_points(300))
    cfg = ib.BenchConfig(ef=(10, 256), warmup=2, workdir=str(tmp_path))
    result = ib.run_benchmark(
        [2000], n_queries=60, spec=SMALL, cfg=cfg, seed=3, store=store_path, command="test"
    )
    demo, synth = result["datasets"]
    assert synth["faiss_exact"]["latency_omp_threads"] == 1  # single-thread by default
    assert (demo["name"], demo["n"], demo["dim"]) == ("demo", 300, 16)
    assert (synth["name"], synth["n"], synth["dim"]) == ("synthetic-2k", 2000, 32)
    for d in (demo, synth):
        variants = [v["variant"] for v in d["qdrant"]]
        assert variants == ["float32", "int8", "int8-os2"]
        for v in d["qdrant"]:
            # The graph was built and searched (not a plain scan).
            assert v["build"]["indexed_vectors"] == d["n"]
            assert v["exact_check"]["recall"] >= 0.99
            assert [r["ef"] for r in v["search"]] == [10, 256]
            for r in v["search"]:
                assert 0.0 <= r["recall"] <= 1.0
                assert 0 < r["p50_ms"] <= r["p95_ms"]
                assert r["qps"] > 0
        float32 = d["qdrant"][0]["search"]
        assert float32[-1]["recall"] >= 0.99  # ef=256 is near-exhaustive here
        # The headline is the smallest ef reaching the target.
        best = d["headline"]["float32"]
        assert best is not None
        assert best["ef"] == min(r["ef"] for r in float32 if r["recall"] >= 0.99)
    assert not any(p.name.startswith("clipsearch-bench-") for p in tmp_path.iterdir())

    paths = ib.write_outputs(result, tmp_path / "out")
    loaded = json.loads(paths["json"].read_text())
    assert loaded["datasets"][1]["headline"] == synth["headline"]
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = paths["md"].read_text()
    assert "| synthetic-2k | 2,000 | Qdrant float32 |" in table
    assert "FAISS exact" in table


def test_missing_store_is_a_note(tmp_path: Path) -> None:
    cfg = ib.BenchConfig(ef=(32,), int8=False, warmup=0, workdir=str(tmp_path))
    result = ib.run_benchmark(
        [300], n_queries=10, spec=ib.SynthSpec(dim=8), cfg=cfg, store=tmp_path / "none"
    )
    assert [d["name"] for d in result["datasets"]] == ["synthetic-300"]
    assert "skipped" in result["notes"][0]
    assert [v["variant"] for v in result["datasets"][0]["qdrant"]] == ["float32"]


# --------------------------------------------------------------------------- CLI


def test_parse_int_list() -> None:
    assert parse_int_list("100k, 1M,2500", "--sizes") == (100_000, 1_000_000, 2500)
    for bad in ("", "10x", "0", "-5", "1.5k", "k"):
        with pytest.raises(InvalidInput):
            parse_int_list(bad, "--sizes")


@pytest.mark.parametrize(
    "argv",
    [
        ["--sizes", "abc"],
        ["--sizes", "1000", "--ef", "16,0"],
        ["--sizes", "1000", "--dim", "0"],
        ["--sizes", "1000", "--queries", "0"],
        ["--sizes", "1000", "--seed", "-1"],
        ["--sizes", "5", "-k", "10"],
        ["--sizes", "1000", "--oversampling", "0.5"],
        ["--sizes", "1000", "--search-threads", "-1"],
        ["--sizes", "none", "--no-store"],
        ["--sizes", "none", "--store", "no/such/store"],  # nothing measured: nothing written
        ["--sizes", "20000000"],
    ],
)
def test_cli_bad_input_exits_2(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["bench-index", *argv, "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("clipsearch: error: ") and "\n" not in err
    assert not out.exists()


def test_cli_small_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench"
    argv = ["--no-store", "--sizes", "600", "--dim", "16", "--queries", "20", "--ef", "16,64"]
    argv += ["--no-int8", "--workdir", str(tmp_path), "--out", str(out), "-q"]
    assert main(["bench-index", *argv]) == 0
    assert "synthetic-600: FAISS exact" in capsys.readouterr().out
    result = json.loads((out / "index.json").read_text())
    assert result["command"].startswith("clipsearch bench-index --no-store --sizes 600 --dim 16")
    names = {"index.json", "index.png", "index.md", "metrics.json", "recall_latency.csv"}
    assert {p.name for p in out.iterdir()} == names
    metrics = json.loads((out / "metrics.json").read_text())["synthetic-600"]
    best = result["datasets"][0]["headline"]["float32"]
    assert metrics["n"] == 600 and metrics["faiss_exact_p50_ms"] > 0
    if best is None:
        assert metrics["qdrant_float32_recall"] is None
    else:
        assert metrics["qdrant_float32_recall"] == best["recall"] >= 0.99
    with (out / "recall_latency.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["variant"], int(r["ef"])) for r in rows] == [("float32", 16), ("float32", 64)]
    sweep = result["datasets"][0]["qdrant"][0]["search"]
    assert [float(r["recall"]) for r in rows] == [point["recall"] for point in sweep]


def test_cli_subcommand_wiring() -> None:
    parser = argparse.ArgumentParser(prog="clipsearch")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench_index(sub, common)
    args = parser.parse_args(["bench-index", "--sizes", "12q", "-q"])
    assert args.func is cmd_bench_index
    with pytest.raises(InvalidInput, match="--sizes"):
        args.func(args)
