# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv if it is missing and install the project into it.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CLI    := $(BIN)/clipsearch

DATA   ?= var/data/synthucf
MODEL  ?= var/models/demo
STORE  ?= var/store
PORT   ?= 8000
# The browser tests (tests/web/test_browser.py) drive this Chromium; `make browser-deps`
# installs Debian's package when it is missing (as root with apt-get).
CHROMIUM ?= $(or $(CLIPSEARCH_CHROMIUM),/usr/bin/chromium)
# Extra pip arguments for torch. Where pip's default index would pick the CUDA build
# (plain Linux x86-64), use: make demo TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=

.PHONY: install install-dev browser-deps compose-deps prometheus-deps podman-deps container-test demo data model index serve test test-fast lint typecheck pytest pytest-fast clean

# bytecode on every core (pip compiles on one); like pip, files that do not compile are left
COMPILE := $(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null || true

# What the demo runs: the serve and train extras (train brings ingest's torch and transformers).
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the CPU wheel first, so nothing pulls the CUDA build of torch
	$(BIN)/python -m pip install -q --no-compile $(TORCH_PIP_ARGS) torch==2.13.0
	$(BIN)/python -m pip install -q --no-compile -e '.[serve,train]'
	$(COMPILE)
	touch $@

# The test tools, dvc and the benchmarks' extras on top (`.[dev]`): what `make test` runs with.
install-dev: $(VENV)/.installed-dev

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install -q --no-compile -e '.[dev]'
	$(COMPILE)
	touch $@

# Chromium for the browser tests: installed by apt-get when missing and we are root;
# otherwise a note, and those tests skip (under CI, with $$CI set, they fail instead).
APT_CHROMIUM := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	chromium chromium-driver >/dev/null
browser-deps:
	@if [ -x "$(CHROMIUM)" ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "browser-deps: installing Chromium (apt-get install chromium chromium-driver)"; \
		$(APT_CHROMIUM) 2>/dev/null || { apt-get update -qq >/dev/null && $(APT_CHROMIUM); } \
			|| echo "browser-deps: note: apt-get could not install Chromium; the browser tests will skip"; \
	else \
		echo "browser-deps: note: no Chromium at $(CHROMIUM) (not root with apt-get); the browser tests will skip"; \
	fi

# Debian's docker-compose, for tests/deploy/test_compose.py (`docker-compose config -q`; no engine
# needed): installed by apt-get when missing and we are root, else those tests skip.
compose-deps:
	@if command -v docker-compose >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "compose-deps: installing docker-compose (apt-get install docker-compose)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1 \
			|| { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; } \
			|| echo "compose-deps: note: apt-get could not install docker-compose; the compose tests will skip"; \
	else \
		echo "compose-deps: note: no docker-compose (not root with apt-get); the compose tests will skip"; \
	fi

# Debian's Prometheus (2.42: the server and promtool), for tests/deploy/test_monitoring.py:
# installed by apt-get when missing and we are root, else those tests skip (fail under CI).
prometheus-deps:
	@if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "prometheus-deps: installing prometheus (apt-get install prometheus)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
			|| { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } \
			|| echo "prometheus-deps: note: apt-get could not install prometheus; the monitoring tests will skip"; \
	else \
		echo "prometheus-deps: note: no prometheus (not root with apt-get); the monitoring tests will skip"; \
	fi

# Debian's podman, runc and debootstrap, for `make container-test`: installed by apt-get when
# missing and we are root; else a note, and container-test fails saying what is missing.
podman-deps:
	@if command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "podman-deps: installing podman runc debootstrap (apt-get)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc debootstrap >/dev/null 2>&1 \
			|| { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc debootstrap >/dev/null; } \
			|| echo "podman-deps: note: apt-get could not install podman"; \
	else \
		echo "podman-deps: note: no podman (not root with apt-get)"; \
	fi

# The Dockerfile's two images built and run with podman (deploy/podman/container-test.sh): the
# ingest image embeds a small folder into a volume, the web app image serves it (non-root,
# read-only root filesystem) and answers health, a search, a poster and /metrics.
container-test: install podman-deps
	TORCH_PIP_ARGS="$(TORCH_PIP_ARGS)" deploy/podman/container-test.sh

data: install $(DATA)/synth_meta.jsonl
$(DATA)/synth_meta.jsonl:
	$(CLI) synth --out $(DATA)

model: data $(MODEL)/calibration.json $(MODEL)/onnx/manifest.json
$(MODEL)/config.json: $(DATA)/synth_meta.jsonl
	$(CLI) train --data $(DATA) --out $(MODEL)
# the model's "no good match" threshold, from its scores on the validation groups (never the test list)
$(MODEL)/calibration.json: $(MODEL)/config.json
	$(CLI) calibrate --data $(DATA) --model $(MODEL)
# its int8 ONNX towers and tokenizer, for serving without torch (the serve extra and image)
$(MODEL)/onnx/manifest.json: $(MODEL)/config.json
	$(CLI) export $(MODEL)

# the clips, then the moments set (videos of several actions, two of them 60 s long)
index: model
	$(CLI) ingest $(DATA) --model $(MODEL) --store $(STORE)
	$(CLI) ingest $(DATA)/moments --model $(MODEL) --store $(STORE)

serve: install
	$(CLI) serve --model $(MODEL) --store $(STORE) --port $(PORT)

demo: index serve

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-dev
	$(BIN)/mypy

# The full check (the README's): every test but the GPU ones, the slow ones included.
pytest: install-dev browser-deps compose-deps prometheus-deps
	$(BIN)/pytest -m "not gpu"

test: lint typecheck pytest

# The edit loop: the same without the tests marked slow (a crash loop, `dvc repro`, ...).
pytest-fast: install-dev
	$(BIN)/pytest

test-fast: lint typecheck pytest-fast

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
