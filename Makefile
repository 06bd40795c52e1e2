# Two commands: `make run` serves the API, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench load fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/numbra serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/pytest -q

# The loop while editing: every test not marked slow (pyproject.toml says which are).
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .

bench: $(STAMP)
	$(BIN)/python -m tests.perf.run $(BENCH_ARGS)

load: $(STAMP)
	$(BIN)/python -m tests.load.run $(LOAD_ARGS)

# The fuzz tests of `make test` with many more examples (NUMBRA_FUZZ_EXAMPLES per operation).
fuzz: $(STAMP)
	NUMBRA_FUZZ_EXAMPLES=$${NUMBRA_FUZZ_EXAMPLES:-200} $(BIN)/pytest -q tests/api/test_fuzz.py

clean:
	rm -rf $(VENV) *.egg-info numbra.db numbra.db-wal numbra.db-shm
