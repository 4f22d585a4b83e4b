# gid: two commands do all set-up. `make demo` runs the main job end to end, `make test` the tests.
PYTHON ?= python3
VENV ?= .venv
EXTRAS ?= dev
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
export OMP_NUM_THREADS ?= 1

.PHONY: install browser test demo bench bench-gpu clean

install: $(STAMP)

# Idempotent: reinstalls only when pyproject.toml changes. torch 2.13.0 first, so that the
# project's `torch>=` range is met by the CPU wheel instead of pulling a CUDA build.
# EXTRAS=gpu,dev adds CuPy (infra/Dockerfile); VENV may name an existing Python prefix.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

# The browser tests (tests/test_serve_browser.py) drive Debian's chromium through Playwright, which
# cannot download a browser of its own here: apt-get installs it, only when it is missing.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	test -x /usr/bin/chromium || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

test: install browser
	$(PY) -m pytest -q

demo: install
	$(VENV)/bin/gid demo

bench: install
	$(PY) benchmarks/spectral.py

# GPU readiness: kernel checks, softsplat/training/render figures, one JSON (results/bench_gpu.json).
# Without CUDA it says so and exits 0. FLOW_NET=net.pt adds `gid preprocess` with that flow net.
bench-gpu: install
	$(PY) benchmarks/gpu.py $(if $(FLOW_NET),--flow-net $(FLOW_NET))

clean:
	rm -rf $(VENV) results
