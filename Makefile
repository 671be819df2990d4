# The few commands a person needs. Everything installs into $(VENV); nothing is needed beforehand but python3.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DISTS := common sandbox $(patsubst %/setup.cfg,%,$(wildcard connectors/*/setup.cfg))
PYTEST_ARGS ?=

.PHONY: help venv wheels wheelhouse install test demo bench loc dev clean

help:
	@echo "make demo        start the sandbox and run every connector once against it"
	@echo "make test        install everything into $(VENV) and run the test suite"
	@echo "make wheels      build every distribution into wheels/"
	@echo "make wheelhouse  wheels/ plus every dependency, for air-gapped installs"
	@echo "make bench       the performance benchmarks"
	@echo "make loc         own lines per connector against their targets, and any import cycle"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel

venv: $(BIN)/python

wheels: venv
	rm -f wheels/*.whl
	rm -rf $(addsuffix /build,$(DISTS))
	for d in $(DISTS); do $(BIN)/python -m pip wheel -q --no-deps --no-build-isolation -w wheels ./$$d || exit 1; done
	rm -rf $(addsuffix /build,$(DISTS))
	@ls wheels/*.whl

wheelhouse: wheels
	$(BIN)/python -m pip wheel -q -w wheels $$(ls wheels/tq_conn_*.whl)
	@echo "wheels/ now holds $$(ls wheels/*.whl | wc -l) wheels; install offline with:"
	@echo "  pip install --no-index --find-links wheels/ tq-conn-<name>"

install: wheels
	$(BIN)/python -m pip install -q -r tests/requirements.txt wheels/tq_conn_*.whl
	$(BIN)/python -m pip install -q --force-reinstall --no-deps wheels/tq_conn_*.whl

test: install
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

demo: install
	$(BIN)/python -m tq_conn_sandbox.demo

bench: install
	$(BIN)/python -m pip install -q -r bench/requirements.txt
	$(BIN)/python bench/run.py

loc:
	$(PYTHON) tests/test_structure.py

dev: venv
	$(BIN)/python -m pip install -q -r tests/requirements.txt $(addprefix -e ,$(DISTS))

clean:
	rm -rf $(VENV) wheels/*.whl $(addsuffix /build,$(DISTS)) */*.egg-info connectors/*/*.egg-info
