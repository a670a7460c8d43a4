# `make run` and `make test` work on a fresh clone with only Python 3.11+ installed.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench install install-dev migrate lock lint typecheck format lint-baseline-drop clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed (python3 --version)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Installs come from the lock files in requirements/ (exact versions, every file checked against its
# sha256), then the project itself, editable and without dependencies; `pip check` fails when
# pyproject.toml asks for something the lock lacks (run `make lock`).
LOCKED_INSTALL = $(BIN)/pip install --quiet --require-hashes --no-deps -r
EDITABLE_INSTALL = $(BIN)/pip install --quiet --no-deps --no-build-isolation

$(VENV)/.installed: requirements/runtime.txt pyproject.toml | $(BIN)/python
	$(LOCKED_INSTALL) requirements/runtime.txt
	$(EDITABLE_INSTALL) -e .
	$(BIN)/pip check
	@touch $@

$(VENV)/.installed-dev: requirements/dev.txt pyproject.toml sdk/python/pyproject.toml | $(BIN)/python
	$(LOCKED_INSTALL) requirements/dev.txt
	$(EDITABLE_INSTALL) -e . -e sdk/python
	$(BIN)/pip check
	@touch $@ $(VENV)/.installed

## Re-resolve requirements/*.txt after a change to the dependencies in pyproject.toml: versions already
## locked stay unless pyproject.toml excludes them. `make lock UPGRADE=1` moves everything to the newest
## allowed versions; `make lock UPGRADE=strawberry-graphql` moves one package. Commit the result.
UV_COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --universal --python-version 3.11 \
	--custom-compile-command "make lock" $(if $(filter 1,$(UPGRADE)),--upgrade,$(if $(UPGRADE),--upgrade-package $(UPGRADE)))
lock: | $(BIN)/python
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet uv
	$(UV_COMPILE) pyproject.toml sdk/python/pyproject.toml requirements/build.in --extra dev -o requirements/dev.txt
	$(UV_COMPILE) pyproject.toml requirements/build.in -c requirements/dev.txt -o requirements/runtime.txt
	$(UV_COMPILE) pyproject.toml sdk/python/pyproject.toml requirements/build.in --extra dev --extra bench \
		-c requirements/dev.txt -o requirements/bench.txt

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/referral migrate

## Serve the API on 127.0.0.1:8000 against ./referral.db, with a demo merchant.
run: install
	$(BIN)/referral migrate
	$(BIN)/referral demo
	$(BIN)/referral serve

## Every test, on SQLite and PostgreSQL (REQUIRE_SERVICES=1 turns a missing server into a failure),
## then the widget's (sdk/js/test.sh: npm ci, unit tests, browser tests in Debian's Chromium) and the console's
## (console/test.sh: the committed build, browser tests in Chromium).
test: install-dev tests/conformance/node_modules lint typecheck
	@# The SQLite half of the database tests and the rest (the PostgreSQL half, the tests without a
	@# database) in two pytest processes at once: on 2 cores this takes ~1/3 less time than one
	@# process. Each writes its own log, shown when both are done.
	@rm -f .coverage .coverage.*; \
	COVERAGE_FILE=.coverage.sqlite $(BIN)/python -m pytest --cov --cov-report= -k "sqlite" > .pytest-sqlite.log 2>&1 & sqlite=$$!; \
	COVERAGE_FILE=.coverage.rest $(BIN)/python -m pytest --cov --cov-report= -k "not sqlite" > .pytest-rest.log 2>&1 & rest=$$!; \
	wait $$sqlite; sqlite_status=$$?; wait $$rest; rest_status=$$?; \
	echo "--- pytest, SQLite half"; cat .pytest-sqlite.log; echo "--- pytest, the rest (PostgreSQL half, no database)"; cat .pytest-rest.log; \
	test $$sqlite_status = 0 -a $$rest_status = 0
	@$(BIN)/coverage combine -q .coverage.sqlite .coverage.rest
	@echo "coverage of app/ (lines the pytest process ran; database tests on SQLite): $$($(BIN)/coverage report --format=total)%"
	sdk/js/test.sh
	console/test.sh

LINTED = app tests bench alembic sdk/python

## ruff's rules (pyproject.toml [tool.ruff]) and its formatting, checked; `make format` applies both.
lint: install-dev
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

## mypy on app/ (pyproject.toml [tool.mypy]).
typecheck: install-dev
	$(BIN)/mypy

format: install-dev
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

## Once, after the branches of issue 16 are merged: delete the lint baseline of pyproject.toml (the
## lines between "BEGIN lint baseline" and "END lint baseline"), then fix and format everything.
lint-baseline-drop: install-dev
	$(BIN)/python -c "import re, pathlib; p = pathlib.Path('pyproject.toml'); \
	p.write_text(re.sub(r'(?ms)^# BEGIN lint baseline.*?^# END lint baseline[^\n]*\n', '', p.read_text()))"

# The graphql-http audit (tests/test_http_conformance.py) is an npm package; without node the
# test is skipped, unless REQUIRE_SERVICES=1.
tests/conformance/node_modules: tests/conformance/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix tests/conformance --silent --no-audit --no-fund && touch $@; \
	else echo "npm not found: the GraphQL over HTTP audit will be skipped"; fi

## The hot paths next to the machine's one-INSERT limit, at 10k and 1M customers (bench/suite.py):
## needs PostgreSQL, Redis and wrk (apt-get install wrk); writes bench/results/report.{json,png}.
bench: install-dev
	$(LOCKED_INSTALL) requirements/bench.txt
	@command -v wrk >/dev/null 2>&1 || { echo "wrk is needed: apt-get install wrk"; exit 1; }
	$(BIN)/python bench/suite.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov referral.db referral.db-* .referral-demo-keys sdk/js/node_modules sdk/js/test-results console/node_modules console/test-results
