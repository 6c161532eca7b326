# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv from nothing (Python 3.11 + pip) and then does its job.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all lint venv bench docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@echo "venv: installing lmpshear and its dependencies into .venv (about 2 minutes, quietly)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lmpshear demo --out demo-output
	@echo "demo: lmpshear is installed in .venv; put it on your PATH with: source .venv/bin/activate"

# the fast loop: every module, without the real runs of minutes (marked `full`)
test: $(STAMP)
	$(BIN)/python -m pytest -q -ra -m "not full" tests

# everything: real LAMMPS and BD runs, SLURM, MPI, validations, the docs in a browser (what CI runs)
test-all: $(STAMP) $(VENV)/.docs-installed
	$(BIN)/python -m pytest -q -ra tests

# the documentation site (docs/, mkdocs.yml) into site/, strict: a broken link or reference fails
$(VENV)/.docs-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@echo "docs: site/index.html"

# ruff's lint and format check and mypy's type check (configured in pyproject.toml), clean
$(VENV)/.lint-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[lint]"
	touch $@

lint: $(VENV)/.lint-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_inprocess.py

clean:
	rm -rf $(VENV) demo-output build dist site
