# The two commands of the README. Both create .venv on first use and install
# the project with torch pinned to the CPU wheel (GPU users: install your torch first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile "torch==2.13.0" -e ".[model,llm,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/entity-unlearn build --entities 200 --seed 0 --version 1.0.0 --out entity-unlearn --quiet
	HF_HUB_OFFLINE=1 $(BIN)/entity-unlearn study --data entity-unlearn --base tiny --out study
	@echo "Release: entity-unlearn/ (README.md is the dataset card, manifest.json lists seed, counts and hashes)."
	@echo "Study report: study/study.md, study/efficacy_vs_coverage.png, study/depth_profile.png; every number in study/study.json."

test: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) world entity-unlearn study
