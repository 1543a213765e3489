# Everything runs from a local virtual environment; `make demo` and `make test` create it on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch is pinned and installed first: an unpinned torch would pull a multi-GB CUDA build
TORCH  ?= torch==2.13.0
export OMP_NUM_THREADS ?= 2

.PHONY: install provision demo test lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev,tune,subword,serve,reference]"
	touch $@

install: $(BIN)/.installed

# Train the Zaremba small PTB LSTM for 4 minutes on the CPU, print perplexity, then write a paragraph.
demo: install
	rm -rf runs/demo
	$(BIN)/rnnkit train ptb-small --max-time 240 --out runs/demo
	@echo "--- sample (temperature 0.8) ---"
	$(BIN)/rnnkit generate runs/demo --prompt "the company said" --words 80 --temperature 0.8 --top-p 0.95 --seed 1

# PostgreSQL and chromium for two tests (idempotent; skipped where it cannot install: those tests then skip)
provision:
	bash scripts/provision.sh

# Real data sets: RNNKIT_DATA_MIRROR=DIR (laid out like ../shared/data); without it the in-repo samples stand in
# Two test processes (pytest-xdist), one thread each, a test file per process at a time: the suite is mostly
# small models and subprocess start-ups, which one thread each keeps two cores busy with (~1.6x on 2 cores)
TEST_PROCS ?= 2
test: lint provision
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_PROCS) --dist loadfile

# ruff's checks and its formatter over every Python file, then the layer contract: part of `make test`
lint: install
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/lint-imports --no-cache  # the layer contract in pyproject.toml (tests/test_layers.py runs it in `make test`)

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
