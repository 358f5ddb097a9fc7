# Every target creates its virtual environment first when it is missing, so a fresh clone needs
# only Python 3.11+. What gets installed comes from the committed locks in requirements/ (every
# package, direct and transitive, pinned with its hashes): a fresh clone installs exactly what was
# tested, today and in a month. `make lock` refreshes them on purpose; `make test-latest` and
# `make test-lowest` try the newest and the lowest allowed versions, so drift is seen on purpose.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# LOCK names the lock a venv installs from; empty means "the newest of every range" (test-latest).
LOCK ?= requirements/dev.txt
STAMP := $(VENV)/.installed-$(notdir $(or $(LOCK),latest))
SPEEDUPS := $(VENV)/.speedups-built
UV_COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --universal --python-version 3.11

.PHONY: run test lint typecheck pytest test-pythons pytest-check browser promtool shells bench bench-quick lock \
  test-latest test-lowest wheels clean

# --no-deps: the lock already lists every package; --no-build-isolation: the project itself is
# built with the locked setuptools rather than whatever is newest on the index that day.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
ifeq ($(LOCK),)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]'
else
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
endif
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# The main job: the HTTP API and dashboard on the embedded SQLite default (./rollout.db). It
# prints the dashboard's address; Ctrl-C stops it. ROLLOUT_TOKEN, --peers etc. as in the README.
run: $(SPEEDUPS)
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

# /metrics is linted with Prometheus' promtool (Debian's prometheus package; the service is not
# started). Installed like Chromium: when missing and we are root; else that test skips.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else echo "make: the metrics lint needs promtool (apt-get install prometheus)" >&2; fi; }

# Shell completion is tested in real zsh and fish (bash is always there). Installed like Chromium.
shells:
	@{ command -v zsh && command -v fish; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends zsh fish >/dev/null; \
	  else echo "make: the completion tests need zsh and fish (apt-get install zsh fish)" >&2; fi; }

# The C accelerator of the check (setup.py, docs/accelerator.md), compiled in place by the editable
# install, and again whenever its source changes.
$(SPEEDUPS): $(STAMP) setup.py src/rollout/_core/_speedups.c
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Every test, with coverage of src/rollout; the floor (fail_under in pyproject.toml) may only rise.
# The tests of the check run twice: first with the pure-Python check (ROLLOUT_PURE_PYTHON=1: the
# fallback wherever the C accelerator is not built), then everything with the accelerator. (The
# provider's C resolution is installed on its class at import: its comparison with the Python
# method needs the accelerator in the process, so it runs in the second run only.)
PURE_TESTS ?= tests/core tests/client tests/openfeature tests/test_active_doc.py \
  tests/admin/test_check_differential.py
pytest: $(SPEEDUPS) browser promtool shells
	ROLLOUT_PURE_PYTHON=1 $(BIN)/pytest --cov=rollout --cov-report= --cov-fail-under=0 \
	  --ignore=tests/openfeature/test_speedups.py $(PURE_TESTS) $(PYTEST_ARGS)
	$(BIN)/pytest --cov=rollout --cov-append --cov-report=term:skip-covered $(PYTEST_ARGS)

# test-pythons runs after the rest, even under make -j: both build in the same source tree.
test: lint typecheck pytest
	$(MAKE) --no-print-directory test-pythons

# The C accelerator reads CPython's internals, which change between versions (its PY_VERSION_HEX
# branches): the tests of the check run again, pure Python and then with the accelerator, on each
# other CPython 3.12 or 3.13 this machine has (python3.X on PATH, else pyenv's newest release of
# it), each in a venv of its own ($(VENV)-3.X: .venv-3.12, .venv-latest-3.12) built from the same
# lock. Only one that can make a venv and build C against its headers is taken, and never the
# version of $(PYTHON); none found: said, and nothing more runs.
PYENV_ROOT ?= $(HOME)/.pyenv
USABLE_PYTHON := import ensurepip, os, sys, sysconfig; \
  sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
OTHER_PYTHONS ?= $(shell main=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
  for v in 3.12 3.13; do [ "$$v" = "$$main" ] && continue; \
  for p in $$(command -v python$$v) $$(ls -d $(PYENV_ROOT)/versions/$$v.*/bin/python 2>/dev/null \
    | grep -E '/[0-9]+\.[0-9]+\.[0-9]+/bin/python$$' | sort -V | tail -n 1); do \
    $$p -c '$(USABLE_PYTHON)' 2>/dev/null && { echo $$p; break; }; done; done)
test-pythons:
	@test -n "$(OTHER_PYTHONS)" || echo "make: no other CPython 3.12 or 3.13 here: the accelerator was tested on $$($(PYTHON) -V) only"
	@set -e; for python in $(OTHER_PYTHONS); do \
	  version=$$($$python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  echo "make: the check's tests on $$($$python -V) ($(VENV)-$$version)"; \
	  built=$$($(VENV)-$$version/bin/python -VV 2>/dev/null || true); \
	  if [ -n "$$built" ] && [ "$$built" != "$$($$python -VV)" ]; then \
	    echo "make: $(VENV)-$$version was made by another $$version ($$built): made again"; \
	    rm -rf $(VENV)-$$version; fi; \
	  if [ -z "$$built" ]; then rm -rf $(VENV)-$$version; fi; \
	  $(MAKE) --no-print-directory pytest-check VENV=$(VENV)-$$version PYTHON=$$python; \
	done

# The tests of the check alone (PURE_TESTS), in $(VENV): pure Python, then with the accelerator.
pytest-check: $(SPEEDUPS)
	ROLLOUT_PURE_PYTHON=1 $(BIN)/pytest -q -p no:cacheprovider \
	  --ignore=tests/openfeature/test_speedups.py $(PURE_TESTS) $(PYTEST_ARGS)
	$(BIN)/pytest -q -p no:cacheprovider $(PURE_TESTS) $(PYTEST_ARGS)

# The newest version of everything the ranges in pyproject.toml allow, in a venv of its own.
# Failures here are drift to fix (then `make lock`), not a broken main.
test-latest:
	$(MAKE) test VENV=.venv-latest LOCK=

# The lowest versions pyproject.toml declares for the project's dependencies and extras (pinned
# by requirements/floors.py), with the test tools at whatever fits beside them. A library's users may hold any version in its ranges, so
# its floors must be true. Tests only: lint and type rules belong to the locked tool versions.
test-lowest:
	$(MAKE) pytest VENV=.venv-lowest LOCK=requirements/lowest.txt

# Resolve the locks again from pyproject.toml and requirements/*.in (newest allowed versions).
lock: $(STAMP)
	$(UV_COMPILE) --upgrade pyproject.toml requirements/tools.in --extra dev -o requirements/dev.txt
	$(UV_COMPILE) --upgrade pyproject.toml requirements/tools.in --extra dev --extra bench \
	  -c requirements/dev.txt -o requirements/bench.txt
	$(BIN)/python requirements/floors.py pyproject.toml > requirements/floors.txt
	$(UV_COMPILE) --upgrade pyproject.toml requirements/tools.in --extra dev \
	  -c requirements/floors.txt -o requirements/lowest.txt

# The HTTP section loads the server with wrk (Debian's package), installed here when missing.
bench:
	$(MAKE) bench-run VENV=.venv-bench LOCK=requirements/bench.txt

# Checks and writes only, fewer repeats, GrowthBook as the only peer: before/after a change.
bench-quick:
	$(MAKE) bench-run VENV=.venv-bench LOCK=requirements/bench.txt NEED_WRK= \
	  BENCH_ENV="BENCH_QUICK=1 BENCH_ONLY=checks,writes"

NEED_WRK = yes

.PHONY: bench-run
bench-run: $(SPEEDUPS)
	@[ -z "$(NEED_WRK)" ] || command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "make: the HTTP benchmark needs wrk (apt-get install wrk)" >&2; fi; }
	$(BENCH_ENV) $(BIN)/python -m bench

# What a release publishes, in dist/: the source distribution, the binary wheel built from it
# for this machine's platform and Python (with the C accelerator), and the pure-Python wheel
# that pip takes where no binary wheel matches (docs/accelerator.md).
wheels: $(STAMP)
	rm -rf dist && mkdir dist
	$(BIN)/python setup.py -q sdist -d dist
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --no-index -w dist dist/rollout-*.tar.gz
	ROLLOUT_BUILD_PURE=1 $(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --no-index -w dist dist/rollout-*.tar.gz
	ls dist

clean:
	rm -rf dist .venv .venv-* .mypy_cache .pytest_cache .ruff_cache .coverage
