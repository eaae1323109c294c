# Sourced by locust/run.sh and locust/openloop.sh: start the system under test on $PORT
# and wait until it answers; it is stopped when the sourcing script exits.
#
#   start_server MODEL STORE OUT
#
# SERVER_CMD replaces `clipsearch serve` with another server listening on $PORT (the
# seed-style baseline: see locust/compare.sh). Its log goes to OUT/server.log.
PORT=${PORT:-8765}
HOST="http://127.0.0.1:${PORT}"

start_server() {
  local model=$1 store=$2 out=$3
  if [ -n "${SERVER_CMD:-}" ]; then
    CLIPSEARCH_MODEL="$model" bash -c "exec $SERVER_CMD" > "$out/server.log" 2>&1 &
  else
    .venv/bin/clipsearch serve --model "$model" --store "$store" --port "$PORT" > "$out/server.log" 2>&1 &
  fi
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
  for _ in $(seq 1 120); do
    curl -sf "$HOST/api/health" > /dev/null && return 0
    kill -0 $SERVER 2>/dev/null || { echo "the server exited; see $out/server.log" >&2; exit 1; }
    sleep 1
  done
  curl -sf "$HOST/api/health" > /dev/null || { echo "the server never answered" >&2; exit 1; }
}

# Locust (and the open-loop generator, which uses its gevent) run from their own venv.
ensure_locust_venv() {
  if [ ! -x locust/.venv/bin/locust ]; then
    "${PYTHON:-python3}" -m venv locust/.venv
    locust/.venv/bin/pip install -q -r locust/requirements.txt
  fi
}

# The seed-style baseline (benchmarks/baseline/app.py) as a SERVER_CMD, with its packages
# installed into the project's venv on first use.
BASELINE_CMD=".venv/bin/uvicorn benchmarks.baseline.app:app --workers 1 --port $PORT"
ensure_baseline_deps() {
  .venv/bin/python -c "import fastapi, uvicorn" 2>/dev/null \
    || .venv/bin/pip install -q -r benchmarks/baseline/requirements.txt
}
