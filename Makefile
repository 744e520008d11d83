# Two commands: `make demo` and `make test`. Both create .venv and install the package into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: install kernels demo test lint bench bench-fullscale clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/python -m genotex_dask.kernels
	touch $(STAMP)

install: $(STAMP)

# Compile the numba kernels into the environment's cache ahead of any run (install does it once; rerun after
# editing a kernel or to fill another NUMBA_CACHE_DIR), so no worker compiles in the middle of a run.
kernels: $(STAMP)
	$(BIN)/python -m genotex_dask.kernels

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

# The whole pipeline on stratified 1/2 and 1/4 samples of the GenoTEX-scale corpus (the 1/4 run checks the
# projection on the 1/2 one), and a 1/8 sample on 1 and 2 workers, twice (corpora under benchmarks/results/tmp,
# ~19 GB; each run's store and outputs are deleted once measured, so the largest run needs ~32 GB more).
bench-fullscale: $(STAMP)
	$(BIN)/python -m benchmarks.bench_fullscale --fraction 1/2 --check 1/4 --scaling 1/8 --scaling-runs 2 \
		--drop-outputs

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
