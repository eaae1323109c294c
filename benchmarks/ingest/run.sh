#!/usr/bin/env bash
# The ingest figures of benchmarks/RESULTS.md ("Ingest"), in one run, on this machine.
#
#   benchmarks/ingest/run.sh [OUT=benchmarks/ingest] [LIMIT=32] [BEFORE_REF]
#
# `clipsearch bench-ingest` (the default path: 2-s windows every 1 s, posters, a
# throw-away Qdrant Edge store; then the vision tower alone on the same frames) on the
# first LIMIT SynthUCF clips of $DATA with a random ViT-B/32: each vision dtype, `auto`
# (the default) first. With BEFORE_REF (a commit, e.g. 79eafb3), that commit's own
# `bench-ingest --segments` runs first on the same clips, from a git worktree, so the
# two defaults are measured back to back. Then benchmarks/ingest/plot.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-benchmarks/ingest}
LIMIT=${2:-32}
BEFORE=${3:-}
DATA=${DATA:-var/data/synthucf}
MODEL=var/bench/vit-b-32
PY=$PWD/.venv/bin/python
mkdir -p "$OUT" var/bench
OUT=$(cd "$OUT" && pwd)  # the "before" run works from another directory
[ -d "$DATA" ] || { echo "no dataset at $DATA: run make data first" >&2; exit 2; }
[ -f "$MODEL/config.json" ] || .venv/bin/clipsearch model init --arch vit-b-32 --out "$MODEL"

if [ -n "$BEFORE" ]; then
  tree=$(mktemp -d)
  trap 'git worktree remove --force "$tree" 2>/dev/null || true; rm -rf "$tree"' EXIT
  git worktree add --detach --force "$tree" "$BEFORE" > /dev/null
  (cd "$tree" && PYTHONPATH="$tree" "$PY" -m clipsearch.cli bench-ingest "$OLDPWD/$DATA" \
    --model "$OLDPWD/$MODEL" --limit "$LIMIT" --segments --json "$OUT/before.json")
fi
for dtype in auto fp32 bf16 int8; do
  .venv/bin/clipsearch bench-ingest "$DATA" --model "$MODEL" --limit "$LIMIT" \
    --vision-dtype "$dtype" --json "$OUT/$dtype.json"
done
"$PY" benchmarks/ingest/plot.py "$OUT"
