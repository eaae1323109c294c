"""The moments commands of the CLI: ``synth`` with a moments set, ``ingest`` with a window
plan, ``search`` (text, --image, --like, filters, paging), ``eval-moments``, ``calibrate``."""

from __future__ import annotations

import json
import re
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipsearch.cli import main
from clipsearch.data.synthucf import read_moments
from clipsearch.store.base import clip_id
from clipsearch.store.edge import QdrantEdgeStore
from clipsearch.windows import WindowPlan, temporal_iou

QUERY = "a video of ball bouncing"
CLASSES = ["BallBouncing", "BallRollingLeft", "BallRollingRight", "BoxSpinning"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 classes x 1 group x 1 clip and a moments set (1 clip per class, no long video)."""
    root = tmp_path_factory.mktemp("climoments") / "synth"
    argv = ["synth", "--out", str(root), "--classes", "4", "--groups", "1", "--clips", "1",
            "--moments-per-class", "1", "--long-videos", "0", "--workers", "2", "-q"]  # fmt: skip
    assert main(argv) == 0
    return root


@pytest.fixture(scope="module")
def indexed(
    data: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, dict[str, Any]]]:
    """A store with the 4 labelled clips and the 2 moments clips, and their payloads by path."""
    base = tmp_path_factory.mktemp("clistore")
    store = base / "store"
    for folder in (data, data / "moments"):
        argv = ["ingest", str(folder), "--model", str(tiny_model_dir), "--store", str(store),
                "--media-dir", str(base / "media"), "--workers", "1", "-q"]  # fmt: skip
        assert main(argv) == 0
    with QdrantEdgeStore(store) as s:
        ids = [clip_id(p) for p in _paths(data)]
        payloads = {p.payload["path"]: p.payload for p in s.retrieve(ids).values()}
    assert len(payloads) == 6
    return store, payloads


def _paths(data: Path) -> list[str]:
    ucf = [f"{c}/v_{c}_g01_c01.avi" for c in CLASSES]
    return [*ucf, *(m["path"] for m in read_moments(data / "moments"))]


def search(
    capsys: pytest.CaptureFixture[str], model: Path, store: Path, *args: str
) -> dict[str, Any]:
    capsys.readouterr()
    code = main(["search", *args, "--model", str(model), "--store", str(store), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out: dict[str, Any] = json.loads(captured.out)
    return out


def fails(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 2) -> str:
    """Run ``argv``, expect exit ``code`` and a one-line error; return the message."""
    capsys.readouterr()
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("clipsearch: error: ") and "\n" not in err, err
    return err


# --------------------------------------------------------------------------- synth


def test_synth_builds_the_moments_set_it_was_asked_for(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    moments = read_moments(data / "moments")
    # --moments-per-class 1: each class in exactly one span; --long-videos 0: none
    # (the default would have added 2 long videos)
    classes = [s["class"] for m in moments for s in m["segments"]]
    assert sorted(classes) == CLASSES
    assert all(m["kind"] == "short" for m in moments)
    assert not list((data / "moments").glob("long_*.avi"))
    assert sorted(p.name for p in (data / "moments").glob("*.avi")) == [m["path"] for m in moments]

    out = tmp_path / "small"
    argv = ["synth", "--out", str(out), "--classes", "2", "--groups", "1", "--clips", "1", "-q"]
    assert main([*argv, "--moments-per-class", "0"]) == 0
    assert "wrote 2 clips of 2 classes" in capsys.readouterr().out
    assert not (out / "moments").exists()  # 0: no moments set
    assert main([*argv, "--moments-per-class", "1", "--long-videos", "0"]) == 0
    [clip] = read_moments(out / "moments")
    assert sorted(s["class"] for s in clip["segments"]) == ["BallBouncing", "BallRollingLeft"]
    assert main([*argv, "--long-videos", "-1"]) == 2


# --------------------------------------------------------------------------- ingest


def test_ingest_window_flags(
    data: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    argv = ["ingest", str(data / "moments"), "--model", str(tiny_model_dir), "--store",
            str(store), "--media-dir", str(tmp_path / "m"), "--workers", "1", "-q"]  # fmt: skip
    assert main([*argv, "--window-s", "4", "--stride-s", "2"]) == 0
    assert "ingested 2" in capsys.readouterr().out
    with QdrantEdgeStore(store) as s:
        points = s.retrieve(
            [clip_id(m["path"]) for m in read_moments(data / "moments")], with_vectors=True
        )
    for p in points.values():
        assert p.payload["segment_plan"] == {
            "window_s": 4.0,
            "stride_s": 2.0,
            "frames": 6,
            "video": "window_mean",
        }
        times = WindowPlan(window_s=4.0, stride_s=2.0).windows(p.payload["duration_s"])
        assert p.payload["segment_times"] == [[round(a, 3), round(b, 3)] for a, b in times]
        assert p.windows.shape[0] == len(times)
    # same plan: up to date; another plan: embedded again
    assert main([*argv, "--window-s", "4", "--stride-s", "2"]) == 0
    assert "ingested 0, up to date 2" in capsys.readouterr().out
    assert main(argv) == 0
    assert "ingested 2, up to date 0" in capsys.readouterr().out
    with QdrantEdgeStore(store) as s:
        again = s.retrieve(list(points))
    stamp = {"window_s": 2.0, "stride_s": 1.0, "frames": 6, "video": "window_mean"}
    assert all(p.payload["segment_plan"] == stamp for p in again.values())
    # another frame count is another plan: embedded again, and stamped
    assert main([*argv, "--window-frames", "8"]) == 0
    assert "ingested 2, up to date 0" in capsys.readouterr().out
    with QdrantEdgeStore(store) as s:
        eight = s.retrieve(list(points), with_vectors=True)
    assert all(p.payload["segment_plan"] == {**stamp, "frames": 8} for p in eight.values())
    assert "frames must be at least 1" in fails(capsys, [*argv, "--window-frames", "0"])

    assert "must not exceed window_s" in fails(
        capsys, [*argv, "--window-s", "2", "--stride-s", "3"]
    )
    assert "window_s must be a positive" in fails(capsys, [*argv, "--window-s", "0"])


# --------------------------------------------------------------------------- search


def test_search_json(
    indexed: tuple[Path, dict[str, dict[str, Any]]],
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, payloads = indexed
    out = search(capsys, tiny_model_dir, store, QUERY, "-k", "10")
    assert out["query"] == QUERY and out["min_score"] is None
    assert out["no_good_match"] is False and out["next_offset"] is None
    results = out["results"]
    assert sorted(r["path"] for r in results) == sorted(payloads)
    for r in results:
        # the API's result shape (clipsearch.responses) without its media URLs, plus the file
        assert {"id", "path", "class", "score", "start_s", "end_s", "source"} <= set(r)
        assert not {"video_url", "play_url", "thumbnail_url"} & set(r)
        p = payloads[r["path"]]
        assert r["id"] == clip_id(r["path"]) and r["class"] == p["class"]
        assert r["source"] == p["source"] and Path(r["source"]).exists()
        assert 0.0 <= r["start_s"] < r["end_s"] <= p["duration_s"] + 1e-3
        assert -1.0 <= r["score"] <= 1.0
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)

    capsys.readouterr()
    assert (
        main(["search", QUERY, "--model", str(tiny_model_dir), "--store", str(store), "-k", "3"])
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and "moment" in lines[0]
    assert all(re.search(r"\d+\.\d- *\d+\.\ds ", line) for line in lines[1:])  # 2.5-  3.5s


def test_search_filters(
    indexed: tuple[Path, dict[str, dict[str, Any]]],
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, payloads = indexed

    def paths(*args: str) -> set[str]:
        return {
            r["path"]
            for r in search(capsys, tiny_model_dir, store, QUERY, "-k", "10", *args)["results"]
        }

    def where(keep: Any) -> set[str]:
        return {path for path, p in payloads.items() if keep(p)}

    assert paths("--class", "BoxSpinning") == {"BoxSpinning/v_BoxSpinning_g01_c01.avi"}
    assert paths("--class", "BoxSpinning", "--class", "BallBouncing") == where(
        lambda p: p["class"] in {"BoxSpinning", "BallBouncing"}
    )
    assert paths("--class", "Nope") == set()
    ucf = where(lambda p: p["class"] is not None)
    assert len(ucf) == 4
    assert paths("--split", "1:test") == ucf  # group 1 is split 1's test side
    assert paths("--split", "2:train") == ucf
    assert paths("--split", "1:train") == set()
    assert paths("--split", "1:test", "--class", "BallBouncing") == {
        "BallBouncing/v_BallBouncing_g01_c01.avi"
    }
    assert paths("--min-duration", "6") == where(lambda p: p["duration_s"] >= 6)
    assert paths("--min-duration", "6") == {"m_0001.avi", "m_0002.avi"}
    assert paths("--max-duration", "5") == where(lambda p: p["duration_s"] <= 5)
    both = where(lambda p: 5.0 <= p["duration_s"] <= 5.5)
    assert both and paths("--min-duration", "5", "--max-duration", "5.5") == both
    exact = payloads["BallBouncing/v_BallBouncing_g01_c01.avi"]["duration_s"]
    assert "BallBouncing/v_BallBouncing_g01_c01.avi" in paths("--max-duration", str(exact))

    base = ["search", QUERY, "--model", str(tiny_model_dir), "--store", str(store)]
    for bad in ("4:test", "1:foo", "test", "1-test", "0:train"):
        assert "--split must look like 1:test" in fails(capsys, [*base, "--split", bad])
    assert "empty range" in fails(capsys, [*base, "--min-duration", "7", "--max-duration", "6"])
    assert "finite" in fails(capsys, [*base, "--min-duration", "nan"])


def test_search_paging(
    indexed: tuple[Path, dict[str, dict[str, Any]]],
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, _ = indexed
    full = search(capsys, tiny_model_dir, store, QUERY, "-k", "6")["results"]
    first = search(capsys, tiny_model_dir, store, QUERY, "-k", "2")
    assert first["next_offset"] == 2
    second = search(capsys, tiny_model_dir, store, QUERY, "-k", "2", "--offset", "2")
    assert [r["id"] for r in second["results"]] == [r["id"] for r in full[2:4]]
    assert second["next_offset"] == 4
    last = search(capsys, tiny_model_dir, store, QUERY, "-k", "2", "--offset", "4")
    assert [r["id"] for r in last["results"]] == [r["id"] for r in full[4:]]
    assert last["next_offset"] is None
    assert search(capsys, tiny_model_dir, store, QUERY, "--offset", "6")["results"] == []
    base = ["search", QUERY, "--model", str(tiny_model_dir), "--store", str(store)]
    assert "offset must be between" in fails(capsys, [*base, "--offset", "-1"])


def test_search_like_a_clip(
    indexed: tuple[Path, dict[str, dict[str, Any]]],
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, payloads = indexed
    seed = clip_id("m_0001.avi")
    out = search(capsys, tiny_model_dir, store, "--like", seed, "-k", "10")
    assert out["query"] == "m_0001.avi"
    ids = [r["id"] for r in out["results"]]
    assert seed not in ids and len(ids) == len(payloads) - 1
    only = search(capsys, tiny_model_dir, store, "--like", seed, "--class", "BallBouncing")
    assert [r["class"] for r in only["results"]] == ["BallBouncing"]
    base = ["search", "--model", str(tiny_model_dir), "--store", str(store)]
    assert "no clip with id" in fails(capsys, [*base, "--like", clip_id("nope.avi")])
    assert "UUID" in fails(capsys, [*base, "--like", "not-a-uuid"])


def test_search_like_honours_an_explicit_min_score(
    indexed: tuple[Path, dict[str, dict[str, Any]]],
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, _ = indexed
    args = ["--like", clip_id("m_0001.avi"), "--min-score", "0.9999"]
    out = search(capsys, tiny_model_dir, store, *args)
    assert out["min_score"] == 0.9999
    assert all(r["score"] >= 0.9999 for r in out["results"])


def test_search_by_image(
    indexed: tuple[Path, dict[str, dict[str, Any]]],
    data: Path,
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from PIL import Image

    from clipsearch.video import sample_frames

    store, payloads = indexed
    source = data / "UCF-101" / "BoxSpinning" / "v_BoxSpinning_g01_c01.avi"
    png = tmp_path / "frame.png"
    Image.fromarray(sample_frames(source, 1).frames[0]).save(png)
    out = search(capsys, tiny_model_dir, store, "--image", str(png), "-k", "10")
    assert out["query"] == str(png)
    assert sorted(r["path"] for r in out["results"]) == sorted(payloads)
    rgba = tmp_path / "frame_rgba.png"
    Image.fromarray(sample_frames(source, 1).frames[0]).convert("RGBA").save(rgba)
    again = search(capsys, tiny_model_dir, store, "--image", str(rgba), "-k", "3")
    assert [r["id"] for r in again["results"]] == [r["id"] for r in out["results"][:3]]

    junk = tmp_path / "notes.png"
    junk.write_text("not an image")
    base = ["search", "--model", str(tiny_model_dir), "--store", str(store)]
    assert "is not an image" in fails(capsys, [*base, "--image", str(junk)])
    fails(capsys, [*base, "--image", str(tmp_path / "missing.png")], code=1)
    bomb = tmp_path / "bomb.png"  # a header that says 20000x20000: PIL refuses to decode it
    Image.new("RGB", (1, 1)).save(bomb)
    data = bytearray(bomb.read_bytes())
    data[16:24] = struct.pack(">II", 20_000, 20_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    bomb.write_bytes(bytes(data))
    assert "decompression bomb" in fails(capsys, [*base, "--image", str(bomb)])


def test_search_then(
    indexed: tuple[Path, dict[str, dict[str, Any]]],
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, payloads = indexed
    second = "a video of box spinning"
    out = search(capsys, tiny_model_dir, store, QUERY, "--then", second, "-k", "10")
    assert out["steps"] == [QUERY, second] and out["query"] == f"{QUERY} then {second}"
    assert out["results"] and out["no_good_match"] is False
    for r in out["results"]:
        assert [m["step"] for m in r["moments"]] == [QUERY, second]
        (a, b) = r["moments"]
        assert a["start_s"] < b["start_s"] and 0.0 <= a["start_s"] < a["end_s"]
        assert b["end_s"] <= payloads[r["path"]]["duration_s"] + 1e-3
        assert (r["start_s"], r["end_s"]) == (a["start_s"], a["end_s"])
    scores = [r["score"] for r in out["results"]]
    assert scores == sorted(scores, reverse=True)
    # the same query written as one text
    text = search(capsys, tiny_model_dir, store, f"{QUERY} then {second}", "-k", "10")
    assert text["results"] == out["results"] and text["steps"] == out["steps"]
    # a single step has no steps or moments
    single = search(capsys, tiny_model_dir, store, QUERY, "-k", "10")
    assert "steps" not in single and all("moments" not in r for r in single["results"])

    capsys.readouterr()
    argv = ["search", f"{QUERY}, then {second}", "--model", str(tiny_model_dir),
            "--store", str(store), "-k", "2"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"1. {QUERY} -> 2. {second}" and "moments" in lines[1]
    assert len(lines) == 4
    assert all(re.search(r"\d+\.\d-\s*\d+\.\ds -> \s*\d+\.\d-\s*\d+\.\ds ", x) for x in lines[2:])

    base = ["search", "--model", str(tiny_model_dir), "--store", str(store)]
    assert "empty step" in fails(capsys, [*base, "then a ball"])
    assert "empty step" in fails(capsys, [*base, "a ball then"])
    assert "empty" in fails(capsys, [*base, "a ball", "--then", " "])
    like = ["--like", clip_id("m_0001.avi"), "--then", "a box"]
    assert "--then follows a text QUERY" in fails(capsys, [*base, *like])


@pytest.mark.parametrize(
    "given",
    [
        [],
        ["a ball", "--image", "x.png"],
        ["a ball", "--like", "L"],
        ["--image", "x.png", "--like", "L"],
    ],
)
def test_search_needs_exactly_one_kind_of_query(
    given: list[str], tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    given = [clip_id("x") if g == "L" else g for g in given]
    argv = ["search", *given, "--model", str(tiny_model_dir), "--store", str(tmp_path / "s")]
    assert "give exactly one of" in fails(capsys, argv)


# --------------------------------------------------------------------------- eval-moments


def test_eval_moments_writes_the_documented_figures(
    data: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "moments.json"
    argv = ["eval-moments", "--data", str(data / "moments"), "--model", str(tiny_model_dir),
            "--json", str(out), "--workers", "1", "--window-s", "3", "--stride-s", "1.5",
            "-q"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "R@1_tIoU0.5" in printed
    m = json.loads(out.read_text())
    for key in ("R@1_tIoU0.5", "R@5_tIoU0.5", "mean_tIoU", "R@1_bound"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["model"] == "tiny-random" and m["data"] == str(data / "moments")
    assert (m["window_s"], m["stride_s"]) == (3.0, 1.5)
    truth = read_moments(data / "moments")
    assert m["n_videos"] == len(truth) == 2 and m["n_segments"] == 4
    rows = m["segments"]
    assert len(rows) == 4
    expected = [(v["path"], s["class"], [s["start_s"], s["end_s"]], v["duration_s"])
                for v in truth for s in v["segments"]]  # fmt: skip
    assert [(r["video"], r["class"], r["true_s"], r["duration_s"]) for r in rows] == expected
    for r in rows:
        assert {"video", "class", "true_s", "moment_s", "tIoU", "rank"} <= set(r)
        start, end = r["moment_s"]
        assert 0.0 <= start < end <= r["duration_s"] + 1e-3
        assert r["tIoU"] == pytest.approx(temporal_iou(r["true_s"], r["moment_s"]), abs=1e-3)
        assert r["rank"] is None or (isinstance(r["rank"], int) and 1 <= r["rank"] <= 5)
    # the headline figures are those of the rows
    hits1 = [r["rank"] == 1 and r["tIoU"] >= 0.5 for r in rows]
    hits5 = [r["rank"] is not None and r["tIoU"] >= 0.5 for r in rows]
    assert m["R@1_tIoU0.5"] == pytest.approx(np.mean(hits1), abs=1e-4)
    assert m["R@5_tIoU0.5"] == pytest.approx(np.mean(hits5), abs=1e-4)
    assert m["mean_tIoU"] == pytest.approx(np.mean([r["tIoU"] for r in rows]), abs=1e-4)
    assert m["R@1_bound"] == 1.0  # each class is in one video only
    # 2 videos per query at most, so every video ranks in the top 5
    assert all(r["rank"] in (1, 2) for r in rows)
    assert m["short"]["n_segments"] == 4 and m["long"] == {"n_segments": 0}

    # sequence queries: each pair of consecutive spans, "A then B"
    pairs = [
        (
            v["path"],
            [a["class"], b["class"]],
            [[a["start_s"], a["end_s"]], [b["start_s"], b["end_s"]]],
        )
        for v in truth
        for a, b in zip(v["segments"], v["segments"][1:], strict=False)
    ]
    assert m["n_then_pairs"] == len(pairs) == 2
    assert m["then_query_template"] == "a video of {} then a video of {}"
    then_rows = m["then_pairs"]
    assert [(r["video"], r["classes"], r["true_s"]) for r in then_rows] == pairs
    for r in then_rows:
        assert len(r["moments_s"]) == 2 and r["moments_s"][0][0] < r["moments_s"][1][0]
        for truth_s, moment_s, tiou in zip(r["true_s"], r["moments_s"], r["tIoU"], strict=True):
            assert tiou == pytest.approx(temporal_iou(truth_s, moment_s), abs=1e-3)
        assert r["rank"] in (1, 2)  # two videos in the store
        assert isinstance(r["score"], float) and isinstance(r["reversed_score"], float)
    then_hits = [r["rank"] <= 5 and min(r["tIoU"]) >= 0.5 for r in then_rows]
    ordered = [r["score"] > r["reversed_score"] for r in then_rows]
    assert m["then_R@5"] == pytest.approx(np.mean(then_hits), abs=1e-4)
    assert m["then_order_acc"] == pytest.approx(np.mean(ordered), abs=1e-4)
    assert f"then (2 pairs): then_R@5 {m['then_R@5']:.3f}" in printed
    assert f"then_order_acc {m['then_order_acc']:.3f}" in printed


def test_eval_moments_on_a_folder_without_moments(
    data: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval-moments", "--data", str(data / "UCF-101"), "--model", str(tiny_model_dir)]
    assert "no such moments file" in fails(capsys, argv)


# --------------------------------------------------------------------------- calibrate


def test_calibrate_writes_the_threshold_into_the_model(
    data: Path,
    tiny_model_dir: Path,
    indexed: tuple[Path, dict[str, dict[str, Any]]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    before = json.loads((model / "clipsearch.json").read_text())
    assert before["min_score"] is None
    # the default is the validation groups of split 1's training list; this set has none
    argv = ["calibrate", "--data", str(data), "--model", str(model), "--workers", "1", "-q"]
    assert main(argv) == 2
    assert "split 1 of" in capsys.readouterr().err
    assert json.loads((model / "clipsearch.json").read_text())["min_score"] is None
    argv += ["--clips", "test"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    video = json.loads((model / "clipsearch.json").read_text())
    figures = json.loads((model / "calibration.json").read_text())
    assert str(model / "clipsearch.json") in printed and "min_score" in printed
    assert isinstance(video["min_score"], float) and -1.0 <= video["min_score"] <= 1.0
    assert video["min_score"] == figures["min_score"]
    assert {k: v for k, v in video.items() if k != "min_score"} == {
        k: v for k, v in before.items() if k != "min_score"
    }
    assert figures["fpr_target"] == 0.01 and figures["n_queries"] == 4
    assert figures["n_clips"] == 4  # split 1's test side: group 1 of each class
    assert figures["model"] == "tiny-random" and figures["split"] == 1
    assert 0.0 <= figures["fpr"] <= 1.0 and 0.0 <= figures["tpr"] <= 1.0
    # one relevant clip per query, three irrelevant: the threshold is the top irrelevant score
    assert figures["fpr"] == pytest.approx(1 / 12, abs=1e-4)

    # search with the calibrated model uses its threshold by default
    store, _ = indexed
    out = search(capsys, model, store, QUERY, "-k", "10")
    assert out["min_score"] == video["min_score"]
    assert all(r["score"] >= video["min_score"] for r in out["results"])
    assert out["no_good_match"] == (out["results"] == [])
    shown = search(capsys, model, store, QUERY, "-k", "10", "--min-score", "-1")
    assert shown["min_score"] == -1.0 and len(shown["results"]) == 6
    # the shown ones are those above the threshold, in the same order (scores within
    # rounding of the threshold may go either way)
    kept = [r["id"] for r in out["results"]]
    above = [r["id"] for r in shown["results"] if r["score"] > video["min_score"] + 1e-5]
    near = [r["id"] for r in shown["results"] if r["score"] >= video["min_score"] - 1e-5]
    assert set(above) <= set(kept) <= set(near)
    assert kept == [i for i in near if i in kept]

    # --out: the figures go elsewhere and the model folder is left alone
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    config = (other / "clipsearch.json").read_bytes()
    target = tmp_path / "reports" / "calibration.json"
    argv = [*argv[:4], str(other), "--clips", "test", "--out", str(target), "--workers", "1", "-q"]
    assert main(argv) == 0
    assert str(target) in capsys.readouterr().out
    assert (other / "clipsearch.json").read_bytes() == config
    assert not (other / "calibration.json").exists()
    written = json.loads(target.read_text())
    assert written["min_score"] == pytest.approx(video["min_score"], abs=1e-6)


@pytest.mark.parametrize("fpr", ["0", "1", "-0.5", "1.5"])
def test_calibrate_refuses_a_meaningless_fpr(
    fpr: str, data: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["calibrate", "--data", str(data), "--model", str(tiny_model_dir), "--fpr", fpr]
    assert "--fpr must be between 0 and 1" in fails(capsys, argv)
    assert json.loads((tiny_model_dir / "clipsearch.json").read_text())["min_score"] is None


# --------------------------------------------------------------------------- parity --tower vision


def test_vision_parity_reports_frame_cosines_and_every_figure(
    data: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "vision.json"
    argv = ["parity", "--tower", "vision", "--data", str(data), "--model", str(tiny_model_dir),
            "--json", str(out), "--cache-dir", str(tmp_path / "cache"), "-q"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "bf16: frame cosine to fp32" in printed and "int8: frame cosine to fp32" in printed
    report = json.loads(out.read_text())
    assert report["moments"] == str(data / "moments")  # found beside the clips
    assert report["n_clips"] == 4 and report["n_frames"] == 4 * 8
    fp32 = report["fp32"]["metrics"]
    assert {"mAP", "pairs_mAP", "R@5_tIoU0.5", "R@1_tIoU0.5", "mean_tIoU"} <= set(fp32)
    for path in ("bf16", "int8"):
        r = report[path]
        cosine = r["frame_cosine_to_fp32"]
        assert 0.95 < cosine["min"] <= cosine["mean"] <= 1.0 + 1e-6
        for key, delta in r["deltas"].items():
            assert delta == pytest.approx(r["metrics"][key] - fp32[key], abs=1e-6)
        dropped = [k for k, d in r["deltas"].items() if k != "P@1"
                   and d < -(0.02 if k == "R@5_tIoU0.5" else 0.01)]  # fmt: skip
        assert r["beyond_tolerance"] == sorted(dropped)
        assert r["ok_as_default"] == (not dropped)
    bad = ["parity", "--tower", "vision", "--data", str(data), "--model", str(tiny_model_dir),
           "--moments", str(tmp_path)]  # fmt: skip
    assert main(bad) == 2
    assert "no moments.jsonl" in capsys.readouterr().err
