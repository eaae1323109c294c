#!/usr/bin/env bash
# clipsearch and the seed-style baseline (benchmarks/baseline/app.py) under the same load,
# with the same model directory, one after the other in one invocation.
#
#   locust/compare.sh MODEL STORE [USERS=32] [DURATION=60s] [MIX=unique] [OUT=var/load/compare-<mix>-<users>u]
#
# OUT/clipsearch/ and OUT/baseline/ get run.sh's files; OUT/compare.json puts the two
# summaries side by side with the RPS ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: locust/compare.sh MODEL STORE [USERS] [DURATION] [MIX] [OUT]}
STORE=${2:?usage: locust/compare.sh MODEL STORE [USERS] [DURATION] [MIX] [OUT]}
USERS=${3:-32}
DURATION=${4:-60s}
MIX=${5:-unique}
OUT=${6:-var/load/compare-${MIX}-${USERS}u}

source locust/server.sh
ensure_baseline_deps
locust/run.sh "$MODEL" "$STORE" "$USERS" "$DURATION" "$MIX" "$OUT/clipsearch" > /dev/null
SERVER_CMD="$BASELINE_CMD" \
  locust/run.sh "$MODEL" "$STORE" "$USERS" "$DURATION" "$MIX" "$OUT/baseline" > /dev/null
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
from clipsearch.bench.common import cpu_line
out = Path(sys.argv[1])
runs = {name: json.loads((out / name / "summary.json").read_text()) for name in ("clipsearch", "baseline")}
a, b = runs["clipsearch"]["total"], runs["baseline"]["total"]
runs["rps_ratio"] = round(a["rps"] / b["rps"], 2) if b["rps"] else None
(out / "compare.json").write_text(json.dumps(runs, indent=2) + "\n")
print(cpu_line(runs["clipsearch"]["cpu"]))  # locust/run.sh put the machine in each summary
print(f"clipsearch {a['rps']:.1f} RPS (p95 {a['p95_ms']} ms, {a['failures']} failures); "
      f"baseline {b['rps']:.1f} RPS (p95 {b['p95_ms']} ms, {b['failures']} failures); "
      f"ratio {runs['rps_ratio']}")
PY
