"""Do two installs' servers answer the eval queries with the same top 10?

    python benchmarks/serving/install_parity.py SERVE_BIN FULL_BIN MODEL STORE DATA

SERVE_BIN is the ``clipsearch`` of a venv with only ``clipsearch[serve]`` (serving MODEL's
ONNX export), FULL_BIN the full install's. Each serves a copy of STORE in turn; the
queries are DATA's (a SynthUCF root) class and free-form eval queries. Prints, for the
full install's text dtypes int8, auto and fp32, how many top-10 lists are identical to
the serve install's and their mean overlap.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from clipsearch.bench.common import served
from clipsearch.data.synthucf import freeform_queries, read_meta
from clipsearch.evaluation.retrieval import class_queries

PORT = 8141


def answers(
    clipsearch: str, model: str, store: str, queries: list[str], *extra: str
) -> dict[str, list[str]]:
    with tempfile.TemporaryDirectory() as work:
        copy = Path(work) / "store"
        shutil.copytree(store, copy)  # an embedded store is rewritten when opened
        argv = [clipsearch, "serve", "--model", model, "--store", str(copy)]
        argv += ["--port", str(PORT), "--media-dir", f"{work}/media", "--cache-dir", work]
        with served([*argv, *extra], Path(work), PORT, timeout_s=600):
            found = {}
            for query in queries:
                params = urllib.parse.urlencode({"q": query, "k": 10, "min_score": -1})
                url = f"http://127.0.0.1:{PORT}/api/search?{params}"
                with urllib.request.urlopen(url, timeout=60) as r:
                    found[query] = [hit["id"] for hit in json.load(r)["results"]]
            return found


def main() -> int:
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    # the servers run in folders of their own: absolute paths
    serve_bin, full_bin, model, store, data = (os.path.abspath(a) for a in sys.argv[1:])
    meta = read_meta(data) or {}
    classes = sorted({path.split("/")[0] for path in meta})
    queries = class_queries(classes) + [q.text for q in freeform_queries(list(meta.values()))]
    served = answers(serve_bin, model, store, queries)
    report = {"queries": len(queries)}
    for dtype in ("int8", "auto", "fp32"):
        full = answers(full_bin, model, store, queries, "--text-dtype", dtype)
        same = sum(served[q] == full[q] for q in queries)
        overlap = sum(len(set(served[q]) & set(full[q])) for q in queries) / (10 * len(queries))
        report[dtype] = {"identical_top10": same, "mean_overlap": round(overlap, 3)}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
