# Two entry points for a fresh machine (Python 3.11, pip, gcc):
#   make compare   set up .venv and compare upstream with our reimplementation on the embedded default
#   make test      set up .venv and run the tests
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c constraints.txt
STAMP := $(VENV)/.installed

.PHONY: setup compare test bench onnx clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) torch==2.13.0
	$(PIP) -e '.[model,gpt,test,onnx]'
	# the GPT part runs transformers' generate: only 5.17.0 is known good (5.18-5.23 crash, 5.24 drops the KV cache)
	$(BIN)/python -c "import transformers as t; assert t.__version__ == '5.17.0', t.__version__"
	# the upstream reference: its declared dependencies (torchaudio, transformers, CUDA extras) are not
	# what its s2mel modules need, so it is installed without them and its real needs come from [model]
	$(PIP) --no-deps indextts2-inference==2.1.1
	# torchaudio's Python code (its wheels are CUDA builds that cannot load with CPU torch): imported bare
	# by reference_hooks/upstream.py, never through its __init__
	$(PIP) --no-deps torchaudio==2.9.1
	# the third-party port compared in ports/: likewise without its model-download dependencies
	$(PIP) --no-deps indextts-onnx==0.3.0
	touch $(STAMP)

compare: $(STAMP)
	$(BIN)/harness compare --stage dit

test: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_capture.py

onnx: $(STAMP)
	$(BIN)/python ports/run_indextts_onnx.py --config full

clean:
	rm -rf reports/cache reports/*.json reports/traces
