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


def phrase_store(model: Path, path: Path, phrases: list[str]) -> Path:
    """A Qdrant Edge store holding one clip per phrase (vector = the phrase's embedding)."""
    from clipsearch.model import load_model
    from clipsearch.store.base import ClipPoint, clip_id

    encoder = load_model(model, towers="text")
    vectors = encoder.encode_text(phrases)
    with QdrantEdgeStore(path) as store:
        store.ensure_collection(encoder.dim)
        store.upsert(
            [
                ClipPoint(clip_id(p), v, v[None, :], {"path": p, "class": p})
                for p, v in zip(phrases, vectors, strict=True)
            ]
        )
    return path


def stop_group(proc: Any, term_s: float = 5.0) -> None:
    """Stop a process started in its own session and all its children: SIGTERM, then
    SIGKILL after ``term_s``."""
    import signal
    import subprocess

    for sig, wait_s in ((signal.SIGTERM, term_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait_s)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def start_group(
    argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Any:
    """``argv`` in its own session (so :func:`stop_group` reaches its children), output to
    ``log``, in ``cwd`` (default: the repository's root)."""
    import subprocess

    with open(log, "wb") as out:
        return subprocess.Popen(
            argv,
            cwd=cwd or Path(__file__).resolve().parents[1],
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_up(url: str, proc: Any, log: Path, what: str, timeout_s: float) -> None:
    """Poll ``url`` until it answers 200; fail with ``log`` if ``proc`` exits or time runs out."""
    import pytest

    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not up after {timeout_s:g} s:\n{log.read_text()}")
        time.sleep(0.2)
