# Two commands: `make quickstart` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
QUICK ?=

.PHONY: setup test quickstart lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23" "setuptools>=64"
	$(PY) -m pip install -q --no-build-isolation -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

test: setup
	$(PY) -m pytest -q tests

quickstart: setup
	$(PY) scripts/quickstart.py $(if $(QUICK),--quick,)

lint: setup
	$(PY) -m ruff check siamkpn toolkit hpsearch tools scripts tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
