#!/usr/bin/env bash
# Every serving and ingest figure of benchmarks/RESULTS.md, in one run, on this machine.
#
#   benchmarks/serving/run.sh [OUT=benchmarks/serving] [DURATION=30s] [USERS="1 8 32 64"]
#
# 1. a randomly initialised ViT-B/32 with CLIP's own tokenizer (`clipsearch model init
#    --vocab`; the vocabulary file comes from PyPI: benchmarks/fetch_clip_vocab.sh);
# 2. a store of UCF101's 13,320 clips of synthetic vectors (`clipsearch load-store`);
# 3. the text tower alone: one query and batches of 32, fp32 / bf16 / int8 (`bench-text`);
# 4. clipsearch and the seed-style baseline under the same unique-query load at each
#    user count (locust/compare.sh), then clipsearch under the Zipf mix at 32 users;
# 5. both under a fixed arrival rate: the highest rate at p95 <= 100 ms (locust/openloop.sh);
# 6. the plot (benchmarks/serving/plot.py).
# Ingest has its own: benchmarks/ingest/run.sh.
# Models, stores and raw locust output go to var/bench/; the JSON summaries and PNGs to OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-benchmarks/serving}
DURATION=${2:-30s}
USERS=${3:-1 8 32 64}
WORK=var/bench
MODEL=$WORK/vit-b-32
STORE=$WORK/store-13320
CLI=.venv/bin/clipsearch
mkdir -p "$OUT" "$WORK"

VOCAB=$(benchmarks/fetch_clip_vocab.sh)
[ -f "$MODEL/config.json" ] || $CLI model init --arch vit-b-32 --out "$MODEL" --vocab "$VOCAB"
[ -d "$STORE" ] || $CLI load-store --store "$STORE" --model "$MODEL"
locust/.venv/bin/python locust/queries.py 4096 > "$WORK/queries.txt" 2>/dev/null \
  || python3 locust/queries.py 4096 > "$WORK/queries.txt"
$CLI bench-text --model "$MODEL" --texts "$WORK/queries.txt" --json "$OUT/text.json"

for u in $USERS; do
  locust/compare.sh "$MODEL" "$STORE" "$u" "$DURATION" unique "$WORK/load/unique-${u}u"
  cp "$WORK/load/unique-${u}u/compare.json" "$OUT/unique-${u}u.json"
done
locust/run.sh "$MODEL" "$STORE" 32 "$DURATION" zipf "$WORK/load/zipf-32u" > /dev/null
cp "$WORK/load/zipf-32u/summary.json" "$OUT/zipf-32u.json"
locust/openloop.sh "$MODEL" "$STORE" "$WORK/load/openloop"
cp "$WORK/load/openloop/openloop.json" "$OUT/openloop.json"

.venv/bin/python benchmarks/serving/plot.py "$OUT"
