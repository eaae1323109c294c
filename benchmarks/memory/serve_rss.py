"""The resident memory of a ``clipsearch serve`` worker after a run of searches.

    python benchmarks/memory/serve_rss.py CLIPSEARCH MODEL STORE [--queries N] [--port P]

CLIPSEARCH is the ``clipsearch`` command of the install to measure (``.venv/bin/clipsearch``
for the full install, a venv's with only ``clipsearch[serve]`` for the torch-free one).
It serves MODEL and STORE (the embedded store: one worker), sends N distinct searches
(each a new query, so the text tower runs), and prints as JSON each process's resident
set (the Gunicorn master's and the worker's) and the site-packages size of that install.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from clipsearch.bench.common import served

WORDS = ["red", "blue", "small", "large", "ball", "box", "ring", "star", "spinning", "rising"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


def site_packages_mb(clipsearch: Path) -> float:
    python = clipsearch.parent / "python"
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    where = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    du = subprocess.run(["du", "-sm", where.stdout.strip()], capture_output=True, text=True)
    return float(du.stdout.split()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clipsearch", type=Path)
    parser.add_argument("model")
    parser.add_argument("store")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--port", type=int, default=8791)
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    with tempfile.TemporaryDirectory() as media:
        model, store = os.path.abspath(args.model), os.path.abspath(args.store)
        argv = [str(args.clipsearch), "serve", "--model", model, "--store", store]
        argv += ["--port", str(args.port), "--media-dir", media]
        started = time.perf_counter()
        with served(argv, Path(media), args.port) as server:
            ready_s = time.perf_counter() - started
            for i in range(args.queries):
                words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(2 + i % 4)]
                query = urllib.parse.quote(f"{' '.join(words)} {i}")
                with urllib.request.urlopen(f"{base}/api/search?q={query}&k=10", timeout=30):
                    pass
            report = {
                "clipsearch": str(args.clipsearch),
                "model": args.model,
                "queries": args.queries,
                "ready_s": round(ready_s, 1),
                "master_rss_mb": round(rss_mb(server.pid)),
                "worker_rss_mb": [round(rss_mb(pid)) for pid in children(server.pid)],
                "site_packages_mb": site_packages_mb(args.clipsearch),
            }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
