# Two commands: `make quickstart` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
QUICK ?=

.PHONY: setup test quickstart lint clean postgres-deps

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23" "setuptools>=64"
	$(PY) -m pip install -q --no-build-isolation -e ".[dev,onnx]"
	@touch $(STAMP)

setup: $(STAMP)

test: setup
	$(PY) -m pytest -q tests

quickstart: setup
	$(PY) scripts/quickstart.py $(if $(QUICK),--quick,)

# What tests/hpsearch/test_postgres.py needs: PostgreSQL's server binaries (Debian package postgresql) and the
# psycopg2 driver (the `postgres` extra). Each is installed only when missing; a failed install is reported, not
# fatal (the test then skips, or fails under CI, naming what is missing).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

postgres-deps: setup
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  echo "postgres-deps: installing PostgreSQL (apt-get install -y postgresql)"; \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; } \
	  || echo "postgres-deps: apt-get could not install postgresql (no root or no network?)"; \
	else echo "postgres-deps: no apt-get here; install PostgreSQL's server (initdb, pg_ctl) by hand"; fi
	@$(PY) -c "import psycopg2" 2>/dev/null || $(PY) -m pip install -q "psycopg2-binary>=2.9" \
	  || echo "postgres-deps: pip could not install psycopg2-binary"

lint: setup
	$(PY) -m ruff check siamkpn toolkit tools scripts tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
