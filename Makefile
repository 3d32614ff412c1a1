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
	$(PIP) -e '.[model,gpt,test,onnx,class]'
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
	# the unmodified IndexTTS2 class always builds its NeMo text normaliser. nemo-text-processing declares
	# pandas, inflect, wget and wrapt, which building and running the en/zh normalisers never imports, and
	# ships a top-level `tests` package: it goes --no-deps into a folder of its own (660 MB, mostly pynini),
	# which only the class driver appends to sys.path (reference_hooks/upstream_class.py)
	$(PIP) --no-deps --upgrade --target $(VENV)/textnorm nemo-text-processing==1.2.0 pynini==2.1.6.post1 \
		sacremoses==0.2.0 editdistance==0.8.1 cdifflib==1.2.9
	touch $(STAMP)

compare: $(STAMP)
	$(BIN)/harness compare

# two workers (pytest-xdist): tests sharing an expensive module fixture carry one xdist_group and run on one
# worker; the session's cached runs are made once, under a lock, whichever worker asks first
test: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadgroup

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_capture.py

onnx: $(STAMP)
	$(BIN)/python ports/run_indextts_onnx.py --config full

clean:
	rm -rf reports/cache reports/*.json reports/traces
