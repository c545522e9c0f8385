VENV ?= .venv
STAMP := $(VENV)/.kiln-installed

.PHONY: setup demo demo-fleet test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $@

demo: setup
	$(VENV)/bin/kiln demo

demo-fleet: setup
	$(VENV)/bin/kiln demo fleet

test: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/python -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests bench

bench: setup
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info
