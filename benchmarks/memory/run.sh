#!/usr/bin/env bash
# Peak memory of `clipsearch ingest` on a folder holding a 20-minute 720p H.264 video and
# LIMIT SynthUCF clips (benchmarks/RESULTS.md, "Memory"), with a random ViT-B/32 and the
# default flags; the first run writes the video (about 80 s) and the folder.
#
#   benchmarks/memory/run.sh [OUT=benchmarks/memory/ingest-long.json] [LIMIT=200]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-benchmarks/memory/ingest-long.json}
LIMIT=${2:-200}
DATA=${DATA:-var/data/synthucf}
MODEL=var/bench/vit-b-32
FOLDER=var/bench/long-folder
PY=.venv/bin/python
[ -d "$DATA" ] || { echo "no dataset at $DATA: run make data first" >&2; exit 2; }
[ -f "$MODEL/config.json" ] || .venv/bin/clipsearch model init --arch vit-b-32 --out "$MODEL"
[ -f "$FOLDER/long/long-20min.mp4" ] ||
  "$PY" benchmarks/memory/make_long_video.py "$FOLDER/long/long-20min.mp4" 20
rm -rf "$FOLDER/clips" && mkdir -p "$FOLDER/clips"
mapfile -t clips < <(find "$DATA/UCF-101" -name '*.avi' | sort)
cp "${clips[@]:0:$LIMIT}" "$FOLDER/clips/"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$PY" benchmarks/memory/peak_rss.py "$OUT" -- .venv/bin/clipsearch ingest "$FOLDER" \
  --model "$MODEL" --store "$scratch/store" --media-dir "$scratch/media" -q
