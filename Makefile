# The README's commands. `make run` and `make test` each build what they need on a fresh machine.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch where there is no NVIDIA GPU (pip takes it from the local wheel cache or PyPI);
# the default (CUDA) build where nvidia-smi answers. Override with e.g. TORCH='torch==2.13.0' or
# TORCH_INDEX=https://download.pytorch.org/whl/cpu on a laptop without a GPU.
TORCH ?= $(if $(shell command -v nvidia-smi 2>/dev/null),torch,torch==2.13.0)
TORCH_INDEX ?=
DATASET ?= sklearn:digits
# the name runs use for it: the part after "sklearn:", with hyphens
NAME ?= $(subst _,-,$(lastword $(subst :, ,$(DATASET))))
MODEL ?= cnn
# This checkout is the project, whatever the caller's shell points MLRESEARCH_ROOT at; a run folder is set only by a deliver run.
export MLRESEARCH_ROOT := $(CURDIR)
unexport MLRESEARCH_RUN_DIR

.PHONY: help run test lint docs hooks lab serve predict evaluate drift monitor export sync-data clean-venv

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/activate:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed; set PYTHON=python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev]"
	touch $@
	@echo "the environment is ready in $(VENV); in each new shell, activate it to type its commands as the README does: source $(VENV)/bin/activate"

# `run` installs the dev extra too: the README's daily workflow (nbdev_export, nbdev_test, jupyter lab, pytest) is typed right after it
run: $(VENV)/.dev-installed ## the main job on the default data: acquire it, deliver the EDA, a baseline and the CNN, list the runs
	$(BIN)/mlresearch data acquire $(DATASET) --name $(NAME)
	$(BIN)/mlresearch deliver eda --name eda-$(NAME) --auto-suffix -p dataset=$(NAME)
	$(BIN)/mlresearch deliver train --name $(NAME)-logreg --auto-suffix -p dataset=$(NAME) -p model=logreg
	$(BIN)/mlresearch deliver train --name $(NAME)-$(MODEL) --auto-suffix -p dataset=$(NAME) -p model=$(MODEL)
	$(BIN)/mlresearch runs

test: $(VENV)/.dev-installed ## generated files up to date, lint, then pytest in parallel: the tests and every notebook's lessons (the 15 slowest listed)
	$(BIN)/mlresearch check
	$(BIN)/ruff check mlresearch
	$(BIN)/pytest -n auto --dist worksteal --durations=15

lint: $(VENV)/.dev-installed ## ruff over the exported package
	$(BIN)/ruff check mlresearch

docs: $(VENV)/.dev-installed ## the Quarto site in _docs/ (up to the render where Quarto is missing)
	$(BIN)/mlresearch docs

serve: $(VENV)/.installed ## serve a deliver run's model: make serve RUN=digits-cnn [PORT=8000 WORKERS=1]
	@test -n "$(RUN)" || { echo "error: name the run to serve: make serve RUN=<run name or folder> (mlresearch runs lists them)" >&2; exit 2; }
	$(BIN)/mlresearch serve "$(RUN)" --port $(or $(PORT),8000) --workers $(or $(WORKERS),1)

predict: $(VENV)/.installed ## score a CSV or Parquet file with a run's model: make predict RUN=digits-cnn INPUT=rows.csv [OUTPUT=preds.csv]
	@test -n "$(RUN)" -a -n "$(INPUT)" || { echo "error: name the run and the file: make predict RUN=<run> INPUT=<file.csv|.parquet> [OUTPUT=<file>]" >&2; exit 2; }
	$(BIN)/mlresearch predict "$(RUN)" "$(INPUT)" $(if $(OUTPUT),--output "$(OUTPUT)")

evaluate: $(VENV)/.installed ## a run's model on labelled data, as a deliver run: make evaluate RUN=digits-cnn DATASET=new.csv
	@test -n "$(RUN)" -a -n "$(DATASET)" || { echo "error: name the run and the data: make evaluate RUN=<run> DATASET=<name, file or spec>" >&2; exit 2; }
	$(BIN)/mlresearch evaluate "$(RUN)" --dataset "$(DATASET)"

drift: $(VENV)/.installed ## drift of a file against a run's training rows (exit 2 on drift): make drift RUN=digits-cnn DATA=new.csv
	@test -n "$(RUN)" -a -n "$(DATA)" || { echo "error: name the run and the file: make drift RUN=<run> DATA=<file.csv|.parquet>" >&2; exit 2; }
	$(BIN)/mlresearch drift "$(RUN)" "$(DATA)"

monitor: drift ## the former name of `make drift`

export: $(VENV)/.dev-installed ## a run's model as ONNX in research/exports/: make export RUN=digits-cnn
	@test -n "$(RUN)" || { echo "error: name the run to export: make export RUN=<run name or folder>" >&2; exit 2; }
	$(BIN)/mlresearch export "$(RUN)" --format onnx

# JupyterLab refuses to start as root ("Running as root is not recommended"); in a container root is the usual user, so
# the target passes --allow-root there and says so. LAB_ARGS adds options, e.g. LAB_ARGS="--port 8890 --no-browser".
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_NOTE := make lab: running as root, so JupyterLab gets --allow-root; it listens on 127.0.0.1 only unless LAB_ARGS sets --ip
sync-data: ## mirror data/ to another machine with rsync: make sync-data DEST=user@host:path [RSYNC_FLAGS=--delete]
	@test -n "$(DEST)" || { echo "error: name the destination: make sync-data DEST=user@host:path/to/project/data" >&2; exit 2; }
	@command -v rsync >/dev/null || { echo "error: rsync is not installed (Debian: apt-get install rsync)" >&2; exit 2; }
	rsync -a --partial --exclude .lock $(RSYNC_FLAGS) "$(CURDIR)/data/" "$(DEST)/"

hooks: $(VENV)/.dev-installed ## install the git pre-commit hooks: nbdev-clean, ruff, mlresearch check (.pre-commit-config.yaml)
	$(BIN)/pre-commit install

lab: $(VENV)/.dev-installed ## JupyterLab on this project (as root too, as in containers): make lab [LAB_ARGS="--port 8890"]
	@$(if $(LAB_ROOT),echo "$(LAB_NOTE)" >&2)
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(LAB_ROOT) $(LAB_ARGS)

clean-venv: ## remove the virtual environment
	rm -rf $(VENV)
