# The two commands of the README. Both create .venv on first use and install
# the project with torch pinned to the CPU wheel (GPU users: install your torch first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "torch==2.13.0" -e ".[model,llm,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/entity-unlearn build --entities 200 --seed 0 --version 1.0.0 --out entity-unlearn --quiet
	@echo "Load it (in this folder): $(BIN)/python -c \"from datasets import load_dataset; print(load_dataset('entity-unlearn', 'forget05')); print(load_dataset('entity-unlearn', 'probes'))\""
	@echo "entity-unlearn/README.md is the dataset card; entity-unlearn/manifest.json lists seed, counts and hashes."

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) world entity-unlearn
