# The two commands of the README. Both create .venv on first use and install
# the project with torch pinned to the CPU wheel (GPU users: install your torch first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# A second, small venv with only the older datasets that OpenUnlearning pins (no torch, no project):
# the tests load every config of a release built by .venv with it (tests/builders/release/test_datasets_compat.py).
# Created once (about 40 s, 340 MB), then reused.
DS3 := .venv-ds3
DS3_STAMP := $(DS3)/.installed-stamp

# OpenUnlearning's transformers (4.45.1) with the Hub client and tokenizers it needs, as a folder of packages put
# before .venv's on PYTHONPATH: the eval runs on transformers 4.x too (tests/eval/test_transformers4.py). About 60 MB.
T4 := .transformers4
T4_STAMP := $(T4)/.installed-stamp

# Python writes the bytecode of what it imports into .venv on first use (pip runs with --no-compile to keep the
# install short). Where PYTHONDONTWRITEBYTECODE is set, every process compiles torch and transformers again:
# a test that starts processes took 92 s with it set and 46 s without (tests/pipeline/test_launched_pipeline.py).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile "torch==2.13.0" -e ".[model,llm,test]"
	touch $(STAMP)

$(DS3_STAMP):
	test -x $(DS3)/bin/python || { rm -rf $(DS3) && $(PYTHON) -m venv $(DS3); }  # a stale link or a half-made venv is replaced
	$(DS3)/bin/python -m pip install --quiet --no-compile "datasets==3.0.1"
	touch $(DS3_STAMP)

$(T4_STAMP): $(STAMP)
	rm -rf $(T4) && $(BIN)/python -m pip install --quiet --no-compile --no-deps --target $(T4) "transformers==4.45.1" "huggingface-hub==0.29.1" "tokenizers==0.20.3" "requests==2.34.2"
	touch $(T4_STAMP)

# The demo's study is a subset sized for 20 minutes on 2 CPU cores: two methods, the robustness matrix on one.
# The README's full table resumes the same folder: entity-unlearn study --data entity-unlearn --base tiny --out study --seeds 3
DEMO_STUDY := --methods ga,npo_gd --coverage-methods none --deep-method none --robustness-methods npo_gd

demo: $(STAMP)
	$(BIN)/entity-unlearn build --entities 200 --seed 0 --version 2.0.0 --out entity-unlearn --quiet
	HF_HUB_OFFLINE=1 $(BIN)/entity-unlearn study --data entity-unlearn --base tiny --out study $(DEMO_STUDY)
	@echo "Release: entity-unlearn/ (README.md is the dataset card, manifest.json lists seed, counts and hashes)."
	@echo "Study report: study/study.md, study/efficacy_vs_coverage.png, study/depth_profile.png, study/robustness.png; every number in study/study.json."

# The leaderboard page is tested in headless Chromium: Debian's chromium and chromium-driver, installed once
# when missing and this is root with apt-get (CI); otherwise that one test is skipped and says why.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium and chromium-driver for the leaderboard's browser test"; \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver) >/dev/null \
	  || echo "chromium could not be installed: the leaderboard's browser test will be skipped"; \
	else echo "chromium is not installed (apt-get install chromium chromium-driver): the leaderboard's browser test will be skipped"; fi

test: $(STAMP) $(DS3_STAMP) $(T4_STAMP) browser
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	HF_HUB_OFFLINE=1 DATASETS3_PYTHON=$(CURDIR)/$(DS3)/bin/python TRANSFORMERS4_PATH=$(CURDIR)/$(T4) $(BIN)/python -m pytest -n auto --dist loadgroup --durations=15

clean:
	rm -rf $(VENV) $(DS3) $(T4) world entity-unlearn study
