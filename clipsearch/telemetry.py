"""What the library reports about its own work, for whoever watches (the web app's metrics).

The library times its stages and counts its events through one module-level sink; by
default nobody listens and each report costs a function call. An edge (the web app)
installs a :class:`Sink` that turns the reports into, for example, Prometheus series. The
library never imports a monitoring package.

Stages of a search: ``tokenize``, ``text_encode`` (a query's vector, batch wait
included), ``store_search`` and ``moment_naming`` (the moments of all of a page's
results); of an ingest, its own (``decode_wait``,
``embed``, ``posters``, ``upsert``, ...). Events: ``query_cache`` and ``store_cache`` with
``result`` ``hit`` or ``miss``; ``ingest_videos`` by outcome (``ingested``, ``up_to_date``,
``skipped``, ``removed``) and ``ingest_frames`` (``embedded``, counted by ``amount``).
Batches: the size of each text-tower call the micro-batcher makes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Sink(Protocol):
    def stage(self, name: str, seconds: float) -> None: ...

    def event(self, name: str, result: str, amount: float = 1.0) -> None: ...

    def batch(self, size: int) -> None: ...


class _Nobody:
    def stage(self, name: str, seconds: float) -> None:
        pass

    def event(self, name: str, result: str, amount: float = 1.0) -> None:
        pass

    def batch(self, size: int) -> None:
        pass


_sink: Sink = _Nobody()


def set_sink(sink: Sink | None) -> None:
    """Send the reports to ``sink`` from now on (None: to nobody)."""
    global _sink
    _sink = sink if sink is not None else _Nobody()


@contextmanager
def timed(stage: str) -> Iterator[None]:
    """Report how long the block took as ``stage`` (also when it raises)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        _sink.stage(stage, time.perf_counter() - start)


def stage(name: str, seconds: float) -> None:
    _sink.stage(name, seconds)


def event(name: str, result: str, amount: float = 1.0) -> None:
    if amount:
        _sink.event(name, result, amount)


def batch(size: int) -> None:
    _sink.batch(size)
