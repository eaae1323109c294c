"""The server's log handler: lines formatted in the logging thread, written by a thread of
its own, none lost at a normal exit or across a fork, a broken stream never raised into
the logging thread."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from webapp.log_writer import BackgroundStreamHandler

REPO = Path(__file__).resolve().parents[2]


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(name)
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


def test_lines_from_many_threads_arrive_whole_and_flush_waits_for_them() -> None:
    stream = io.StringIO()
    handler = BackgroundStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(threadName)s %(message)s"))
    log = _logger("test.log_writer.threads", handler)

    def many(t: int) -> None:
        for i in range(200):
            log.info("line %d-%d", t, i)

    threads = [threading.Thread(target=many, args=(n,), name=f"t{n}") for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.flush()
    lines = stream.getvalue().splitlines()
    assert sorted(lines) == sorted(f"t{t} line {t}-{i}" for t in range(8) for i in range(200))
    # each thread's lines keep their order
    for t in range(8):
        mine = [line for line in lines if line.startswith(f"t{t} ")]
        assert mine == [f"t{t} line {t}-{i}" for i in range(200)]
    handler.close()


def test_the_record_is_formatted_in_the_logging_thread() -> None:
    """The format sees the caller's state (a request's id lives in its thread)."""
    local = threading.local()

    class Tagged(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"{getattr(local, 'tag', 'none')} {super().format(record)}"

    stream = io.StringIO()
    handler = BackgroundStreamHandler(stream)
    handler.setFormatter(Tagged("%(message)s"))
    log = _logger("test.log_writer.tag", handler)
    local.tag = "request-7"
    log.info("hello")
    local.tag = "request-8"
    handler.flush()
    assert stream.getvalue() == "request-7 hello\n"
    handler.close()


def test_a_broken_stream_is_not_raised_into_the_caller(capsys: pytest.CaptureFixture[str]) -> None:
    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError("disk full")

    handler = BackgroundStreamHandler(Broken())
    log = _logger("test.log_writer.broken", handler)
    log.info("lost")  # must not raise
    handler.flush()
    log.info("also lost")
    handler.flush()
    assert "the log stream failed" in capsys.readouterr().err
    handler.close()


def test_every_line_is_written_when_the_process_exits_normally() -> None:
    code = (
        "import logging, sys\n"
        "from webapp import requestlog\n"
        "requestlog.configure('info', 'text')\n"
        "log = logging.getLogger('clipsearch.access')\n"
        "for i in range(5000):\n"
        "    log.info('request %d', i)\n"
        "sys.exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    numbers = [int(line.rsplit(" ", 1)[1]) for line in done.stderr.splitlines()]
    assert numbers == list(range(5000))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_writes_its_own_lines_and_not_the_parents(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    with path.open("w") as stream:
        handler = BackgroundStreamHandler(stream)
        log = _logger("test.log_writer.fork", handler)
        log.info("parent before")
        handler.flush()
        pid = os.fork()
        if pid == 0:  # the child: log, flush, leave without running the parent's cleanup
            try:
                log.info("child")
                handler.flush()
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        log.info("parent after")
        handler.flush()
        handler.close()
    assert sorted(path.read_text().splitlines()) == ["child", "parent after", "parent before"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_fork_waits_for_a_write_in_progress(tmp_path: Path) -> None:
    """A child must not inherit the stream mid-write (its lock held by a thread it lacks)."""
    started, finished = threading.Event(), threading.Event()

    class Slow(io.StringIO):
        def write(self, s: str) -> int:
            started.set()
            time.sleep(0.3)
            n = super().write(s)
            finished.set()
            return n

    handler = BackgroundStreamHandler(Slow())
    log = _logger("test.log_writer.slow", handler)
    log.info("slow line")
    assert started.wait(5)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if finished.is_set() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the fork happened in the middle of a write"
    handler.close()


def test_a_broken_stderr_does_not_stop_the_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the failing stream is stderr itself, reporting the failure fails too: the
    writer must still answer flushes and go on with the next lines."""

    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError("closed")

    broken = Broken()
    monkeypatch.setattr(sys, "stderr", broken)
    handler = BackgroundStreamHandler(broken)
    log = _logger("test.log_writer.stderr", handler)
    log.info("lost")
    handler.flush()
    writer = handler._writer
    assert writer is not None and writer.is_alive()
    handler.close()
