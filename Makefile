# Two commands: `make run` serves the API, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium

.PHONY: run test test-fast chromium lint bench load fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# `make run PORT=8080 HOST=0.0.0.0`; unset, NUMBRA_PORT / NUMBRA_HOST or 8000 / 127.0.0.1.
run: $(STAMP)
	$(BIN)/numbra serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

# Python may keep compiled bytecode (__pycache__, ignored by git) even where the
# environment says not to: each pytest worker imports the whole app, ~4 s uncompiled.
test test-fast: export PYTHONDONTWRITEBYTECODE =

test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/pytest -q -n 2 --ignore=tests/system
	$(BIN)/pytest -q tests/system

# The loop while editing: every test not marked slow (pyproject.toml says which are), on
# both cores. `make test` runs the suite on both cores too, but for tests/system (real
# processes, faults, servers stopped and started), which runs alone after it.
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow" -n 2

# The GraphiQL browser test drives Debian's Chromium. As root with apt, install it when missing;
# otherwise the test says why it cannot run (and fails under CI=true).
chromium:
	@if [ ! -x $(CHROMIUM) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update && apt-get install -y chromium; \
	fi

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
