"""Crash-safe ingest: `kill -9` an ingest at random points, again and again, then let it
finish: the store equals a clean ingest of the same folder (`clipsearch store stats`: same
ids, count == scroll, no duplicates, identical vectors and payload), and the final run does
not redo the clips finished before."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from folders import CLI, ingest_argv

from clipsearch.store.edge import QdrantEdgeStore
from clipsearch.store.stats import store_stats

KILLS = 20
DONE = re.compile(r"(\d+)/(\d+)")


def _ingest_argv(data: Path, model: Path, store: Path, media: Path) -> list[str]:
    # one clip per batch and one decode process (see folders.ingest_argv)
    return [*CLI, *ingest_argv(data, model, store, media)]


def _stats(store: Path) -> dict[str, Any]:
    with QdrantEdgeStore(store) as opened:
        return store_stats(opened)


def _run_and_kill(argv: list[str], rng: random.Random) -> bool:
    """Start an ingest and kill -9 it once its progress bar has counted 0-3 more clips
    (plus up to 0.3 s); False when it finished before the kill."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [*argv, "--progress"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env
    )
    assert proc.stderr is not None
    target = rng.randint(0, 3)
    seen = -1
    first = None
    buffer = b""
    while proc.poll() is None:
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            break
        buffer = (buffer + chunk)[-400:]
        found = DONE.findall(buffer.decode(errors="replace"))
        if found:
            done = int(found[-1][0])
            first = done if first is None else first
            seen = done
        if seen >= 0 and seen - (first or 0) >= target:
            time.sleep(rng.uniform(0, 0.3))  # somewhere inside the next clip or upsert
            break
    if proc.poll() is not None:
        proc.wait()
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return True


@pytest.mark.slow
def test_twenty_kills_then_a_store_equal_to_a_clean_ingest(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    clean = tmp_path / "clean"
    subprocess.run(
        _ingest_argv(tiny_synth, tiny_model_dir, clean, tmp_path / "media-clean"),
        check=True,
        capture_output=True,
    )
    reference = _stats(clean)
    assert reference["consistent"] and reference["videos"]["count"] == 32

    crashed = tmp_path / "crashed"
    argv = _ingest_argv(tiny_synth, tiny_model_dir, crashed, tmp_path / "media")
    rng = random.Random(7)
    kills = restarts = 0
    while kills < KILLS:
        killed = _run_and_kill(argv, rng)
        if crashed.exists():  # after every kill: no duplicates, count == scroll
            state = _stats(crashed)
            assert state["consistent"], state
        if killed:
            kills += 1
        else:  # it finished: start over so that every kill lands mid-work
            shutil.rmtree(crashed)
            restarts += 1
            assert restarts < 5, "ingest kept finishing before the kill"
    report_path = tmp_path / "report.json"
    done = subprocess.run([*argv, "--report", str(report_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    final = _stats(crashed)
    assert final == reference
    assert report["found"] == 32 and report["failed"] == []
    # the clips finished before the last kill were not embedded again
    assert report["up_to_date"] > 0
    assert report["up_to_date"] + report["ingested"] == 32
