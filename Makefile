# The two commands a reader needs: `make serve` and `make test`.
SHELL := /bin/bash
.DELETE_ON_ERROR:

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
SYSTEM_DEPS := $(CHROMIUM):chromium podman:podman runc:runc debootstrap:debootstrap \
	prometheus:prometheus promtool:prometheus prometheus-pushgateway:prometheus-pushgateway nginx:nginx hey:hey

NOTEBOOKS := $(wildcard notebooks/*.ipynb)
EXECUTED := $(NOTEBOOKS:notebooks/%=docs/notebooks/%)
EXAMPLE_FILES := $(shell find examples -type f -not -path '*/__pycache__/*' -not -path '*/.pytest_cache/*') \
	$(wildcard bench/*.py)
NOTEBOOK_TIMEOUT_S ?= 600

.PHONY: serve test bench notebooks system-deps lock upgrade-lock clean

serve: $(VENV)/.installed notebooks
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000 --livereload

test: $(VENV)/.installed system-deps notebooks
	$(BIN)/ruff check .
	$(BIN)/pytest

# Benchmarks, not tests: the results (bench/results/, docs/img/benchmarks/) are committed
# and shown on docs/benchmarks.md. Train first: idempotent, it reuses a stored version.
bench: $(VENV)/.installed system-deps
	cd examples/credit-risk && ../../$(BIN)/python train.py --metrics $(CURDIR)/build/metrics.json
	$(BIN)/python bench/run.py

# The virtual environment, rebuilt whenever the lock changes.
$(VENV)/.installed: requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	touch $@

system-deps:
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
notebooks: $(EXECUTED)

docs/notebooks/%.ipynb: notebooks/%.ipynb $(EXAMPLE_FILES) $(VENV)/.installed
	@mkdir -p $(@D)
	cp $< $@
	$(BIN)/pytest --nbmake --nbmake-timeout=$(NOTEBOOK_TIMEOUT_S) --overwrite -o addopts="" -q $@

# Re-resolve every pin: the handbook's lock, then each example's own requirements.txt,
# constrained to the same versions so a copied example runs what the handbook tested.
lock: $(VENV)/.installed
	$(BIN)/uv pip compile --quiet $(LOCK_FLAGS) pyproject.toml --python-version 3.11 -o requirements.lock
	for input in examples/*/requirements*.in; do \
		(cd $$(dirname $$input) && name=$$(basename $$input .in) && \
		 ../../$(BIN)/uv pip compile --quiet $(LOCK_FLAGS) $$name.in -c ../../requirements.lock \
			--python-version 3.11 --custom-compile-command "uv pip compile $$name.in -o $$name.txt" \
			| grep -v -- "-c ../../requirements.lock" > $$name.txt); \
	done

# The newest versions pyproject.toml and the examples' .in files allow (the weekly upstream
# workflow runs this, then `make test`).
upgrade-lock:
	$(MAKE) lock LOCK_FLAGS=--upgrade

clean:
	rm -rf build site docs/notebooks .cache
