#!/usr/bin/env bash
# Soak test: locust at the target load for DURATION while the server's resident memory is
# sampled every few seconds; then a plot and the verdict (failures, memory growth).
#
#   benchmarks/soak/run.sh MODEL STORE [USERS=32] [DURATION=10m] [OUT=var/soak]
#
# OUT gets rss.csv (time_s, rss_mb of the serving processes), rss.png, the locust files of
# locust/run.sh and soak.json. Not part of CI: it takes DURATION.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:?usage: benchmarks/soak/run.sh MODEL STORE [USERS] [DURATION] [OUT]}
STORE=${2:?usage: benchmarks/soak/run.sh MODEL STORE [USERS] [DURATION] [OUT]}
USERS=${3:-32}
DURATION=${4:-10m}
OUT=${5:-var/soak}
INTERVAL=${INTERVAL:-5}
export PORT=${PORT:-8766}
mkdir -p "$OUT"

sample() {  # the RSS (MB) of every process of `clipsearch serve` on $PORT, summed
  local start=$SECONDS
  echo "time_s,rss_mb" > "$OUT/rss.csv"
  while true; do
    local total=0
    for pid in $(pgrep -f "clipsearch serve .*--port $PORT|gunicorn.*$PORT" || true); do
      local kb
      kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
      total=$((total + ${kb:-0}))
    done
    if [ "$total" -gt 0 ]; then
      echo "$((SECONDS - start)),$((total / 1024))" >> "$OUT/rss.csv"
    fi
    sleep "$INTERVAL"
  done
}
sample &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null || true' EXIT

locust/run.sh "$MODEL" "$STORE" "$USERS" "$DURATION" unique "$OUT/locust" > "$OUT/summary.txt"
kill $SAMPLER 2>/dev/null || true
.venv/bin/python benchmarks/soak/plot.py "$OUT/rss.csv" "$OUT/locust/summary.json" "$OUT"
