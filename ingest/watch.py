"""Keep a store in step with a folder as it changes: ``clipsearch watch ROOT``.

The folder is polled, not watched through inotify: polling sees changes on NFS and SMB
mounts, where change notifications never arrive. Every poll is one ingest run
(:func:`clipsearch.pipeline.runner.ingest`) with prune: new and changed files are embedded once they
have stopped changing (a file still being copied is left for a later poll), moved files
keep their vectors, and videos whose file is gone are removed under the same safety rules
as ``ingest --prune`` (a refused prune is logged, and the poll goes on without it). Each
change is logged as one line (the ``clipsearch.changes`` logger).

A stop (SIGTERM, SIGINT: :class:`threading.Event` ``stop``) ends the poll in flight after
its current batch: what was upserted is in the store, and the next run picks up the rest.
A file that cannot be decoded is tried again only once it changes; a poll that fails (the
store is down, a decoder crashed) is logged and the next one tries again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from clipsearch.data.collection import Collection, load_collection
from clipsearch.errors import ClipSearchError, DatasetError, InvalidInput
from clipsearch.filenames import display
from clipsearch.model import ClipEncoder
from clipsearch.pipeline.runner import IngestOptions, IngestReport, changes, ingest
from clipsearch.pipeline.sync import STILL_WRITTEN, Stamp
from clipsearch.settings import DEFAULT_WATCH_INTERVAL_S
from clipsearch.store.base import VectorStore

log = logging.getLogger(__name__)

# The encoder and store of one poll, and a function that gives them back.
Lease = tuple[ClipEncoder, VectorStore, Callable[[], None]]


@dataclass
class Watcher:
    """Polls ``root`` every ``interval_s`` seconds, one ingest run with prune each time."""

    root: Path
    options: IngestOptions
    interval_s: float = DEFAULT_WATCH_INTERVAL_S
    report_path: Path | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    # held while a poll runs: whoever closes the store takes it first
    busy: threading.Lock = field(default_factory=threading.Lock)
    polls: int = 0
    # files that could not be decoded, with how they looked then: not tried again until
    # they change
    _broken: dict[str, Stamp] = field(default_factory=dict)
    # the notes of the last look: logged then, and not again while they still hold
    _said: set[str] = field(default_factory=set)
    _waiting: bool = False  # the folder was missing or unreadable at the last poll

    def __post_init__(self) -> None:
        if not self.interval_s > 0:
            raise InvalidInput(f"the poll interval must be > 0 s, got {self.interval_s}")
        self.options = replace(self.options, stop=self.stop, keep_on_refusal=True)

    def run(self, encoder: ClipEncoder, store: VectorStore) -> int:
        """Poll until ``stop`` is set; the number of polls made."""
        return self.run_with(lambda: (encoder, store, lambda: None))

    def run_with(self, lease: Callable[[], Lease]) -> int:
        """Poll until ``stop`` is set, asking ``lease`` each time for the encoder and store
        to use and a function that gives them back (the web app's current search
        service); the number of polls made."""
        wait = 0.0
        while not self.stop.wait(wait):
            wait = self.interval_s
            with self.busy:
                if self.stop.is_set():
                    break
                try:
                    encoder, store, release = lease()
                except Exception as exc:  # the app's store is switching or down
                    self._say([f"cannot watch {self.root} now: {exc}"])
                    continue
                try:
                    self.poll(encoder, store)
                finally:
                    release()
        return self.polls

    def poll(self, encoder: ClipEncoder, store: VectorStore) -> IngestReport | None:
        """One look at the folder: ingest what changed, prune what is gone."""
        self.polls += 1
        notes: list[str] = []
        try:
            return self._poll(encoder, store, notes)
        finally:
            self._say(notes)

    def _poll(
        self, encoder: ClipEncoder, store: VectorStore, notes: list[str]
    ) -> IngestReport | None:
        try:
            collection = self._collection()
        except DatasetError as exc:
            notes.append(f"{exc.message}; waiting for it")
            self._waiting = True
            return None
        except OSError as exc:  # a share gone stale, a parent folder made unreadable
            notes.append(f"cannot read {self.root} ({exc.strerror or exc}); waiting for it")
            self._waiting = True
            return None
        if self._waiting:
            changes.info("%s can be read again", self.root)
            self._waiting = False
        try:
            report = ingest(collection, encoder, store, self.options)
        except ClipSearchError as exc:  # said, not a traceback at every poll
            notes.append(f"poll of {self.root} failed: {exc.message}; trying again at the next")
            return None
        except Exception:  # the store is down, a decoder crashed: the next poll tries again
            log.exception("poll %d of %s failed; trying again at the next", self.polls, self.root)
            return None
        if report.prune_refused:
            notes.append(report.prune_refused)
        self._remember(collection, report, notes)
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
            if seen is not None and not seen.changed(clip.source):
                continue  # the same broken file: not tried again
            keep.append(clip)
        return replace(collection, clips=keep)

    def _remember(self, collection: Collection, report: IngestReport, notes: list[str]) -> None:
        """Note each skipped file, and keep broken ones from being tried every poll."""
        by_path = {display(c.path): c for c in collection.clips}
        for failed in report.failed:
            path, reason = failed["path"], failed["reason"]
            notes.append(f"skipped {path}: {reason}")
            clip = by_path.get(path)
            if clip is not None and reason != STILL_WRITTEN:
                with contextlib.suppress(OSError):
                    self._broken[clip.path] = Stamp.of(clip.source)
        for problem in report.problems:
            notes.append(f"not read {problem['path']}: {problem['reason']}")

    def _say(self, notes: list[str]) -> None:
        """Log the notes of a look that the last look did not have: a condition is logged
        when it starts, not at every poll, and again if it goes away and comes back."""
        for note in dict.fromkeys(notes):
            if note not in self._said:
                changes.warning("%s", note)
        self._said = set(notes)
