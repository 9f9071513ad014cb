# trail: one GNU Makefile.
#   make            release build: build/trail (-O2 -g)
#   make test       debug + ASan + UBSan build of trail and the test runner, then every test
#   make run        build, then serve the demo app on localhost:4000
#   make bench      benchmarks (never pass/fail)
#   make format     clang-format over src/ tests/ bench/
# BUILD=dir puts every output under dir (default build/), so several trees can build side by side.

BUILD ?= build
CC    ?= cc
ifeq ($(origin CC),default)
CC := cc
endif

ENGINE_WASM := node_modules/quickjs-wasi/quickjs.wasm
LLHTTP_DIR  := /usr/share/llhttp
LLHTTP_INC  := /usr/share/include/llhttp

# Set once here so that our wasm-rt implementation and the generated code agree.
WASM_RT_DEFS := -DWASM_RT_MEMCHECK_SIGNAL_HANDLER=1 -DWASM_RT_USE_STACK_DEPTH_COUNT=0

WARN   := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
          -Wformat=2 -Wimplicit-fallthrough
COMMON := -std=c17 -D_GNU_SOURCE -pthread -Isrc -I$(BUILD)/gen -I$(LLHTTP_INC) $(WASM_RT_DEFS) \
          -MMD -MP
REL_CFLAGS  := $(COMMON) $(WARN) -O2 -g
SAN         := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
TEST_CFLAGS := $(COMMON) $(WARN) -O1 -g $(SAN)
# Generated code: no -Werror, no sanitizers (the issue allows it; it is 8 MB of C), plus what
# wasm2c output needs for exact float semantics and deep recursion.
GEN_CFLAGS  := -std=c17 -D_GNU_SOURCE -I$(BUILD)/gen $(WASM_RT_DEFS) -O2 -g1 -w \
               -fno-optimize-sibling-calls -frounding-math -fsignaling-nans
THIRD_CFLAGS := -std=c17 -D_GNU_SOURCE -I$(LLHTTP_INC) -O2 -g -w

LDLIBS := -lsqlite3 -lcurl -lm -lpthread -ldl

SRCS      := $(shell find src -name '*.c' ! -path 'src/main.c' | sort)
TEST_SRCS := $(shell find tests -name '*.c' ! -path 'tests/fuzz/*' | sort)
WAT_SRCS  := $(shell find tests/data -name '*.wat' 2>/dev/null | sort)
LLHTTP_SRCS := $(LLHTTP_DIR)/api.c $(LLHTTP_DIR)/http.c $(LLHTTP_DIR)/llhttp.c

REL_OBJS  := $(SRCS:%.c=$(BUILD)/rel/%.o)
TEST_OBJS := $(SRCS:%.c=$(BUILD)/asan/%.o)
TESTRUN_OBJS := $(TEST_SRCS:%.c=$(BUILD)/asan/%.o)
THIRD_OBJS := $(patsubst $(LLHTTP_DIR)/%.c,$(BUILD)/third/llhttp_%.o,$(LLHTTP_SRCS))
ENGINE_OBJ := $(BUILD)/gen/quickjs.o
# An archive, so the linker pulls the engine in only where something calls it.
ENGINE_LIB := $(BUILD)/gen/libengine.a
WAT_OBJS  := $(patsubst tests/data/%.wat,$(BUILD)/testgen/%.o,$(WAT_SRCS))
WAT_HDRS  := $(patsubst tests/data/%.wat,$(BUILD)/testgen/%.h,$(WAT_SRCS))

DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all test run bench format clean deps FORCE
all: $(BUILD)/trail

deps: $(DEPS_STAMP)
$(DEPS_STAMP): tools/deps.sh package.json package-lock.json
	@mkdir -p $(@D)
	./tools/deps.sh
	@touch $@

# ---- the engine: wasm2c output, regenerated only when the pinned module's bytes change ----
$(BUILD)/gen/engine.sha256: FORCE | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@sha256sum $(ENGINE_WASM) | cmp -s - $@ || sha256sum $(ENGINE_WASM) > $@

$(BUILD)/gen/quickjs.c $(BUILD)/gen/quickjs.h: $(BUILD)/gen/engine.sha256
	wasm2c --module-name=quickjs $(ENGINE_WASM) -o $(BUILD)/gen/quickjs.c

$(ENGINE_OBJ): $(BUILD)/gen/quickjs.c
	$(CC) $(GEN_CFLAGS) -c $< -o $@
$(ENGINE_LIB): $(ENGINE_OBJ)
	@rm -f $@
	ar rcs $@ $^

# ---- our code ----
$(BUILD)/rel/%.o: %.c | $(BUILD)/gen/quickjs.h
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -c $< -o $@

$(BUILD)/asan/%.o: %.c | $(BUILD)/gen/quickjs.h $(WAT_HDRS)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -I$(BUILD)/testgen -Itests -c $< -o $@

$(BUILD)/third/llhttp_%.o: $(LLHTTP_DIR)/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(THIRD_CFLAGS) -c $< -o $@

$(BUILD)/rel/libtrail.a: $(REL_OBJS)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/asan/libtrail.a: $(TEST_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/trail: $(BUILD)/rel/src/main.o $(BUILD)/rel/libtrail.a $(ENGINE_LIB) $(THIRD_OBJS)
	$(CC) -pthread -o $@ $^ $(LDLIBS)

$(BUILD)/asan/trail: $(BUILD)/asan/src/main.o $(BUILD)/asan/libtrail.a $(ENGINE_LIB) $(THIRD_OBJS)
	$(CC) -pthread $(SAN) -o $@ $^ $(LDLIBS)

# ---- hand-written test modules: .wat -> .wasm -> C, compiled like the engine ----
$(BUILD)/testgen/%.wasm: tests/data/%.wat | $(DEPS_STAMP)
	@mkdir -p $(@D)
	wat2wasm $< -o $@
$(BUILD)/testgen/%.c $(BUILD)/testgen/%.h: $(BUILD)/testgen/%.wasm
	wasm2c --module-name=$(notdir $*) $< -o $(BUILD)/testgen/$*.c
$(BUILD)/testgen/%.o: $(BUILD)/testgen/%.c
	$(CC) $(GEN_CFLAGS) -c $< -o $@

$(BUILD)/test/run: $(TESTRUN_OBJS) $(BUILD)/asan/libtrail.a $(ENGINE_LIB) $(THIRD_OBJS) $(WAT_OBJS)
	@mkdir -p $(@D)
	$(CC) -pthread $(SAN) -o $@ $(TESTRUN_OBJS) $(WAT_OBJS) $(BUILD)/asan/libtrail.a \
	    $(ENGINE_LIB) $(THIRD_OBJS) $(LDLIBS)

# The test runner finds the binaries under test through these variables.
test: $(BUILD)/test/run $(BUILD)/asan/trail $(BUILD)/trail
	TRAIL_BIN=$(abspath $(BUILD)/asan/trail) TRAIL_REL_BIN=$(abspath $(BUILD)/trail) \
	TRAIL_ROOT=$(CURDIR) ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/test/run $(T)

run: $(BUILD)/trail
	./tools/demo.sh $(BUILD)/trail

bench: $(BUILD)/trail
	./bench/run.sh $(BUILD)/trail

format:
	clang-format -i $$(find src tests bench -name '*.c' -o -name '*.h')

clean:
	rm -rf $(BUILD)

FORCE:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
