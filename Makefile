# Thin driver over CMake + Ninja: every target first installs missing Debian
# packages (scripts/install-deps), then configures and builds what it uses.
BUILD   ?= build
PREFIX  ?= /usr/local
SHARED  ?= $(abspath ../shared)
TRACES  := $(wildcard tests/data/traces/*.json.gz)
CMAKE   := cmake -G Ninja -S .
JOBS    ?= 2

.PHONY: all deps run stop test test-arm64 asan fuzz fuzz-smoke bench bench-crdt bench-ai install lint format clean

all: deps
	@$(CMAKE) -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/install-deps

run: all
	BUILD=$(BUILD) scripts/demo

stop:
	BUILD=$(BUILD) scripts/demo stop

test: all
	cd $(BUILD) && ctest -j $(JOBS) --output-on-failure

# The inference unit tests cross-built for AArch64 and run under qemu-user,
# with and without the dotprod extension (not in CI: minutes, and apt).
test-arm64:
	scripts/test-arm64

asan: deps
	@CC=clang $(CMAKE) -B build-asan -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_C_FLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" $(CMAKE_ARGS) >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 KITH_ASAN=1 ctest -j $(JOBS) --output-on-failure

fuzz: deps
	@CC=clang $(CMAKE) -B build-fuzz -DKITH_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
	  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" $(CMAKE_ARGS) >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

FUZZ_TIME ?= 30
fuzz-smoke: fuzz
	@set -e; for f in build-fuzz/fuzz_*; do \
	  [ -x "$$f" ] && [ ! -d "$$f" ] || continue; \
	  n=$${f##*/fuzz_}; mkdir -p build-fuzz/corpus-$$n; \
	  echo "fuzz-smoke: $$n ($(FUZZ_TIME) s)"; \
	  $$f -max_total_time=$(FUZZ_TIME) -print_final_stats=0 build-fuzz/corpus-$$n tests/fuzz/corpus/$$n \
	    >build-fuzz/$$n.log 2>&1 || { tail -40 build-fuzz/$$n.log; exit 1; }; \
	done; echo "fuzz-smoke: all targets clean"

bench: all
	$(BUILD)/kith bench trace $(TRACES)

bench-crdt: all
	bench/peers/run.sh $(TRACES)

# Issue 5's side by side on random-weight 220M models (made once, ~1 GB in
# $(BUILD)/bench-models); LLAMA_BENCH=/path/to/llama-bench adds llama.cpp.
AI_MODELS := $(BUILD)/bench-models
bench-ai: all
	@mkdir -p $(AI_MODELS)
	@for t in Q8_0 Q4_0 F16; do [ -f $(AI_MODELS)/$$t.gguf ] || \
	  $(BUILD)/bench_make_random_gguf $(AI_MODELS)/$$t.gguf --type $$t || exit 1; done
	@[ -f $(AI_MODELS)/Q4_K_M.gguf ] || \
	  $(BUILD)/kith ai quantize $(AI_MODELS)/F16.gguf $(AI_MODELS)/Q4_K_M.gguf Q4_K_M
	bench/ai_vs_llama.sh $(BUILD) $(AI_MODELS)/Q8_0.gguf $(AI_MODELS)/Q4_0.gguf $(AI_MODELS)/Q4_K_M.gguf

install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

lint: all
	cppcheck --project=$(BUILD)/compile_commands.json --enable=warning,portability,performance \
	  --error-exitcode=1 -q --suppress=missingIncludeSystem -i tests/fuzz

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz build-arm64
