"""The soak's verdict and plot: failures from locust, and the server's memory over time.

    python benchmarks/soak/plot.py RSS_CSV LOCUST_SUMMARY_JSON OUT_DIR

Memory is "flat" when the resident size in the last half of the run grows by less than
5 % from the start of that half (the first half includes warm-up: caches filling, the
int8 export loading). Writes OUT_DIR/rss.png and OUT_DIR/soak.json and prints the latter.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(argv: list[str]) -> int:
    rss_csv, summary_json, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    with rss_csv.open(newline="") as f:
        rows = [(float(r["time_s"]), float(r["rss_mb"])) for r in csv.DictReader(f)]
    if len(rows) < 4:
        print(f"error: only {len(rows)} memory samples in {rss_csv}", file=sys.stderr)
        return 2
    # the last samples can catch the server shutting down after the load: drop them
    while len(rows) > 4 and rows[-1][1] < 0.9 * rows[-2][1]:
        rows.pop()
    summary = json.loads(summary_json.read_text())
    half = rows[len(rows) // 2 :]
    start, end = half[0][1], half[-1][1]
    growth = (end - start) / start if start else 0.0
    verdict = {
        "samples": len(rows),
        "duration_s": rows[-1][0],
        "rss_mb_first": rows[0][1],
        "rss_mb_max": max(r for _, r in rows),
        "rss_mb_second_half_start": start,
        "rss_mb_end": end,
        "second_half_growth": round(growth, 4),
        "memory_flat": growth < 0.05,
        "locust": summary,
    }
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.plot([t / 60 for t, _ in rows], [r for _, r in rows], lw=1.2)
    ax.set_xlabel("minutes")
    ax.set_ylabel("server RSS (MB)")
    ax.set_ylim(0, max(r for _, r in rows) * 1.15)
    ax.set_title("soak: server memory under load")
    fig.tight_layout()
    fig.savefig(out / "rss.png")
    (out / "soak.json").write_text(json.dumps(verdict, indent=2) + "\n")
    print(json.dumps(verdict, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
