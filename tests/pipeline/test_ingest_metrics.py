"""An ingest's Prometheus counters (``--metrics-port``) count what its report counts."""

from __future__ import annotations

import re
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port
from prometheus_client import CollectorRegistry

from clipsearch import telemetry
from clipsearch.cli import main
from clipsearch.data.collection import load_collection
from clipsearch.model import load_model
from clipsearch.pipeline.runner import IngestOptions, ingest
from clipsearch.store.edge import QdrantEdgeStore
from ingest.metrics import IngestSink


@pytest.fixture
def sink() -> Iterator[tuple[IngestSink, CollectorRegistry]]:
    registry = CollectorRegistry()
    counting = IngestSink(registry)
    telemetry.set_sink(counting)
    yield counting, registry
    telemetry.set_sink(None)


def test_the_counters_match_the_ingest_report(
    tiny_synth: Path,
    tiny_model_dir: Path,
    tmp_path: Path,
    sink: tuple[IngestSink, CollectorRegistry],
) -> None:
    _, registry = sink
    vision = load_model(tiny_model_dir, towers="vision")
    coll = load_collection(tiny_synth)
    with QdrantEdgeStore(tmp_path / "store") as store:
        first = ingest(coll, vision, store, IngestOptions(workers=1))
        second = ingest(coll, vision, store, IngestOptions(workers=1))

    def get(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    assert first.ingested > 0 and second.up_to_date == first.ingested
    assert get("clipsearch_ingest_videos_total", outcome="ingested") == first.ingested
    assert get("clipsearch_ingest_videos_total", outcome="up_to_date") == second.up_to_date
    assert get("clipsearch_ingest_frames_total") == first.frames + second.frames > 0
    for stage in ("embed", "upsert"):
        total = first.stage_seconds.get(stage, 0.0) + second.stage_seconds.get(stage, 0.0)
        assert get("clipsearch_ingest_stage_seconds_total", stage=stage) == pytest.approx(
            total, abs=0.01
        )


def test_a_taken_metrics_port_is_a_one_line_error(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", port))
        taken.listen()
        argv = ["ingest", str(tiny_synth), "--model", str(tiny_model_dir)]
        argv += ["--store", str(tmp_path / "store"), "--metrics-port", str(port), "-q"]
        assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"clipsearch: error: --metrics-port {port}") and "\n" not in err
    assert not (tmp_path / "store").exists()


def test_a_run_serves_its_counters_on_its_port(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    argv = ["ingest", str(tiny_synth), "--model", str(tiny_model_dir)]
    argv += ["--store", str(tmp_path / "store"), "--metrics-port", str(port), "-q"]
    try:
        assert main(argv) == 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        telemetry.set_sink(None)  # the run's sink stays installed in this process otherwise
    clips = len(load_collection(tiny_synth).clips)
    assert f'clipsearch_ingest_videos_total{{outcome="ingested"}} {float(clips)}' in text
    frames = re.search(r"^clipsearch_ingest_frames_total (\S+)$", text, re.M)
    assert frames and float(frames[1]) >= clips
