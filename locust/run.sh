#!/usr/bin/env bash
# Load-test clipsearch: start `clipsearch serve`, run locust headless, write the results.
#
#   locust/run.sh MODEL STORE [USERS=32] [DURATION=60s] [MIX=unique] [OUT=var/load/<mix>-<users>u]
#
# OUT gets stats.csv (+ history and failures), report.html, health.json (the server's
# /api/health after the run: the query-cache hit rate) and summary.json (RPS, p50/p95/p99,
# failures). Locust runs from its own venv (locust/.venv, made on first use).
# SERVER_CMD replaces `clipsearch serve` with another server listening on $PORT (the
# seed-style baseline: see locust/compare.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: locust/run.sh MODEL STORE [USERS] [DURATION] [MIX] [OUT]}
STORE=${2:?usage: locust/run.sh MODEL STORE [USERS] [DURATION] [MIX] [OUT]}
USERS=${3:-32}
DURATION=${4:-60s}
MIX=${5:-unique}
OUT=${6:-var/load/${MIX}-${USERS}u}
source locust/server.sh
ensure_locust_venv
mkdir -p "$OUT"
start_server "$MODEL" "$STORE" "$OUT"

LOCUST_MIX="$MIX" locust/.venv/bin/locust -f locust/locustfile.py --headless \
  --users "$USERS" --spawn-rate "$USERS" --run-time "$DURATION" --host "$HOST" \
  --csv "$OUT/stats" --html "$OUT/report.html" --only-summary > "$OUT/locust.log" 2>&1 || true
curl -sf "$HOST/api/health" > "$OUT/health.json" || true
locust/.venv/bin/python locust/summarize.py "$OUT/stats_stats.csv" "$OUT/health.json" > "$OUT/summary.json"
# the machine: a figure from one CPU kind does not hold on another
.venv/bin/python - "$OUT/summary.json" <<'PY'
import json, sys
from pathlib import Path
from clipsearch.bench.common import cpu_line
from clipsearch.cpu import cpu_info
path = Path(sys.argv[1])
summary = json.loads(path.read_text())
summary["cpu"] = cpu_info()
path.write_text(json.dumps(summary, indent=2) + "\n")
print(cpu_line(), file=sys.stderr)
PY
cat "$OUT/summary.json"
