# gid: two commands do all set-up. `make demo` runs the main job end to end, `make test` the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
export OMP_NUM_THREADS ?= 1

.PHONY: install test demo bench clean

install: $(STAMP)

# Idempotent: reinstalls only when pyproject.toml changes. torch 2.13.0 first, so that the
# project's `torch>=` range is met by the CPU wheel instead of pulling a CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

demo: install
	$(VENV)/bin/gid demo

bench: install
	$(PY) benchmarks/spectral.py

clean:
	rm -rf $(VENV) results
