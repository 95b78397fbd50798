# The two commands of the README: `make demo` and `make test`. Everything else helps them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DB ?= demo.db
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_POSTGRES_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
# Redis databases the two legs flush (tests/conftest.py): one each, so they can run at once.
TEST_REDIS_SQLITE ?= redis://127.0.0.1:6379/15
TEST_REDIS_POSTGRES ?= redis://127.0.0.1:6379/13

.PHONY: install browser wrk demo test test-sqlite test-postgres lint format schema vendor vendor-check bench \
	bench-ingest clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## Debian's Chromium for the browser tests (Playwright's own browser download cannot work here).
browser:
	test -x /usr/bin/chromium || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

install: $(STAMP) browser

## Debian's wrk, the load generator of the read benchmarks (bench/reads.py).
wrk:
	test -x /usr/bin/wrk || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk)

## Start the service on a fresh SQLite file with demo data: it prints the dashboard link
## (signed in as the demo admin), the GraphiQL URL and the tokens.
demo: $(STAMP)
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	CREDITLENS_DATABASE_URL=sqlite+aiosqlite:///./$(DEMO_DB) \
		$(BIN)/creditlens serve --demo --host $(HOST) --port $(PORT)

## Lint (ruff, mypy --strict), then the whole suite on SQLite and on PostgreSQL, the two
## legs at the same time: most of a leg is waiting (real servers, timeouts, subprocesses),
## so on 2 cores both finish in about the time of the longer one alone. Each leg empties
## its own Redis database; each leg's output is printed whole when it ends (-O).
test: $(STAMP) lint
	$(MAKE) --no-print-directory -j2 -O test-sqlite test-postgres

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-sqlite: $(STAMP) browser
	scripts/ensure-redis
	CREDITLENS_TEST_REDIS_URL=$(TEST_REDIS_SQLITE) $(BIN)/pytest

test-postgres: $(STAMP) browser
	scripts/ensure-postgres
	scripts/ensure-redis
	CREDITLENS_TEST_DATABASE_URL=$(TEST_POSTGRES_URL) CREDITLENS_TEST_REDIS_URL=$(TEST_REDIS_POSTGRES) \
		$(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Re-vendor the pinned browser libraries (npm pack) and check them against SHA256SUMS.
vendor:
	scripts/vendor-static

## Check the committed vendored files against app/static/vendor/SHA256SUMS (no network).
vendor-check:
	scripts/vendor-static --check

## Regenerate schema.graphql from the code.
schema: $(STAMP)
	$(BIN)/python -m app.schema_file > schema.graphql

## Read benchmarks at 100k and 1M events (SQLite and PostgreSQL); 10M: bench/run-10m.sh.
bench: $(STAMP) wrk
	bench/run.sh

## Ingestion throughput, batches of 1,000, via HTTP and the CLI, into both databases.
bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache $(DEMO_DB)*
