# Every target creates .venv first when it is missing, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck browser bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job: the HTTP API and dashboard on the embedded SQLite default (./rollout.db). It
# prints the dashboard's address; Ctrl-C stops it. ROLLOUT_TOKEN, --peers etc. as in the README.
run: $(STAMP)
	$(BIN)/rollout serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

# The dashboard's browser tests drive Debian's Chromium: Playwright cannot download its own
# browser on these machines. Installed when missing and we are root; otherwise those tests skip
# (and fail under CI=true).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "make: the browser tests need Chromium (apt-get install chromium)" >&2; fi; }

test: lint typecheck browser
	$(BIN)/pytest

# The HTTP section loads the server with wrk (Debian's package), installed here when missing.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "make: the HTTP benchmark needs wrk (apt-get install wrk)" >&2; fi; }
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
