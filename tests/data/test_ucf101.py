"""`clipsearch data ucf101`: download, extract, verify, and clear failures (no internet here,
so the archives are small fakes with UCF101's layout, served from a local HTTP server)."""

from __future__ import annotations

import functools
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port

from clipsearch.cli import main
from clipsearch.data import ucf101
from clipsearch.data.collection import load_collection
from clipsearch.errors import DatasetError

CLASSES = ["HandstandPushups", "YoYo"]


def _fake_archives(folder: Path) -> tuple[Path, Path]:
    """UCF-101.zip (2 classes x 2 clips) and the split ZIP, as the real ones are laid out."""
    videos, splits = folder / "UCF-101.zip", folder / "splits.zip"
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "HandstandPushups": ["v_HandStandPushups_g01_c01.avi", "v_HandStandPushups_g08_c01.avi"],
        "YoYo": ["v_YoYo_g01_c01.avi", "v_YoYo_g08_c01.avi"],
    }
    with zipfile.ZipFile(videos, "w") as z:
        for cls, names in files.items():
            for name in names:
                z.writestr(f"UCF-101/{cls}/{name}", b"not decoded here")
    with zipfile.ZipFile(splits, "w") as z:
        z.writestr("ucfTrainTestlist/classInd.txt", "1 HandstandPushups\r\n2 YoYo\r\n")
        for n in (1, 2, 3):
            train = "".join(f"{c}/{files[c][1]} {i}\r\n" for i, c in enumerate(CLASSES, 1))
            test = "".join(f"{c}/{files[c][0]}\r\n" for c in CLASSES)
            z.writestr(f"ucfTrainTestlist/trainlist0{n}.txt", train)
            z.writestr(f"ucfTrainTestlist/testlist0{n}.txt", test)
    return videos, splits


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fake archives behind a local HTTP server, installed as the 'official' source."""
    folder = tmp_path / "www"
    _fake_archives(folder)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    source = ucf101.Source("official", f"{base}/UCF-101.zip", f"{base}/splits.zip")
    monkeypatch.setitem(ucf101.SOURCES, "official", source)
    yield folder
    server.shutdown()


def test_download_extract_verify_then_nothing_to_do(served: Path, tmp_path: Path) -> None:
    dest = tmp_path / "ucf"
    verified, changed = ucf101.prepare(dest, clips=4, classes=2)
    assert changed and (verified.clips, verified.classes) == (4, 2)
    assert not (dest / ucf101.DOWNLOADS_DIR).exists()  # archives removed once extracted
    collection = load_collection(dest)
    assert collection.classes == CLASSES
    assert len(collection.split(1, "train")) == 2 and len(collection.split(1, "test")) == 2
    # the label is the folder, not the file prefix
    assert {c.label for c in collection.clips} == set(CLASSES)
    again, changed = ucf101.prepare(dest, clips=4, classes=2)
    assert not changed and again.clips == 4


def test_offline_is_one_clear_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}/UCF101.rar"
    monkeypatch.setitem(ucf101.SOURCES, "official", ucf101.Source("official", url, url))
    dest = tmp_path / "ucf"
    assert main(["data", "ucf101", "--dest", str(dest), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"clipsearch: error: cannot download {url}") and "\n" not in err
    assert "--videos-archive" in err
    assert not dest.exists()


def test_given_archives_that_are_not_all_of_ucf101_fail_verification(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    videos, splits = _fake_archives(tmp_path / "archives")
    argv = ["data", "ucf101", "--dest", str(tmp_path / "ucf"), "--videos-archive", str(videos)]
    assert main([*argv, "--splits-archive", str(splits), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a complete UCF101: 2 class folders, UCF101 has 101" in err
    assert "4 clips, UCF101 has 13,320" in err
    assert videos.exists() and splits.exists()  # the user's own archives are never deleted


def test_bad_archives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.txt", "x")
    with pytest.raises(DatasetError, match="outside the folder"):
        ucf101.extract(evil, tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()
    rar = tmp_path / "UCF101.rar"
    rar.write_bytes(b"Rar!\x1a\x07\x01\x00rest")
    monkeypatch.setattr(ucf101.shutil, "which", lambda _tool: None)
    with pytest.raises(DatasetError, match="no extractor was found: install bsdtar"):
        ucf101.extract(rar, tmp_path / "dest")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello")
    with pytest.raises(DatasetError, match="neither a ZIP nor a RAR"):
        ucf101.extract(junk, tmp_path / "dest")


def test_verify_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="has no UCF-101/ and ucfTrainTestlist/"):
        ucf101.verify(tmp_path)
