#!/usr/bin/env bash
# OpenAI CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz, 1.3 MB) from the
# open_clip_torch wheel on PyPI (no weights, nothing installed), for
# `clipsearch model init --vocab`: a random CLIP then tokenizes exactly like the real one.
#
#   benchmarks/fetch_clip_vocab.sh [OUT=var/cache/bpe_simple_vocab_16e6.txt.gz]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-var/cache/bpe_simple_vocab_16e6.txt.gz}
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
if [ -s "$OUT" ]; then echo "$OUT"; exit 0; fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$PYTHON" -m pip download -q --no-deps --dest "$TMP" open_clip_torch==3.3.0 >/dev/null
mkdir -p "$(dirname "$OUT")"
"$PYTHON" - "$TMP" "$OUT" <<'PY'
import sys, zipfile
from pathlib import Path
wheel = next(Path(sys.argv[1]).glob("open_clip_torch-*.whl"))
with zipfile.ZipFile(wheel) as z:
    Path(sys.argv[2]).write_bytes(z.read("open_clip/bpe_simple_vocab_16e6.txt.gz"))
PY
echo "$OUT"
