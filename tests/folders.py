"""Folders of videos for the sync and watch tests, and ingesting them as a user would."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from clipsearch.cli import main
from clipsearch.store.edge import QdrantEdgeStore
from clipsearch.store.stats import store_stats

CLI = [sys.executable, "-m", "clipsearch.cli"]


def clips_of(tiny_synth: Path) -> list[Path]:
    return sorted((tiny_synth / "UCF-101").glob("*/*.avi"))


def make_folder(tiny_synth: Path, folder: Path, n: int) -> list[Path]:
    """``n`` clips of the tiny SynthUCF in class folders (an hour old: settled)."""
    copied = []
    for src in clips_of(tiny_synth)[:n]:
        dest = folder / src.parent.name / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        copied.append(dest)
    age(folder)
    return copied


def age(folder: Path, seconds: float = 3600) -> None:
    old = time.time() - seconds
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))


def ingest_argv(folder: Path, model: Path, store: Path, media: Path, *extra: str) -> list[str]:
    # one clip per batch and one decode process: every clip is embedded in the same shape
    # in every run, so its vectors are bit-identical however the runs went
    return [
        "ingest",
        str(folder),
        "--model",
        str(model),
        "--store",
        str(store),
        "--media-dir",
        str(media),
        "--batch",
        "1",
        "--workers",
        "1",
        "-q",
        *extra,
    ]


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def stats(store: Path) -> dict[str, Any]:
    with QdrantEdgeStore(store) as opened:
        return store_stats(opened)


def report_of(argv: list[str], tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "report.json"
    code, out, err = run([*argv, "--report", str(path)])
    assert code == 0, (out, err)
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)
