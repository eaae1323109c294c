"""What keeping an index in step with a folder costs: `clipsearch ingest` timed on a
SynthUCF folder as it is first ingested, then rerun unchanged, after files are renamed,
touched and deleted (`--prune`), and as `clipsearch watch` sees one new file.

    python benchmarks/sync/measure.py DATA_ROOT MODEL [--work var/bench/sync] [--files 100]

DATA_ROOT is a dataset (e.g. `clipsearch synth --out var/data/synthucf`); its `UCF-101`
videos are copied into the work folder, which is changed there, never in DATA_ROOT.
MODEL is any checkpoint (`clipsearch model init --arch tiny --out DIR` is enough: the
figures are about the sync, not the vectors). Every step runs the CLI with its defaults
and prints its wall time and the report's counts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "clipsearch.cli"]


def ingest(folder: Path, model: str, work: Path, *extra: str) -> tuple[float, dict[str, Any]]:
    report = work / "report.json"
    argv = [*CLI, "ingest", str(folder), "--model", model, "--store", str(work / "store")]
    argv += ["--media-dir", str(work / "media"), "--report", str(report), "-q", *extra]
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    return wall, json.loads(report.read_text())


def age(folder: Path) -> None:
    old = time.time() - 3600
    for path in folder.rglob("*"):
        os.utime(path, (old, old))


def watch_latency(folder: Path, model: str, work: Path, new: Path) -> float:
    """Seconds from a file's arrival to the watcher's 'added' line (interval 1 s)."""
    argv = [*CLI, "watch", str(folder), "--model", model, "--store", str(work / "store")]
    argv += ["--media-dir", str(work / "media"), "--interval", "1"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if line.startswith("watching"):
                break
        time.sleep(3)  # a poll or two over the unchanged folder
        arrived = time.perf_counter()
        shutil.copyfile(new, folder / "arrived.avi")
        for line in proc.stderr:
            if "added arrived.avi" in line:
                return time.perf_counter() - arrived
        raise RuntimeError("the watcher never reported the new file")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("model")
    parser.add_argument("--work", default="var/bench/sync")
    parser.add_argument("--files", type=int, default=100, help="files renamed and deleted")
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    folder = work / "videos"
    shutil.copytree(Path(args.data) / "UCF-101", folder)
    age(folder)
    files = sorted(folder.rglob("*.avi"))
    cpu = platform.processor() or platform.machine()
    print(f"{len(files)} videos; {cpu}, {os.cpu_count()} CPUs")

    def step(name: str, *extra: str) -> None:
        wall, r = ingest(folder, args.model, work, *extra)
        print(
            f"{name:38s} {wall:7.1f} s  ingested {r['ingested']:5d}  moved {len(r['moved']):4d}  "
            f"up to date {r['up_to_date']:5d}  removed {len(r['removed']):4d}"
        )

    step("first ingest")
    step("rerun, nothing changed")
    n = args.files
    for f in files[:n]:
        f.rename(f.with_name(f"renamed_{f.name}"))
    for f in files[n : 2 * n]:
        os.utime(f)
    for f in files[2 * n : 3 * n]:
        f.unlink()
    age(folder)
    step(f"{n} renamed, {n} touched, {n} deleted", "--prune")
    step("rerun, nothing changed")
    deleted = Path(args.data) / "UCF-101" / files[2 * n].relative_to(folder)
    latency = watch_latency(folder, args.model, work, deleted)
    print(f"{'watch --interval 1: a new file added after':38s} {latency:7.1f} s")


if __name__ == "__main__":
    main()
