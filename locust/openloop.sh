#!/usr/bin/env bash
# Sustained requests/s at p95 <= 100 ms under a fixed arrival rate (open loop), for
# clipsearch and the seed-style baseline, one after the other in one invocation, with the
# same model directory and the same unique queries (locust/openloop.py says how).
#
#   locust/openloop.sh MODEL STORE [OUT=var/load/openloop] [P95_MS=100] [STEP_S=20]
#
# OUT/clipsearch.json and OUT/baseline.json hold every rate tried; OUT/openloop.json the
# two sustained rates side by side with their ratio and the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: locust/openloop.sh MODEL STORE [OUT] [P95_MS] [STEP_S]}
STORE=${2:?usage: locust/openloop.sh MODEL STORE [OUT] [P95_MS] [STEP_S]}
OUT=${3:-var/load/openloop}
P95_MS=${4:-100}
STEP_S=${5:-20}
source locust/server.sh
ensure_locust_venv
ensure_baseline_deps
mkdir -p "$OUT/clipsearch" "$OUT/baseline"

measure() {  # NAME [START_RATE]: the server is already up
  locust/.venv/bin/python locust/openloop.py --host "$HOST" --system "$1" \
    --p95-ms "$P95_MS" --step-s "$STEP_S" --start "$2" --out "$OUT/$1.json"
}
( start_server "$MODEL" "$STORE" "$OUT/clipsearch" && measure clipsearch 20 )
( SERVER_CMD="$BASELINE_CMD" \
    start_server "$MODEL" "$STORE" "$OUT/baseline" && measure baseline 2 )
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
from clipsearch.bench.common import cpu_line
from clipsearch.cpu import cpu_info
out = Path(sys.argv[1])
runs = {name: json.loads((out / f"{name}.json").read_text()) for name in ("clipsearch", "baseline")}
a, b = runs["clipsearch"]["sustained_rps"], runs["baseline"]["sustained_rps"]
summary = {"clipsearch_rps": a, "baseline_rps": b, "ratio": round(a / b, 2) if a and b else None,
           "criterion": runs["clipsearch"]["criterion"], "cpu": cpu_info(), "runs": runs}
(out / "openloop.json").write_text(json.dumps(summary, indent=2) + "\n")
print(cpu_line())
print(f"sustained at {runs['clipsearch']['criterion']}: clipsearch {a} requests/s, "
      f"baseline {b} requests/s, ratio {summary['ratio']}")
PY
