"""Reading video collections: the UCF101 layout (and SynthUCF) or any folder of videos.

UCF101 facts this module relies on, all true of the real dataset:

- ``<root>/UCF-101/<ClassName>/v_<Prefix>_gGG_cCC.avi``; the label is the folder,
  never the file prefix (``HandstandPushups/v_HandStandPushups_g01_c01.avi``);
- ``<root>/ucfTrainTestlist/classInd.txt`` ("1 ApplyEyeMakeup"), 1-based;
- ``trainlist0k.txt`` ("Class/v_..._g08_c01.avi 1") and ``testlist0k.txt``
  ("Class/v_..._g01_c01.avi"), k = 1..3, CRLF line endings.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clipsearch.errors import DatasetError
from clipsearch.filenames import display
from clipsearch.data.ucf101_classes import UCF101_PHRASES

log = logging.getLogger(__name__)

# What video libraries hold (matched case-insensitively): phones and cameras (mp4 m4v mov
# qt 3gp 3g2, camcorder AVCHD mts m2ts, DV, MXF), discs and broadcast (mpg mpeg mpe vob ts
# m2t), Windows (wmv asf avi divx), the web (mkv webm flv f4v ogv ogg).
# fmt: off
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".qt", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".mpe", ".vob",
    ".ts", ".mts", ".m2ts", ".m2t", ".3gp", ".3g2", ".wmv", ".asf", ".flv", ".f4v", ".ogv",
    ".ogg", ".dv", ".mxf", ".divx",
})
# fmt: on
# Files and folders that operating systems and NAS boxes leave in a library; they are
# ignored (never reported as broken videos, never entered). Dotfiles (AppleDouble ``._*``,
# ``.DS_Store``, ``.Trash-1000``, ...) are ignored as well.
SYSTEM_NAMES = frozenset(
    {
        "thumbs.db",
        "ehthumbs.db",
        "desktop.ini",
        "@eadir",
        "#recycle",
        "#snapshot",
        "$recycle.bin",
        "system volume information",
        "lost+found",
    }
)
# The key under which ignored system files and folders are counted.
SYSTEM = "system"
SPLITS = (1, 2, 3)
VIDEOS_DIR = "UCF-101"
LISTS_DIR = "ucfTrainTestlist"

_UCF_NAME = re.compile(r"^v_(?P<prefix>.+)_g(?P<group>\d+)_c(?P<clip>\d+)$")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\d|\b)|[A-Z]?[a-z]+|[A-Z]+|\d+")

# The phrase of every UCF101 class; other names (SynthUCF's, any folder's) are split from
# CamelCase.
PHRASE_OVERRIDES: dict[str, str] = dict(UCF101_PHRASES)


def split_camel_case(name: str) -> str:
    """``"BallRollingLeft"`` -> ``"ball rolling left"``."""
    words = _CAMEL.findall(name)
    return " ".join(w.lower() for w in words) if words else name.lower()


def class_phrase(name: str, overrides: dict[str, str] | None = None) -> str:
    """The natural-language phrase for a class folder name."""
    table = PHRASE_OVERRIDES if overrides is None else overrides
    return table.get(name) or split_camel_case(name)


@dataclass(frozen=True)
class Clip:
    """One video file of a collection."""

    path: str  # POSIX path relative to the collection's video root (any bytes: PEP 383)
    source: Path  # absolute path on disk, through the links the walk followed
    label: str | None  # class (folder) name, None for loose files
    group: int | None = None
    clip: int | None = None
    # split number -> "train" | "test" (UCF layout only)
    splits: dict[int, str] = field(default_factory=dict)


VALIDATION_GROUPS = 3
"""Groups of a split's training list that training validates on (and calibration uses)."""


def validation_split(
    clips: Sequence[Clip], n_groups: int = VALIDATION_GROUPS
) -> tuple[list[Clip], list[Clip]]:
    """(training clips, validation clips) of a split's training list: the last
    ``n_groups`` groups are validation, for every class, and at least one group always
    stays for training. Whole groups, never single clips: a group shares its scene and
    object, so a clip of a training group would be a near-copy of training data. Clips
    without a group number always train."""
    groups = sorted({c.group for c in clips if c.group is not None})
    n = max(0, min(n_groups, len(groups) - 1))
    held = set(groups[len(groups) - n :]) if n else set()
    return [c for c in clips if c.group not in held], [c for c in clips if c.group in held]


@dataclass(frozen=True)
class Collection:
    """A set of clips plus the class list (ordered as in classInd when there is one)."""

    root: Path
    video_root: Path
    clips: list[Clip]
    classes: list[str]
    is_ucf: bool
    # files under the video root that are not videos, by extension (SYSTEM: system files)
    ignored: dict[str, int] = field(default_factory=dict)
    # (relative path, what happened) for links not followed and folders not read
    problems: list[tuple[str, str]] = field(default_factory=list)

    def split(self, number: int, side: str) -> list[Clip]:
        """Clips on one side ("train" or "test") of an official split."""
        if number not in SPLITS:
            raise DatasetError(f"split must be one of {SPLITS}, got {number}")
        if not self.is_ucf:
            raise DatasetError(f"{self.root} has no {LISTS_DIR}/ split files")
        return [c for c in self.clips if c.splits.get(number) == side]


def is_ucf_root(root: Path) -> bool:
    return (root / VIDEOS_DIR).is_dir() and (root / LISTS_DIR).is_dir()


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise DatasetError(f"missing split file {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def read_class_ind(path: Path) -> list[str]:
    """Class names in label order from ``classInd.txt`` (label k is element k-1)."""
    entries: dict[int, str] = {}
    for n, line in enumerate(_read_lines(path), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(f"{path}:{n}: expected '<index> <ClassName>', got {line!r}")
        entries[int(parts[0])] = parts[1]
    if sorted(entries) != list(range(1, len(entries) + 1)):
        raise DatasetError(f"{path}: class indices are not 1..{len(entries)}")
    return [entries[i] for i in range(1, len(entries) + 1)]


def read_split_list(path: Path) -> list[tuple[str, int | None]]:
    """Entries of a train/test list: (relative path, 1-based label or None)."""
    out: list[tuple[str, int | None]] = []
    for n, line in enumerate(_read_lines(path), 1):
        parts = line.replace("\\", "/").split()
        if len(parts) == 1:
            out.append((parts[0], None))
        elif len(parts) == 2 and parts[1].isdigit():
            out.append((parts[0], int(parts[1])))
        else:
            raise DatasetError(f"{path}:{n}: expected '<Class/file.avi> [label]', got {line!r}")
    return out


def parse_ucf_name(filename: str) -> tuple[str, int, int] | None:
    """``v_ApplyEyeMakeup_g08_c01.avi`` -> ("ApplyEyeMakeup", 8, 1); None if not UCF-named."""
    m = _UCF_NAME.match(Path(filename).stem)
    if not m:
        return None
    return m["prefix"], int(m["group"]), int(m["clip"])


def is_system_name(name: str) -> bool:
    """True for the names of files and folders a library's owner did not put there."""
    return name.startswith(".") or name.lower() in SYSTEM_NAMES


@dataclass
class FolderScan:
    """Everything under a folder: its video files, and what happened to the rest."""

    # (POSIX path relative to the folder, absolute path through it), in path order
    videos: list[tuple[str, Path]] = field(default_factory=list)
    # other files by extension (lower case, "" for none); SYSTEM for system files/folders
    ignored: Counter[str] = field(default_factory=Counter)
    # (relative path, what happened): links not followed, folders that cannot be read
    problems: list[tuple[str, str]] = field(default_factory=list)


def scan_folder(root: Path) -> FolderScan:
    """Walk ``root`` for video files, following links to folders outside it.

    A link to a folder inside ``root`` is not followed (a link to an ancestor would loop
    forever, any other would read the folder twice); neither is a second link to a folder
    already read. Each such link, a broken link and an unreadable folder is reported once
    in ``problems``. System files and folders (:func:`is_system_name`) are counted as
    ignored and never entered.
    """
    scan = FolderScan()
    real_root = Path(os.path.realpath(root))
    entered: dict[tuple[int, int], str] = {}

    def walk(folder: Path, rel: str) -> None:
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            scan.problems.append((rel or ".", f"cannot read the folder ({exc.strerror})"))
            return
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            if is_system_name(entry.name):
                scan.ignored[SYSTEM] += 1
            elif _is_dir(entry):
                why = _not_followed(entry, path, real_root, entered) if entry.is_symlink() else None
                if why:
                    scan.problems.append((path, why))
                else:
                    walk(Path(entry.path), path)
            elif entry.is_symlink() and not _is_file(entry):
                # a drive or share linked in and now unplugged: its videos are not deleted
                scan.problems.append((path, _link_problem(entry.path)))
            elif os.path.splitext(entry.name)[1].lower() not in VIDEO_EXTENSIONS:
                scan.ignored[os.path.splitext(entry.name)[1].lower()] += 1
            elif _is_file(entry):
                scan.videos.append((path, Path(entry.path)))
            else:
                scan.problems.append((path, "not a regular file"))

    walk(Path(root), "")
    return scan


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _link_problem(link: str) -> str:
    """Why the link at ``link``, which leads to no regular file or folder, is not read."""
    try:
        os.stat(link)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return "broken link (its target is missing)"
        if exc.errno == errno.ELOOP:
            return "broken link (it leads round in a loop)"
        return f"link whose target cannot be read ({exc.strerror})"
    return "link to something that is not a regular file"


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _not_followed(
    link: os.DirEntry[str], path: str, real_root: Path, entered: dict[tuple[int, int], str]
) -> str | None:
    """Why the link to a folder at ``path`` is not followed, or None (then it is recorded
    as entered)."""
    target = Path(os.path.realpath(link.path))
    if Path(os.path.realpath(os.path.dirname(link.path))).is_relative_to(target):
        return f"link to {display(target)}, a folder that contains it (a loop): not followed"
    if target.is_relative_to(real_root):
        inside = display(target.relative_to(real_root).as_posix())
        return f"link to {inside}, a folder read where it is: not followed"
    try:
        st = os.stat(link.path)
    except OSError as exc:
        return f"cannot read the linked folder ({exc.strerror})"
    key = (st.st_dev, st.st_ino)
    if key in entered:
        return f"link to the folder already read as {display(entered[key])}: not followed"
    entered[key] = path
    return None


def _clip(file: Path, rel: str, label: str | None, splits: dict[int, str]) -> Clip:
    parsed = parse_ucf_name(file.name)
    return Clip(
        path=rel,
        source=file,
        label=label,
        group=parsed[1] if parsed else None,
        clip=parsed[2] if parsed else None,
        splits=splits,
    )


def _load_ucf(root: Path) -> Collection:
    video_root = root / VIDEOS_DIR
    lists = root / LISTS_DIR
    class_ind = lists / "classInd.txt"
    classes = read_class_ind(class_ind) if class_ind.exists() else []

    # split number -> {lower-cased relative path: side}; matched case-insensitively
    # because list entries and file names disagree in case in the wild.
    membership: dict[str, dict[int, str]] = {}
    for k in SPLITS:
        for side in ("train", "test"):
            list_file = lists / f"{side}list0{k}.txt"
            if not list_file.exists():
                continue
            for rel, number in read_split_list(list_file):
                if number is not None and classes and not 1 <= number <= len(classes):
                    raise DatasetError(f"{list_file}: label {number} outside classInd")
                membership.setdefault(rel.lower(), {})[k] = side

    scan = scan_folder(video_root)
    clips: list[Clip] = []
    for rel, f in scan.videos:
        splits = dict(sorted(membership.pop(rel.lower(), {}).items()))
        clips.append(_clip(f, rel, rel.split("/")[0] if "/" in rel else None, splits))
    if membership:
        log.warning(
            "%d split-list entries name files that are not on disk (first: %s)",
            len(membership),
            next(iter(membership)),
        )
    if not classes:
        classes = sorted({c.label for c in clips if c.label})
    return Collection(root, video_root, clips, classes, True, dict(scan.ignored), scan.problems)


def _load_folder(root: Path) -> Collection:
    scan = scan_folder(root)
    clips = [
        _clip(f, rel, rel.split("/")[-2] if "/" in rel else None, {}) for rel, f in scan.videos
    ]
    classes = sorted({c.label for c in clips if c.label})
    return Collection(root, root, clips, classes, False, dict(scan.ignored), scan.problems)


def load_collection(root: str | Path) -> Collection:
    """Every video under ``root``: a UCF101-layout root (labels and splits) or any folder."""
    path = Path(root).expanduser()
    try:
        exists = path.exists()
    except OSError as exc:  # EACCES on a parent, ESTALE on a share
        raise DatasetError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if not exists:
        raise DatasetError(f"{path} does not exist")
    if path.is_file():
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise DatasetError(
                f"{path} is not a video file ({', '.join(sorted(VIDEO_EXTENSIONS))})"
            )
        source = path.resolve()
        return Collection(source.parent, source.parent, [Clip(path.name, source, None)], [], False)
    collection = _load_ucf(path.resolve()) if is_ucf_root(path) else _load_folder(path.resolve())
    log.debug("%s: %d clips, %d classes", path, len(collection.clips), len(collection.classes))
    return collection
