"""Ingest: decode -> embed -> upsert; idempotent, resumable, skips broken files."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from clipsearch.cli import main
from clipsearch.data.collection import load_collection
from clipsearch.errors import InvalidInput
from clipsearch.model import load_model
from clipsearch.pipeline.runner import IngestOptions, Shard, ingest, stored_window_plan
from clipsearch.pipeline.sync import STILL_WRITTEN
from clipsearch.store.base import clip_id
from clipsearch.store.edge import QdrantEdgeStore
from clipsearch.windows import WindowPlan

STAMP = {"window_s": 2.0, "stride_s": 1.0, "frames": 6, "video": "window_mean"}


@pytest.fixture(scope="module")
def vision(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    return load_model(tiny_model_dir, towers="vision")


def test_ingest_twice_keeps_one_point_per_clip(tiny_synth: Path, vision, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    coll = load_collection(tiny_synth)
    media = tmp_path / "media"
    with QdrantEdgeStore(tmp_path / "store") as store:
        first = ingest(coll, vision, store, IngestOptions(media_dir=media, workers=2))
        assert first.ingested == len(coll.clips) == store.count() == 32
        assert first.failed == [] and first.ok
        assert set(first.stage_seconds) >= {"decode_wait", "embed", "upsert"}
        second = ingest(coll, vision, store, IngestOptions(media_dir=media, workers=2))
        assert (second.ingested, second.up_to_date, store.count()) == (0, 32, 32)
        forced = ingest(coll, vision, store, IngestOptions(reembed=True, workers=2))
        assert forced.ingested == 32 and store.count() == 32

        clip = coll.clips[0]
        point = store.retrieve([clip_id(clip.path)], with_vectors=True)[clip_id(clip.path)]
    p = point.payload
    assert p["path"] == clip.path and p["class"] == clip.label == "BallBouncing"
    assert p["label"] == "ball bouncing" and p["group"] == 1
    assert p["split_1"] == "test" and p["split_2"] == "train"
    assert p["model"] == vision.model_id and len(p["frame_times"]) == 8
    assert p["frame_times"] == sorted(p["frame_times"]) and p["duration_s"] > 1.5
    times = WindowPlan().windows(p["duration_s"])
    assert p["segment_times"] == [[round(s, 3), round(e, 3)] for s, e in times]
    assert point.windows.shape == (len(times), vision.dim) and len(times) >= 2
    assert p["segment_plan"] == STAMP
    np.testing.assert_allclose(np.linalg.norm(point.pooled), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(point.windows, axis=1), 1.0, atol=1e-5)
    mean = point.windows.mean(0)  # the video's vector: its windows' mean
    np.testing.assert_allclose(point.pooled, mean / np.linalg.norm(mean), atol=1e-5)
    assert (media / "posters" / f"{clip_id(clip.path)}.jpg").stat().st_size > 0


class CountingStore(QdrantEdgeStore):
    optimized = 0

    def optimize(self) -> bool:
        self.optimized += 1
        return super().optimize()


def test_a_run_ends_by_building_the_search_index(tiny_synth: Path, vision, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Qdrant Edge never builds its graphs on its own: each run asks for them at its end,
    except when told not to (the server's watcher) or stopped; a run that changed the store
    says so first (the build shows no progress)."""
    coll = load_collection(tiny_synth)
    said: list[str] = []
    with CountingStore(tmp_path / "store") as store:
        first = ingest(coll, vision, store, IngestOptions(limit=4, workers=2), announce=said.append)
        assert store.optimized == 1 and "index" in first.stage_seconds
        assert said == ["building the search index"]
        unindexed = ingest(coll, vision, store, IngestOptions(limit=6, workers=2, index=False))
        assert store.optimized == 1 and "index" not in unindexed.stage_seconds
        stop = threading.Event()
        stop.set()
        ingest(coll, vision, store, IngestOptions(limit=8, workers=2, stop=stop))
        assert store.optimized == 1
        ingest(coll, vision, store, IngestOptions(limit=8, workers=2), announce=said.append)
        assert store.optimized == 2 and store.count() == 8 and len(said) == 2
        ingest(coll, vision, store, IngestOptions(limit=8, workers=2), announce=said.append)
        assert store.optimized == 3 and len(said) == 2  # nothing changed: nothing to say


def test_earlier_video_vectors_embed_again(tiny_synth: Path, vision, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    coll = replace(load_collection(tiny_synth), clips=load_collection(tiny_synth).clips[:4])
    with QdrantEdgeStore(tmp_path / "store") as store:
        assert ingest(coll, vision, store, IngestOptions(workers=1)).ingested == 4
        points = store.retrieve([clip_id(c.path) for c in coll.clips], with_vectors=True)
        old = [p for i, p in enumerate(points.values()) if i < 2]
        # as the earlier rule stored them: no "video" in the plan stamp
        earlier = {"window_s": 2.0, "stride_s": 1.0}
        store.upsert([replace(p, payload={**p.payload, "segment_plan": earlier}) for p in old])
        again = ingest(coll, vision, store, IngestOptions(workers=1))
        assert (again.ingested, again.up_to_date) == (2, 2)
        stamps = [p.payload["segment_plan"] for p in store.retrieve(list(points)).values()]
        assert all(s == STAMP for s in stamps)


def test_windows_stamped_before_frames_were_are_windows_of_8(  # type: ignore[no-untyped-def]
    tiny_synth: Path, vision, tmp_path: Path
) -> None:
    coll = replace(load_collection(tiny_synth), clips=load_collection(tiny_synth).clips[:4])
    eight = IngestOptions(workers=1, windows=WindowPlan(frames=8))
    with QdrantEdgeStore(tmp_path / "store") as store:
        assert ingest(coll, vision, store, eight).ingested == 4
        points = store.retrieve([clip_id(c.path) for c in coll.clips], with_vectors=True)
        # as stores were stamped before the frames a window pools were
        earlier = {"window_s": 2.0, "stride_s": 1.0, "video": "window_mean"}
        store.upsert(
            [replace(p, payload={**p.payload, "segment_plan": earlier}) for p in points.values()]
        )
        assert stored_window_plan(store) == WindowPlan(frames=8)
        assert ingest(coll, vision, store, eight).up_to_date == 4
        again = ingest(coll, vision, store, IngestOptions(workers=1))  # the default: 6
        assert (again.ingested, again.up_to_date) == (4, 0)
        assert stored_window_plan(store) == WindowPlan()
        stamps = [p.payload["segment_plan"] for p in store.retrieve(list(points)).values()]
        assert all(s == STAMP for s in stamps)


def test_resume_only_embeds_what_is_missing(tiny_synth: Path, vision, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    coll = load_collection(tiny_synth)
    with QdrantEdgeStore(tmp_path / "store") as store:
        partial = ingest(coll, vision, store, IngestOptions(limit=10, workers=2))
        assert partial.ingested == 10
        rest = ingest(coll, vision, store, IngestOptions(workers=2))
        assert (rest.ingested, rest.up_to_date, store.count()) == (22, 10, 32)


def test_changed_file_is_re_embedded(tiny_synth: Path, vision, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "videos"
    shutil.copytree(tiny_synth / "UCF-101" / "BallBouncing", folder)
    coll = load_collection(folder)
    with QdrantEdgeStore(tmp_path / "store") as store:
        ingest(coll, vision, store, IngestOptions(workers=1))
        victim = sorted(folder.glob("*.avi"))[0]
        victim.write_bytes(
            (tiny_synth / "UCF-101" / "BoxSpinning" / "v_BoxSpinning_g01_c01.avi").read_bytes()
        )
        again = ingest(load_collection(folder), vision, store, IngestOptions(workers=1))
    assert again.ingested == 1 and again.up_to_date == len(coll.clips) - 1


def test_broken_files_are_skipped_and_listed(tiny_synth: Path, vision, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = sorted((tiny_synth / "UCF-101" / "BoxSpinning").glob("*.avi"))[:2]
    for f in good:
        shutil.copy(f, folder / f.name)
    (folder / "empty.avi").write_bytes(b"")
    (folder / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    with QdrantEdgeStore(tmp_path / "store") as store:
        report = ingest(load_collection(folder), vision, store, IngestOptions(workers=2))
        assert store.count() == 2
    assert report.ingested == 2 and report.ok
    assert sorted(f["path"] for f in report.failed) == ["empty.avi", "noise.mp4"]
    assert all(f["reason"] for f in report.failed)
    assert "skipped empty.avi" in report.summary()


def test_a_file_that_fails_while_it_changes_is_left_for_the_next_run(  # type: ignore[no-untyped-def]
    tiny_synth: Path, vision, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy that stalled long enough to be taken fails to decode, then finishes while
    the run goes on: it is "still being written", not broken, and the next run takes it."""
    import clipsearch.pipeline.runner as runner

    folder = tmp_path / "copying"
    folder.mkdir()
    clip = sorted((tiny_synth / "UCF-101" / "BoxSpinning").glob("*.avi"))[0]
    whole = clip.read_bytes()
    (folder / "a.avi").write_bytes(whole[:3000])
    embed_clips = runner.embed_clips

    def copy_finishes(*args, **kwargs):  # type: ignore[no-untyped-def]
        for batch in embed_clips(*args, **kwargs):
            (folder / "a.avi").write_bytes(whole)  # after the decode failed
            yield batch

    monkeypatch.setattr(runner, "embed_clips", copy_finishes)
    with QdrantEdgeStore(tmp_path / "store") as store:
        report = ingest(load_collection(folder), vision, store, IngestOptions(workers=1))
        assert [f["reason"] for f in report.failed] == [STILL_WRITTEN]
        monkeypatch.setattr(runner, "embed_clips", embed_clips)
        again = ingest(load_collection(folder), vision, store, IngestOptions(workers=1))
        assert again.ingested == 1 and store.count() == 1


def test_nothing_ingestable_is_not_ok(vision, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.avi").write_text("not a video")
    with QdrantEdgeStore(tmp_path / "store") as store:
        report = ingest(load_collection(folder), vision, store, IngestOptions(workers=1))
    assert report.ingested == 0 and not report.ok and len(report.failed) == 1


def test_same_relative_path_from_another_root_is_reported(
    tiny_synth: Path,
    vision,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    src = sorted((tiny_synth / "UCF-101" / "BoxSpinning").glob("*.avi"))[0]
    for root in ("a", "b"):
        (tmp_path / root).mkdir()
        shutil.copy(src, tmp_path / root / "x.avi")
    with QdrantEdgeStore(tmp_path / "store") as store:
        ingest(load_collection(tmp_path / "a"), vision, store, IngestOptions(workers=1))
        report = ingest(load_collection(tmp_path / "b"), vision, store, IngestOptions(workers=1))
        assert store.count() == 1  # one id per relative path, by design
    assert report.replaced_other_source == 1 and "another dataset root" in report.summary()


def test_shards_split_a_folder_without_overlap(tiny_synth: Path, vision, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    coll = load_collection(tiny_synth)
    shards = [Shard(i, 3) for i in range(3)]
    owned = [{c.path for c in coll.clips if s.owns(c.path)} for s in shards]
    assert set().union(*owned) == {c.path for c in coll.clips}
    assert sum(len(o) for o in owned) == len(coll.clips)
    assert all(owned)  # 32 clips over 3 shards: none is empty
    with QdrantEdgeStore(tmp_path / "store") as store:
        for shard, paths in zip(shards, owned, strict=True):
            report = ingest(coll, vision, store, IngestOptions(workers=1, shard=shard))
            assert report.ingested == report.found == len(paths) and report.shard == str(shard)
        assert store.count() == len(coll.clips)
        stored = store.retrieve([clip_id(c.path) for c in coll.clips])
    assert {p.payload["path"] for p in stored.values()} == {c.path for c in coll.clips}


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1", "a/b", "0/0", "1/2/3"])
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="shard must"):
        Shard.parse(text)
    assert Shard.parse("2/3") == Shard(2, 3)


def test_ingest_cli_takes_a_shard(tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    args = ["ingest", str(tiny_synth), "--model", str(tiny_model_dir), "--store", str(store)]
    assert (
        main([*args, "--shard", "1/2", "--workers", "1", "--report", str(tmp_path / "r.json")]) == 0
    )
    report = json.loads((tmp_path / "r.json").read_text())
    coll = load_collection(tiny_synth)
    assert report["shard"] == "1/2"
    assert report["ingested"] == sum(Shard(1, 2).owns(c.path) for c in coll.clips)
    assert main([*args, "--shard", "2/2"]) == 2
