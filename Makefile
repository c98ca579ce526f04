# The two commands a newcomer needs: `make demo` and `make test`.
# Each target creates .venv when it is missing and installs what it needs into it.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test bench fuzz lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# One stamp per extra: editing pyproject.toml reinstalls.
$(VENV)/.dev: pyproject.toml | $(PY)
	$(PIP) install -e ".[dev]"
	@touch $@

$(VENV)/.demo: pyproject.toml | $(PY)
	$(PIP) install -e ".[demo,viz,io]"
	@touch $@

demo: $(VENV)/.demo
	$(VENV)/bin/tracegrad demo

test: $(VENV)/.dev
	$(PY) -m pytest -q -n 2

# The dev extra includes micrograd, the scalar benchmark's peer; PyTorch is used when present.
bench: $(VENV)/.dev
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m bench

# Random programs compiled against eager and eager against PyTorch, a minute per campaign
# (`python -m fuzz --help`; each failure prints the command that reruns it).
fuzz: $(VENV)/.dev
	$(PY) -m fuzz --seconds 60

lint: $(VENV)/.dev
	$(PY) -m ruff check tracegrad tests bench examples fuzz

clean:
	rm -rf $(VENV) tracegrad-demo .pytest_cache .hypothesis
