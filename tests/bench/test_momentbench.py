"""The per-video (A) vs per-window (B) moment benchmark: data, ground truth, both designs
and the shipped store (product)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from clipsearch.bench import moments as mb
from clipsearch.cli.bench_moments import add_bench_moments, cmd_bench_moments
from clipsearch.errors import InvalidInput

N, DIM, Q, K = 60, 32, 10, 10
SPEC = mb.MomentSpec(dim=DIM)
CFG = mb.BenchConfig(k=K, warmup=2)


@pytest.fixture(scope="module")
def data() -> mb.MomentData:
    return mb.synthetic_moments(N, Q, SPEC, seed=3)


@pytest.fixture(scope="module")
def truth(data: mb.MomentData) -> mb.Truth:
    return mb.exact_moments(data, K)


@pytest.fixture(scope="module")
def design_a(data: mb.MomentData, tmp_path_factory: pytest.TempPathFactory) -> Iterator[mb.DesignA]:
    design = mb.DesignA(tmp_path_factory.mktemp("momentbench") / "a", data, CFG)
    yield design
    design.close()


@pytest.fixture(scope="module")
def product(data: mb.MomentData, tmp_path_factory: pytest.TempPathFactory) -> Iterator[mb.Product]:
    design = mb.Product(tmp_path_factory.mktemp("momentbench") / "product", data, CFG)
    yield design
    design.close()


@pytest.fixture(scope="module")
def design_b(data: mb.MomentData, tmp_path_factory: pytest.TempPathFactory) -> Iterator[mb.DesignB]:
    design = mb.DesignB(tmp_path_factory.mktemp("momentbench") / "b", data, CFG)
    yield design
    design.close()


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


# --------------------------------------------------------------------------- data


def test_synthetic_moments_are_seeded_unit_and_shaped(data: mb.MomentData) -> None:
    again = mb.synthetic_moments(N, Q, SPEC, seed=3)
    other = mb.synthetic_moments(N, Q, SPEC, seed=4)
    np.testing.assert_array_equal(data.windows, again.windows)
    np.testing.assert_array_equal(data.queries, again.queries)
    assert data.windows.shape != other.windows.shape or not np.allclose(data.windows, other.windows)
    assert data.n_videos == N and data.dim == DIM and data.queries.shape == (Q, DIM)
    assert data.offsets[0] == 0 and data.offsets[-1] == len(data.windows)
    counts = data.counts
    assert counts.min() >= SPEC.short_windows[0] and counts.max() <= SPEC.max_windows
    assert (counts[data.long] >= SPEC.long_windows[0]).all()
    for arr in (data.windows, data.pooled, data.queries):
        assert arr.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-5)
    # Structure: a query scores its own class's videos far above the rest.
    best = np.maximum.reduceat(data.queries @ data.windows.T, data.offsets[:-1], axis=1)
    own = data.video_class[None, :] == data.query_class[:, None]
    assert best[own].mean() > best[~own].mean() + 0.2
    assert data.times(0) == [[j * 1.0, j * 1.0 + 2.0] for j in range(int(counts[0]))]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInput):
        mb.MomentSpec(dim=0).validate()
    with pytest.raises(InvalidInput):
        mb.MomentSpec(long_windows=(10, 5)).validate()
    with pytest.raises(InvalidInput):
        mb.BenchConfig(prefetch=()).validate()
    with pytest.raises(InvalidInput):
        mb.BenchConfig(target_recall=1.5).validate()
    with pytest.raises(InvalidInput):
        mb.parse_int_list("10,x", "--videos")
    assert mb.parse_int_list("10k, 1000", "--videos") == (10_000, 1000)


# --------------------------------------------------------------------------- ground truth


def hand_built() -> mb.MomentData:
    """Video 0's middle window is the query itself; video 1's only window is close;
    video 2's pooled vector beats video 0's, but none of its windows is close."""
    e = np.eye(4, dtype=np.float32)
    q = unit(1, 0, 0, 0)
    videos = [
        np.stack([e[1], e[0], e[2]]),  # best window 1, score 1.0
        unit(0.9, 0.1, 0, 0)[None, :],  # best window 0, score ~0.994
        np.stack([unit(0.5, 1, 0, 0), unit(0.5, 0, 1, 0), unit(0.5, 0, 0, 1)]),  # ~0.447
        np.stack([e[3], unit(0.6, 0, 0, 1)]),  # best window 1, ~0.514
    ]
    return mb.from_videos(videos, q[None, :])


def test_exact_ground_truth_on_a_hand_built_case() -> None:
    data = hand_built()
    truth = mb.exact_moments(data, 3)
    assert truth.videos.tolist() == [[0, 1, 3]]
    assert truth.windows.tolist() == [[1, 0, 1]]
    np.testing.assert_allclose(
        truth.scores[0], [1.0, 0.9 / np.hypot(0.9, 0.1), 0.6 / np.hypot(0.6, 1)], atol=1e-6
    )
    # What design A's prefetch sees: by pooled vector, video 2 ranks above video 0.
    pooled = data.pooled @ data.queries[0]
    assert pooled[2] > pooled[0]
    # k beyond the collection is capped.
    assert mb.exact_moments(data, 10).videos.shape == (1, 4)


def test_group_best_keeps_each_videos_first_hit() -> None:
    points = [(7, 2, 0.9), (7, 3, 0.8), (1, 0, 0.7), (4, 5, 0.6), (1, 1, 0.5)]
    assert mb.group_best(points, 2) == [mb.Found(7, 2, 0.9), mb.Found(1, 0, 0.7)]
    assert [f.video for f in mb.group_best(points, 10)] == [7, 1, 4]


def test_evaluate_counts_videos_windows_and_top1() -> None:
    data = hand_built()
    truth = mb.exact_moments(data, 2)  # videos 0 (window 1), 1 (window 0)
    perfect = [[mb.Found(0, 1, 1.0), mb.Found(1, 0, 0.99)]]
    wrong_window = [[mb.Found(0, 2, 1.0), mb.Found(3, 1, 0.5)]]
    got = mb.evaluate(perfect, truth, data, 2)
    assert got["recall"] == 1.0 and got["segment_accuracy"] == 1.0 and got["top1_moment"] == 1.0
    got = mb.evaluate(wrong_window, truth, data, 2)
    assert got["recall"] == 0.5 and got["segment_accuracy"] == 0.0 and got["top1_moment"] == 0.0
    assert mb.evaluate([[]], truth, data, 2)["recall"] == 0.0
    with pytest.raises(InvalidInput):
        mb.evaluate([], truth, data, 2)


# --------------------------------------------------------------------------- the designs


def check_shape(found: list[mb.Found], data: mb.MomentData) -> None:
    assert len(found) == K
    assert len({f.video for f in found}) == K
    scores = [f.score for f in found]
    assert scores == sorted(scores, reverse=True)
    for f in found:
        assert isinstance(f, mb.Found)
        assert 0 <= f.video < data.n_videos
        assert 0 <= f.window < data.counts[f.video]
        exact = float((data.video(f.video) @ data.queries[0]).max())
        assert f.score == pytest.approx(exact, abs=1e-4)


def test_every_design_returns_found_lists(
    design_a: mb.DesignA, design_b: mb.DesignB, product: mb.Product, data: mb.MomentData
) -> None:
    q = data.queries[0]
    check_shape(design_a.search(q, K, 20), data)
    check_shape(design_b.search(q, K, K * data.max_windows), data)
    check_shape(design_b.search_adaptive(q, K, K), data)
    check_shape(product.search(q, K, mb.PRODUCT_PREFETCH), data)
    assert design_a.build["points"] == N and design_b.build["points"] == data.n_windows
    for build in (design_a.build, design_b.build, product.build):
        assert build["disk_mb"] > 0 and build["total_s"] >= 0


def test_design_a_is_its_own_shard_and_the_product_has_both(
    design_a: mb.DesignA, product: mb.Product, data: mb.MomentData
) -> None:
    # Design A: one shard, one point per video, no window index of the product's.
    assert not (design_a.path / "moments").exists()
    assert design_a.build["segments"] >= 1 and "segment_shard_mb" not in design_a.build
    # The product: its video shard and its moments/ window shard, both counted.
    build = product.build
    assert build["video_shard"]["points"] == N
    assert build["segment_shard"]["points"] == data.n_windows
    assert build["points"] == N + data.n_windows
    assert 0 < build["segment_shard_mb"] < build["disk_mb"]
    assert (product.path / "moments").is_dir()


def test_product_prefetch_is_the_shipped_default() -> None:
    from clipsearch.search import SearchLimits

    assert SearchLimits().prefetch == mb.PRODUCT_PREFETCH
    assert mb.BenchConfig().product_prefetch == (SearchLimits().prefetch,)


def test_huge_prefetch_and_overfetch_reach_the_exact_answer(
    design_a: mb.DesignA,
    design_b: mb.DesignB,
    product: mb.Product,
    data: mb.MomentData,
    truth: mb.Truth,
) -> None:
    # Few enough windows for Qdrant to scan them all: the product is exact here too.
    assert product.build["segment_shard"]["indexed_vectors"] == 0
    searches = {
        "A, prefetch = every video": lambda q: design_a.search(q, K, N),
        "product, shipped prefetch": lambda q: product.search(q, K, mb.PRODUCT_PREFETCH),
        "product, prefetch k": lambda q: product.search(q, K, K),
        "B, k x max segments": lambda q: design_b.search(q, K, K * data.max_windows),
        "B, exact scan": lambda q: design_b.search(q, K, K * data.max_windows, exact=True),
        "B, adaptive": lambda q: design_b.search_adaptive(q, K, K),
    }
    for name, search in searches.items():
        found, latency = mb.timed_queries(search, data.queries, warmup=1)
        metrics = mb.evaluate(found, truth, data, K)
        assert metrics["recall"] == 1.0, name
        assert metrics["segment_accuracy"] == 1.0, name
        assert metrics["top1_moment"] == 1.0, name
        assert latency["p50_ms"] > 0
    # A small prefetch can only lose videos, never invent them.
    small = mb.evaluate([design_a.search(q, K, K) for q in data.queries], truth, data, K)
    assert small["recall"] <= 1.0


# --------------------------------------------------------------------------- the command


def test_run_writes_json_and_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true")
    sub = parser.add_subparsers(dest="command")
    add_bench_moments(sub, common)
    out = tmp_path / "out" / "moments.json"
    args = parser.parse_args(
        [
            "bench-moments",
            "-q",
            "--videos",
            str(N),
            "--dim",
            str(DIM),
            "--queries",
            str(Q),
            "--prefetch",
            f"20,{N}",
            "--product-prefetch",
            "10,200",
            "--overfetch",
            "1,4",
            "--warmup",
            "2",
            "--local-videos",
            "20",
            "--local-queries",
            "3",
            "--workdir",
            str(tmp_path),
            "--json",
            str(out),
            "--plot",
            str(tmp_path / "moments.png"),
        ]
    )
    assert args.func is cmd_bench_moments
    assert cmd_bench_moments(args) == 0
    result = json.loads(out.read_text())
    (d,) = result["datasets"]
    assert d["videos"] == N and d["dim"] == DIM and d["queries"] == Q
    assert [r["prefetch"] for r in d["design_a"]["rows"]] == [20, N]
    assert d["design_a"]["rows"][-1]["recall"] == 1.0
    modes = [r["mode"] for r in d["design_b"]["rows"]]
    assert modes.count("fixed") == 3 and modes.count("adaptive") == 3
    assert d["design_b"]["exact_scan"]["recall"] == 1.0
    assert [r["prefetch"] for r in d["product"]["rows"]] == [10, 200]
    for row in d["product"]["rows"]:
        assert row["recall"] == 1.0 and row["segment_accuracy"] == 1.0
    build = d["product"]["build"]
    assert build["points"] == N + d["segments"] and build["segment_shard_mb"] > 0
    assert d["design_a"]["build"]["points"] == N
    assert d["verdict"].startswith(("A:", "B:"))
    assert d["product_verdict"].startswith(("A:", "product:"))
    (local,) = result["local"]
    assert local["design_b"]["rows"][0]["recall"] == 1.0
    assert local["design_a"]["rows"][-1]["recall"] == 1.0  # prefetch N: every video
    assert [r["recall"] for r in local["product"]["rows"]] == [1.0, 1.0]
    assert "bench-moments" in result["command"]
    assert "--product-prefetch 10,200" in result["command"]
    printed = capsys.readouterr().out
    assert "prefetch 20" in printed and "adaptive" in printed and f"wrote {out}" in printed
    assert "search_segments, prefetch 200" in printed and "A vs product" in printed
    assert (tmp_path / "moments.png").stat().st_size > 0
    assert not list(tmp_path.glob("clipsearch-momentbench-*"))  # temporary stores removed
