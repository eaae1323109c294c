"""`clipsearch watch`: it follows a folder as files come and go, logs one line per change,
stops cleanly on SIGTERM keeping what it acknowledged, leaves a store that a rerun
completes after a kill -9, and the web app searches what it adds without a restart
(embedded store: `serve --watch`; client store: a watcher beside the app)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from folders import CLI, age, clips_of, get_json, ingest_argv, make_folder, report_of, stats

from clipsearch.store.base import clip_id

ROOT = Path(__file__).resolve().parents[2]


def watch_argv(folder: Path, model: Path, store: Path, media: Path) -> list[str]:
    argv = ingest_argv(folder, model, store, media)
    argv[0] = "watch"
    return [*CLI, *[a for a in argv if a != "-q"], "--interval", "0.5"]


class Watching:
    """A `clipsearch watch` process and the change lines it has logged so far."""

    def __init__(self, argv: list[str]):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def changes(self, word: str) -> list[str]:
        return [
            ln.split(f"{word} ", 1)[1] for ln in self.lines if f"clipsearch.changes: {word} " in ln
        ]

    def wait_for(self, word: str, n: int, timeout_s: float = 120) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while len(self.changes(word)) < n:
            assert self.proc.poll() is None, "\n".join(self.lines)
            assert time.monotonic() < deadline, "\n".join(self.lines)
            time.sleep(0.05)
        return self.changes(word)

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        return code


def test_watch_follows_a_folder_one_line_per_change(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, store, media = tmp_path / "videos", tmp_path / "store", tmp_path / "media"
    files = make_folder(tiny_synth, folder, 3)
    watching = Watching(watch_argv(folder, tiny_model_dir, store, media))
    try:
        added = watching.wait_for("added", 3)
        assert sorted(added) == sorted(f.relative_to(folder).as_posix() for f in files)
        extra = folder / "later" / "new.avi"
        extra.parent.mkdir()
        shutil.copyfile(clips_of(tiny_synth)[5], extra)
        assert watching.wait_for("added", 4)[-1] == "later/new.avi"
        files[0].rename(folder / "later" / "renamed.avi")
        moved = watching.wait_for("moved", 1)
        assert moved == [f"{files[0].relative_to(folder).as_posix()} -> later/renamed.avi"]
        files[1].unlink()
        assert watching.wait_for("removed", 1) == [
            f"{files[1].relative_to(folder).as_posix()} (file gone)"
        ]
        (folder / "broken.avi").write_text("not a video")
        age(folder)
        deadline = time.monotonic() + 60
        while not any("skipped broken.avi" in ln for ln in watching.lines):
            assert time.monotonic() < deadline, "\n".join(watching.lines)
            time.sleep(0.1)
        time.sleep(1.5)  # a few more polls: the broken file is not tried (nor said) again
    finally:
        code = watching.stop(signal.SIGTERM)
    assert code == 0, "\n".join(watching.lines)
    assert sum("skipped broken.avi" in ln for ln in watching.lines) == 1
    assert any("stopped after" in ln for ln in watching.lines)
    # every line is one change; nothing was added twice
    assert len(watching.changes("added")) == 4
    state = stats(store)
    assert state["consistent"] and state["videos"]["count"] == 3


def test_a_refused_prune_is_said_once_and_the_watch_goes_on(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, store, media = tmp_path / "videos", tmp_path / "store", tmp_path / "media"
    files = make_folder(tiny_synth, folder, 4)
    watching = Watching(watch_argv(folder, tiny_model_dir, store, media))
    try:
        watching.wait_for("added", 4)
        for f in files[:3]:  # more than half at once: an unmounted share looks like this
            f.unlink()
        shutil.copyfile(clips_of(tiny_synth)[6], folder / "new.avi")
        age(folder)
        assert watching.wait_for("added", 5)[-1] == "new.avi"
        time.sleep(1.5)  # more polls
    finally:
        assert watching.stop(signal.SIGTERM) == 0
    refusals = [ln for ln in watching.lines if "refusing to prune: 3 of the 5 videos" in ln]
    assert len(refusals) == 1, "\n".join(watching.lines)
    assert watching.changes("removed") == []
    assert stats(store)["videos"]["count"] == 5


def test_sigterm_mid_batch_keeps_what_was_acknowledged(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, store, media = tmp_path / "videos", tmp_path / "store", tmp_path / "media"
    make_folder(tiny_synth, folder, 24)
    watching = Watching(watch_argv(folder, tiny_model_dir, store, media))
    watching.wait_for("added", 2)
    started = time.monotonic()
    code = watching.stop(signal.SIGTERM)
    assert code == 0, "\n".join(watching.lines)
    assert time.monotonic() - started < 30  # the batch in flight, not the whole folder
    added = watching.changes("added")
    assert 2 <= len(added) < 24, added
    state = stats(store)
    assert state["consistent"] and state["videos"]["count"] == len(added)
    from clipsearch.store.edge import QdrantEdgeStore

    with QdrantEdgeStore(store) as opened:
        assert opened.existing_ids([clip_id(p) for p in added]) == {clip_id(p) for p in added}


def test_kill_9_during_watch_then_a_rerun_equal_to_a_clean_ingest(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, store, media = tmp_path / "videos", tmp_path / "store", tmp_path / "media"
    files = make_folder(tiny_synth, folder, 10)
    report_of(ingest_argv(folder, tiny_model_dir, store, media), tmp_path)
    for f in files[:3]:  # meanwhile: three files deleted, one moved, ten added
        f.unlink()
    files[3].rename(folder / "moved.avi")
    for src in clips_of(tiny_synth)[10:20]:
        shutil.copyfile(src, folder / f"new_{src.name}")
    age(folder)
    watching = Watching(watch_argv(folder, tiny_model_dir, store, media))
    watching.wait_for("added", 4)
    watching.stop(signal.SIGKILL)
    assert watching.proc.returncode == -signal.SIGKILL
    assert stats(store)["consistent"]

    rerun = report_of(ingest_argv(folder, tiny_model_dir, store, media, "--prune"), tmp_path)
    assert rerun["up_to_date"] >= 4 + 6  # what the watcher finished is not done again
    clean = tmp_path / "clean"
    report_of(ingest_argv(folder, tiny_model_dir, clean, tmp_path / "media-clean"), tmp_path)
    assert stats(store) == stats(clean)


# ------------------------------------------------------------- the app sees new videos


def _wait_for_clips(read: Any, n: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while read() != n:
        assert time.monotonic() < deadline, f"{read()} clips, waiting for {n}"
        time.sleep(0.2)


@pytest.mark.parametrize("kind", ["edge", "client"])
def test_the_app_searches_what_its_watcher_adds(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path, kind: str
) -> None:
    from clipsearch.model import load_model
    from clipsearch.search import SearchService
    from clipsearch.store.client import QdrantClientStore
    from clipsearch.store.edge import QdrantEdgeStore
    from webapp import create_app
    from webapp.services import close_app
    from webapp.settings import Settings

    folder = tmp_path / "videos"
    make_folder(tiny_synth, folder, 2)
    store = QdrantEdgeStore(tmp_path / "store") if kind == "edge" else QdrantClientStore.in_memory()
    encoder = load_model(tiny_model_dir, towers="both")
    settings = Settings(
        model=str(tiny_model_dir),
        media_dir=str(tmp_path / "media"),
        watch=str(folder),
        watch_interval_s=0.3,
    )
    app = create_app(settings, search=SearchService(encoder, store))
    client = app.test_client()
    try:
        _wait_for_clips(lambda: client.get("/api/health").get_json()["clips"], 2)
        shutil.copyfile(clips_of(tiny_synth)[7], folder / "new.avi")
        age(folder)
        _wait_for_clips(lambda: client.get("/api/health").get_json()["clips"], 3)
        body = client.get("/api/search?q=a+ball+bouncing&k=10").get_json()
        assert clip_id("new.avi") in {r["id"] for r in body["results"]}
        assert client.get(f"/media/poster/{clip_id('new.avi')}.jpg").status_code == 200
        (folder / "new.avi").unlink()
        _wait_for_clips(lambda: client.get("/api/health").get_json()["clips"], 2)
    finally:
        close_app(app)


@pytest.fixture
def watching_server(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    """`clipsearch serve --watch FOLDER` on an embedded store, as a user starts it."""
    folder = tmp_path / "videos"
    make_folder(tiny_synth, folder, 2)
    port = free_port()
    argv = [*CLI, "serve", "--model", str(tiny_model_dir), "--store", str(tmp_path / "store")]
    argv += ["--media-dir", str(tmp_path / "media"), "--port", str(port)]
    argv += ["--watch", str(folder), "--watch-interval", "0.5"]
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield f"http://127.0.0.1:{port}", folder
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        print(log_path.read_text())


def test_serve_watch_picks_up_new_videos_without_a_restart(
    watching_server: tuple[str, Path], tiny_synth: Path
) -> None:
    base, folder = watching_server

    def clips() -> int | None:
        try:
            status, health = get_json(f"{base}/api/health")
        except OSError:
            return None
        return health.get("clips") if status == 200 else None

    _wait_for_clips(clips, 2, timeout_s=120)
    shutil.copyfile(clips_of(tiny_synth)[9], folder / "arrived.avi")
    age(folder)
    _wait_for_clips(clips, 3)
    status, body = get_json(f"{base}/api/search?q=a+box+spinning&k=10")
    assert status == 200 and clip_id("arrived.avi") in {r["id"] for r in body["results"]}


def test_a_folder_that_cannot_be_read_is_waited_for_and_said_again_when_it_recurs(
    tiny_synth: Path,
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A parent folder made unreadable (or a share gone stale) is waited for like a
    missing folder, not the end of the watch; each time it starts it is said once."""
    from clipsearch.model import load_model
    from clipsearch.pipeline.runner import IngestOptions
    from clipsearch.store.edge import QdrantEdgeStore
    from ingest.watch import Watcher

    folder = tmp_path / "videos"
    make_folder(tiny_synth, folder, 1)
    age(folder)
    encoder = load_model(tiny_model_dir, towers="vision")
    readable = Path.exists

    def denied(path: Path, *args: Any, **kwargs: Any) -> bool:
        if path == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return readable(path, *args, **kwargs)

    watcher = Watcher(folder, IngestOptions(workers=1, settle_s=0, media_dir=None))
    with (
        QdrantEdgeStore(tmp_path / "store") as store,
        caplog.at_level(logging.INFO, logger="clipsearch.changes"),
    ):
        for blocked in (True, True, False, False, True, True):
            monkeypatch.setattr(Path, "exists", denied if blocked else readable)
            assert (watcher.poll(encoder, store) is None) == blocked
        monkeypatch.setattr(Path, "exists", readable)
        assert store.count() == 1
    notes = [r.getMessage() for r in caplog.records]
    waiting = [n for n in notes if n.endswith("cannot be read (Permission denied); waiting for it")]
    assert len(waiting) == 2, notes  # when it began, and when it began again
    assert sum(n.endswith("can be read again") for n in notes) == 1, notes


def test_a_store_of_another_model_is_refused_before_the_first_poll(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from clipsearch.store.edge import QdrantEdgeStore

    folder, store, media = tmp_path / "videos", tmp_path / "store", tmp_path / "media"
    make_folder(tiny_synth, folder, 1)
    with QdrantEdgeStore(store) as other:
        other.ensure_collection(7)  # no model here makes vectors of 7
    done = subprocess.run(
        watch_argv(folder, tiny_model_dir, store, media),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("clipsearch: error: store ")
    assert "Traceback" not in done.stderr
