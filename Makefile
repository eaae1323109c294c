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
# Extra pip arguments for torch. Where pip's default index would pick the CUDA build
# (plain Linux x86-64), use: make demo TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=

.PHONY: install demo data model index serve test lint typecheck pytest clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the CPU wheel first, so nothing pulls the CUDA build of torch
	$(BIN)/python -m pip install -q $(TORCH_PIP_ARGS) torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

data: install $(DATA)/synth_meta.jsonl
$(DATA)/synth_meta.jsonl:
	$(CLI) synth --out $(DATA)

model: data $(MODEL)/config.json
$(MODEL)/config.json: $(DATA)/synth_meta.jsonl
	$(CLI) train --data $(DATA) --out $(MODEL)

index: model
	$(CLI) ingest $(DATA) --model $(MODEL) --store $(STORE)

serve: install
	$(CLI) serve --model $(MODEL) --store $(STORE) --port $(PORT)

demo: index serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
