"""The ``clipsearch`` CLI: the tiny end to end (synth -> train -> ingest -> search/eval) and
one-line errors with non-zero exit codes."""

from __future__ import annotations

import json
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
            "--batch-size",
            "4",
            "--cache-dir",
            str(cache),
            "-q",
        ]
    )
    assert code == 0
    return out


def test_train_saves_a_loadable_checkpoint(trained: Path) -> None:
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
    assert metrics["steps"] == 3 and metrics["n_train_clips"] == 4
    assert metrics["split1_test"]["n_clips"] == 28
    enc = load_model(trained)
    assert enc.model_id == metrics["model_id"] and enc.model_id.startswith("model-")


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
