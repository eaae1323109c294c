"""What an ingest has to do to bring a store in step with a folder: the sync plan.

A video file is known to the store by its id (UUIDv5 of its relative path) and by its
content: ``content_hash``, a hash of its size and its first and last MiB, cheap to
compute for any file. Comparing the folder with the store's videos of this root gives,
for each file:

- **up to date**: stored from the same file (size and mtime) with the same model and
  window plan; nothing to do;
- **touched**: size or mtime changed, the content hash did not (a copy that kept its
  bytes, a ``touch``): only the payload is rewritten;
- **reused**: a path the store does not have (or whose file changed) with the content of
  a stored video of the same model and plan: that video's vectors are stored under the
  new id, with no embedding. When the donor's own file is gone and it belongs to this
  root, the file was **moved** (renamed): the donor's id is removed. Otherwise it is a
  **copy** and both stay;
- **embed**: new or changed content;
- **skipped**: a file that cannot be read, or is still being written (its size or mtime
  changed between two looks a few seconds apart).

Stored videos of this root whose file is gone are removed when their content lives on at
another path (a move finished, or one interrupted before its old id was removed) and,
with ``--prune``, otherwise too (:func:`check_prune` guards against removing a folder
that is merely missing or unmounted).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from clipsearch.data.collection import Clip
from clipsearch.errors import InvalidInput, VideoDecodeError
from clipsearch.filenames import display, payload_source
from clipsearch.store.base import VectorStore, clip_id
from clipsearch.video import DECODER, decoded_as_before, shown_as_decoded
from clipsearch.windows import UNSTAMPED_FRAMES

log = logging.getLogger(__name__)

# The payload fields a sync reads for every stored video.
SYNC_KEYS = (
    "path",
    "source",
    "source_bytes",
    "root",
    "model",
    "segment_plan",
    "decoder",
    "source_size",
    "source_mtime_ns",
    "content_hash",
)
HASH_SPAN = 1 << 20  # bytes read at each end of a file for its content hash
HASH_THREADS = 8
# Files changed longer ago than this are taken as settled without a second look (a margin
# for a file server's clock); younger ones are looked at twice, ``settle_s`` apart.
RECENT_S = 60.0
STILL_WRITTEN = "still being written (its size or modification time is changing)"
LOOKUP_CHUNK = 256


class PruneRefused(InvalidInput):
    """A prune that looks like a missing or unmounted folder rather than deleted files."""

    code = "prune_refused"


@dataclass(frozen=True)
class Stamp:
    """What a file looks like from outside: size and modification time (ns)."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> Stamp:
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns)

    def fields(self) -> dict[str, int]:
        return {"source_size": self.size, "source_mtime_ns": self.mtime_ns}

    def matches(self, payload: dict[str, Any]) -> bool:
        return (
            payload.get("source_size") == self.size
            and payload.get("source_mtime_ns") == self.mtime_ns
        )

    def changed(self, path: Path) -> bool:
        """True when the file at ``path`` no longer looks like this (or cannot be read)."""
        try:
            return Stamp.of(path) != self
        except OSError:
            return True


def content_hash(path: Path, size: int) -> str:
    """A hash of a file's size and its first and last MiB (the whole file when smaller)."""
    digest = hashlib.blake2b(size.to_bytes(8, "little"), digest_size=16)
    with open(path, "rb") as f:
        digest.update(f.read(HASH_SPAN))
        if size > HASH_SPAN:
            f.seek(max(HASH_SPAN, size - HASH_SPAN))
            digest.update(f.read(HASH_SPAN))
    return digest.hexdigest()


@dataclass(frozen=True)
class Work:
    """One file with something to do: its clip, how it looked, its content hash (None
    until needed) and, for a reuse, the stored video whose vectors it takes."""

    clip: Clip
    stamp: Stamp
    content_hash: str | None = None
    donor: str | None = None
    stored: bool = False  # the store had a video at this path (of any version)


@dataclass
class SyncPlan:
    """What one ingest run does (see the module docstring)."""

    up_to_date: list[Clip] = field(default_factory=list)
    touched: list[Work] = field(default_factory=list)  # payload only
    reuse: list[Work] = field(default_factory=list)  # vectors of ``donor``
    embed: list[Work] = field(default_factory=list)
    skipped: list[tuple[Clip, str]] = field(default_factory=list)
    # stored videos of this root whose file is gone: id -> payload (SYNC_KEYS)
    gone: dict[str, dict[str, Any]] = field(default_factory=dict)
    # content hashes of the present files (stored, or to be stored by this run)
    present_hashes: dict[str, str] = field(default_factory=dict)  # id -> hash
    root_count: int = 0  # stored videos of this root before the run
    replaced_other_source: int = 0
    looked_at: float = 0.0  # when the last file was looked at

    @property
    def work(self) -> list[Work]:
        return [*self.touched, *self.reuse, *self.embed]

    def moved_away(self) -> dict[str, dict[str, Any]]:
        """Gone videos whose content lives on at a present path: removed without --prune."""
        hashes = set(self.present_hashes.values())
        return {i: p for i, p in self.gone.items() if p.get("content_hash") in hashes}

    def to_prune(self) -> dict[str, dict[str, Any]]:
        """Gone videos whose content is nowhere else: removed only with --prune."""
        moved = self.moved_away()
        return {i: p for i, p in self.gone.items() if i not in moved}


def is_gone(payload: dict[str, Any], present: Callable[[], set[tuple[int, int]]]) -> bool:
    """True when the file a stored video came from no longer exists, or is now a file the
    folder lists under another name (``present()``: the device and inode of each file
    listed; a case-only rename on a case-insensitive share). A path that cannot be read (a
    folder without permission) is not gone."""
    source = payload_source(payload)
    if source is None:
        return False
    try:
        st = source.stat()
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return (st.st_dev, st.st_ino) in present()


# A store call, retried while the store is unavailable: call(action, fn) -> fn().
StoreCall = Callable[[str, Callable[[], Any]], Any]


def plan_sync(
    clips: Sequence[Clip],
    collection_clips: Sequence[Clip],
    store: VectorStore,
    *,
    root: str,
    model_id: str,
    plan_stamp: dict[str, Any] | None,
    reembed: bool = False,
    unread: Sequence[str] = (),
    call: StoreCall = lambda _action, fn: fn(),
) -> SyncPlan:
    """Compare ``clips`` (the files to take on) with the store's videos of ``root``.

    ``collection_clips`` are every video file under the root now (``clips`` may be a share
    or the first N of them): the root's stored videos not among them, whose file is gone,
    are gone, but for those under ``unread`` paths (links and folders the scan could not
    follow: an unplugged drive is not a deletion). Store reads go through ``call``.
    """
    plan = SyncPlan()
    present = {clip_id(c.path) for c in collection_clips}
    rooted: dict[str, dict[str, Any]] = call(
        "look up the folder's videos", lambda: dict(store.payloads({"root": root}, keys=SYNC_KEYS))
    )
    plan.root_count = len(rooted)
    inodes = functools.cache(lambda: {_inode(c.source) for c in collection_clips})
    shielded = tuple(display(p).rstrip("/") + "/" for p in unread)
    plan.gone = {
        i: p
        for i, p in rooted.items()
        if i not in present
        and not str(p.get("path", "")).startswith(shielded)
        and is_gone(p, inodes)
    }
    ids = [clip_id(c.path) for c in clips]
    missing = [i for i in ids if i not in rooted]
    # videos of these paths stored under another root, or before roots were recorded
    others = {
        i: p.payload
        for i, p in call("look up stored clips", lambda: store.retrieve(missing)).items()
    }
    to_hash: list[tuple[Work, dict[str, Any] | None]] = []
    for clip, pid in zip(clips, ids, strict=True):
        try:
            stamp = Stamp.of(clip.source)
        except OSError as exc:
            plan.skipped.append((clip, f"cannot read the file ({exc.strerror or exc})"))
            continue
        stored = rooted.get(pid, others.get(pid))
        work = Work(clip, stamp, stored=stored is not None)
        if stored is not None and payload_source(stored) != clip.source:
            plan.replaced_other_source += 1
            stored = None
        if stored is not None and not _same_kind(stored, model_id, plan_stamp):
            stored = None
        if reembed:
            to_hash.append((work, None))
        elif stored is not None and stamp.matches(stored) and _complete(stored, root):
            plan.up_to_date.append(clip)
            plan.present_hashes[pid] = str(stored["content_hash"])
        else:
            to_hash.append((work, stored))
    plan.looked_at = time.time()
    _hash_and_route(plan, to_hash, store, root, model_id, plan_stamp, reembed, call)
    return plan


def _inode(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (-1, -1)
    return (st.st_dev, st.st_ino)


def _same_kind(payload: dict[str, Any], model_id: str, plan_stamp: dict[str, Any] | None) -> bool:
    """The stored vectors are what this run would make: same model, same window plan,
    frames of this decoder (or of one before it: see ``_legacy_ok``)."""
    return (
        payload.get("model") == model_id
        and same_plan(payload.get("segment_plan"), plan_stamp)
        and payload.get("decoder", DECODER) in (DECODER - 1, DECODER)
    )


def same_plan(stored: Any, stamp: dict[str, Any] | None) -> bool:
    """``stored`` (a payload's ``segment_plan``) stamps the same cut as ``stamp``."""
    return bool((with_frames(stored) if isinstance(stored, dict) else stored) == stamp)


def with_frames(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored plan stamp with its frames a window: a stamp from before frames were
    stamped counts as the frames windows pooled then."""
    return {**stored, "frames": stored.get("frames", UNSTAMPED_FRAMES)}


def _complete(payload: dict[str, Any], root: str) -> bool:
    """The payload has what this version records: the decoder, content hash and root."""
    return (
        payload.get("decoder") == DECODER
        and isinstance(payload.get("content_hash"), str)
        and payload.get("root") == root
    )


def _legacy_ok(work: Work, stored: dict[str, Any]) -> bool:
    """A video stored by an earlier decoder keeps its vectors only if its file did not
    change and this decoder changes nothing for it: decoder 1 (no ``decoder``) neither
    turned, deinterlaced nor took the main stream; decoder 2 took a still stored first
    and let times run backwards."""
    try:
        if "decoder" in stored:
            alike = stored.get("content_hash") == work.content_hash
        else:
            alike = work.stamp.matches(stored) and shown_as_decoded(work.clip.source)
        return alike and decoded_as_before(work.clip.source)
    except VideoDecodeError:
        return False


def _hash_and_route(
    plan: SyncPlan,
    candidates: list[tuple[Work, dict[str, Any] | None]],
    store: VectorStore,
    root: str,
    model_id: str,
    plan_stamp: dict[str, Any] | None,
    reembed: bool,
    call: StoreCall,
) -> None:
    """Hash the files that may need work (each with its usable stored payload, if any)
    and sort them into touched, reuse and embed."""
    hashed: list[tuple[Work, dict[str, Any] | None]] = []
    with ThreadPoolExecutor(HASH_THREADS) as pool:  # file reads: many at once on a NAS
        digests = pool.map(_try_hash, [w for w, _ in candidates])
        for (work, stored), digest in zip(candidates, digests, strict=True):
            if isinstance(digest, OSError):
                reason = f"cannot read the file ({digest.strerror or digest})"
                plan.skipped.append((work.clip, reason))
            else:
                hashed.append((replace(work, content_hash=digest), stored))
    wanted = [str(w.content_hash) for w, _ in hashed]
    donors = (
        {} if reembed else call("look up stored content", lambda: _donors(store, wanted, model_id))
    )
    for work, stored in hashed:
        pid = clip_id(work.clip.path)
        digest = str(work.content_hash)
        plan.present_hashes[pid] = digest
        if reembed:
            plan.embed.append(work)
        elif stored is not None and (
            stored.get("content_hash") == digest
            if stored.get("decoder") == DECODER
            else _legacy_ok(work, stored)
        ):
            plan.touched.append(work)
        elif (donor := _pick_donor(donors.get(digest, []), pid, plan_stamp, plan.gone)) is not None:
            plan.reuse.append(replace(work, donor=donor))
        else:
            plan.embed.append(work)


def _try_hash(work: Work) -> str | OSError:
    try:
        return content_hash(work.clip.source, work.stamp.size)
    except OSError as exc:
        return exc


def _donors(
    store: VectorStore, hashes: list[str], model_id: str
) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Stored videos of ``model_id`` by content hash."""
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    unique = sorted(set(hashes))
    for i in range(0, len(unique), LOOKUP_CHUNK):
        wanted = {"content_hash": unique[i : i + LOOKUP_CHUNK], "model": model_id}
        for pid, payload in store.payloads(wanted, keys=SYNC_KEYS):
            out.setdefault(str(payload["content_hash"]), []).append((pid, payload))
    return out


def _pick_donor(
    candidates: list[tuple[str, dict[str, Any]]],
    pid: str,
    plan_stamp: dict[str, Any] | None,
    gone: dict[str, dict[str, Any]],
) -> str | None:
    """The stored video to take vectors from, among those made as this run would make
    them: a gone one of this root first (the file moved), else any (a copy)."""
    usable = [
        i
        for i, p in candidates
        if same_plan(p.get("segment_plan"), plan_stamp) and p.get("decoder") == DECODER
    ]
    moved = [i for i in usable if i in gone and i != pid]
    return moved[0] if moved else (usable[0] if usable else None)


def wait_settled(
    work: Sequence[Work],
    *,
    looked_at: float,
    settle_s: float,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[Work], list[Work]]:
    """(settled, still being written): files changed in the last minute are looked at
    again ``settle_s`` after the last first look (``looked_at``); those whose size or
    modification time moved meanwhile are still being written."""
    recent = [w for w in work if now() - w.stamp.mtime_ns / 1e9 < RECENT_S]
    if not recent or settle_s <= 0:
        return list(work), []
    sleep(max(0.0, looked_at + settle_s - now()))
    moving = {id(w) for w in recent if w.stamp.changed(w.clip.source)}
    return [w for w in work if id(w) not in moving], [w for w in work if id(w) in moving]


def check_prune(plan: SyncPlan, root: str, *, root_has_files: bool, force: bool) -> None:
    """Refuse a prune that looks like a missing folder rather than deleted files: an empty
    root, or more than half of the root's videos gone (``force`` overrides both)."""
    doomed = len(plan.to_prune())
    if force or not doomed:
        return
    if not root_has_files:
        raise PruneRefused(
            f"refusing to prune: {root} holds no video files, so all {doomed} of its videos "
            "would be removed (is a disk unmounted?); pass --force to remove them"
        )
    if doomed * 2 > plan.root_count:
        raise PruneRefused(
            f"refusing to prune: {doomed} of the {plan.root_count} videos of {root} would be "
            "removed (more than half: is part of it unmounted?); pass --force to remove them"
        )
