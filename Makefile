# V-BIP developer commands. `make run` serves the app with a worker; `make test` runs the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000

# Django 6 needs Python 3.12+: take python3.13/python3.12 from PATH (pyenv shims that
# answer "command not found" are skipped), then pyenv's installed versions, then python3.
find_python = $(firstword $(foreach p,python3.13 python3.12 $(sort $(wildcard $(HOME)/.pyenv/versions/3.1[3-9]*/bin/python3.1[3-9])) $(sort $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12)) python3,$(shell $(p) -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && echo $(p))))
PYTHON ?= $(find_python)
PY := $(VENV)/bin/python

.PHONY: help venv install install-dev run setup test lint format migrations messages clean check-python

help:
	@echo "make run    set up (virtualenv, install, migrate, catalogue, admin) and serve http://$(HOST):$(PORT) with a worker"
	@echo "make test   install dev requirements and run the whole test suite"
	@echo "make lint   ruff check + ruff format --check"

check-python:
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: V-BIP needs Python 3.12 or newer (Django 6)." >&2; \
		echo "       No python3.13/python3.12 on PATH, none under ~/.pyenv/versions, and python3 is older." >&2; \
		echo "       Install one (e.g. 'pyenv install 3.12') or run: make PYTHON=/path/to/python3.12 ..." >&2; \
		exit 1; \
	fi

$(PY): | check-python
	@if [ -x "$(PY)" ] && ! "$(PY)" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
		echo "Removing $(VENV): it was made with Python older than 3.12"; rm -rf "$(VENV)"; fi
	@if [ ! -x "$(PY)" ]; then echo "Creating $(VENV) with $(PYTHON)"; "$(PYTHON)" -m venv "$(VENV)"; fi

$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# A local .env with a generated SECRET_KEY; real environment variables still win.
.env:
	@echo "Writing .env (DEBUG on, generated SECRET_KEY) for local use"
	@printf 'DEBUG=true\nSECRET_KEY=%s\n' "$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env

setup: install .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_catalog
	$(PY) manage.py ensure_admin
	$(PY) manage.py poll_netbackup --schedule
	$(PY) manage.py collectstatic --noinput --verbosity 0

run: setup
	@echo "Serving http://$(HOST):$(PORT)/admin/ with a background worker (Ctrl-C stops both)"
	@trap 'kill 0' EXIT; \
	$(PY) manage.py db_worker --interval 1 --no-reload & \
	$(PY) manage.py runserver $(HOST):$(PORT) --noreload

test: install-dev
	$(PY) -m pytest -n auto $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

migrations: install
	$(PY) manage.py makemigrations

messages: install
	$(PY) manage.py makemessages -l ko --ignore '.venv/*' --ignore 'bench/*' --ignore 'tests/*'
	$(PY) manage.py compilemessages -l ko --ignore '.venv/*'

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
