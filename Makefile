# vecledger: every set-up step lives here, so a fresh clone needs nothing but Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install browser test lint run bench bench-quick clean

# Three installs, each on top of the one before and redone only when the dependency list changes:
# the runtime (`make run`: the service alone), the bench's faiss peer, and the test tools (SDKs,
# moto, linters, Playwright, torch and LangChain for the LangChain test).
RUN_STAMP   := $(VENV)/.run-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
TEST_STAMP  := $(VENV)/.test-stamp

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(BENCH_STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@

$(TEST_STAMP): $(BENCH_STAMP)
	$(BIN)/pip install --quiet torch==2.13.0  # first: the CPU build (the langchain extra needs torch)
	$(BIN)/pip install --quiet -e '.[test,langchain,bench]'
	# botocore 1.44.8's s3vectors model (queryTexts, returnScores) for tests/api/test_hybrid.py; the
	# installed botocore is pinned older by aiobotocore. Extracted into the venv, never committed.
	rm -rf $(VENV)/botocore-dl && $(BIN)/pip download --quiet botocore==1.44.8 --no-deps -d $(VENV)/botocore-dl
	mkdir -p $(VENV)/botocore-models/s3vectors/2025-07-15
	$(BIN)/python -c "import gzip,glob,zipfile; z=zipfile.ZipFile(glob.glob('$(VENV)/botocore-dl/*.whl')[0]); p='botocore/data/s3vectors/2025-07-15/'; open('$(VENV)/botocore-models/s3vectors/2025-07-15/service-2.json','wb').write(gzip.decompress(z.read(p+'service-2.json.gz'))); open('$(VENV)/botocore-models/s3vectors/2025-07-15/paginators-1.json','wb').write(z.read(p+'paginators-1.json'))"
	touch $@

install: $(RUN_STAMP)

# The console tests drive Debian's chromium through Playwright (never `playwright install`, which
# downloads a browser of its own): install it with apt-get once, as root or through sudo.
CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser:
	@test -x $(CHROMIUM) || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

test: $(TEST_STAMP) browser
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# Serve ./data on 127.0.0.1:8000 with well-known development credentials (printed at start).
run: $(RUN_STAMP)
	$(BIN)/vecledger serve --root ./data --host 127.0.0.1 --port 8000 --dev

# vecledger against raw pylance, faiss and numpy on the same data, in one run (see docs/performance.md).
bench: $(BENCH_STAMP)
	$(BIN)/python -m tools.bench --json bench-results.json

bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m tools.bench --quick --json bench-quick.json

lint: $(TEST_STAMP)
	$(BIN)/ruff check engine api tests tools
	$(BIN)/ruff format --check engine api tests tools
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
