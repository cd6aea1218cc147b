# Two commands: `make run` (set up .venv and start the app) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := chromium dataset-fashion-mnist fonts-noto-color-emoji
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1

.PHONY: run test setup test-setup system-packages

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed requirements-test.txt
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

setup: $(VENV)/.installed

test-setup: $(VENV)/.test-installed system-packages

# Debian packages for the browser test (chromium) and the offline datasets' loaders.
system-packages:
	@if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/datasets/fashion-mnist ] || \
	    [ ! -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then \
	  $(SUDO) apt-get install -y -q $(APT_PACKAGES) || \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q $(APT_PACKAGES); }; \
	fi

run: setup
	$(PY) app.py

test: test-setup
	$(PY) -m pytest -q
