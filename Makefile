# cmk-orchestrator: `make test` and `make demo` set everything up themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: install test demo lint format sim clean bench serve blocks browser postgresql

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The UI tests drive Debian's Chromium (Playwright's own browser download cannot work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "The browser tests need Debian's chromium: run 'sudo apt-get install -y chromium' once." >&2; exit 1; fi; }

# tests/production runs a PostgreSQL server of its own (Debian's package; started per test module in a temp dir).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "The production tests need Debian's postgresql: run 'sudo apt-get install -y postgresql' once." >&2; exit 1; fi; }

# Two workers, one test file each at a time: most flow tests wait on simulated operations, not the CPU.
test: $(STAMP) browser postgresql
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

sim: $(STAMP)
	$(BIN)/python -m simulator serve --scenario demo

demo: $(STAMP)
	mkdir -p .state && $(BIN)/python -m deployments.demo

# Simulator + Prefect server and UI on http://127.0.0.1:$(PORT) + every deployment served; Ctrl-C stops all.
PORT ?= 4200
serve: $(STAMP)
	$(BIN)/python -m deployments.stack --port $(PORT)

clean:
	rm -rf $(VENV) .state reports .pytest_cache

bench: $(STAMP)
	$(BIN)/python -m bench.rotate --environments 1000
