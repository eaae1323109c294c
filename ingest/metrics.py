"""Ingest counters on their own port (``--metrics-port``), for long ingests and ``watch``.

Prometheus scrapes ``http://HOST:PORT/metrics``: videos by outcome (``ingested``,
``up_to_date``, ``moved``, ``copied``, ``skipped``, ``removed``), frames embedded and seconds
per stage, as the run goes, from the library's telemetry reports (:mod:`clipsearch.telemetry`),
the same events the ingest report counts. Under ``watch`` they add up over its passes: a
video up to date is counted at every pass that looks at it.
"""

from __future__ import annotations

from typing import Any

from clipsearch import telemetry

PREFIX = "clipsearch_ingest"


class IngestSink:
    def __init__(self, registry: Any = None):
        from prometheus_client import REGISTRY, Counter

        registry = registry if registry is not None else REGISTRY
        self.videos = Counter(
            f"{PREFIX}_videos",
            "Videos by outcome: ingested, up_to_date, moved, copied, skipped, removed",
            ["outcome"],
            registry=registry,
        )
        self.frames = Counter(f"{PREFIX}_frames", "Frames embedded", registry=registry)
        self.stages = Counter(
            f"{PREFIX}_stage_seconds",
            "Seconds spent per ingest stage",
            ["stage"],
            registry=registry,
        )

    def stage(self, name: str, seconds: float) -> None:
        self.stages.labels(name).inc(seconds)

    def event(self, name: str, result: str, amount: float = 1.0) -> None:
        if name == "ingest_videos":
            self.videos.labels(result).inc(amount)
        elif name == "ingest_frames":
            self.frames.inc(amount)

    def batch(self, size: int) -> None:
        pass


def serve_metrics(port: int, host: str = "0.0.0.0") -> IngestSink:
    """Serve this process's ingest counters at ``host:port`` (a thread), then count; raises
    OSError when the port cannot be bound (nothing is counted then)."""
    from prometheus_client import CollectorRegistry, start_http_server

    if not 0 < port < 65536:
        raise OSError(f"not a TCP port: {port}")
    registry = CollectorRegistry()
    sink = IngestSink(registry)
    start_http_server(port, addr=host, registry=registry)
    telemetry.set_sink(sink)
    return sink
