# Developer entry points. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
VENV := .venv
AXO_VENV := .venv-axolotl
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 AXOLOTL_DO_NOT_TRACK=1

.PHONY: install install-axolotl demo test test-main test-axolotl lint format bench-quick

$(VENV)/.installed: pyproject.toml constraints-cpu.txt scripts/make_venv.sh
	scripts/make_venv.sh $(VENV) -e '.[dev,qlora]'
	touch $@

$(AXO_VENV)/.installed: pyproject.toml constraints-cpu.txt scripts/make_venv.sh
	scripts/make_venv.sh $(AXO_VENV) -e '.[axolotl,dev,qlora]'
	touch $@

install: $(VENV)/.installed
install-axolotl: $(AXO_VENV)/.installed

demo: install
	$(OFFLINE) $(VENV)/bin/rft-trl demo

# The whole suite: the main environment (latest TRL), then the Axolotl environment
# (axolotl 0.19 pins trl 1.9 / transformers 5.16), which also reruns the TRL-path tests.
test: install install-axolotl
	$(OFFLINE) scripts/run_pytest.sh $(VENV) tests -m "not axolotl"
	$(OFFLINE) scripts/run_pytest.sh $(AXO_VENV) tests -m "axolotl or trl_compat"

test-main: install
	$(OFFLINE) scripts/run_pytest.sh $(VENV) tests -m "not axolotl"

test-axolotl: install-axolotl
	$(OFFLINE) scripts/run_pytest.sh $(AXO_VENV) tests -m "axolotl or trl_compat"

lint: install
	$(VENV)/bin/ruff check rft_trl tests benchmarks
	$(VENV)/bin/ruff format --check rft_trl tests benchmarks

format: install
	$(VENV)/bin/ruff check --fix rft_trl tests benchmarks
	$(VENV)/bin/ruff format rft_trl tests benchmarks
