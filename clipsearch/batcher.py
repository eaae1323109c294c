"""Micro-batching of concurrent queries: one text-tower call serves many requests.

A batch of 32 queries costs the text tower a fraction of 32 single calls (the weights
stream through the CPU once), so the request threads of a worker hand their query texts
to one encoding thread and wait. That thread takes the first waiting text, gathers the
ones that arrive within ``max_wait_s`` (up to ``max_batch``), encodes them in one call and
hands each request its vector. Under load the next batch fills while the current one is
encoded, so the wait is only paid when queries are few.

With ``threads`` > 1, that many encoding threads take batches side by side: a runtime
that encodes a batch on one core (the int8 text tower on one thread) then keeps every
core busy while the request threads search and answer.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from clipsearch import telemetry
from clipsearch.errors import InvalidInput

# Past about a dozen a query's share of a batch costs no less (the int8 text tower: 3.3 ms
# a query in batches of 8 to 32), and every request of a batch waits for all of it: with
# 32 request threads and 32 users, 12 served 10 % more than 32 at the same p95
# (benchmarks/RESULTS.md, "Served").
DEFAULT_MAX_BATCH = 12
DEFAULT_MAX_WAIT_S = 0.002
MAX_THREADS = 4

_STOP = object()


class MicroBatcher:
    """``batcher(text)`` -> the vector ``encode([text, ...])`` gives it, batched with others.

    ``encode`` takes a list of texts and returns one row per text. Thread-safe; the
    encoding thread starts on the first call (so a forked process starts its own).
    """

    def __init__(
        self,
        encode: Callable[[Sequence[str]], np.ndarray],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        threads: int = 1,
    ):
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise InvalidInput(f"max batch must be an integer >= 1, got {max_batch!r}")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise InvalidInput(f"encoding threads must be an integer >= 1, got {threads!r}")
        if not 0 <= max_wait_s <= 1:
            raise InvalidInput(f"max wait must be within 0..1 s, got {max_wait_s!r}")
        self.encode = encode
        self.max_batch = max_batch
        self.max_wait_s = float(max_wait_s)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.threads = threads
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._closed = False
        self.batches = 0
        self.queries = 0
        self.largest = 0

    def __call__(self, text: str) -> np.ndarray:
        future: Future[np.ndarray] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the query batcher is closed")
            self._workers = [t for t in self._workers if t.is_alive()]
            while len(self._workers) < self.threads:
                name = f"query-batcher-{len(self._workers)}"
                worker = threading.Thread(target=self._run, name=name, daemon=True)
                worker.start()
                self._workers.append(worker)
            self._queue.put((text, future))
        return future.result()

    def _gather(self, first: tuple[str, Future[np.ndarray]]) -> tuple[list[Any], bool]:
        batch = [first]
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stop = self._gather(first)
            texts = list(dict.fromkeys(text for text, _ in batch))  # a repeated text once
            try:
                vectors = self.encode(texts)
                if len(vectors) != len(texts):
                    raise RuntimeError(f"encoder gave {len(vectors)} rows for {len(texts)} texts")
            except BaseException as exc:  # every waiting request gets the error
                for _, future in batch:
                    future.set_exception(exc)
                continue
            telemetry.batch(len(texts))
            row = {text: i for i, text in enumerate(texts)}
            for text, future in batch:
                future.set_result(vectors[row[text]])
            with self._lock:
                self.batches += 1
                self.queries += len(batch)
                self.largest = max(self.largest, len(batch))

    def stats(self) -> dict[str, Any]:
        """Batches run, queries served, mean and largest batch since start."""
        with self._lock:
            return {
                "max_batch": self.max_batch,
                "max_wait_ms": round(self.max_wait_s * 1000, 3),
                "threads": self.threads,
                "batches": self.batches,
                "queries": self.queries,
                "mean_batch": round(self.queries / self.batches, 2) if self.batches else None,
                "largest_batch": self.largest,
            }

    def close(self) -> None:
        """Stop the encoding threads once queued queries are served; later calls fail."""
        with self._lock:
            self._closed = True
            workers = [t for t in self._workers if t.is_alive()]
        for _ in workers:
            self._queue.put(_STOP)
        for worker in workers:
            worker.join(timeout=5)


def encoding_threads(text_dtype: str, text_threads: int, cpus: int) -> int:
    """How many batches to encode side by side: one per ``text_threads`` cores for the
    int8 text tower (ONNX Runtime, which releases the GIL; at most :data:`MAX_THREADS`),
    one for torch, whose own threads already spread a batch over the cores."""
    if text_dtype != "int8":
        return 1
    return max(1, min(MAX_THREADS, cpus // max(1, text_threads)))
