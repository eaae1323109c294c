"""The index follows the folder: files deleted, renamed, modified, touched and added between
two ingests leave a store equal to a clean ingest of the final folder (`clipsearch store
stats`: the same ids, vectors and payload in both indexes); a prune refuses what looks
like a missing folder; a kill -9 in the middle of a prune leaves a consistent store that
the next run completes."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from folders import CLI, age, clips_of, ingest_argv, make_folder, report_of, run, stats

from clipsearch.store.base import ClipPoint, clip_id
from clipsearch.store.edge import QdrantEdgeStore
from clipsearch.store.stats import store_stats
from clipsearch.video import DECODER


def test_changes_between_ingests_end_equal_to_a_clean_ingest(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, store, media = tmp_path / "videos", tmp_path / "store", tmp_path / "media"
    files = make_folder(tiny_synth, folder, 12)
    first = report_of(ingest_argv(folder, tiny_model_dir, store, media), tmp_path)
    assert first["ingested"] == 12
    rel = [f.relative_to(folder).as_posix() for f in files]
    outside = clips_of(tiny_synth)[12:14]  # content the store has never seen

    files[0].unlink()  # deleted
    files[1].unlink()
    files[2].rename(files[2].with_name("renamed.avi"))  # renamed in its folder
    (folder / "elsewhere").mkdir()
    files[3].rename(folder / "elsewhere" / "moved.avi")  # moved to another folder
    shutil.copyfile(outside[0], files[4])  # modified: other content at the same path
    os.utime(files[5])  # touched: same bytes, new modification time
    shutil.copyfile(outside[1], folder / "elsewhere" / "new.avi")  # added
    shutil.copyfile(files[6], folder / "elsewhere" / "copy.avi")  # added: a copy
    age(folder / "elsewhere")
    age(files[4].parent)

    second = report_of(ingest_argv(folder, tiny_model_dir, store, media, "--prune"), tmp_path)
    assert second["ingested"] == 2  # the modified file and the new one: nothing else
    assert sorted(m["from"] for m in second["moved"]) == [rel[2], rel[3]]
    assert sorted(m["path"] for m in second["moved"]) == [
        f"{Path(rel[2]).parent}/renamed.avi",
        "elsewhere/moved.avi",
    ]
    assert second["copied"] == [{"path": "elsewhere/copy.avi", "from": rel[6]}]
    assert sorted(second["removed"]) == [rel[0], rel[1]]  # moves are listed as moves
    assert second["up_to_date"] == 7 and second["failed"] == []
    # a moved clip keeps its poster under its new id; removed ones lose theirs
    posters = media / "posters"
    assert (posters / f"{clip_id('elsewhere/moved.avi')}.jpg").is_file()
    assert not (posters / f"{clip_id(rel[3])}.jpg").exists()
    assert not (posters / f"{clip_id(rel[0])}.jpg").exists()

    clean = tmp_path / "clean"
    report_of(ingest_argv(folder, tiny_model_dir, clean, tmp_path / "media-clean"), tmp_path)
    assert stats(store) == stats(clean)
    assert stats(store)["videos"]["count"] == 12
    # and a third run has nothing left to do
    third = report_of(ingest_argv(folder, tiny_model_dir, store, media, "--prune"), tmp_path)
    assert (third["ingested"], third["up_to_date"], third["removed"]) == (0, 12, [])


def test_a_move_without_prune_still_removes_the_old_id(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, store, media = tmp_path / "videos", tmp_path / "store", tmp_path / "media"
    files = make_folder(tiny_synth, folder, 3)
    report_of(ingest_argv(folder, tiny_model_dir, store, media), tmp_path)
    files[0].rename(folder / "renamed.avi")
    files[1].unlink()
    report = report_of(ingest_argv(folder, tiny_model_dir, store, media), tmp_path)
    assert report["ingested"] == 0 and report["removed"] == []
    assert report["moved"] == [
        {"path": "renamed.avi", "from": files[0].relative_to(folder).as_posix()}
    ]
    with QdrantEdgeStore(store) as opened:  # the deleted file stays without --prune
        assert not opened.existing_ids([clip_id(files[0].relative_to(folder).as_posix())])
        assert opened.existing_ids([clip_id(files[1].relative_to(folder).as_posix())])
        assert opened.count() == 3


def test_prune_refuses_what_looks_like_a_missing_folder(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, store, media = tmp_path / "videos", tmp_path / "store", tmp_path / "media"
    files = make_folder(tiny_synth, folder, 6)
    report_of(ingest_argv(folder, tiny_model_dir, store, media), tmp_path)
    before = stats(store)

    code, _, err = run(ingest_argv(tmp_path / "unmounted", tiny_model_dir, store, media, "--prune"))
    assert code == 2 and "does not exist" in err and err.count("\n") == 1
    for f in files[:4]:  # more than half
        f.unlink()
    code, _, err = run(ingest_argv(folder, tiny_model_dir, store, media, "--prune"))
    assert code == 2 and "refusing to prune: 4 of the 6 videos" in err and err.count("\n") == 1
    for f in files[4:]:  # all of them: an empty folder
        f.unlink()
    code, _, err = run(ingest_argv(folder, tiny_model_dir, store, media, "--prune"))
    assert code == 2 and "holds no video files" in err
    code, _, err = run(ingest_argv(folder, tiny_model_dir, store, media, "--force"))
    assert code == 2 and "--force only applies with --prune" in err
    code, _, err = run(
        ingest_argv(folder, tiny_model_dir, store, media, "--prune", "--shard", "0/2")
    )
    assert code == 2 and "--prune with --shard is not supported" in err
    assert stats(store) == before  # nothing was deleted

    report = report_of(
        ingest_argv(folder, tiny_model_dir, store, media, "--prune", "--force"), tmp_path
    )
    assert len(report["removed"]) == 6 and report["store_count"] == 0


GONE = 2000  # videos of the root whose files are gone: a prune long enough to be cut


@pytest.mark.slow
def test_kill_9_during_a_prune_then_a_rerun_equal_to_a_clean_ingest(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, store, media = tmp_path / "videos", tmp_path / "store", tmp_path / "media"
    make_folder(tiny_synth, folder, 4)
    argv = ingest_argv(folder, tiny_model_dir, store, media)
    report_of(argv, tmp_path)
    clean = tmp_path / "clean"
    report_of(ingest_argv(folder, tiny_model_dir, clean, tmp_path / "media-clean"), tmp_path)
    reference = stats(clean)
    with QdrantEdgeStore(store) as opened:  # files of this root that were deleted since
        (template,) = opened.retrieve(
            [next(iter(opened.payloads()))[0]], with_vectors=True
        ).values()
        gone = []
        for i in range(GONE):
            payload = {
                **template.payload,
                "path": f"gone/{i:05d}.avi",
                "source": str(folder / f"gone/{i:05d}.avi"),
                "content_hash": f"{i:032x}",
            }
            gone.append(
                ClipPoint(clip_id(payload["path"]), template.pooled, template.windows, payload)
            )
        opened.upsert(gone)
    prune = [*CLI, *ingest_argv(folder, tiny_model_dir, store, media, "--prune", "--force")]
    rng = random.Random(3)
    counts = []
    for _ in range(8):
        if not kill_after_removals(prune, rng.randint(1, 600)):
            break  # it finished first
        state = stats(store)
        assert state["consistent"], state
        counts.append(state["videos"]["count"])
    cut = [c for c in counts if 4 < c < 4 + GONE]
    assert len(cut) >= 3 and cut == sorted(cut, reverse=True), counts
    done = subprocess.run(prune, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert stats(store) == reference


def test_a_sync_on_the_client_adapter_gives_the_same_store(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The same changes through qdrant-client (local mode): the same ids, vectors and
    payload as the embedded store."""
    from clipsearch.data.collection import load_collection
    from clipsearch.model import load_model
    from clipsearch.pipeline.runner import IngestOptions, ingest
    from clipsearch.store.client import QdrantClientStore

    folder = tmp_path / "videos"
    files = make_folder(tiny_synth, folder, 5)
    encoder = load_model(tiny_model_dir, towers="vision")
    options = IngestOptions(batch_clips=1, workers=1, prune=True, media_dir=None)
    edge = QdrantEdgeStore(tmp_path / "edge")
    client = QdrantClientStore.in_memory()
    try:
        for store in (edge, client):
            ingest(load_collection(folder), encoder, store, options)
        files[0].rename(folder / "renamed.avi")
        files[1].unlink()
        for store in (edge, client):
            report = ingest(load_collection(folder), encoder, store, options)
            assert (len(report.moved), len(report.removed), report.ingested) == (1, 1, 0)
        assert store_stats(edge) == store_stats(client)
        assert store_stats(client)["videos"]["count"] == 4
    finally:
        edge.close()
        client.close()


def kill_after_removals(argv: list[str], removals: int) -> bool:
    """Run ``argv`` (an ingest that prunes, with ``-v``: a line per removal) and kill -9 it
    once it has reported ``removals`` more removals; False when it finished first."""
    proc = subprocess.Popen([*argv, "-v"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    seen = 0
    for line in proc.stderr:
        seen += b"removed gone/" in line
        if seen >= removals:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
    proc.wait()
    return False


def test_an_unplugged_linked_drive_is_not_a_deletion(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, store, media = tmp_path / "videos", tmp_path / "store", tmp_path / "media"
    make_folder(tiny_synth, folder, 4)
    drive = tmp_path / "usb-drive"
    make_folder(tiny_synth, drive, 2)
    (folder / "usb").symlink_to(drive, target_is_directory=True)
    assert report_of(ingest_argv(folder, tiny_model_dir, store, media), tmp_path)["ingested"] == 6
    shutil.rmtree(drive)  # unplugged: the link stays, its target is gone
    report = report_of(
        ingest_argv(folder, tiny_model_dir, store, media, "--prune", "--force"), tmp_path
    )
    assert report["removed"] == [] and report["store_count"] == 6
    assert report["problems"] == [{"path": "usb", "reason": "broken link (its target is missing)"}]


def test_a_store_from_before_display_geometry_is_brought_up_to_date(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Videos stored by a version that did not turn pictures upright (no ``decoder``,
    ``content_hash`` or ``root`` in their payload): an upright one keeps its vectors, a
    rotated one is embedded again and loses its stale preview."""
    from videolib import write_video

    folder, store, media = tmp_path / "videos", tmp_path / "store", tmp_path / "media"
    folder.mkdir()
    write_video(folder / "upright.mp4")
    write_video(folder / "phone.mp4", rotation=-90, size=(112, 192))
    age(folder)
    report_of(ingest_argv(folder, tiny_model_dir, store, media), tmp_path)
    with QdrantEdgeStore(store) as opened:  # as the earlier version stored them
        points = opened.retrieve([clip_id("upright.mp4"), clip_id("phone.mp4")], with_vectors=True)
        old = [ClipPoint(p.id, p.pooled, p.windows, _legacy(p.payload)) for p in points.values()]
        opened.upsert(old)
    stale = media / "previews" / f"{clip_id('phone.mp4')}.mp4"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a sideways preview")

    report = report_of(ingest_argv(folder, tiny_model_dir, store, media), tmp_path)
    assert report["ingested"] == 1 and report["up_to_date"] == 1  # the phone video only
    assert not stale.exists()
    with QdrantEdgeStore(store) as opened:
        got = opened.retrieve([clip_id("upright.mp4"), clip_id("phone.mp4")])
    assert all(p.payload["decoder"] == DECODER and p.payload["content_hash"] for p in got.values())
    phone = got[clip_id("phone.mp4")].payload
    assert (phone["width"], phone["height"]) == (112, 192)


def test_videos_of_decoder_2_keep_their_vectors_unless_decoded_otherwise_now(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Decoder 2 took a still stored first for the video and let times run backwards: the
    videos it read as this decoder does keep their vectors, the others are embedded again."""
    from videolib import write_video

    folder, store, media = tmp_path / "videos", tmp_path / "store", tmp_path / "media"
    folder.mkdir()
    write_video(folder / "plain.mp4")
    write_video(folder / "still_first.mp4", cover=True)
    parts = [write_video(tmp_path / f"p{k}.ts", fmt="mpegts", seconds=1.0) for k in range(2)]
    (folder / "joined.ts").write_bytes(b"".join(p.read_bytes() for p in parts))
    write_video(folder / "recording.ts", fmt="mpegts", start_s=4000.0)
    age(folder)
    report_of(ingest_argv(folder, tiny_model_dir, store, media), tmp_path)
    names = ["plain.mp4", "still_first.mp4", "joined.ts", "recording.ts"]
    with QdrantEdgeStore(store) as opened:  # as decoder 2 stored them
        points = opened.retrieve([clip_id(n) for n in names], with_vectors=True)
        opened.upsert(
            [
                ClipPoint(p.id, p.pooled, p.windows, {**p.payload, "decoder": 2})
                for p in points.values()
            ]
        )

    report = report_of(ingest_argv(folder, tiny_model_dir, store, media), tmp_path)
    assert report["ingested"] == 2 and report["up_to_date"] == 2
    with QdrantEdgeStore(store) as opened:
        got = opened.retrieve([clip_id(n) for n in names])
    assert {p.payload["decoder"] for p in got.values()} == {DECODER}
    assert report_of(ingest_argv(folder, tiny_model_dir, store, media), tmp_path)["up_to_date"] == 4


def _legacy(payload: dict[str, Any]) -> dict[str, Any]:
    legacy = {k: v for k, v in payload.items() if k not in ("decoder", "content_hash", "root")}
    if legacy["path"] == "phone.mp4":  # stored sideways
        legacy["width"], legacy["height"] = payload["height"], payload["width"]
    return legacy


def test_a_donor_that_changed_meanwhile_is_not_copied(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A chain of renames (b -> c, a -> b) can overwrite a donor before its vectors are read
    when the reuses span batches; the file is then embedded instead of taking other
    vectors."""
    from clipsearch.data.collection import load_collection
    from clipsearch.model import load_model
    from clipsearch.pipeline.runner import (
        IngestOptions,
        IngestReport,
        _Retry,
        _Run,
        ingest,
        root_key,
    )
    from clipsearch.pipeline.sync import Stamp, Work, content_hash

    folder = tmp_path / "videos"
    files = make_folder(tiny_synth, folder, 2)
    encoder = load_model(tiny_model_dir, towers="vision")
    options = IngestOptions(batch_clips=1, workers=1, settle_s=0, media_dir=None)

    with QdrantEdgeStore(tmp_path / "store") as store:
        ingest(load_collection(folder), encoder, store, options)
        donor = clip_id(files[0].relative_to(folder).as_posix())
        # an earlier batch gave the donor's id the other file's content
        (other,) = store.retrieve(
            [clip_id(files[1].relative_to(folder).as_posix())], with_vectors=True
        ).values()
        store.upsert([ClipPoint(donor, other.pooled, other.windows, {**other.payload})])
        new = folder / "renamed.avi"
        shutil.copyfile(files[0], new)
        clip = next(c for c in load_collection(folder).clips if c.path == "renamed.avi")
        stamp = Stamp.of(new)
        work = Work(clip, stamp, content_hash(new, stamp.size), donor=donor)
        run = _Run(
            encoder,
            store,
            options,
            IngestReport(),
            _Retry(1, 0),
            root_key(load_collection(folder)),
            None,
        )
        assert run.reuse([work], gone={}) == [work]
        assert run.report.copied == [] and run.report.moved == []


def test_a_file_moved_onto_another_takes_its_media_cache_with_it(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, store, media = tmp_path / "videos", tmp_path / "store", tmp_path / "media"
    files = make_folder(tiny_synth, folder, 2)
    report_of(ingest_argv(folder, tiny_model_dir, store, media), tmp_path)
    a, b = (clip_id(f.relative_to(folder).as_posix()) for f in files)
    preview, thumbnail = media / "previews" / f"{b}.mp4", media / "segments" / f"{b}-0.jpg"
    for stale in (preview, thumbnail):  # what the app had made of b
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.write_bytes(b"b's pictures")
    a_poster = (media / "posters" / f"{a}.jpg").read_bytes()
    files[0].replace(files[1])  # mv a b: b's content is a's now, with a's old mtime
    report = report_of(ingest_argv(folder, tiny_model_dir, store, media, "--prune"), tmp_path)
    assert report["moved"] == [
        {
            "path": files[1].relative_to(folder).as_posix(),
            "from": files[0].relative_to(folder).as_posix(),
        }
    ]
    assert not preview.exists() and not thumbnail.exists()
    assert (media / "posters" / f"{b}.jpg").read_bytes() == a_poster


def test_a_path_that_is_a_listed_file_under_another_name_is_gone(tmp_path: Path) -> None:
    """A case-only rename on a case-insensitive share: the old name still opens, but it
    is a file the folder lists under its new name."""
    from clipsearch.pipeline.sync import is_gone

    (tmp_path / "clip.mp4").write_bytes(b"x")
    (tmp_path / "Clip.MP4").symlink_to(tmp_path / "clip.mp4")  # how the old name resolves
    (tmp_path / "other.mp4").write_bytes(b"y")
    st = (tmp_path / "clip.mp4").stat()
    listed = {(st.st_dev, st.st_ino)}
    assert is_gone({"source": str(tmp_path / "Clip.MP4")}, lambda: listed)
    assert not is_gone({"source": str(tmp_path / "other.mp4")}, lambda: listed)
    assert is_gone({"source": str(tmp_path / "missing.mp4")}, lambda: listed)
