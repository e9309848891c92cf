# Everything Hotline needs is installed here, into .venv, from PyPI; the console's
# browser tests also need Debian's chromium, which `make chromium` installs (apt).
# `make demo` and `make test` work on a fresh machine with only Python 3.11 and make.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup chromium demo test check lint typecheck layers unit bench bench-peers fuzz soak messages screenshot clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian's Chromium for the console's browser tests (Playwright's own download does not work here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian's chromium for the browser tests"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(VENV)/bin/hotline demo

lint: setup
	$(VENV)/bin/ruff check src tests $(wildcard bench) tools docs
	$(VENV)/bin/ruff format --check src tests $(wildcard bench) tools docs

typecheck: setup
	$(VENV)/bin/mypy

# The import rule of docs/design.md: lower layers never import higher ones; the core does no I/O.
layers: setup
	$(VENV)/bin/lint-imports --no-cache

check: lint typecheck layers

# The whole suite: lint, types, layers, then every test (unit, property, end-to-end).
test: check chromium
	$(VENV)/bin/pytest -n 2 --dist loadgroup

unit: setup
	$(VENV)/bin/pytest -n 2 -m "not e2e"

# Benchmarks (not tests): latency, throughput, failover; writes the figures into README.md.
bench: setup
	$(PY) bench/report.py

# Hotline beside a Matrix homeserver (Synapse from PyPI, in its own virtualenv, SQLite, loopback,
# federation off), measured in the same run; writes the table into README.md.
PEERS_VENV ?= .venv-peers
$(PEERS_VENV)/.installed:
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet matrix-synapse
	touch $@

bench-peers: setup $(PEERS_VENV)/.installed
	$(PY) bench/peers.py --synapse-python $(PEERS_VENV)/bin/python --write

# The standing fuzz and crash campaign (not tests; tests/test_campaign.py runs a short version of each).
# FUZZ_COUNT inputs per decoder under atheris; SOAK_CYCLES SIGKILL cycles of SOAK_MESSAGES each way.
FUZZ_COUNT ?= 143000
SOAK_CYCLES ?= 100
SOAK_MESSAGES ?= 1000
fuzz: setup
	$(PY) tools/fuzz.py --target all --count $(FUZZ_COUNT) --jobs 2

soak: setup
	$(PY) tools/soak.py --cycles $(SOAK_CYCLES) --messages $(SOAK_MESSAGES) --cut-every 10

# docs/console.png: the console with a flash alert, taken in Debian's Chromium from `hotline demo`.
screenshot: setup
	$(PY) docs/screenshot.py

# Re-extract the console's strings and merge them into every catalogue (then translate the new ones).
messages: setup
	$(VENV)/bin/pybabel extract -F babel.cfg -o src/hotline/web/locale/messages.pot --no-location --omit-header --sort-output .
	$(VENV)/bin/pybabel update -i src/hotline/web/locale/messages.pot -d src/hotline/web/locale --no-wrap --ignore-pot-creation-date

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
