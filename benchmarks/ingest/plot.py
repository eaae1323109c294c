"""Summarise benchmarks/ingest/run.sh: a table (markdown, on stdout) and ingest.png.

Every figure is recomputed from what each run measured: its clips, the frames the vision
tower embedded (``model_only.frames``: a run from before bench-ingest counted every frame
reports 8 a clip as the pipeline's), the pipeline's wall time and the model's own time.

    .venv/bin/python benchmarks/ingest/plot.py [OUT=benchmarks/ingest]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from clipsearch.bench.ingest import UCF101_CLIPS, UCF101_MEAN_S
from clipsearch.video import interval_midpoints
from clipsearch.windows import UNSTAMPED_FRAMES, WindowPlan, frame_layout

ORDER = ("before", "auto", "fp32", "bf16", "int8")


def ucf_frames(name: str, run: dict, num_frames: int = 8) -> int:
    """Frames a UCF101 clip of the mean length costs: the run's layout (its windows'
    frames: 8 a window before they were recorded), or before's (the clip's own 8
    midpoints decoded beside the windows' frames)."""
    plan = WindowPlan(frames=(run.get("segments") or {}).get("frames", UNSTAMPED_FRAMES))
    if name != "before":
        return len(frame_layout(UCF101_MEAN_S, num_frames, plan).times)
    windows = plan.windows(UCF101_MEAN_S)
    times = [interval_midpoints(UCF101_MEAN_S, num_frames)]
    times += [s + interval_midpoints(e - s, num_frames) for s, e in windows]
    return len(np.unique(np.round(np.concatenate(times), 6)))


def summary(name: str, run: dict) -> dict:
    frames = run["model_only"]["frames"]
    wall = run["pipeline"]["wall_s"]
    pipeline_fps = frames / wall
    model_fps = frames / run["model_only"]["seconds"]
    per_ucf = ucf_frames(name, run)
    return {
        "name": name,
        "vision": run["vision_dtype"],
        "frames_per_clip": frames / run["clips"],
        "clips_per_s": run["clips"] / wall,
        "pipeline_fps": pipeline_fps,
        "model_fps": model_fps,
        "efficiency": pipeline_fps / model_fps,
        "ucf_frames": per_ucf,
        "ucf_hours": UCF101_CLIPS * per_ucf / pipeline_fps / 3600,
        "stages": run["pipeline"]["stage_seconds"],
        "clips": run["clips"],
        "model_s": run["model_only"]["seconds"],
    }


def table(rows: list[dict]) -> str:
    base = next((r for r in rows if r["name"] == "before"), None)
    lines = [
        "| run | vision | frames/clip | clips/s | vs before | pipeline frames/s | "
        "model alone frames/s | ingest_efficiency | UCF101 (frames/clip, hours) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = f"{r['clips_per_s'] / base['clips_per_s']:.2f}x" if base else "-"
        lines.append(
            f"| {r['name']} | {r['vision']} | {r['frames_per_clip']:.2f} | "
            f"{r['clips_per_s']:.2f} | {ratio} | {r['pipeline_fps']:.1f} | {r['model_fps']:.1f} | "
            f"{r['efficiency']:.3f} | {r['ucf_frames']}, {r['ucf_hours']:.2f} h |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], target: Path) -> Path:
    stages = sorted({k for r in rows for k in r["stages"]})
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.8 * len(rows)))
    labels = []
    for i, r in enumerate(rows):
        left = 0.0
        for j, stage in enumerate(stages):
            width = r["stages"].get(stage, 0.0) / r["clips"]
            ax.barh(2 * i, width, left=left, color=f"C{j}", label=stage if i == 0 else None)
            left += width
        ax.barh(
            2 * i + 0.8,
            r["model_s"] / r["clips"],
            color="grey",
            label="vision tower alone" if i == 0 else None,
        )
        labels += [
            f"{r['name']} ({r['vision']}, {r['frames_per_clip']:.1f} frames/clip)",
            "model only",
        ]
    ax.set_yticks([y for i in range(len(rows)) for y in (2 * i, 2 * i + 0.8)], labels, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="seconds per clip", title="Ingest (default path), ViT-B/32, 2 CPU cores")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "benchmarks/ingest")
    runs = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    rows = [summary(name, runs[name]) for name in ORDER if name in runs]
    if not rows:
        print(f"no bench-ingest results in {out}", file=sys.stderr)
        return 2
    print(table(rows))
    print(f"wrote {plot(rows, out / 'ingest.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
