# Two commands do all the set-up on a fresh machine (Python 3.11, make):
#   make run    installs wirewatch into .venv and runs the daemon on the bundled config (SQLite)
#   make test   installs wirewatch with its dev tools and runs the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run once demo test lint services clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=25.1"
	$(PY) -m pip install -q -e . --group dev
	touch $@

install: $(VENV)/.installed

run: install  ## the main job: the daemon, SQLite, ./config.toml
	$(VENV)/bin/wirewatch db upgrade
	$(VENV)/bin/wirewatch run

once: install  ## one cycle of the main job, then exit
	$(VENV)/bin/wirewatch run --once

demo: install  ## offline demo on bundled sample news
	$(VENV)/bin/wirewatch demo

services:
	bash .ci/services.sh

test: install services  ## the whole suite: real SQLite, PostgreSQL, HTTP, SMTP and webhook servers
	$(PY) -m pytest -n 2 -m "not serial"
	$(PY) -m pytest -m serial

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) wirewatch.db wirewatch.db-wal wirewatch.db-shm
