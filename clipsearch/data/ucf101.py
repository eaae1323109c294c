"""Download, extract and verify real UCF101 into the layout :mod:`clipsearch.data.collection` reads.

``<dest>/UCF-101/<Class>/v_*.avi`` (13,320 clips, 101 classes) and
``<dest>/ucfTrainTestlist/`` (``classInd.txt``, three train/test splits).

Sources:

- ``official``: the University of Central Florida's own files, ``UCF101.rar`` (6.5 GB) and
  the split ZIP. RAR needs an extractor on the PATH: ``bsdtar`` (libarchive), ``unrar`` or
  ``7z``.
- ``huggingface``: a ZIP re-packing of the same files on the Hugging Face hub
  (``quchenyuan/UCF101-ZIP``), read with Python's own ``zipfile``.

Archives already on disk (``--videos-archive``, ``--splits-archive``) are used as they are,
so a machine without internet can be given them. A complete dataset at ``dest`` is verified
and left alone.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clipsearch.data.collection import LISTS_DIR, SPLITS, VIDEOS_DIR, read_class_ind, read_split_list
from clipsearch.errors import DatasetError
from clipsearch.data.ucf101_classes import UCF101_CLASSES

log = logging.getLogger(__name__)

UCF101_CLIPS = 13_320
UCF101_CLASS_COUNT = 101
DOWNLOADS_DIR = ".downloads"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    name: str
    videos_url: str
    splits_url: str


SOURCES = {
    "official": Source(
        "official",
        "https://www.crcv.ucf.edu/data/UCF101/UCF101.rar",
        "https://www.crcv.ucf.edu/data/UCF101/UCF101TrainTestSplits-RecognitionTask.zip",
    ),
    "huggingface": Source(
        "huggingface",
        "https://huggingface.co/datasets/quchenyuan/UCF101-ZIP/resolve/main/UCF-101.zip",
        "https://huggingface.co/datasets/quchenyuan/UCF101-ZIP/resolve/main/"
        "UCF101TrainTestSplits-RecognitionTask.zip",
    ),
}


@dataclass(frozen=True)
class Verified:
    root: Path
    clips: int
    classes: int


def verify(
    root: str | Path, *, clips: int = UCF101_CLIPS, classes: int = UCF101_CLASS_COUNT
) -> Verified:
    """Check ``root`` holds the whole dataset: ``clips`` videos in ``classes`` folders, the
    class index naming exactly those folders, and every split list entry on disk."""
    root = Path(root)
    videos, lists = root / VIDEOS_DIR, root / LISTS_DIR
    if not videos.is_dir() or not lists.is_dir():
        raise DatasetError(f"{root} has no {VIDEOS_DIR}/ and {LISTS_DIR}/ folders")
    folders = sorted(p.name for p in videos.iterdir() if p.is_dir())
    found = sum(1 for _ in videos.glob("*/*.avi"))
    problems = []
    if len(folders) != classes:
        problems.append(f"{len(folders)} class folders, UCF101 has {classes}")
    if found != clips:
        problems.append(f"{found:,} clips, UCF101 has {clips:,}")
    named = read_class_ind(lists / "classInd.txt")
    if sorted(named) != folders:
        problems.append("classInd.txt does not name the class folders")
    for number in SPLITS:
        for side in ("train", "test"):
            listed = read_split_list(lists / f"{side}list0{number}.txt")
            missing = [path for path, _ in listed if not (videos / path).is_file()]
            if missing:
                problems.append(f"{side}list0{number}.txt names {len(missing)} missing clips")
    if problems:
        raise DatasetError(f"{root} is not a complete UCF101: " + "; ".join(problems))
    return Verified(root, found, len(folders))


def _download(url: str, dest: Path, timeout: float, progress: Callable[[int], None] | None) -> Path:
    """``url`` into ``dest`` (a ``.part`` file renamed when complete; a complete one is kept)."""
    if dest.is_file():
        return dest
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": "clipsearch"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, part.open("wb") as f:
            while chunk := response.read(CHUNK):
                f.write(chunk)
                if progress is not None:
                    progress(len(chunk))
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise DatasetError(
            f"cannot download {url}: {reason}. Without internet, fetch the archives elsewhere "
            "and pass --videos-archive and --splits-archive"
        ) from None
    os.replace(part, dest)
    return dest


def _inside(dest: Path, name: str) -> bool:
    target = (dest / name).resolve()
    return target == dest.resolve() or dest.resolve() in target.parents


def extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if not _inside(dest, name):
                    raise DatasetError(f"{archive} has a member outside the folder: {name!r}")
            z.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{archive} is not a readable ZIP archive: {exc}") from None


RAR_TOOLS = (
    ("bsdtar", lambda a, d: ["bsdtar", "-xf", str(a), "-C", str(d)]),
    ("unrar", lambda a, d: ["unrar", "x", "-o+", "-idq", str(a), str(d) + os.sep]),
    ("7z", lambda a, d: ["7z", "x", "-y", f"-o{d}", str(a)]),
)


def extract_rar(archive: Path, dest: Path) -> None:
    for tool, command in RAR_TOOLS:
        if shutil.which(tool):
            result = subprocess.run(command(archive, dest), capture_output=True, text=True)
            if result.returncode != 0:
                detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
                raise DatasetError(f"{tool} could not extract {archive}: {detail[0]}")
            return
    raise DatasetError(
        f"{archive} is a RAR archive and no extractor was found: install bsdtar "
        "(libarchive-tools), unrar or 7z, or use --source huggingface (ZIP)"
    )


def extract(archive: Path, dest: Path) -> None:
    """Unpack a ZIP or RAR archive into ``dest``."""
    if not archive.is_file():
        raise DatasetError(f"no archive at {archive}")
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        extract_zip(archive, dest)
    elif _is_rar(archive):
        extract_rar(archive, dest)
    else:
        raise DatasetError(f"{archive} is neither a ZIP nor a RAR archive")


def _is_rar(archive: Path) -> bool:
    with archive.open("rb") as f:
        return f.read(4) == b"Rar!"


def _remove_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def prepare(
    dest: str | Path,
    *,
    source: str = "official",
    videos_archive: str | Path | None = None,
    splits_archive: str | Path | None = None,
    keep_archives: bool = False,
    timeout: float = 60.0,
    progress: Callable[[int], None] | None = None,
    clips: int = UCF101_CLIPS,
    classes: int = UCF101_CLASS_COUNT,
) -> tuple[Verified, bool]:
    """UCF101 at ``dest``, downloaded and extracted unless already complete; (what was
    verified, whether anything was fetched or extracted)."""
    if source not in SOURCES:
        raise DatasetError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise DatasetError(f"{dest} exists and is not a directory")
    try:
        return verify(dest, clips=clips, classes=classes), False
    except DatasetError:
        pass
    src = SOURCES[source]
    created = not dest.exists()
    downloads = dest / DOWNLOADS_DIR
    wanted = []
    try:
        for given, url in ((videos_archive, src.videos_url), (splits_archive, src.splits_url)):
            if given is not None:
                wanted.append((Path(given), False))
            else:
                file = downloads / url.rsplit("/", 1)[-1]
                wanted.append((_download(url, file, timeout, progress), True))
    except DatasetError:
        _remove_empty(downloads)
        if created:
            _remove_empty(dest)
        raise
    for archive, fetched in wanted:
        log.info("extracting %s", archive)
        extract(archive, dest)
        if fetched and not keep_archives:
            archive.unlink()
    _remove_empty(downloads)
    verified = verify(dest, clips=clips, classes=classes)
    unknown = sorted(set(read_class_ind(dest / LISTS_DIR / "classInd.txt")) - set(UCF101_CLASSES))
    if unknown and classes == UCF101_CLASS_COUNT:
        log.warning("classes without a phrase (split from CamelCase): %s", ", ".join(unknown))
    return verified, True
