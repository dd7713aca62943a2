# `make small` (set up, then run every figure and table on the small offline configuration, in
# minutes), `make cpu` (the same on config/cpu.yaml: CNNs trained well enough to judge forgetting,
# at most two hours on 2 cores) and `make test` (the test suite). See README.md.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: setup data small cpu paper-dry-run test lint benchmark screenshot

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -e .
	touch $@

# Real Fashion-MNIST from Debian's package where apt is at hand (else mnemu downloads it).
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null; \
	fi

small: setup data
	$(BIN)/snakemake --configfile config/small.yaml --cores $(CORES)
	@echo "The reproduction report: file://$(CURDIR)/paper_figures/small/report.html (data and provenance: paper_figures/small/report.json)"

# The README's screenshot of the small configuration's report (needs chromium; after `make small`).
screenshot: setup
	$(BIN)/python -m mnemu.reporting screenshot paper_figures/small/report.html docs/report-small.png

cpu: setup data
	$(BIN)/snakemake --configfile config/cpu.yaml --cores $(CORES)

paper-dry-run: setup
	$(BIN)/snakemake --dry-run --quiet rules

test: setup data
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: setup
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .

benchmark: setup
	$(BIN)/python benchmarks/forget_time.py
