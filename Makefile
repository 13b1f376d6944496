# Two commands: `make run` (install, build the index on first start, serve the chat) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,ray,onnx]'
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) app.py

chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: install chromium
	$(PY) -m pytest

.PHONY: install run test chromium
