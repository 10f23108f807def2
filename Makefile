# Two commands for a newcomer: `make demo` and `make test` (each creates .venv when needed).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Two pytest workers: most of the suite's time is XLA compiling, which runs on one core.
PYTEST_WORKERS ?= 2

.PHONY: install test test-all demo clean

DEMO_WORKDIR ?= workdir/demo

install: $(STAMP)

# Reinstall when the dependency list changes.
$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all]"
	touch $(STAMP)

# pytest exits 5 when it collected no test: a run that tests nothing fails.
test: $(STAMP)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS) tests

# Everything, including the tests marked slow.
test-all: $(STAMP)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal -m "slow or not slow" $(PYTEST_ARGS) tests

# The main job on the builtin images: train configs/demo.py on the CPU, then print the per-task
# PSNR table and write $(DEMO_WORKDIR)/demo_grid.png. Reruns resume from the last checkpoint.
demo: $(STAMP)
	$(PY) -m genlv_jax.demo --config configs/demo.py --workdir $(DEMO_WORKDIR)

clean:
	rm -rf $(VENV) *.egg-info
