# Two entry points for a fresh machine: `make run` (default experiment) and `make test`.
# Both create the virtual environment first when it is missing or out of date.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint format venv report readme readme-fashion readme-fashion-attackers clean fashion fashion-attackers

# through msdefense.launch: after a kill, the next run removes the stale lock and resumes
run: $(STAMP)
	$(BIN)/python -m msdefense.launch --cores all

# the real-scale experiment (Fashion-MNIST, offline; under two hours on a 2-core CPU): README
fashion: $(STAMP)
	$(BIN)/python -m msdefense.launch --cores all --configfile config/fashion.yaml

# the attacker axis on Fashion-MNIST (about 90 minutes on a 2-core CPU): config/fashion_attackers.yaml
fashion-attackers: $(STAMP)
	$(BIN)/python -m msdefense.launch --cores all --configfile config/fashion.yaml config/fashion_attackers.yaml

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/snakefmt .

# after `make run`: quote the default run's tables (snapshot in docs/results) and the config in README.md
readme: $(STAMP)
	$(BIN)/python -m msdefense.reporting.readme README.md --tables results/default/tables

# after `make fashion`: quote the real-scale run's tables (snapshot in docs/results/fashion) in README.md
readme-fashion: $(STAMP)
	$(BIN)/python -m msdefense.reporting.readme README.md --fashion-tables results/fashion/tables

# after `make fashion-attackers`: its tables into docs/results/fashion_attackers, quoted in README.md
readme-fashion-attackers: $(STAMP)
	$(BIN)/python -m msdefense.reporting.readme README.md --fashion-attackers-tables results/fashion_attackers/tables

# the report needs a finished run: run (or finish) the default experiment first, then report
report: $(STAMP)
	$(BIN)/python -m msdefense.launch --cores all
	$(BIN)/snakemake --report report.html
	$(BIN)/snakemake --report report.zip

venv: $(STAMP)

$(STAMP): pyproject.toml envs/constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --constraint envs/constraints.txt --editable ".[dev,art]"
	touch $(STAMP)

clean:
	rm -rf results .snakemake
