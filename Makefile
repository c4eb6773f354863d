# The two commands a reader needs: `make serve` and `make test`. `make` alone lists them all.
SHELL := /bin/bash
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := $(shell sed -n 's/^uv==//p' requirements.lock)

# Keep models and bentos made by the notebooks and tests out of ~/bentoml.
export BENTOML_HOME ?= $(CURDIR)/build/bentoml
# sklearn under a server: without this, OpenMP threads spin after every call.
export OMP_NUM_THREADS ?= 1
export NO_MKDOCS_2_WARNING := 1

# Debian packages the tests drive for real, as command:package. Set CHROMIUM to use another
# Chromium-based browser binary (google-chrome on a GitHub runner, say).
export CHROMIUM ?= chromium
# /usr/bin/docker: Docker's own, or podman's Docker-compatible command (the Docker path's test).
SYSTEM_DEPS := $(CHROMIUM):chromium podman:podman runc:runc debootstrap:debootstrap \
	/usr/bin/docker:podman-docker prometheus:prometheus promtool:prometheus prometheus-pushgateway:prometheus-pushgateway nginx:nginx hey:hey

NOTEBOOKS := $(wildcard notebooks/*.ipynb)
EXECUTED := $(NOTEBOOKS:notebooks/%=docs/notebooks/%)
example_files = $(shell find examples/$(1) -type f -not -path '*/__pycache__/*' \
	-not -path '*/.pytest_cache/*' -not -path '*/.venv/*')
NOTEBOOK_TIMEOUT_S ?= 600

EXAMPLES := $(patsubst %/README.md,%,$(wildcard examples/*/README.md))

.PHONY: help serve test test-fast bench notebooks system-deps lock upgrade-lock clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sort | \
		awk 'BEGIN {FS = ":.*## "} {printf "  make %-13s %s\n", $$1, $$2}'

serve: $(VENV)/.installed ## the site on http://127.0.0.1:8000, live; notebooks fill in as they run
	@# Serve at once in draft mode (notebooks not run yet show a note, see overrides/hooks.py)
	@# and execute the notebooks in the background; each page fills in when its run ends.
	@mkdir -p build
	@echo "Executing the notebooks in the background: tail -f build/notebooks.log"
	@setsid $(MAKE) --no-print-directory notebooks >build/notebooks.log 2>&1 & notebooks=$$!; \
	trap 'kill -TERM -- -$$notebooks 2>/dev/null' EXIT; \
	HANDBOOK_DRAFT=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000 --livereload

test: $(VENV)/.installed system-deps notebooks ## everything CI runs (installs what it needs)
	$(BIN)/ruff check .
	@rm -rf build/junit
	$(BIN)/pytest --junitxml=build/junit/handbook.xml -k "not ran_in_the_last_test_run"
	@# Last: every test the checklist links ran in the run above (the examples' copies
	@# write build/junit/<example>-*.xml).
	$(BIN)/pytest -q -p no:cacheprovider tests/test_checklist.py -k ran_in_the_last_test_run

# No notebook, no system tool, no server: lint, the repository's own checks, and each
# example's unit and in-process tiers, each example in its own process.
test-fast: $(VENV)/.installed ## lint and every fast tier, in about a minute
	$(BIN)/ruff check .
	$(BIN)/pytest -m fast
	@for example in $(EXAMPLES); do \
		if [ -d $$example/tests/unit ]; then \
			echo "== $$example (unit, app)"; \
			(cd $$example && $(CURDIR)/$(BIN)/pytest -q -m "unit or app") || exit 1; \
		fi; \
	done

# Benchmarks, not tests: the results (bench/results/, docs/img/benchmarks/) are committed
# and shown on docs/benchmarks.md. Train first: idempotent, it reuses a stored version.
bench: $(VENV)/.installed system-deps ## measure; results and plots under bench/results/
	cd examples/credit-risk && ../../$(BIN)/python train.py --metrics $(CURDIR)/build/metrics.json
	$(BIN)/python bench/run.py
	$(BIN)/python bench/onnx_vs_sklearn.py
	$(BIN)/python bench/batch.py
	cd examples/credit-risk && ../../$(BIN)/python -m training.feature_cost

# The virtual environment, rebuilt whenever the lock changes; the handbook checker is
# installed into it (editable), so `handbook` is on its PATH.
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

system-deps: ## the Debian packages the tests drive (apt-get when root)
	@missing=""; \
	for dep in $(SYSTEM_DEPS); do command -v $${dep%%:*} >/dev/null || missing="$$missing $${dep#*:}"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "Missing system packages:$$missing"; \
		echo "Install them with: sudo apt-get install$$missing"; \
		exit 1; \
	fi

# Execute each notebook on a copy inside docs/ (mkdocs-jupyter renders only files there).
# Make reruns a notebook only when it, an example or the environment changed.
notebooks: $(EXECUTED) ## execute the notebooks into docs/notebooks/ (only the changed ones)

# Each notebook reruns when its own inputs change: the quickstart's example, or the
# flagship (and the benchmark harness the scalability notebook drives).
docs/notebooks/quickstart.ipynb: $(call example_files,quickstart)
$(filter-out docs/notebooks/quickstart.ipynb,$(EXECUTED)): $(call example_files,credit-risk) \
	$(wildcard bench/*.py)
docs/notebooks/%.ipynb: notebooks/%.ipynb $(VENV)/.installed
	@mkdir -p $(@D)
	cp $< $@
	@# Its report, build/notebooks/<name>.xml, gives the chapter's opening its run time.
	$(BIN)/pytest --nbmake --nbmake-timeout=$(NOTEBOOK_TIMEOUT_S) --overwrite -o addopts="" -q \
		--junitxml=build/notebooks/$*.xml $@

# Re-resolve every pin: the handbook's lock, then each example's own requirements.txt,
# constrained to the same versions so a copied example runs what the handbook tested.
lock: $(VENV)/.installed ## re-resolve requirements.lock and the examples' requirements
	$(BIN)/uv pip compile --quiet $(LOCK_FLAGS) --all-extras pyproject.toml --python-version 3.11 -o requirements.lock
	for input in examples/*/requirements*.in; do \
		(cd $$(dirname $$input) && name=$$(basename $$input .in) && \
		 ../../$(BIN)/uv pip compile --quiet $(LOCK_FLAGS) $$name.in -c ../../requirements.lock \
			--python-version 3.11 --custom-compile-command "uv pip compile $$name.in -o $$name.txt" \
			| grep -v -- "-c ../../requirements.lock" > $$name.txt); \
	done

# The newest versions pyproject.toml and the examples' .in files allow (the weekly upstream
# workflow runs this, then `make test`).
upgrade-lock: ## the newest versions the inputs allow
	$(MAKE) lock LOCK_FLAGS=--upgrade

clean: ## remove what the build, the notebooks and the tests wrote
	rm -rf build site docs/notebooks .cache
