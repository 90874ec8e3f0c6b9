# ml-connector — the two commands: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit e2e bench chaos demo-order agent-wheels env clean-data help

help:
	@echo "make run        start web, worker, beat, sandbox store and simulated Sage + agent (Ctrl-C stops all)"
	@echo "                ADOBE=1: a sandbox Adobe Commerce store too, with its own integration and agent"
	@echo "make test       lint and the whole test suite (sets up the venv first)"
	@echo "make bench      benchmarks (QUICK=1 for a quick run, about a minute)"
	@echo "make chaos      the fault-injection run"
	@echo "make demo-order place a new order in the running sandbox store (STORE=adobe: in the Adobe one)"
	@echo "make agent-wheels  the agent's two wheels in dist/ (install: agent/README.md)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

env: $(STAMP)
	$(BIN)/python -m connector.envfile

run: env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runstack $(if $(ADOBE),--adobe,)

# lint-imports checks the import contracts in pyproject.toml ([tool.importlinter]: the layers, stores
# apart from ledgers, the agent alone, no cycles). --no-cache: a stale graph cache once reported
# imports already gone; the graph builds in under a second anyway.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

# Each `make test` gets its own data folder (test SQLite file, filesystem broker queue), so a
# developer's run and CI on one machine never take each other's Celery messages.
test: env lint
	ML_DATA_DIR=$${ML_DATA_DIR:-$$(mktemp -d /tmp/mlc-test-XXXXXX)} $(BIN)/python -m pytest $(PYTEST_ARGS)

unit: env
	$(BIN)/python -m pytest -m "not e2e and not browser" $(PYTEST_ARGS)

e2e: env
	$(BIN)/python -m pytest -m "e2e or browser" $(PYTEST_ARGS)

bench: env
	$(BIN)/python -m bench $(if $(QUICK),--quick,) $(BENCH_ARGS)

chaos: env
	$(BIN)/python -m bench.chaos $(if $(QUICK),--quick,) $(CHAOS_ARGS)
	$(BIN)/python -m bench.chaos --sage sage100 $(if $(QUICK),--quick,) $(CHAOS_ARGS)
	$(BIN)/python -m bench.chaos --sage sage100 --transport soap $(if $(QUICK),--quick,) $(CHAOS_ARGS)
	$(BIN)/python -m bench.chaos_adobe $(if $(QUICK),--quick,) $(CHAOS_ARGS)

demo-order: env
	$(BIN)/python manage.py demo_order $(if $(STORE),--store $(STORE),)

# The agent's own distribution and the one it needs (ml-connector-common), for the PC next to Sage.
agent-wheels: $(STAMP)
	$(BIN)/python -m pip wheel -q --no-deps -w dist ./mlcommon ./agent
	rm -rf mlcommon/build agent/build mlcommon/*.egg-info agent/*.egg-info
	@ls dist/ml_connector_common-*.whl dist/ml_connector_agent-*.whl

clean-data:
	rm -rf data/broker data/logs data/*.sqlite3*
