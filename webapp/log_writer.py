"""A log handler whose writing happens in a thread of its own.

A server's request threads each log a line. With :class:`logging.StreamHandler` every
line is a ``write`` and a ``flush`` under the handler's lock: the system call lets go of
the GIL, getting it back under load takes a switch interval or more, and meanwhile the
other request threads queue on the lock (16 ms a request at 160 requests/s on 2 cores).
Here a request thread formats its line (its filters see its request) and queues it; one
writer thread writes what has queued, several lines at a time, and flushes.

Lines still queued when the process ends normally are written (``logging.shutdown``
flushes every handler at exit); a process killed outright loses the last few
milliseconds of lines, as a buffered stream would. A fork waits for a write in progress
to end (a child must not inherit the stream's lock held by a thread it does not have);
the child starts with an empty queue and its own writer, and the parent writes what it
had queued.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import weakref
from typing import IO, Any

# Waiting for the writer to catch up (flush, close) gives up after this long: a stream
# that blocks must not hang the process's exit.
FLUSH_TIMEOUT_S = 5.0
# Lines written in one go at most.
MAX_LINES_PER_WRITE = 256


class BackgroundStreamHandler(logging.Handler):
    """``logging.StreamHandler``'s output (one formatted line per record, to ``stream`` or
    stderr), written by a background thread."""

    def __init__(self, stream: IO[str] | None = None):
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self._fresh_state()
        _handlers.add(self)

    def _fresh_state(self) -> None:
        """An empty queue, no writer yet, unheld locks: a new handler's, and a forked
        child's (it must not share its parent's)."""
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._write_lock = threading.Lock()  # held while the stream is written

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        self._ensure_writer()
        self._queue.put(line)

    def _ensure_writer(self) -> None:
        writer = self._writer
        if writer is not None and writer.is_alive():
            return
        with self._start_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_loop, name="log-writer", daemon=True
                )
                self._writer.start()

    def _write_loop(self) -> None:
        q = self._queue
        while True:
            items = [q.get()]
            while len(items) < MAX_LINES_PER_WRITE:
                try:
                    items.append(q.get_nowait())
                except queue.Empty:
                    break
            lines = [item for item in items if isinstance(item, str)]
            if lines:
                with self._write_lock:
                    try:
                        self.stream.write("".join(lines))
                        self.stream.flush()
                    except Exception:  # a closed or broken stream: say so, as logging does
                        _report_failure()
            for item in items:
                if isinstance(item, threading.Event):
                    item.set()

    def flush(self) -> None:
        """Wait (up to :data:`FLUSH_TIMEOUT_S`) until every line queued so far is written."""
        writer = self._writer
        if writer is None or not writer.is_alive():
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(FLUSH_TIMEOUT_S)

    def close(self) -> None:
        self.flush()
        super().close()


def _report_failure() -> None:
    if not logging.raiseExceptions:
        return
    # the failing stream may be stderr itself: then there is nowhere left to say it
    with contextlib.suppress(Exception):
        sys.stderr.write("--- logging error: the log stream failed\n")


_handlers: weakref.WeakSet[BackgroundStreamHandler] = weakref.WeakSet()


_held: list[BackgroundStreamHandler] = []  # write locks taken for a fork in progress


def _before_fork() -> None:
    for handler in list(_handlers):
        handler._write_lock.acquire()
        _held.append(handler)


def _after_fork_in_parent() -> None:
    while _held:
        _held.pop()._write_lock.release()


def _after_fork_in_child() -> None:
    _held.clear()
    for handler in list(_handlers):
        handler._fresh_state()


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)
