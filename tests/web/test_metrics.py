"""``/metrics`` and the request log, in process: what each request adds, request ids,
the log line's fields and formats, and the metrics' own key."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from clipsearch import __version__
from clipsearch.errors import InvalidInput, StoreUnavailable
from clipsearch.model import ClipEncoder
from clipsearch.store.base import ClipPoint, clip_id
from webapp.requestlog import HEADER, JsonFormatter, RequestIdFilter
from webapp.serve import METRICS_LOCK, prepare_metrics_dir
from webapp.settings import ConfigError, Settings

from .conftest import make_app, make_settings

PHRASES = {"ball bouncing": "BallBouncing", "box spinning": "BoxSpinning"}
SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")
KEY = "s3cret-key"


@pytest.fixture(scope="module")
def points(encoder: ClipEncoder, video: Path) -> list[ClipPoint]:
    vectors = encoder.encode_text(list(PHRASES))
    out = []
    for cls, vec in zip(PHRASES.values(), vectors, strict=True):
        rel = f"{cls}/v_{cls}_g01_c01.avi"
        payload = {"path": rel, "source": str(video), "class": cls, "duration_s": 1.0}
        out.append(ClipPoint(clip_id(rel), np.asarray(vec), np.asarray(vec)[None, :], payload))
    return out


def samples(client: FlaskClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics``: (name, labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.content_type.count("charset") == 1
    out = {}
    for line in response.get_data(as_text=True).splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m["labels"] or ""))
        out[(m["name"], labels)] = float(m["value"])
    return out


def value(all_samples: dict[Any, float], name: str, **labels: str) -> float:
    return all_samples.get((name, frozenset(labels.items())), 0.0)


def test_each_request_counts_once_by_route_and_status(client: FlaskClient) -> None:
    before = samples(client)
    for _ in range(3):
        assert client.get("/api/search?q=ball+bouncing").status_code == 200
    assert client.get("/api/search").status_code == 400
    assert client.get("/nowhere").status_code == 404
    assert client.open("/api/search", method="BREW").status_code == 405
    after = samples(client)

    def delta(**labels: str) -> float:
        name = "clipsearch_requests_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(method="GET", route="/api/search", status="200") == 3
    assert delta(method="GET", route="/api/search", status="400") == 1
    assert delta(method="GET", route="unmatched", status="404") == 1
    assert delta(method="other", route="unmatched", status="405") == 1  # no label per method
    count = "clipsearch_request_duration_seconds_count"
    assert value(after, count, route="/api/search") - value(before, count, route="/api/search") == 4
    # the scrape in flight is the only request in flight
    assert value(after, "clipsearch_in_flight_requests") == 1


def test_a_search_reports_its_stages_cache_and_batches(client: FlaskClient) -> None:
    before = samples(client)
    query = "box spinning " + "x" * 3  # a query no earlier test sent: a cache miss first
    assert client.get(f"/api/search?q={query}").status_code == 200
    assert client.get(f"/api/search?q={query}").status_code == 200
    after = samples(client)
    stage = "clipsearch_stage_duration_seconds_count"
    for name in ("tokenize", "text_encode", "store_search", "moment_naming", "render"):
        assert value(after, stage, stage=name) > value(before, stage, stage=name), name
    # encoded once (the miss); the second search found the vector in the query cache
    assert value(after, stage, stage="text_encode") - value(before, stage, stage="text_encode") == 1
    lookups = "clipsearch_cache_lookups_total"
    for result in ("hit", "miss"):
        labels = {"cache": "query_cache", "result": result}
        assert value(after, lookups, **labels) - value(before, lookups, **labels) == 1
    assert (
        value(after, "clipsearch_searches_total") - value(before, "clipsearch_searches_total") == 2
    )
    batch = "clipsearch_text_batch_size_count"
    assert value(after, batch) - value(before, batch) == 1
    # one series per app built in this process: this one's among them
    info = [dict(labels) for name, labels in after if name == "clipsearch_info"]
    assert {"model": "tiny-random", "store": "qdrant", "version": __version__} in info
    assert value(after, "clipsearch_indexed_videos") == len(PHRASES)


def test_a_threshold_nothing_passes_counts_a_no_good_match(
    app_settings: Settings, encoder: ClipEncoder, store: Any
) -> None:
    client = make_app(app_settings, encoder, store, min_score=0.999).test_client()
    before = value(samples(client), "clipsearch_no_good_match_total")
    body = client.get("/api/search?q=a+totally+different+thing").get_json()
    assert body["no_good_match"] is True
    assert value(samples(client), "clipsearch_no_good_match_total") == before + 1


def test_the_request_id_is_echoed_or_made(client: FlaskClient) -> None:
    given = client.get("/api/health", headers={HEADER: "lb-1234.abc"})
    assert given.headers[HEADER] == "lb-1234.abc"
    made = client.get("/api/health").headers[HEADER]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    for bad in ("has space", "x" * 129, "semi;colon"):
        echoed = client.get("/api/health", headers={HEADER: bad}).headers[HEADER]
        assert echoed != bad and re.fullmatch(r"[0-9a-f]{32}", echoed)
    assert client.get("/api/search").headers[HEADER]  # errors carry it too


def _access(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "clipsearch.access"]


def test_one_line_per_request_without_the_query(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):  # the library's debug lines hold no query either
        client.get("/api/search?q=ball+bouncing", headers={HEADER: "req-1"})
    assert not [r for r in caplog.records if "ball" in r.getMessage()]
    (record,) = _access(caplog)
    fields = record.http  # type: ignore[attr-defined]
    assert fields["method"] == "GET" and fields["route"] == "/api/search"
    assert fields["status"] == 200 and fields["results"] == len(PHRASES)
    assert fields["duration_ms"] >= 0 and record.request_id == "req-1"  # type: ignore[attr-defined]
    assert "query" not in fields and "ball" not in record.getMessage()


def test_queries_are_logged_only_when_asked(
    tmp_path: Path, encoder: ClipEncoder, store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, log_queries=True)
    client = make_app(settings, encoder, store).test_client()
    with caplog.at_level(logging.INFO, logger="clipsearch.access"):
        client.get("/api/search?q=ball+bouncing")
        client.post("/api/search", json={"q": "box spinning"})
    first, second = _access(caplog)
    assert first.http["query"] == "ball bouncing"  # type: ignore[attr-defined]
    assert second.http["query"] == "box spinning"  # type: ignore[attr-defined]
    assert 'q="ball bouncing"' in first.getMessage()


class DownStore:
    """The store, but every window search fails as an unreachable server would."""

    def __init__(self, store: Any):
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def search_windows(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("the store did not answer")


def test_every_line_of_a_request_carries_its_id_and_json_lines_parse(
    app_settings: Settings, encoder: ClipEncoder, store: Any
) -> None:
    client = make_app(app_settings, encoder, DownStore(store)).test_client()
    lines: list[str] = []
    handler = logging.Handler()
    handler.addFilter(RequestIdFilter())  # as requestlog.configure sets up a server's
    handler.setFormatter(JsonFormatter())
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        before = value(samples(client), "clipsearch_store_errors_total", kind="StoreUnavailable")
        lines.clear()
        response = client.get("/api/search?q=ball", headers={HEADER: "req-2"})
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert response.status_code == 503
    parsed = [json.loads(line) for line in lines]
    loggers = {p["logger"] for p in parsed}
    assert {"webapp.errors", "clipsearch.access"} <= loggers  # the warning and the request line
    assert all(p["request_id"] == "req-2" for p in parsed)
    (access,) = [p for p in parsed if p["logger"] == "clipsearch.access"]
    assert (access["status"], access["route"], access["method"]) == (503, "/api/search", "GET")
    after = value(samples(client), "clipsearch_store_errors_total", kind="StoreUnavailable")
    assert after == before + 1


def test_metrics_can_need_the_api_key(tmp_path: Path, encoder: ClipEncoder, store: Any) -> None:
    open_settings = make_settings(tmp_path, api_key=KEY)
    assert make_app(open_settings, encoder, store).test_client().get("/metrics").status_code == 200
    closed = make_app(replace(open_settings, metrics_auth=True), encoder, store).test_client()
    assert closed.get("/metrics").status_code == 401
    assert closed.get("/metrics", headers={"X-API-Key": "wrong"}).status_code == 401
    assert closed.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    with pytest.raises(ConfigError, match="CLIPSEARCH_API_KEY"):
        make_settings(tmp_path, metrics_auth=True)
    with pytest.raises(ConfigError, match="log_format"):
        make_settings(tmp_path, log_format="xml")


def test_the_metrics_directory_starts_empty(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"old counts")
    (folder / "keep.txt").write_text("not ours")
    environ = {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    held = prepare_metrics_dir(environ)
    assert held.path == str(folder) and not held.made
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt", METRICS_LOCK]
    # a second server on the same directory would empty the first one's counts
    (folder / "counter_456.db").write_bytes(b"the running server's counts")
    with pytest.raises(InvalidInput, match="in use by another running server"):
        prepare_metrics_dir(dict(environ))
    assert (folder / "counter_456.db").exists()
    held.close()
    assert folder.is_dir()  # the user's directory stays
    prepare_metrics_dir(dict(environ)).close()  # free again once the first let go
    fresh: dict[str, str] = {}
    made = prepare_metrics_dir(fresh)
    assert made.made and Path(made.path).is_dir()
    assert fresh["PROMETHEUS_MULTIPROC_DIR"] == made.path
    made.close()
    assert not Path(made.path).exists()  # a temporary one goes with the server


def test_a_path_cannot_forge_a_line_of_the_text_log(
    tmp_path: Path, encoder: ClipEncoder, store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_app(make_settings(tmp_path), encoder, store).test_client()
    forged = "INFO clipsearch.access: GET /admin 200 0.1ms"
    with caplog.at_level(logging.INFO, logger="clipsearch.access"):
        client.get("/nope%0a" + forged.replace(" ", "%20") + "%00")
    (record,) = _access(caplog)
    assert "\n" not in record.getMessage() and "\x00" not in record.getMessage()
    assert "/nope\\n" + forged + "\\x00" in record.getMessage()
    assert record.http["path"] == "/nope\n" + forged + "\x00"  # type: ignore[attr-defined]
