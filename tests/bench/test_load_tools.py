"""The load-test helpers in ``locust/`` (loaded by path: the folder shadows the locust package)."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

LOCUST_DIR = Path(__file__).resolve().parents[2] / "locust"
HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"load_{name}", LOCUST_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def test_the_pool_is_large_distinct_and_seeded() -> None:
    queries = load("queries")
    pool = queries.query_pool(20_000)
    assert len(pool) == len(set(pool)) == 20_000
    assert pool == queries.query_pool(20_000) and pool != queries.query_pool(20_000, seed=1)
    assert all(q == " ".join(q.split()) and q for q in pool)
    with pytest.raises(ValueError, match="distinct queries"):
        queries.query_pool(10**7)


def test_zipf_picks_favour_the_top_ranks() -> None:
    queries = load("queries")
    pool = queries.query_pool(1000)
    pick = queries.zipf_picker(pool, n=100, seed=0)
    counts = Counter(pick() for _ in range(5000))
    assert set(counts) <= set(pool[:100])
    assert counts[pool[0]] > 4 * counts[pool[9]] > 0


def test_summary_of_a_stats_csv(tmp_path: Path) -> None:
    summarize = load("summarize")
    stats = tmp_path / "stats_stats.csv"
    stats.write_text(
        "\n".join(
            [
                HEADER,
                "GET,/api/search [unique],90,1,60,61.5,10,300,900,45.0,0.5,"
                "60,70,75,80,90,100,120,140,200,300,300",
                "GET,/ [page],10,0,70,71.0,20,200,16000,5.0,0.0,"
                "70,75,80,85,95,110,130,150,200,200,200",
                ",Aggregated,100,1,61,62.4,10,300,2410,50.0,0.5,"
                "61,71,76,81,91,101,121,141,200,300,300",
            ]
        )
        + "\n"
    )
    health = tmp_path / "health.json"
    health.write_text(json.dumps({"model": "m", "query_cache": {"hit_rate": 0.25}}))
    out = summarize.summarize(stats)
    assert out["total"] == {
        "requests": 100,
        "failures": 1,
        "rps": 50.0,
        "mean_ms": 62.4,
        "p50_ms": 61.0,
        "p95_ms": 101.0,
        "p99_ms": 141.0,
    }
    assert set(out["by_name"]) == {"/api/search [unique]", "/ [page]"}
    assert summarize.main([str(stats), str(health)]) == 0
    empty = tmp_path / "empty.csv"
    empty.write_text(HEADER + "\n")
    with pytest.raises(ValueError, match="no rows"):
        summarize.summarize(empty)


def test_open_loop_percentiles_are_nearest_rank() -> None:
    openloop = load("openloop")
    values = [float(v) for v in range(1, 101)]
    assert openloop.percentile(values, 95) == 95.0
    assert openloop.percentile(values, 50) == 50.0
    assert openloop.percentile([7.0], 99) == 7.0


def _queueing_server(capacity: float, service_ms: float) -> object:
    """A stand-in server whose p95 grows as the rate nears its capacity (an M/M/1 queue)."""
    openloop = load("openloop")
    tried: list[float] = []

    def run(rate: float) -> object:
        tried.append(rate)
        load_ = rate / capacity
        p95 = service_ms * 3 / (1 - load_) if load_ < 1 else float("inf")
        answered = int(rate * 10) if load_ < 1 else int(capacity * 10)
        return openloop.summarize_step(rate, 10, [p95] * answered, 0, [0.0])

    run.tried = tried  # type: ignore[attr-defined]
    return run


def test_open_loop_finds_the_highest_rate_within_the_bound() -> None:
    openloop = load("openloop")
    run = _queueing_server(capacity=100, service_ms=10)  # p95 = 100 ms at 70 requests/s
    steps, sustained = openloop.search_rates(run, start=10, p95_ms=100, refine=4)
    assert sustained is not None and 65 <= sustained <= 70
    assert all(openloop.holds(s, 100) == (s.rate <= 70) for s in steps)
    assert run.tried[:5] == [10, 15, 22.5, 33.8, 50.7]  # type: ignore[attr-defined]


def test_open_loop_counts_errors_and_unanswered_requests_as_failing() -> None:
    openloop = load("openloop")
    fast = [5.0] * 100
    assert openloop.holds(openloop.summarize_step(10, 10, fast, 0, []), 100)
    assert not openloop.holds(openloop.summarize_step(10, 10, fast, 1, []), 100)
    assert not openloop.holds(openloop.summarize_step(10, 10, [], 0, []), 100)
    slow = openloop.summarize_step(10, 10, [5.0] * 90 + [500.0] * 10, 0, [])
    assert slow.p95_ms == 500.0 and not openloop.holds(slow, 100)


def test_open_loop_reports_none_when_even_the_first_rate_fails() -> None:
    openloop = load("openloop")
    run = _queueing_server(capacity=5, service_ms=40)
    steps, sustained = openloop.search_rates(run, start=10, p95_ms=100)
    assert sustained is None and len(steps) == 1
