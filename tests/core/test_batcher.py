"""Micro-batching of concurrent queries: one encoder call serves many request threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from clipsearch.batcher import MAX_THREADS, MicroBatcher, encoding_threads
from clipsearch.errors import InvalidInput


class SlowEncoder:
    """Vectors derived from the text; records every batch it was given."""

    def __init__(self, delay_s: float = 0.02):
        self.delay_s = delay_s
        self.batches: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(list(texts))
        time.sleep(self.delay_s)
        return np.array([[float(len(t)), float(sum(map(ord, t)))] for t in texts], np.float32)


def expected(text: str) -> np.ndarray:
    return np.array([float(len(text)), float(sum(map(ord, text)))], np.float32)


def test_concurrent_queries_share_batches_and_get_their_own_vectors() -> None:
    encoder = SlowEncoder()
    batcher = MicroBatcher(encoder, max_batch=8, max_wait_s=0.005)
    texts = [f"query number {i}" for i in range(24)]
    results: dict[str, np.ndarray] = {}

    def ask(text: str) -> None:
        results[text] = batcher(text)

    threads = [threading.Thread(target=ask, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    for text in texts:
        assert np.array_equal(results[text], expected(text))
    sizes = [len(b) for b in encoder.batches]
    assert sum(sizes) == len(texts) and max(sizes) <= 8
    assert len(encoder.batches) < len(texts)  # some queries were batched together
    stats = batcher.stats()
    assert stats["queries"] == 24 and stats["batches"] == len(encoder.batches)
    assert stats["largest_batch"] == max(sizes)


def test_a_lone_query_waits_at_most_the_window() -> None:
    encoder = SlowEncoder(delay_s=0.0)
    batcher = MicroBatcher(encoder, max_batch=32, max_wait_s=0.05)
    started = time.perf_counter()
    assert np.array_equal(batcher("alone"), expected("alone"))
    assert time.perf_counter() - started < 1.0
    assert encoder.batches == [["alone"]]
    batcher.close()


def test_repeated_texts_in_a_batch_are_encoded_once() -> None:
    encoder = SlowEncoder(delay_s=0.0)
    gate = threading.Event()

    def slow_first(texts: Sequence[str]) -> np.ndarray:
        gate.wait(5)  # hold the first batch so the rest queue up behind it
        return encoder(texts)

    batcher = MicroBatcher(slow_first, max_batch=8, max_wait_s=0.05)
    first = threading.Thread(target=batcher, args=("first",))
    first.start()
    time.sleep(0.1)
    same = [threading.Thread(target=batcher, args=("same text",)) for _ in range(4)]
    for t in same:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in [first, *same]:
        t.join()
    batcher.close()
    assert ["same text"] in encoder.batches


def test_an_encoder_error_reaches_every_waiting_request() -> None:
    def broken(texts: Sequence[str]) -> np.ndarray:
        raise RuntimeError("tower on fire")

    batcher = MicroBatcher(broken, max_batch=4, max_wait_s=0.001)
    with pytest.raises(RuntimeError, match="tower on fire"):
        batcher("a")
    with pytest.raises(RuntimeError, match="tower on fire"):  # the thread lives on
        batcher("b")
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher("c")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInput):
        MicroBatcher(SlowEncoder(), max_batch=0)
    with pytest.raises(InvalidInput):
        MicroBatcher(SlowEncoder(), max_wait_s=-1)
    with pytest.raises(InvalidInput):
        MicroBatcher(SlowEncoder(), threads=0)


class MeetingEncoder(SlowEncoder):
    """Each call waits until ``parties`` calls are running at once (or times out)."""

    def __init__(self, parties: int, timeout_s: float):
        super().__init__(delay_s=0.0)
        self.barrier = threading.Barrier(parties, timeout=timeout_s)
        self.met = 0
        self.callers: set[threading.Thread] = set()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.callers.add(threading.current_thread())
        try:
            self.barrier.wait()
            self.met += 1
        except threading.BrokenBarrierError:
            pass
        return super().__call__(texts)


@pytest.mark.parametrize("threads", [1, 2])
def test_encoding_threads_encode_batches_side_by_side(threads: int) -> None:
    encoder = MeetingEncoder(parties=2, timeout_s=0.5 if threads == 1 else 5)
    batcher = MicroBatcher(encoder, max_batch=1, max_wait_s=0.0, threads=threads)
    results: dict[str, np.ndarray] = {}

    def ask(text: str) -> None:
        results[text] = batcher(text)

    askers = [threading.Thread(target=ask, args=(t,)) for t in ("first", "second")]
    for t in askers:
        t.start()
    for t in askers:
        t.join()
    # two encoding threads met inside the encoder; one thread could only time out alone
    assert encoder.met == (2 if threads == 2 else 0)
    assert all(np.array_equal(results[t], expected(t)) for t in ("first", "second"))
    assert batcher.stats()["threads"] == threads
    batcher.close()
    assert len(encoder.callers) == threads
    assert not any(t.is_alive() for t in encoder.callers)  # close stopped every one
    with pytest.raises(RuntimeError, match="closed"):
        batcher("third")


def test_encoding_threads_follow_the_text_runtime() -> None:
    assert encoding_threads("int8", 1, 2) == 2  # ONNX Runtime leaves the GIL: a batch a core
    assert encoding_threads("int8", 2, 8) == 4
    assert encoding_threads("int8", 4, 2) == 1
    assert encoding_threads("int8", 1, 64) == MAX_THREADS
    assert encoding_threads("fp32", 1, 8) == 1  # torch spreads one batch over the cores
    assert encoding_threads("bf16", 1, 8) == 1
