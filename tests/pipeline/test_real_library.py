"""A folder like the ones people have: phone, camcorder, TV and downloaded videos in every
container the extension list names, a name that is not UTF-8, a NAS share linked in, a
link loop, and the files operating systems leave behind.

It is ingested as a user would (``clipsearch ingest``), and every check is on what a user
gets: the ingest report, the API's fields, and the poster, preview and thumbnails the
app serves (an arrow must point up, a disc must be round, an interlaced frame must not
comb).
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from flask.testing import FlaskClient
from PIL import Image
from videolib import (
    CONTAINERS,
    bar_scene,
    combing,
    disc_aspect,
    points_up,
    write_container,
    write_video,
)

from clipsearch.cli import main
from clipsearch.store.base import clip_id

PORTRAIT = (112, 192)  # displayed size of the phone videos
# name -> what write_video gets; the displayed picture is always the upright arrow
PHONE = {
    "phone/portrait_cw.mp4": {"rotation": -90, "size": PORTRAIT},  # iPhone: turn clockwise
    "phone/portrait_ccw.mov": {"rotation": 90, "size": PORTRAIT, "fmt": "mov"},
    "phone/upside_down.mp4": {"rotation": 180},
    "phone/old_rotate_tag.mkv": {"rotate_tag": 90, "size": PORTRAIT},
}
ANAMORPHIC = {  # name -> (what write_video gets, displayed size)
    "camcorder/dv_pal.dv": (
        {"fmt": "dv", "codec": "dvvideo", "size": (768, 576), "sar": Fraction(16, 15)},
        (768, 576),
    ),
    "camcorder/hdv.m2ts": (
        {
            "fmt": "mpegts",
            "size": (480, 270),
            "sar": Fraction(4, 3),
            "container_options": {"mpegts_m2ts_mode": "1"},
        },
        (480, 270),
    ),
    "dvd/anamorphic.mkv": ({"size": (256, 144), "sar": Fraction(4, 3)}, (256, 144)),
}
NOT_UTF8 = os.fsdecode(b"downloads/caf\xe9 na\xefve.mp4")  # Latin-1 bytes
TV = {
    "tv/late_start.mkv": {"start_s": 4000.0, "seconds": 3.0},
    "tv/late_start_1000.ts": {"fmt": "mpegts", "start_s": 1000.0, "seconds": 3.0},
    "tv/long_audio.mkv": {"seconds": 2.0, "audio_s": 6.0},
    "tv/interlaced.ts": {
        "fmt": "mpegts",
        "codec": "mpeg2video",
        "size": (320, 240),
        "seconds": 2.0,
        "interlaced": True,
        "scene": bar_scene(320, 240),
    },
    "music/with_cover.mkv": {"seconds": 2.0, "cover": True},
}
LINKED = "nas/share/on_the_nas.mp4"  # under a link to a folder outside the library
SYSTEM_FILES = [  # (path, content): never videos, never reported as broken
    ("phone/._portrait_cw.mp4", b"\x00\x05\x16\x07" + bytes(4092)),
    (".DS_Store", bytes(6148)),
    ("phone/Thumbs.db", bytes(1024)),
    ("@eaDir/portrait_cw.mp4/SYNOFILE_THUMB_XL.jpg", bytes(512)),
    ("$RECYCLE.BIN/S-1-5-21/$R1.mp4", b"not a video"),
    (".Trash-1000/files/old.mp4", b"not a video"),
]
OTHER_FILES = ["downloads/notes.txt", "phone/photo.jpg", "tv/late_start.srt"]


@dataclass
class Library:
    root: Path
    store: Path
    media: Path
    report: dict[str, Any]
    log: str

    def id(self, path: str) -> str:
        return clip_id(path)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Library]:
    base = tmp_path_factory.mktemp("real")
    root = base / "library"
    for name, kwargs in PHONE.items():
        _mkdir(root / name)
        write_video(root / name, **kwargs)
    for name, (kwargs, _) in ANAMORPHIC.items():
        _mkdir(root / name)
        write_video(root / name, **kwargs)
    for name, kwargs in TV.items():
        _mkdir(root / name)
        write_video(root / name, **kwargs)
    (root / "formats").mkdir(parents=True)
    for ext in CONTAINERS:
        write_container(root / "formats", ext)
    _mkdir(root / NOT_UTF8)
    write_video(root / NOT_UTF8)
    share = base / "nas-mount" / "share"
    share.mkdir(parents=True)
    write_video(share / "on_the_nas.mp4")
    (root / "nas").symlink_to(base / "nas-mount", target_is_directory=True)
    (root / "formats" / "back_to_top").symlink_to(root, target_is_directory=True)  # a loop
    for name, content in SYSTEM_FILES:
        _mkdir(root / name)
        (root / name).write_bytes(content)
    (root / "lost+found").mkdir()
    for name in OTHER_FILES:
        (root / name).write_text("not a video\n")
    old = time.time() - 3600  # copied in an hour ago: settled
    for path in base.rglob("*"):
        os.utime(path, (old, old), follow_symlinks=False)

    store, media, report_path = base / "store", base / "media", base / "report.json"
    argv = ["ingest", str(root), "--model", str(tiny_model_dir), "--store", str(store)]
    argv += ["--media-dir", str(media), "--report", str(report_path), "-q"]
    handler = _Capture()
    logging.getLogger("clipsearch").addHandler(handler)
    try:
        assert main(argv) == 0
    finally:
        logging.getLogger("clipsearch").removeHandler(handler)
    yield Library(root, store, media, json.loads(report_path.read_text()), handler.text())


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def text(self) -> str:
        return "\n".join(self.lines)


def _mkdir(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="module")
def client(library: Library, tiny_model_dir: Path) -> Iterator[FlaskClient]:
    from clipsearch.model import load_model
    from clipsearch.search import SearchService
    from clipsearch.store.edge import QdrantEdgeStore
    from webapp import create_app
    from webapp.settings import Settings

    store = QdrantEdgeStore(library.store)
    encoder = load_model(tiny_model_dir, towers="both")
    settings = Settings(model=str(tiny_model_dir), media_dir=str(library.media))
    app = create_app(settings, search=SearchService(encoder, store))
    yield app.test_client()
    store.close()


def _videos() -> list[str]:
    return [
        *PHONE,
        *ANAMORPHIC,
        *TV,
        *(f"formats/clip.{ext}" for ext in CONTAINERS),
        NOT_UTF8,
        LINKED,
    ]


def _image(client: FlaskClient, url: str) -> np.ndarray:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.data[:200])
    return np.asarray(Image.open(io.BytesIO(response.data)).convert("RGB"))


def _preview_frame(client: FlaskClient, clip: str, index: int = 0) -> np.ndarray:
    response = client.get(f"/media/video/{clip}.mp4")
    assert response.status_code == 200, response.data[:200]
    with av.open(io.BytesIO(response.data)) as container:
        frames = list(container.decode(video=0))
    assert frames[index].rotation == 0  # pixels turned: no display matrix of its own
    return frames[index].to_ndarray(format="rgb24")


def _api(client: FlaskClient, clip: str) -> dict[str, Any]:
    response = client.get(f"/api/clips/{clip}")
    assert response.status_code == 200, response.data[:200]
    body: dict[str, Any] = response.get_json()
    return body


# --------------------------------------------------------------------- every file accounted


def test_every_video_is_ingested_and_nothing_else_is_taken_for_one(library: Library) -> None:
    report = library.report
    paths = {os.fsencode(p).decode("utf-8", "replace") for p in _videos()}
    assert report["found"] == len(paths), report
    assert report["failed"] == [], report["failed"]
    assert report["ingested"] == len(paths)
    # system files are ignored, never reported as broken videos; other files by extension
    assert report["ignored"] == {"system": 7, ".txt": 1, ".jpg": 1, ".srt": 1}
    # the link loop is reported once and not followed
    (loop,) = report["problems"]
    assert loop["path"] == "formats/back_to_top" and "loop" in loop["reason"]


def test_the_summary_names_what_was_ignored(library: Library, tiny_model_dir: Path) -> None:
    # a second run: everything is up to date, and the summary still accounts for it all
    argv = ["ingest", str(library.root), "--model", str(tiny_model_dir)]
    argv += ["--store", str(library.store), "--media-dir", str(library.media), "-q"]
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    text = out.getvalue()
    n = len(_videos())
    assert f"found {n} video files: ingested 0, up to date {n}, skipped 0" in text
    assert "ignored 7 system files, 1 .jpg file, 1 .srt file, 1 .txt file" in text
    assert "not read formats/back_to_top: link to" in text


def test_no_truncation_warning_for_late_starts_long_audio_or_program_streams(
    library: Library,
) -> None:
    assert "decoded (truncated" not in library.log, library.log


# ------------------------------------------------------------------------ display geometry


@pytest.mark.parametrize("name", sorted(PHONE))
def test_phone_videos_are_shown_upright(library: Library, client: FlaskClient, name: str) -> None:
    clip = library.id(name)
    size = PHONE[name].get("size", (176, 144))
    detail = _api(client, clip)
    assert (detail["width"], detail["height"]) == size
    poster = _image(client, f"/media/poster/{clip}.jpg")
    thumbnail = _image(client, f"/media/segment/{clip}/0.jpg")
    preview = _preview_frame(client, clip)
    for picture in (poster, thumbnail, preview):
        assert (picture.shape[1] > picture.shape[0]) == (size[0] > size[1]), picture.shape
        assert points_up(picture), name


@pytest.mark.parametrize("name", sorted(PHONE))
def test_the_model_sees_upright_frames(library: Library, name: str) -> None:
    from clipsearch.pipeline.decode import decode_many

    (decoded,) = decode_many([library.root / name], 8, workers=1)
    assert decoded.frames is not None
    assert all(points_up(f) for f in decoded.frames.frames)


@pytest.mark.parametrize("name", sorted(ANAMORPHIC))
def test_anamorphic_video_has_square_pixels(
    library: Library, client: FlaskClient, name: str
) -> None:
    clip = library.id(name)
    width, height = ANAMORPHIC[name][1]
    detail = _api(client, clip)
    assert (detail["width"], detail["height"]) == (width, height)
    poster = _image(client, f"/media/poster/{clip}.jpg")
    preview = _preview_frame(client, clip)
    for picture in (poster, preview):
        assert picture.shape[1] / picture.shape[0] == pytest.approx(width / height, rel=0.03)
        assert disc_aspect(picture) == pytest.approx(1.0, abs=0.08), name


def test_interlaced_video_is_deinterlaced(library: Library, client: FlaskClient) -> None:
    name = "tv/interlaced.ts"
    with av.open(str(library.root / name)) as container:
        raw = [f for f in container.decode(video=0)]
    assert all(f.interlaced_frame for f in raw)
    combed = combing(raw[len(raw) // 2].to_ndarray(format="rgb24"))
    clip = library.id(name)
    poster = _image(client, f"/media/poster/{clip}.jpg")
    preview = _preview_frame(client, clip, len(raw) // 2)
    assert combed > 2.0  # the fields really are half a frame apart
    for picture in (poster, preview):
        assert combing(picture) < combed / 4


# --------------------------------------------------------------------------------- timing


@pytest.mark.parametrize(
    ("name", "seconds"),
    [
        ("tv/late_start.mkv", 3.0),
        ("tv/late_start_1000.ts", 3.0),
        ("tv/long_audio.mkv", 2.0),
        ("music/with_cover.mkv", 2.0),
    ],
)
def test_duration_is_the_video_streams_own(
    library: Library, client: FlaskClient, name: str, seconds: float
) -> None:
    detail = _api(client, library.id(name))
    assert detail["duration_s"] == pytest.approx(seconds, abs=0.05)
    assert detail["segment_times"][-1][1] <= seconds + 0.05


def test_cover_art_is_never_taken_for_the_video(library: Library, client: FlaskClient) -> None:
    clip = library.id("music/with_cover.mkv")
    poster = _image(client, f"/media/poster/{clip}.jpg")
    assert points_up(poster)  # the video's picture, not the solid red cover
    assert _api(client, clip)["fps"] == pytest.approx(25.0)


@pytest.mark.parametrize("ext", sorted(CONTAINERS))
def test_every_container_is_searchable_and_playable(
    library: Library, client: FlaskClient, ext: str
) -> None:
    clip = library.id(f"formats/clip.{ext}")
    detail = _api(client, clip)
    assert detail["duration_s"] == pytest.approx(1.0, abs=0.1)
    assert points_up(_image(client, f"/media/poster/{clip}.jpg"))
    assert points_up(_preview_frame(client, clip))


# ------------------------------------------------------------------ names and folders


def test_a_name_that_is_not_utf8_is_served(library: Library, client: FlaskClient) -> None:
    clip = clip_id(os.fsencode(NOT_UTF8))
    detail = _api(client, clip)
    assert detail["path"] == "downloads/caf\ufffd na\ufffdve.mp4"
    assert points_up(_image(client, f"/media/poster/{clip}.jpg"))
    assert points_up(_preview_frame(client, clip))
    page = client.get(f"/clips/{clip}")
    assert page.status_code == 200 and "caf\ufffd na\ufffdve.mp4" in page.get_data(as_text=True)


def test_utf8_ids_are_what_they_were() -> None:
    import uuid

    from clipsearch.store.base import CLIP_NAMESPACE

    for name in ("BallBouncing/v_BallBouncing_g01_c01.avi", "Ferien/Strand 🌊 é.mp4"):
        assert clip_id(name) == str(uuid.uuid5(CLIP_NAMESPACE, name))


def test_a_linked_folder_is_followed(library: Library, client: FlaskClient) -> None:
    detail = _api(client, library.id(LINKED))
    assert detail["path"] == LINKED
    assert points_up(_image(client, f"/media/poster/{library.id(LINKED)}.jpg"))


# --------------------------------------------------------------------- still being written


def test_a_file_still_being_written_is_left_for_the_next_run(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    whole = write_video(tmp_path / "whole.mp4", seconds=2.0).read_bytes()
    write_video(folder / "done.mp4")
    growing = folder / "growing.mp4"
    growing.write_bytes(whole[:1000])
    stop = threading.Event()

    def copy_slowly() -> None:  # a copy that takes its time, as over a network
        written = 1000
        with open(growing, "ab") as f:
            while written < len(whole) and not stop.is_set():
                chunk = whole[written : written + max(1, len(whole) // 40)]
                f.write(chunk)
                f.flush()
                written += len(chunk)
                time.sleep(0.15)

    writer = threading.Thread(target=copy_slowly)
    writer.start()
    report_path = tmp_path / "report.json"
    argv = ["ingest", str(folder), "--model", str(tiny_model_dir), "--store"]
    argv += [str(tmp_path / "store"), "--media-dir", str(tmp_path / "media")]
    argv += ["--report", str(report_path), "-q"]
    try:
        assert main(argv) == 0
    finally:
        stop.set()
        writer.join()
    report = json.loads(report_path.read_text())
    assert report["ingested"] == 1
    assert report["failed"] == [
        {
            "path": "growing.mp4",
            "reason": "still being written (its size or modification time is changing)",
        }
    ]
    growing.write_bytes(whole)  # the copy finished
    old = time.time() - 3600
    os.utime(growing, (old, old))
    assert main(argv) == 0
    report = json.loads(report_path.read_text())
    assert (report["ingested"], report["up_to_date"], report["failed"]) == (1, 1, [])
