# One entry point per job. Each target bootstraps .venv from scratch on a fresh machine
# (Python 3.11+ and pip only), installing the pinned versions from constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SYSTEM_TOOLS := /usr/bin/prometheus /usr/bin/prometheus-pushgateway /usr/bin/promtool

.PHONY: venv demo test lint unit system-deps bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit("syncd needs Python 3.11+") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# The demo: every simulator in process, a realistic estate, plan/sync/sync/change/sync.
demo: venv
	$(BIN)/syncd demo

# Real Prometheus, Pushgateway and promtool binaries for the metrics tests (Debian packages).
system-deps:
	@missing=0; for t in $(SYSTEM_TOOLS); do [ -x $$t ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-pushgateway >/dev/null; \
	  else \
	    echo "install the Debian packages prometheus and prometheus-pushgateway (needs root)"; exit 1; \
	  fi; \
	fi

lint: venv
	$(BIN)/ruff format --no-cache --check syncd tests bench
	$(BIN)/ruff check --no-cache syncd tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: venv system-deps lint
	$(BIN)/pytest -n 2 --cov=syncd --cov-report=term:skip-covered --cov-fail-under=90

unit: venv
	$(BIN)/pytest tests/unit -q

bench: venv
	$(BIN)/python -m bench
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.overhead

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
