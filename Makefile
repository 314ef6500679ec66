# Two commands do all the set-up on a fresh machine (Python 3.11, make):
#   make run    installs wirewatch's runtime set into .venv and runs the daemon on the bundled config (SQLite)
#   make test   installs the runtime and dev sets, starts the services, and runs the whole test suite
# What is installed is pinned with hashes in requirements/ (runtime.txt, dev.txt = runtime + dev tools);
# `make lock` regenerates both from pyproject.toml.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: install install-dev run once demo test lint services browser unicode-tables lock clean

$(VENV)/.pip: requirements/pip.txt  ## the venv, and the pinned installer in it
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) --require-hashes -r requirements/pip.txt
	touch $@

$(VENV)/.runtime: requirements/runtime.txt pyproject.toml setup.py $(VENV)/.pip
	$(PIP) --require-hashes -r requirements/runtime.txt
	$(PIP) --no-deps -e .
	touch $@

$(VENV)/.dev: requirements/dev.txt requirements/runtime.txt pyproject.toml setup.py $(VENV)/.pip
	$(PIP) --require-hashes -r requirements/dev.txt
	$(PIP) --no-deps -e .
	touch $(VENV)/.runtime $@

install: $(VENV)/.runtime  ## the runtime set only

install-dev: $(VENV)/.dev  ## the runtime set and the dev tools

run: install  ## the main job: the daemon, SQLite, ./config.toml
	$(VENV)/bin/wirewatch db upgrade
	$(VENV)/bin/wirewatch run

once: install  ## one cycle of the main job, then exit
	$(VENV)/bin/wirewatch run --once

demo: install  ## offline demo on bundled sample news
	$(VENV)/bin/wirewatch demo

services:  ## PostgreSQL on 127.0.0.1:5432, started if it is down
	bash .ci/services.sh

browser:  ## Debian's chromium for the browser tests, installed if it is missing
	bash .ci/browser.sh

test: install-dev services browser  ## the whole suite: real SQLite, PostgreSQL, HTTP, SMTP and webhook servers
	$(PY) -m pytest -n 2 -m "not serial"
	$(PY) -m pytest -m serial

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unicode-tables: install  ## regenerate monitor/core/unicode_tables.py for this Python's Unicode version
	$(PY) -c "from monitor.core.text import render_unicode_tables as r; open('monitor/core/unicode_tables.py', 'w', encoding='utf-8').write(r())"

lock:  ## needs uv (pip install uv): pins every package, with hashes, for any platform
	uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --no-header -q -o requirements/runtime.txt
	uv pip compile pyproject.toml --group dev --universal --python-version 3.11 --generate-hashes --no-header -q \
		-c requirements/runtime.txt -o requirements/dev.txt

clean:
	rm -rf $(VENV) wirewatch.db wirewatch.db-wal wirewatch.db-shm
