# Two commands matter: `make demo` and `make test` (see README.md). Both need only python3, git and make.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE ?= examples/tenable_vulns_2025-11-20.csv
PYTEST_ARGS ?=
SOURCES := setup.cfg pyproject.toml $(shell find hextrackr_cli -name '*.py' -o -name py.typed 2>/dev/null)

.PHONY: demo test lint venv install-demo install-test artifacts check-artifacts bench clean help

help:
	@echo "make demo   - create $(VENV), install hextrackr with the server extra, import $(SAMPLE) with live progress"
	@echo "make test   - create $(VENV), install hextrackr editable with the test extra, run lint, then the test suite"
	@echo "make lint   - ruff (ruff.toml) over the package and the tests, mypy (setup.cfg [mypy]) over the package"
	@echo "make artifacts / check-artifacts - regenerate / check completions/ and man/hextrackr.1"
	@echo "make bench  - start-up benchmark (hextrackr --help vs python -c 'import click')"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip

venv: $(BIN)/python

# The demo installs a regular (non-editable) copy: proof that `pip install .` works from a clean clone.
# If the editable test install is already there, it includes the server extra and is kept.
$(VENV)/.demo-installed: $(SOURCES) | $(BIN)/python
	@if [ -f $(VENV)/.test-installed ] && [ $(VENV)/.test-installed -nt setup.cfg ]; then \
		echo "using the editable install made by 'make test'"; \
	else \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check '.[server]'; \
	fi
	@touch $@

$(VENV)/.test-installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[server,test]'
	@rm -f $(VENV)/.demo-installed
	@touch $@

# Two corpus files are too big to commit (see .gitignore); the deterministic generator writes them.
BIG_CORPUS := tests/data/bad/huge_field.csv tests/data/bad/single_line_10mb.csv
$(BIG_CORPUS) &: | $(BIN)/python
	$(BIN)/python tests/data/make_bad_corpus.py

install-demo: $(VENV)/.demo-installed
install-test: $(VENV)/.test-installed $(BIG_CORPUS)

demo: $(VENV)/.demo-installed
	$(BIN)/hextrackr --server local import $(SAMPLE)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check hextrackr_cli tests && $(BIN)/mypy hextrackr_cli

test: lint $(BIG_CORPUS)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

artifacts: $(VENV)/.test-installed
	$(BIN)/python scripts/gen_artifacts.py

check-artifacts: $(VENV)/.test-installed
	$(BIN)/python scripts/gen_artifacts.py --check

bench: $(VENV)/.test-installed
	$(BIN)/python benchmarks/startup.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
