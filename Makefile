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
	@echo "make wheelhouse  wheels/ plus every dependency, for air-gapped installs (PYTHON_VERSIONS=3.10,3.12 PLATFORMS=...)"
	@echo "make bench       the performance benchmarks"
	@echo "make loc         own lines per connector against their targets, and any import cycle"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel

venv: $(BIN)/python

wheels: venv
	rm -f wheels/*.whl wheels/WHEELHOUSE.txt
	rm -rf $(addsuffix /build,$(DISTS))
	for d in $(DISTS); do $(BIN)/python -m pip wheel -q --no-deps --no-build-isolation -w wheels ./$$d || exit 1; done
	rm -rf $(addsuffix /build,$(DISTS))
	@ls wheels/*.whl

# make wheelhouse: every dependency for this host's Python and platform. For other hosts name them:
#   make wheelhouse PYTHON_VERSIONS=3.10,3.11,3.12 PLATFORMS=manylinux2014_x86_64,manylinux2014_aarch64
# (pip download fetches their binary wheels: only packages published as wheels can be fetched for another host).
PYTHON_VERSIONS ?=
PLATFORMS ?= manylinux2014_x86_64
comma := ,
wheelhouse: wheels
	@if [ -z "$(PYTHON_VERSIONS)" ]; then \
	  $(BIN)/python -m pip wheel -q -w wheels $$(ls wheels/tq_conn_*.whl) || exit 1; \
	  $(BIN)/python -c 'import sys, sysconfig; print("built for Python %d.%d on %s (this host)" % (sys.version_info[:2] + (sysconfig.get_platform(),)))' > wheels/WHEELHOUSE.txt; \
	else \
	  : > wheels/WHEELHOUSE.txt; \
	  for v in $(subst $(comma), ,$(PYTHON_VERSIONS)); do for p in $(subst $(comma), ,$(PLATFORMS)); do \
	    $(BIN)/python -m pip download -q --only-binary=:all: --python-version $$v --platform $$p --implementation cp \
	      -d wheels $$(ls wheels/tq_conn_*.whl) || exit 1; \
	    echo "built for Python $$v on $$p" >> wheels/WHEELHOUSE.txt; \
	  done; done; \
	fi
	@cat wheels/WHEELHOUSE.txt
	@echo "wheels/ now holds $$(ls wheels/*.whl | wc -l) wheels (what they fit: wheels/WHEELHOUSE.txt); install offline with:"
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
