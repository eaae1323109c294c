"""The PNG plot of benchmarks/serving/run.sh's results: throughput and latency against
users (clipsearch and the seed-style baseline). Ingest's: benchmarks/ingest/plot.py.

    .venv/bin/python benchmarks/serving/plot.py benchmarks/serving
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def load_curves(out: Path) -> dict[str, dict[int, dict[str, float]]]:
    curves: dict[str, dict[int, dict[str, float]]] = {"clipsearch": {}, "baseline": {}}
    for path in out.glob("unique-*u.json"):
        match = re.fullmatch(r"unique-(\d+)u\.json", path.name)
        if not match:
            continue
        runs = json.loads(path.read_text())
        for system in curves:
            curves[system][int(match.group(1))] = runs[system]["total"]
    return curves


def plot_load(out: Path) -> Path | None:
    curves = load_curves(out)
    if not curves["clipsearch"]:
        return None
    fig, (rps_ax, lat_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for system, style in (("clipsearch", "o-"), ("baseline", "s--")):
        users = sorted(curves[system])
        rows = [curves[system][u] for u in users]
        rps_ax.plot(users, [r["rps"] for r in rows], style, label=system)
        lat_ax.plot(users, [r["p50_ms"] for r in rows], style, label=f"{system} p50")
        lat_ax.plot(users, [r["p95_ms"] for r in rows], style, alpha=0.5, label=f"{system} p95")
    rps_ax.set(xlabel="users (no wait time)", ylabel="requests/s", title="Throughput")
    lat_ax.set(xlabel="users (no wait time)", ylabel="ms", title="Latency", yscale="log")
    lat_ax.axhline(150, color="grey", lw=0.8, ls=":", label="150 ms")
    for ax in (rps_ax, lat_ax):
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Unique queries, ViT-B/32 (random weights), 13,320 clips, 2 CPU cores")
    fig.tight_layout()
    target = out / "load.png"
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "benchmarks/serving")
    made = plot_load(out)
    if made is not None:
        print(made)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
