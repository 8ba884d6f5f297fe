# nova-docker developer entry points.  Every target installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help engine venv test unit lint genconfig demo demo-down bench bench-smoke clean

help:
	@echo "make demo     bring up the all-in-one cloud and boot a container"
	@echo "              (HOSTS=2: two compute hosts, Nova over RabbitMQ; make demo-down HOSTS=2)"
	@echo "make test     install what is missing and run every test on a real engine"
	@echo "make lint     ruff"
	@echo "make genconfig  regenerate etc/nova-docker.conf.sample"

engine:
	@bash tools/ensure-engine.sh

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Both distributions: the driver (nova-docker, the root) and the all-in-one
# launcher (nova-docker-aio, in aio/).  Not an editable install on purpose:
# an editable finder for our ``nova.virt.docker`` shim would shadow the real
# ``nova`` package.  setuptools builds in build/ and would ship files left
# there by an earlier build (a moved or deleted module), so it goes first.
# The bench extra (matplotlib) too: make bench draws its chart with it, and
# make test runs bench/tests, which draw one.
venv: $(BIN)/python
	rm -rf build aio/build
	$(BIN)/pip install -q '.[test,bench]' ./aio

test: engine venv
	CI=$${CI:-} $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check nova_docker nova bench aio

genconfig: venv
	$(BIN)/oslo-config-generator --namespace nova_docker \
		--output-file etc/nova-docker.conf.sample

# HOSTS=N: a cloud of N compute hosts, in a state dir and port range of its
# own, so that it runs next to the one-host demo.
HOSTS ?=
DEMO_CLOUD_ARGS := $(if $(HOSTS),--state-dir /var/lib/nova-docker-aio-hosts$(HOSTS) --port-base 25500)

demo: engine venv
	$(BIN)/nova-docker-aio $(DEMO_CLOUD_ARGS) demo $(if $(HOSTS),--hosts $(HOSTS))

demo-down: venv
	$(BIN)/nova-docker-aio $(DEMO_CLOUD_ARGS) down

bench: engine venv
	$(BIN)/python -m bench

# One iteration of every benchmark at tiny sizes, so the suite cannot rot;
# it asserts nothing about time.
bench-smoke: engine venv
	$(BIN)/python -m bench --quick --out bench/results/smoke.json

clean:
	rm -rf $(VENV) build *.egg-info aio/build aio/*.egg-info
