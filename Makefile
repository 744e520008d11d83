# Two commands: `make demo` and `make test`. Both create .venv and install the package into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded default (a LocalCluster): a small synthetic corpus plus the real GSE781 cohort.
demo: $(STAMP)
	$(BIN)/genotex-dask demo --out $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/ruff check genotex_dask tests benchmarks
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check genotex_dask tests benchmarks

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
