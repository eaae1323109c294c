"""Keep a store in step with a folder as it changes: ``clipsearch watch ROOT``.

The folder is polled, not watched through inotify: polling sees changes on NFS and SMB
mounts, where change notifications never arrive. Every poll is one ingest run
(:func:`ingest.pipeline.ingest`) with prune: new and changed files are embedded once they
have stopped changing (a file still being copied is left for a later poll), moved files
keep their vectors, and videos whose file is gone are removed under the same safety rules
as ``ingest --prune`` (a refused prune is logged, and the poll goes on without it). Each
change is logged as one line (the ``clipsearch.changes`` logger).

A stop (SIGTERM, SIGINT: :class:`threading.Event` ``stop``) ends the poll in flight after
its current batch: what was upserted is in the store, and the next run picks up the rest.
A file that cannot be decoded is tried again only once it changes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from clipsearch.dataset import Collection, load_collection
from clipsearch.errors import DatasetError, InvalidInput, StoreError
from clipsearch.filenames import display
from clipsearch.model import ClipEncoder
from clipsearch.runmodes import DEFAULT_WATCH_INTERVAL_S
from clipsearch.store.base import VectorStore
from ingest.pipeline import IngestOptions, IngestReport, changes, ingest
from ingest.sync import STILL_WRITTEN, Stamp

log = logging.getLogger(__name__)


@dataclass
class Watcher:
    """Polls ``root`` every ``interval_s`` seconds, one ingest run with prune each time."""

    root: Path
    options: IngestOptions
    interval_s: float = DEFAULT_WATCH_INTERVAL_S
    report_path: Path | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    idle: threading.Event = field(default_factory=lambda: _set(threading.Event()))  # no poll on
    polls: int = 0
    # files that could not be decoded, with how they looked then: not tried again until
    # they change
    _broken: dict[str, tuple[Stamp, str]] = field(default_factory=dict)
    _said: set[str] = field(default_factory=set)  # notes already logged (said once)

    def __post_init__(self) -> None:
        if not self.interval_s > 0:
            raise InvalidInput(f"the poll interval must be > 0 s, got {self.interval_s}")

    def run(self, encoder: ClipEncoder, store: VectorStore) -> int:
        """Poll until ``stop`` is set; the number of polls made."""
        while not self.stop.is_set():
            self.poll(encoder, store)
            self.stop.wait(self.interval_s)
        return self.polls

    def run_with(
        self, service: Callable[[], tuple[ClipEncoder, VectorStore, Callable[[], None]]]
    ) -> None:
        """Poll until ``stop`` is set, asking ``service`` each time for the encoder and store
        to use and a function that releases them (the web app's current search service)."""
        while not self.stop.wait(self.interval_s if self.polls else 0):
            try:
                encoder, store, release = service()
            except Exception as exc:  # the app's store is being switched or is down
                self._say_once(f"cannot watch {self.root} now: {exc}")
                continue
            try:
                self.poll(encoder, store)
            finally:
                release()

    def poll(self, encoder: ClipEncoder, store: VectorStore) -> IngestReport | None:
        """One look at the folder: ingest what changed, prune what is gone."""
        self.idle.clear()
        try:
            return self._poll(encoder, store)
        finally:
            self.idle.set()

    def _poll(self, encoder: ClipEncoder, store: VectorStore) -> IngestReport | None:
        self.polls += 1
        try:
            collection = self._collection()
        except DatasetError as exc:
            self._say_once(f"{exc.message}; waiting for it")
            return None
        options = replace(self.options, stop=self.stop)
        try:
            try:
                report = ingest(collection, encoder, store, options)
            except InvalidInput as exc:  # a refused prune: ingest without it this time
                self._say_once(exc.message)
                report = ingest(collection, encoder, store, replace(options, prune=False))
        except StoreError as exc:
            log.warning("poll %d of %s failed: %s (trying again later)", self.polls, self.root, exc)
            return None
        self._remember(collection, report)
        if self.report_path is not None:
            self.report_path.parent.mkdir(parents=True, exist_ok=True)
            self.report_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        return report

    def _collection(self) -> Collection:
        collection = load_collection(self.root)
        if not self._broken:
            return collection
        keep = []
        for clip in collection.clips:
            seen = self._broken.get(clip.path)
            try:
                if seen is not None and Stamp.of(clip.source) == seen[0]:
                    continue  # the same broken file: not tried again
            except OSError:
                pass
            keep.append(clip)
        return replace(collection, clips=keep)

    def _remember(self, collection: Collection, report: IngestReport) -> None:
        """Log each skipped file once, and keep broken ones from being tried every poll."""
        by_path = {display(c.path): c for c in collection.clips}
        for failed in report.failed:
            path, reason = failed["path"], failed["reason"]
            self._say_once(f"skipped {path}: {reason}")
            clip = by_path.get(path)
            if clip is not None and reason != STILL_WRITTEN:
                with contextlib.suppress(OSError):
                    self._broken[clip.path] = (Stamp.of(clip.source), reason)
        for problem in report.problems:
            self._say_once(f"not read {problem['path']}: {problem['reason']}")

    def _say_once(self, note: str) -> None:
        if note not in self._said:
            self._said.add(note)
            changes.warning("%s", note)


def _set(event: threading.Event) -> threading.Event:
    event.set()
    return event
