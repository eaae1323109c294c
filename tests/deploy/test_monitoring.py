"""Monitoring against the real thing: Debian's Prometheus (server and promtool) checks the
project's config and alert rules and scrapes a running ``clipsearch serve``; the Grafana
dashboard is checked for structure and for naming only series the app exports.

``make prometheus-deps`` installs Prometheus; without it these tests skip, except under CI
(``$CI``), where they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import free_port
from folders import get_json, phrase_store, start_group, stop_group, wait_until_up

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "clipsearch.json"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PHRASES = ["ball bouncing", "box spinning", "a yellow triangle rising"]
START_TIMEOUT_S = 60
SCRAPE_TIMEOUT_S = 60
METRIC = re.compile(r"\b(clipsearch_[a-z_]+)\b")


def tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        reason = f"{name} is not installed (make prometheus-deps)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return exe


def exported_names() -> set[str]:
    """Every sample name the app's series can have (``_total``, ``_bucket``, ...)."""
    from webapp.metrics import series

    kinds = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "gauge": ("",),
    }
    names = set()
    for metric in vars(series()).values():
        for family in metric.collect():
            names |= {family.name + suffix for suffix in kinds[family.type]}
    return names


# ---------------------------------------------------------------- the files, checked


def test_promtool_accepts_the_config_and_the_alert_rules() -> None:
    promtool = tool("promtool")
    for what, file in (("config", "prometheus.yml"), ("rules", "alerts.yml")):
        done = subprocess.run(
            [promtool, "check", what, str(PROMETHEUS_DIR / file)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_the_alerts_cover_errors_latency_the_store_and_the_cache() -> None:
    groups = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    assert {
        "ClipsearchHighErrorRate",
        "ClipsearchSlowSearches",
        "ClipsearchStoreUnavailable",
        "ClipsearchQueryCacheHitCollapse",
    } <= set(rules)
    names = exported_names()
    for name, rule in rules.items():
        used = set(METRIC.findall(rule["expr"]))
        assert used <= names, f"{name} uses series the app does not export: {used - names}"
        assert rule["labels"]["severity"] in {"warning", "critical"}


def test_the_dashboard_is_well_formed_and_names_only_exported_series() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    datasources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    uids = {d["uid"] for d in datasources}
    panels = dashboard["panels"]
    assert dashboard["uid"] == "clipsearch" and panels
    assert len({p["id"] for p in panels}) == len(panels)
    names = exported_names()
    used: set[str] = set()
    for panel in panels:
        assert panel["title"] and panel["type"] in {"timeseries", "stat"}
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["datasource"]["uid"] in uids
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids and target["expr"].strip()
            used |= set(METRIC.findall(target["expr"]))
    assert used <= names, f"the dashboard names series the app does not export: {used - names}"
    # what the issue asks to see: traffic, latency, stages, caches, no-match, errors, Qdrant
    for series_name in (
        "clipsearch_requests_total",
        "clipsearch_request_duration_seconds_bucket",
        "clipsearch_stage_duration_seconds_bucket",
        "clipsearch_cache_lookups_total",
        "clipsearch_no_good_match_total",
        "clipsearch_store_errors_total",
    ):
        assert series_name in used
    assert any('job="qdrant"' in t["expr"] for p in panels for t in p["targets"])


# ---------------------------------------------------------------- the real scrape


def serve(tmp_path: Path, model: Path, *store_args: str) -> Iterator[tuple[str, Path]]:
    """``clipsearch serve`` in its own process group: yields its URL and log once it
    answers, and stops it when closed."""
    port = free_port()
    argv = [sys.executable, "-m", "clipsearch.cli", "serve", "--model", str(model)]
    argv += [*store_args, "--port", str(port), "--media-dir", str(tmp_path / "media")]
    log = tmp_path / f"serve-{port}.log"
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / f"metrics-{port}")
    proc = start_group(argv, log, env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/api/health", proc, log, "clipsearch serve", START_TIMEOUT_S)
        yield base, log
    finally:
        stop_group(proc, 10.0)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    """A function starting Debian's Prometheus, scraping ``target`` every second."""
    exe = tool("prometheus")
    started: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> str:
        port = free_port()
        config = tmp_path / f"prometheus-{port}.yml"
        scrape = {"job_name": "clipsearch", "static_configs": [{"targets": [target]}]}
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [scrape],
                }
            )
        )
        log = tmp_path / f"prometheus-{port}.log"
        argv = [exe, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"]
        argv += [f"--storage.tsdb.path={tmp_path / f'tsdb-{port}'}"]
        proc = start_group(argv, log)
        started.append(proc)
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/-/ready", proc, log, "prometheus", START_TIMEOUT_S)
        return base

    yield start
    for proc in started:
        stop_group(proc, 10.0)


def query(prometheus_url: str, expr: str) -> float | None:
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, body = get_json(url)
    assert status == 200 and body["status"] == "success", body
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def scraped(prometheus_url: str, expr: str, expected: float) -> float | None:
    """The value of ``expr`` once Prometheus has scraped ``expected`` (or the last seen)."""
    deadline = time.monotonic() + SCRAPE_TIMEOUT_S
    seen = query(prometheus_url, expr)
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = query(prometheus_url, expr)
    return seen


def send(base: str, paths: list[str]) -> dict[int, int]:
    """GET each path once, 6 at a time (so every worker gets some); how many answers each
    status got."""

    def get(path: str) -> int:
        try:
            with urllib.request.urlopen(base + path, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(get, paths))
    return {code: codes.count(code) for code in set(codes)}


# what the tests send: Prometheus's own scrapes and the start-up health polls left out
SENT = "sum(clipsearch_requests_total{route!~'/metrics|/api/health'})"


@pytest.mark.slow
def test_prometheus_sums_the_requests_of_three_workers(
    tiny_model_dir: Path, tmp_path: Path, prometheus: Any
) -> None:
    # A client store (qdrant-client's in-memory mode, one per worker, empty: searches
    # answer 503) lets Gunicorn run several workers, as with a Qdrant server.
    app = serve(tmp_path, tiny_model_dir, "--qdrant-url", ":memory:", "--workers", "3")
    base, log = next(app)
    try:
        prom = prometheus(base.removeprefix("http://"))
        paths = ["/", "/api/search?q=ball+bouncing", "/api/openapi.json"] * 20
        statuses = send(base, paths)
        assert sum(statuses.values()) == len(paths) == 60
        assert scraped(prom, SENT, len(paths)) == len(paths)
        # their counts add up by status too
        by_status = {
            code: query(
                prom,
                f"sum(clipsearch_requests_total{{status='{code}',route!~'/metrics|/api/health'}})",
            )
            for code in statuses
        }
        assert by_status == {code: float(n) for code, n in statuses.items()}
        assert query(prom, "sum(clipsearch_store_errors_total)") == statuses.get(503, 0) > 0
        pids = set(re.findall(r"\] \[(\d+)\] INFO clipsearch\.access", log.read_text()))
        # which worker takes a connection is the kernel's choice: more than one did
        assert len(pids) >= 2, f"requests were answered by {len(pids)} workers"
    finally:
        app.close()


@pytest.mark.slow
def test_prometheus_scrapes_the_embedded_store_searches(
    tiny_model_dir: Path, tmp_path: Path, prometheus: Any
) -> None:
    store = phrase_store(tiny_model_dir, tmp_path / "store", PHRASES)
    app = serve(tmp_path, tiny_model_dir, "--store", str(store))
    base, _ = next(app)
    try:
        prom = prometheus(base.removeprefix("http://"))
        paths = [f"/api/search?q={urllib.parse.quote(p)}" for p in PHRASES] * 10
        # each phrase once first: three misses, then only hits
        assert send(base, paths[:3]) == {200: 3} and send(base, paths[3:]) == {200: 27}
        assert scraped(prom, SENT, len(paths)) == len(paths)
        assert query(prom, "max(clipsearch_indexed_videos)") == len(PHRASES)
        for stage in ("tokenize", "text_encode", "store_search", "moment_naming", "render"):
            count = query(prom, f"sum(clipsearch_stage_duration_seconds_count{{stage='{stage}'}})")
            assert count is not None and count > 0, stage
        assert query(prom, "sum(clipsearch_searches_total)") == len(paths)
        # the model's id and the store's kind, no path on show
        assert query(prom, "count(clipsearch_info{store='edge',model='tiny-random'})") == 1
        hits = query(prom, "sum(clipsearch_cache_lookups_total{cache='query_cache',result='hit'})")
        assert hits == len(paths) - len(PHRASES)
    finally:
        app.close()
