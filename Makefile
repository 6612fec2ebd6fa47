# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make run   - create the venv, install, start the local stack (llmfleet up)
#   make test  - create the venvs, install, run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
VENV_STAMP := $(VENV)/.installed
VLLM_VENV := .venv-vllm

.PHONY: run test install vllm-venv benchmarks clean

$(VENV_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "llmfleet needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev,cloud]'
	touch $@

install: $(VENV_STAMP)

# The real vLLM engine on CPU lives in its own venv (about 3.5 GB); the script is idempotent.
vllm-venv:
	bash .ci/setup-vllm.sh >/dev/null

run: install
	$(VENV)/bin/llmfleet up

test: install vllm-venv
	$(VENV)/bin/python -m pytest

benchmarks: install
	$(VENV)/bin/python -m benchmarks.perf_model.run

clean:
	rm -rf $(VENV) $(VLLM_VENV) .llmfleet .pytest_cache
