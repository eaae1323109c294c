"""A PNG of the training curves (loss per step, validation mAP per epoch) from the CSV log."""

from __future__ import annotations

import csv
import math
from pathlib import Path


def _column(rows: list[dict[str, str]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        value, step = row.get(key, ""), row.get("step", "")
        if value and step:
            y = float(value)
            if math.isfinite(y):
                xs.append(float(step))
                ys.append(y)
    return xs, ys


def write_tidy_curves(metrics_csv: Path, out_dir: Path) -> list[Path]:
    """``train_loss.csv`` (step, train_loss) and ``val_map.csv`` (step, val_mAP) from
    Lightning's sparse CSV log: one column per file and no empty cells, the form DVC plots
    (and most plotting tools) read."""
    if not metrics_csv.exists():
        return []
    with metrics_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    written = []
    for key, name in (("train_loss", "train_loss.csv"), ("val_mAP", "val_map.csv")):
        steps, values = _column(rows, key)
        path = out_dir / name
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["step", key])
            writer.writerows((int(step), value) for step, value in zip(steps, values, strict=True))
        written.append(path)
    return written


def plot_curves(metrics_csv: Path, out_png: Path, title: str = "") -> bool:
    """Write ``out_png``; False when the log has nothing to plot."""
    if not metrics_csv.exists():
        return False
    with metrics_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    loss = _column(rows, "train_loss")
    val = _column(rows, "val_mAP")
    if not loss[0] and not val[0]:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(*loss, color="tab:blue", lw=1, label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("train loss", color="tab:blue")
    if val[0]:
        ax2 = ax.twinx()
        ax2.plot(*val, color="tab:red", marker="o", ms=3, lw=1.5, label="val mAP")
        ax2.set_ylabel("val mAP (validation groups)", color="tab:red")
        ax2.set_ylim(0, 1.02)
    ax.set_title(title or "training")
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)
    plt.close(fig)
    return True
