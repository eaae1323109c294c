"""The ``clipsearch`` CLI: the tiny end to end (synth -> train -> ingest -> search/eval) and
one-line errors with non-zero exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from clipsearch.cli import main


def ingest_argv(folder: Path, model: Path, tmp_path: Path, *extra: str) -> list[str]:
    """`clipsearch ingest` into a store and media folder under tmp_path, quietly."""
    return [
        "ingest", str(folder), "--model", str(model), "--store", str(tmp_path / "s"),
        "--media-dir", str(tmp_path / "m"), "-q", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "model"
    cache = tmp_path_factory.mktemp("cache")
    code = main(
        [
            "train",
            "--data",
            str(tiny_synth),
            "--out",
            str(out),
            "--epochs",
            "3",
            "--max-steps",
            "3",
            # split 3 tests on groups 15-21, which the tiny set lacks: groups 1-8 are its
            # training list, and the last three of them are carved out for validation
            "--split",
            "3",
            "--batch-size",
            "20",
            "--cache-dir",
            str(cache),
            "-q",
        ]
    )
    assert code == 0
    return out


def test_train_saves_a_loadable_checkpoint(trained: Path) -> None:
    from clipsearch.cpu import training_dtype
    from clipsearch.model import load_model

    names = {p.name for p in trained.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "preprocessor_config.json",
        "clipsearch.json",
        "metrics.json",
    } <= names
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["n_train_clips"] == 20
    assert metrics["tower_dtype"] == training_dtype()  # `auto`: what this CPU runs fast
    enc = load_model(trained)
    assert enc.model_id == metrics["model_id"] and enc.model_id.startswith("model-")
    # validation by retrieval every `val_every` epochs from half-way (`val_start`) and after
    # the last, on whole groups of the training list, the best epoch kept; the test list is
    # never touched by training
    val = metrics["validation"]
    assert val["groups"] == [6, 7, 8] and val["n_clips"] == 12
    assert [h["epoch"] for h in val["history"]] == [1, 2]
    assert val["best_val_score"] == pytest.approx(max(h["val_score"] for h in val["history"]))
    assert val["best"]["epoch"] == val["best_epoch"]
    assert not any(k.startswith("split") for k in metrics)
    assert (trained / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "val_mAP" in (trained / "logs" / "metrics.csv").read_text().splitlines()[0]
    val_rows = (trained / "logs" / "val_map.csv").read_text().splitlines()
    assert val_rows[0] == "step,val_mAP" and len(val_rows) == 1 + len(val["history"])
    assert list((trained / "logs" / "tb").glob("events.out.tfevents.*"))
    # the tiny set has too few colours per class to withhold any composition
    assert metrics["heldout"] == [] and enc.video.heldout is None


def test_end_to_end_ingest_search_eval(
    trained: Path, tiny_synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, media = tmp_path / "store", tmp_path / "media"
    args = ["--model", str(trained), "--store", str(store)]
    assert main(["ingest", str(tiny_synth), *args, "--media-dir", str(media), "-q"]) == 0
    assert "ingested 32" in capsys.readouterr().out
    assert main(["ingest", str(tiny_synth), *args, "--media-dir", str(media), "-q"]) == 0
    assert "ingested 0, up to date 32" in capsys.readouterr().out

    assert main(["search", "a ball bouncing", *args, "-k", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["query"] == "a ball bouncing" and len(out["results"]) == 5
    scores = [r["score"] for r in out["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(r["path"].endswith(".avi") for r in out["results"])

    assert main(["search", "a ball bouncing", *args, "-k", "3"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.strip().splitlines()) == 4 and captured.err == ""

    report = tmp_path / "eval.json"
    assert (
        main(
            [
                "eval",
                "--data",
                str(tiny_synth),
                "--model",
                str(trained),
                "--json",
                str(report),
                "-q",
            ]
        )
        == 0
    )
    metrics = json.loads(report.read_text())
    assert {"mAP", "P@1", "P@5", "R@10", "per_class_AP", "n_queries", "n_clips"} <= set(metrics)
    assert metrics["n_queries"] == 4 and metrics["n_clips"] == 28
    assert 0.0 <= metrics["mAP"] <= 1.0
    assert list(metrics["pairs"]) == ["BallRollingLeft/BallRollingRight"]
    assert metrics["n_freeform_queries"] > 0 and 0.0 <= metrics["freeform_mAP"] <= 1.0
    low, high = metrics["freeform_mAP_interval"]  # over the 28 clips' scenes
    assert 0.0 <= low <= high <= 1.0
    assert metrics["heldout"] is None and metrics["heldout_mAP"] is None
    table = capsys.readouterr().out
    assert "direction pairs" in table and "not trained with held-out compositions" in table
    assert metrics["window_frames"] == 6  # windows as ingest cuts them by default
    eight = tmp_path / "eval-8.json"
    argv = ["eval", "--data", str(tiny_synth), "--model", str(trained), "-q"]
    assert main([*argv, "--window-frames", "8", "--json", str(eight)]) == 0
    other = json.loads(eight.read_text())
    assert other["window_frames"] == 8


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (["search", "   ", "--model", "M"], None, 2),
        (["ingest", "/no/such/dir", "--model", "M"], "does not exist", 2),
        (
            ["train", "--data", "/no/such/dir", "--out", "x", "--config", "nope"],
            "no training recipe",
            2,
        ),
        (["eval", "--data", "/no/such/dir", "--model", "M"], "does not exist", 2),
    ],
)
def test_errors_are_one_line_and_non_zero(
    argv: list[str],
    message: str | None,
    code: int,
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [str(tiny_model_dir) if a == "M" else a for a in argv]
    if argv[0] == "search":
        argv += ["--store", str(tmp_path / "store")]
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("clipsearch: error: ") and "\n" not in err
    if message:
        assert message in err


def test_search_on_an_empty_store_says_so(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["search", "a ball", "--model", str(tiny_model_dir), "--store", str(tmp_path / "empty")]
    )
    err = capsys.readouterr().err
    assert code == 1 and "ingest" in err


def test_ingest_of_only_broken_files_exits_non_zero(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "x.avi").write_bytes(b"junk")
    code = main(ingest_argv(tmp_path / "v", tiny_model_dir, tmp_path))
    assert code == 1
    assert "no clip could be ingested" in capsys.readouterr().err


def test_synth_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "synth",
                "--out",
                str(tmp_path / "d"),
                "--classes",
                "2",
                "--groups",
                "1",
                "--clips",
                "1",
                "-q",
            ]
        )
        == 0
    )
    assert "wrote 2 clips of 2 classes" in capsys.readouterr().out
    assert main(["synth", "--out", str(tmp_path / "d"), "--classes", "13"]) == 2


@pytest.mark.parametrize(
    "extra", [["--limit", "0"], ["--batch", "-1"], ["--workers", "zero"], ["--limit", "-2"]]
)
def test_nonsense_counts_are_usage_errors(
    extra: list[str], tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["ingest", str(tmp_path), "--model", str(tiny_model_dir), *extra])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "must be at least 1" in err or "expected an integer" in err


def test_eval_compare_prints_both_side_by_side(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from clipsearch.data.synthucf import read_meta

    meta = read_meta(tiny_synth)
    assert meta is not None
    color = meta["BoxSpinning/v_BoxSpinning_g01_c01.avi"]["color"]  # a test clip of split 1
    combo = f"BoxSpinning:{color}"
    # the same weights, saved as a model "trained" without one colour x class combination
    held = tmp_path / "held"
    shutil.copytree(tiny_model_dir, held)
    video = json.loads((held / "clipsearch.json").read_text())
    video.update(model_id="tiny-held", heldout=[combo])
    (held / "clipsearch.json").write_text(json.dumps(video))

    out = tmp_path / "compare.json"
    argv = ["eval", "--data", str(tiny_synth), "--model", str(tiny_model_dir), "-q"]
    assert main([*argv, "--compare", str(held), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert list(report) == ["models"]
    m1, m2 = report["models"]
    assert (m1["model"], m2["model"]) == ("tiny-random", "tiny-held")
    for m in (m1, m2):
        assert {"mAP", "P@1", "P@5", "R@10", "per_class_AP", "n_queries", "n_clips"} <= set(m)
        assert {"query_template", "failed", "data", "split", "pairs", "freeform_mAP"} <= set(m)
        assert m["n_clips"] == 28 and m["heldout"] == [combo]
    # both models scored on the held-out combo; only the second one withheld it
    assert (m1["heldout_own"], m2["heldout_own"]) == (False, True)
    assert m2["heldout_AP"][combo] is not None
    # same weights, same decoded frames: identical figures
    for key in ("mAP", "per_class_AP", "pairs", "freeform_AP", "heldout_AP"):
        assert m1[key] == m2[key], key

    lines = table.splitlines()
    assert lines[0].startswith("model 1: tiny-random (mean pooling, 8 frames)")
    assert lines[1].startswith("model 2: tiny-held")
    assert f"held-out compositions withheld by model 2: {combo}" in table
    figures = lines[lines.index("") + 2 :]  # after the legend and the column header
    deltas = dict(ln.rsplit(maxsplit=3)[::3] for ln in figures)  # row name -> delta
    for name in ("mAP", "R@10", "freeform_mAP", "heldout_mAP", "AP BoxSpinning"):
        assert deltas[name] == "+0.0000", name
    assert "pair BallRollingLeft/BallRollingRight" in deltas

    # without --compare the JSON stays the plain metrics dict
    assert main([*argv, "--json", "-"]) == 0
    printed = capsys.readouterr().out
    plain = json.loads(printed[printed.index("\n{") + 1 :])
    assert "models" not in plain and plain["model"] == "tiny-random"


def test_eval_with_no_decodable_test_clip_is_one_line(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "ucf"
    (root / "UCF-101" / "Junk").mkdir(parents=True)
    (root / "UCF-101" / "Junk" / "v_Junk_g01_c01.avi").write_text("not a video")
    (root / "ucfTrainTestlist").mkdir()
    (root / "ucfTrainTestlist" / "classInd.txt").write_text("1 Junk\n")
    (root / "ucfTrainTestlist" / "testlist01.txt").write_text("Junk/v_Junk_g01_c01.avi\n")
    code = main(["eval", "--data", str(root), "--model", str(tiny_model_dir), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "clipsearch: error: none of the 1 clips could be decoded"


def test_report_goes_to_a_new_directory(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = tiny_synth / "UCF-101" / "BoxSpinning"
    report = tmp_path / "new" / "dir" / "report.json"
    code = main(ingest_argv(folder, tiny_model_dir, tmp_path, "--report", str(report)))
    assert code == 0 and json.loads(report.read_text())["ingested"] == 8


def test_search_warns_when_the_store_was_filled_by_another_model(
    trained: Path,
    tiny_synth: Path,
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tiny_synth / "UCF-101" / "BoxSpinning"
    assert main(ingest_argv(folder, trained, tmp_path)) == 0
    capsys.readouterr()
    # same vector size, different model: results would be meaningless
    code = main(
        [
            "search",
            "a box spinning",
            "--model",
            str(tiny_model_dir),
            "--store",
            str(tmp_path / "s"),
            "-k",
            "2",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0 and err.startswith("clipsearch: warning: the store holds clips embedded")
    assert "tiny-random" in err


# flag -> a value that once ran (a million decode processes took a machine's memory) or
# ended in a traceback, for the command that takes it
OUT_OF_RANGE = [
    (["ingest", "{folder}", "--model", "{model}", "--workers", "1000000"], "must be 1.."),
    (["ingest", "{folder}", "--model", "{model}", "--max-video-s", "-1"], "finite number >= 0"),
    (["ingest", "{folder}", "--model", "{model}", "--max-video-s", "nan"], "finite number >= 0"),
    (["watch", "{folder}", "--model", "{model}", "--interval", "1e308"], "at most 86400 s"),
    (["serve", "--model", "{model}", "--port", "70000"], "must be 0..65535"),
    (["train", "--data", "{folder}", "--out", "{tmp}/m", "--seed", "-1"], "must be 0..4294"),
    (["model", "init", "--out", "{tmp}/m", "--seed", "99999999999999999999"], "must be 0..4294"),
    (["data", "ucf101", "--out", "{tmp}/u", "--timeout", "-1"], "finite number >= 0"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "says"), OUT_OF_RANGE, ids=[" ".join(a[:1] + a[-2:]) for a, _ in OUT_OF_RANGE]
)
def test_values_out_of_range_are_usage_errors(
    argv: list[str],
    says: str,
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "videos").mkdir()
    filled = [
        a.format(folder=tmp_path / "videos", model=tiny_model_dir, tmp=tmp_path) for a in argv
    ]
    with pytest.raises(SystemExit) as info:
        main(filled)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_an_output_that_cannot_be_written_is_refused_before_the_work(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("in the way")
    argv = ingest_argv(tiny_synth, tiny_model_dir, tmp_path, "--limit", "2")
    with pytest.raises(SystemExit) as info:
        main([*argv, "--report", str(tmp_path / "a-file" / "report.json")])
    assert info.value.code == 2
    assert "a-file is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # nothing was ingested


def test_eval_of_a_folder_without_classes_says_so(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    for clip in sorted((tiny_synth / "UCF-101").glob("*/*.avi"))[:2]:
        shutil.copy(clip, folder / clip.name)
    for command in (["eval"], ["parity"]):
        assert main([*command, "--data", str(folder), "--model", str(tiny_model_dir)]) == 2
        assert "no clips of a class to score" in capsys.readouterr().err
