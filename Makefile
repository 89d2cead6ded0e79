# Two commands a new user needs: `make run` (install + start the app) and `make test` (install + whole suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# Where the app listens: this machine only. `make run ADDRESS=0.0.0.0` opens it to the network (no accounts).
ADDRESS ?= 127.0.0.1

.PHONY: run test lint install install-dev browser sshd samples benchmark clean

$(PY):
	@echo "Creating the virtual environment $(VENV)..."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.stamp-runtime: requirements.txt | $(PY)
	@echo "Installing the pinned packages (TensorFlow, LiteRT, Streamlit...) into $(VENV), once: several minutes and about 3 GB on a fresh machine..."
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.stamp-dev: requirements-dev.txt requirements.txt | $(PY)
	@echo "Installing the pinned packages and the test tools (pytest, Playwright, ruff, mypy) into $(VENV), once: several minutes on a fresh machine..."
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.stamp-runtime

install: $(VENV)/.stamp-runtime

install-dev: $(VENV)/.stamp-dev

run: install
	@echo "Starting the app at http://$(ADDRESS):$(PORT) (Ctrl+C stops it)..."
	$(PY) -m streamlit run app.py --server.address $(ADDRESS) --server.port $(PORT)

# The browser tests drive Debian's Chromium (Playwright's own browser download does not work here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The SSH-target tests start their own sshd on 127.0.0.1 (a temporary config, host key and authorized key):
# they need Debian's openssh-server, never the machine's own sshd service.
sshd:
	@test -x /usr/sbin/sshd || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq openssh-server >/dev/null; }

test: install-dev browser sshd
	$(PY) -m pytest

# ruff: style, banned imports, complexity <= 12, <= 50 statements; mypy --strict on optimizer/; no function in
# optimizer/ over 60 lines (a rule ruff does not have; tests/unit/test_code_shape.py runs the same check).
lint: install-dev
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) tools/check_function_length.py

samples: install
	$(PY) sample_models/build_samples.py

benchmark: install
	$(PY) benchmarks/bench_default_run.py

clean:
	rm -rf out runs .pytest_cache .ruff_cache .mypy_cache
