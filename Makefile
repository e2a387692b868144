# mailbridge: make demo | test | up | down | status | bench | soak | setup  (README.md)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
VENV_PY := $(VENV)/bin/python
# The stamp is keyed on both requirements files: editing either reinstalls, otherwise setup is instant.
REQ_HASH := $(shell cat requirements.txt functions/requirements.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQ_HASH)
TEST_DIRS := $(wildcard tests/unit tests/service tests/fakes tests/integration tests/e2e tests/reliability)
PYTEST_ARGS ?=
# `make test` runs these suites again with Gmail assigning its own Message-ID on send
# (docs/gmail-differences.md); the fake takes its defaults from FAKE_GOOGLE_BEHAVIOUR (tests/fakes/README.md).
REPLACED_ID_SUITES := tests/integration/test_outgoing.py tests/integration/test_ingest.py

.PHONY: setup up down status demo test bench soak

FUNCTIONS_PTH := $(VENV)/.functions-on-path

setup: $(STAMP) $(FUNCTIONS_PTH)

$(STAMP): requirements.txt functions/requirements.txt
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

# functions/ on the venv's path (a .pth file), so `lint-imports` finds the mailbridge package
# from the repository root with the root's .importlinter, as any tool or person runs it.
$(FUNCTIONS_PTH): $(STAMP)
	$(VENV_PY) -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'mailbridge-functions.pth').write_text(str(pathlib.Path('functions').resolve()) + '\n')"
	@touch $@

up: setup
	scripts/stack up

down:
	scripts/stack down

status:
	scripts/stack status

demo: setup
	$(VENV_PY) scripts/demo

test: setup
	scripts/ensure_browser
	$(VENV)/bin/lint-imports --no-cache
	$(VENV_PY) -m pytest $(TEST_DIRS) $(PYTEST_ARGS)
	FAKE_GOOGLE_BEHAVIOUR='{"replace_message_id": true}' $(VENV_PY) -m pytest $(REPLACED_ID_SUITES) $(PYTEST_ARGS)
	@if [ -x scripts/check_terraform ]; then scripts/check_terraform; fi

bench: setup
	$(VENV_PY) scripts/bench

soak: setup
	MAILBRIDGE_SOAK=1 $(VENV_PY) -m pytest -m soak tests $(PYTEST_ARGS)
