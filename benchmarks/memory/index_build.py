"""Peak memory of the last step of a first ingest at UCF101's size: the search graphs built
while the model is still loaded (benchmarks/RESULTS.md, "Memory").

    python benchmarks/memory/index_build.py MODEL [--clips 13320] [--json OUT]

A child process writes a load-test store of ``--clips`` synthetic clips (ingest's payload,
3-10 windows a clip) without building its graphs; then this process loads MODEL as
`clipsearch ingest` does (both towers, ``--vision-dtype auto``), opens the store and
optimizes it, and prints its peak resident set and, sampled while the graphs are built,
its anonymous memory and its file-backed memory (the memory-mapped store and weights,
which the kernel can drop under pressure).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clipsearch.bench.common import cpu_line
from clipsearch.cpu import cpu_info

MB = 1024


def peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MB)


def status_mb() -> dict[str, int]:
    """VmHWM, RssAnon and RssFile of this process, in MB."""
    lines = Path("/proc/self/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return {k: round(int(fields[k].split()[0]) / MB) for k in ("VmHWM", "RssAnon", "RssFile")}


# The graph build keeps the GIL, so a thread could not watch it: a child process reads
# this process's anonymous and file-backed resident memory every 50 ms until told to stop.
SAMPLER = """
import select, sys
pid, peak = sys.argv[1], {"RssAnon": 0, "RssFile": 0}
while True:
    for line in open(f"/proc/{pid}/status"):
        key = line.split(":")[0]
        if key in peak:
            peak[key] = max(peak[key], int(line.split()[1]) // 1024)
    if select.select([sys.stdin], [], [], 0.05)[0]:  # told to stop (or the parent died)
        break
print(peak["RssAnon"], peak["RssFile"])
"""


def build(store_dir: str, dim: int, clips: int) -> None:
    from clipsearch.bench.loadstore import build_load_store
    from clipsearch.store.edge import QdrantEdgeStore

    with QdrantEdgeStore(store_dir) as store:
        build_load_store(store, dim, clips=clips, optimize=False)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--build"]:
        build(argv[1], int(argv[2]), int(argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--clips", type=int, default=13_320)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    print(cpu_line())
    from clipsearch.model import load_model
    from clipsearch.store.edge import QdrantEdgeStore

    with tempfile.TemporaryDirectory() as tmp:
        store_dir = str(Path(tmp) / "store")
        encoder = load_model(args.model, vision_dtype="auto")
        dim = int(encoder.dim)
        subprocess.run(
            [sys.executable, __file__, "--build", store_dir, str(dim), str(args.clips)],
            check=True,
        )
        figures: dict[str, object] = {"after_model_mb": peak_mb()}
        with QdrantEdgeStore(store_dir) as store:
            figures["after_open_mb"] = peak_mb()
            sampler = subprocess.Popen(
                [sys.executable, "-c", SAMPLER, str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            started = time.perf_counter()
            store.optimize()
            figures["optimize_s"] = round(time.perf_counter() - started, 1)
            anon, file_backed = sampler.communicate("stop\n")[0].split()
            figures["during_build_peak_mb"] = {"RssAnon": int(anon), "RssFile": int(file_backed)}
            figures["peak_rss_mb"] = peak_mb()
            end = status_mb()
            figures["at_end_mb"] = end
    figures.update(clips=args.clips, vision_dtype=encoder.vision_dtype, cpu=cpu_info())
    figures["command"] = "python benchmarks/memory/index_build.py " + " ".join(argv)
    print(
        f"{args.clips} clips: model loaded {figures['after_model_mb']} MB, store opened "
        f"{figures['after_open_mb']} MB, graphs built in {figures['optimize_s']} s: peak RSS "
        f"{figures['peak_rss_mb']} MB; while building at most {int(anon)} MB anonymous and "
        f"{int(file_backed)} MB file-backed (at the end {end['RssAnon']} and {end['RssFile']})"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
