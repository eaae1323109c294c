"""Summary JSON of a locust run from its ``*_stats.csv`` (and the server's health)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def summarize(stats_csv: str | Path) -> dict[str, Any]:
    """RPS, latency percentiles (ms) and failures, overall and per request name."""
    with Path(stats_csv).open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{stats_csv} has no rows")

    def line(row: dict[str, str]) -> dict[str, Any]:
        return {
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "rps": _number(row["Requests/s"]),
            "mean_ms": _number(row["Average Response Time"]),
            "p50_ms": _number(row["50%"]),
            "p95_ms": _number(row["95%"]),
            "p99_ms": _number(row["99%"]),
        }

    total = next((r for r in rows if r["Name"] == "Aggregated"), None)
    if total is None:
        raise ValueError(f"{stats_csv} has no Aggregated row")
    return {
        "total": line(total),
        "by_name": {r["Name"]: line(r) for r in rows if r["Name"] != "Aggregated"},
    }


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: summarize.py STATS_CSV [HEALTH_JSON]", file=sys.stderr)
        return 2
    summary = summarize(argv[0])
    if len(argv) == 2 and Path(argv[1]).is_file():
        health = json.loads(Path(argv[1]).read_text())
        summary["query_cache"] = health.get("query_cache")
        summary["model"] = health.get("model")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
