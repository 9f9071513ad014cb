# trail: one GNU Makefile.
#   make            release build: build/trail (-O2 -g)
#   make test       debug + ASan + UBSan build of trail and the test runner, then every test
#   make run        build, then serve the demo app on localhost:4000
#   make bench      trail beside nginx, Node.js, Bun, Deno, and a three-node cluster beside one
#                   trail, with wrk; table in bench/results/
#                   (never pass/fail; QUICK=1 for a fast pass; see bench/README.md)
#   make tsan       ThreadSanitizer build, the tests where threads meet (T= to choose)
#   make fuzz       the libFuzzer targets of tests/fuzz/, FUZZ_SECONDS each
#   make format     clang-format over src/ tests/ bench/
# BUILD=dir puts every output under dir (default build/), so several trees can build side by side.

BUILD ?= build
CC    ?= cc
ifeq ($(origin CC),default)
CC := cc
endif

ENGINE_WASM := node_modules/quickjs-wasi/quickjs.wasm
# SQLite's amalgamation, as the pinned npm package better-sqlite3 carries it (deps/sqlite3:
# sqlite3.c and sqlite3.h of SQLite 3.53.0); trail compiles it itself, with its own options.
SQLITE_DIR  := node_modules/better-sqlite3/deps/sqlite3
LLHTTP_DIR  := /usr/share/llhttp
LLHTTP_INC  := /usr/share/include/llhttp

# Set once here so that our wasm-rt implementation and the generated code agree.
WASM_RT_DEFS := -DWASM_RT_MEMCHECK_SIGNAL_HANDLER=1 -DWASM_RT_USE_STACK_DEPTH_COUNT=0

WARN   := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
          -Wformat=2 -Wimplicit-fallthrough
COMMON := -std=c17 -D_GNU_SOURCE -pthread -Isrc -I$(BUILD)/gen -I$(LLHTTP_INC) -I$(SQLITE_DIR) \
          $(WASM_RT_DEFS) \
          -MMD -MP
REL_CFLAGS  := $(COMMON) $(WARN) -O2 -g
SAN         := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
TEST_CFLAGS := $(COMMON) $(WARN) -O1 -g $(SAN) -DTRAIL_TEST_BUILD
# `make tsan`: ThreadSanitizer over trail's threads (workers, reloader, scheduler, the key-value
# store's snapshots, realtime events handed between workers) and the test runner; the engine and
# SQLite are not instrumented.
TSAN        := -fsanitize=thread -fno-omit-frame-pointer
TSAN_CFLAGS := $(COMMON) $(WARN) -O1 -g $(TSAN) -DTRAIL_TEST_BUILD
# Generated code: no -Werror, no sanitizers (the issue allows it; it is 8 MB of C), plus what
# wasm2c output needs for exact float semantics and deep recursion.
GEN_CFLAGS  := -std=c17 -D_GNU_SOURCE -Isrc -I$(BUILD)/gen $(WASM_RT_DEFS) -O2 -g1 -w \
               -fno-optimize-sibling-calls -frounding-math -fsignaling-nans
# llhttp in strict mode: it then insists on CRLF after chunk data (accepting other bytes there
# lets a front proxy and trail disagree about where a request ends).
THIRD_CFLAGS := -std=c17 -D_GNU_SOURCE -I$(LLHTTP_INC) -DLLHTTP_STRICT_MODE=1 -O2 -g -w

# SQLite: the features a backend's SQL may want (FTS, R*Tree, math, dbstat) and the pre-update
# hook (realtime subscriptions see each changed row's values: src/records/), without what trail
# never uses (shared cache, deprecated APIs, loadable extensions: guests must not load native
# code), memory statistics off (each allocation would take a global mutex), and synchronous=NORMAL
# by default in WAL mode as trail sets anyway; sqlite3_column_decltype() renamed, so that the
# cluster's node gets trail's version of it (src/cluster/node.c). -O2: -O3 measured slower (a
# 10,000-row aggregate 257 -> 284 us). Compiled straight into trail, SQLite's internal calls stay
# direct.
SQLITE_OPTS := -DSQLITE_THREADSAFE=1 -DSQLITE_DEFAULT_MEMSTATUS=0 -DSQLITE_DEFAULT_WAL_SYNCHRONOUS=1 \
               -DSQLITE_OMIT_DEPRECATED -DSQLITE_OMIT_SHARED_CACHE -DSQLITE_OMIT_LOAD_EXTENSION \
               -DSQLITE_USE_ALLOCA -DSQLITE_LIKE_DOESNT_MATCH_BLOBS \
               -DSQLITE_ENABLE_FTS4 -DSQLITE_ENABLE_FTS5 -DSQLITE_ENABLE_RTREE \
               -DSQLITE_ENABLE_MATH_FUNCTIONS -DSQLITE_ENABLE_DBSTAT_VTAB -DSQLITE_ENABLE_COLUMN_METADATA \
               -DSQLITE_ENABLE_PREUPDATE_HOOK \
               -Dsqlite3_column_decltype=sqlite3_column_decltype_declared
SQLITE_OBJ  := $(BUILD)/third/sqlite3.o
# PGO=1: SQLite compiled with profile feedback (the rules below); the default with gcc, whose
# profile files the rules know. PGO=0 compiles it once, plainly. (The engine is not: bench/README.)
PGO ?= $(if $(shell $(CC) --version 2>/dev/null | grep -iq clang || echo gcc),1,0)
# Compiled components (src/component/native*.c) are shared objects trail loads; they call into
# trail, which exports to them wasm2c's runtime, the WASI functions, the `trail` imports and the
# CPU budget's tick, and nothing else.
NATIVE_LDFLAGS := -Wl,--export-dynamic-symbol=wasm_rt_* -Wl,--export-dynamic-symbol=Z_trailZ_* \
                  -Wl,--export-dynamic-symbol=Z_wasi_snapshot_preview1Z_* \
                  -Wl,--export-dynamic-symbol=comp_native_tick
# Cluster mode embeds a dqlite node (libdqlite, Debian's 1.11; src/cluster/). libdqlite is linked
# against the system's libsqlite3, but trail exports its own SQLite's API, so the dynamic linker binds
# libdqlite's sqlite3_* calls to trail's SQLite 3.53 (the executable comes first in the lookup
# order): one SQLite, with trail's options and SQL functions, serves both (docs/scaling.md, "Two
# SQLites").
CLUSTER_LDFLAGS := -Wl,--export-dynamic-symbol=sqlite3_* -ldqlite
LDLIBS := -lcurl -lsodium -lm -lpthread -ldl $(NATIVE_LDFLAGS) $(CLUSTER_LDFLAGS)

SRCS      := $(shell find src -name '*.c' ! -path 'src/main.c' | sort)
TEST_SRCS := $(shell find tests -name '*.c' ! -path 'tests/fuzz/*' ! -path 'tests/data/*' | sort)
WAT_SRCS  := $(shell find tests/data -name '*.wat' 2>/dev/null | sort)
LLHTTP_SRCS := $(LLHTTP_DIR)/api.c $(LLHTTP_DIR)/http.c $(LLHTTP_DIR)/llhttp.c

# The test hooks (src/guest/test_hooks.h) are compiled into the test builds only.
REL_OBJS  := $(filter-out $(BUILD)/rel/src/guest/test_hooks.o,$(SRCS:%.c=$(BUILD)/rel/%.o))
THIRD_OBJS := $(patsubst $(LLHTTP_DIR)/%.c,$(BUILD)/third/llhttp_%.o,$(LLHTTP_SRCS)) $(SQLITE_OBJ)
ENGINE_OBJ := $(BUILD)/gen/quickjs.o
# An archive, so the linker pulls the engine in only where something calls it.
ENGINE_LIB := $(BUILD)/gen/libengine.a
WAT_OBJS  := $(patsubst tests/data/%.wat,$(BUILD)/testgen/%.o,$(WAT_SRCS))
WAT_HDRS  := $(patsubst tests/data/%.wat,$(BUILD)/testgen/%.h,$(WAT_SRCS))

# tools/deps.sh installs the Debian and npm packages the build needs. Its stamp is an included
# makefile: GNU make remakes included makefiles first and then starts over, so the rules and file
# lists below (llhttp's C sources under /usr/share/llhttp, the SDK's version, the engine module) are
# read with the packages in place, even on a machine that had none of them. `make clean` and
# `make format` need none of it.
DEPS_STAMP := $(BUILD)/deps.mk
ifneq ($(filter-out clean format,$(or $(MAKECMDGOALS),all)),)
include $(DEPS_STAMP)
endif

# $(call write-if-changed,TEXT): a FORCE target's recipe that rewrites the target only when TEXT
# differs from what it holds. Objects that depend on such a file are rebuilt when their compiler
# flags change, and not on every edit of this Makefile.
define write-if-changed
@mkdir -p $(@D)
@echo '$(1)' | cmp -s - $@ || echo '$(1)' > $@
endef

.PHONY: all test tsan fuzz fuzz-build run bench bench-engine bench-kv bench-auth bench-http bench-reload bench-cluster format clean deps FORCE
all: $(BUILD)/trail

deps: $(DEPS_STAMP)
$(DEPS_STAMP): tools/deps.sh package.json package-lock.json $(wildcard sdk/ts/package-lock.json) \
    $(wildcard tests/browser/package-lock.json)
	@mkdir -p $(@D)
	./tools/deps.sh
	@echo '# Written after tools/deps.sh succeeded; the Makefile includes it (see DEPS_STAMP).' > $@

# ---- the engine: wasm2c output, regenerated only when the pinned module's bytes change ----
$(BUILD)/gen/engine.sha256: FORCE | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@sha256sum $(ENGINE_WASM) | cmp -s - $@ || sha256sum $(ENGINE_WASM) > $@

# The engine's C is wasm2c's output rewritten by tools/engine-fixup.sh: loads without wasm2c's
# barrier, and every load and store addressing memory at a fixed distance from the instance
# (where wrt_instance_new puts it) instead of re-reading its base from the instance after every
# store, JS_FreeValueRT's early returns inline, and the interpreter loop without a step-dump test
# after every bytecode instruction and without a table lookup before it (docs/engine.md). The
# test modules (tests/data/wasm) keep wasm2c's output as it is.
$(BUILD)/gen/quickjs.c $(BUILD)/gen/quickjs.h &: $(BUILD)/gen/engine.sha256 tools/engine-fixup.sh \
    tools/engine-dispatch.awk
	wasm2c --module-name=quickjs $(ENGINE_WASM) -o $(BUILD)/gen/quickjs.c
	ENGINE_FIXUP=$(ENGINE_FIXUP) ./tools/engine-fixup.sh $(BUILD)/gen/quickjs.c $(BUILD)/gen/quickjs.c

# The engine's identity, compiled into trail: name + version, and the SHA-256 of the module with
# its custom sections removed (what a component's engine is compared against).
$(BUILD)/gen/engine_info.h: $(BUILD)/gen/engine.sha256
	@wasm-strip $(ENGINE_WASM) -o $(BUILD)/gen/engine-stripped.wasm
	@{ echo '/* Generated by the Makefile from $(ENGINE_WASM). */'; \
	   echo "#define TRAIL_ENGINE_VERSION \"quickjs-wasi $$(node -p 'require("./node_modules/quickjs-wasi/package.json").version')\""; \
	   echo "#define TRAIL_ENGINE_SHA256 \"$$(sha256sum $(BUILD)/gen/engine-stripped.wasm | cut -c1-64)\""; } > $@
	@rm -f $(BUILD)/gen/engine-stripped.wasm

$(BUILD)/gen/engine.opts: FORCE
	$(call write-if-changed,$(GEN_CFLAGS))
$(ENGINE_OBJ): $(BUILD)/gen/quickjs.c $(BUILD)/gen/engine.opts src/wasm/runtime/wrt.h
	$(CC) $(GEN_CFLAGS) -c $< -o $@
$(ENGINE_LIB): $(ENGINE_OBJ)
	@rm -f $@
	ar rcs $@ $^

# ---- files embedded in trail: the TypeScript project template and the SDK tarball ----
TEMPLATE_FILES := $(shell find sdk/template -type f ! -path '*/node_modules/*' 2>/dev/null | sort)
SDK_VERSION := $(if $(wildcard tools/sdk-pack.sh),$(shell node -p 'require("./sdk/ts/package.json").version' 2>/dev/null))
SDK_TGZ := $(if $(SDK_VERSION),$(BUILD)/sdk/trailbase-wasm-$(SDK_VERSION).tgz)
SDK_SRCS := $(shell find sdk/ts -type f ! -path '*/node_modules/*' ! -path '*/dist/*' 2>/dev/null)
EMBED_ARGS := $(foreach f,$(TEMPLATE_FILES),$(patsubst sdk/template/%,%,$(f))=$(f)) \
              $(if $(SDK_TGZ),trailbase-wasm-$(SDK_VERSION).tgz=$(SDK_TGZ))
# The Rust project (trailbase-guest-rust): its template and the trailbase-wasm crate, embedded under
# names starting with trailbase-guest-rust/ (cli/scaffold.c).
RUST_TEMPLATE_FILES := $(shell find sdk/rust/template -type f ! -path '*/target/*' ! -path '*/dist/*' \
                         ! -name Cargo.lock 2>/dev/null | sort)
RUST_SDK_FILES := sdk/rust/trailbase-wasm/Cargo.toml $(shell find sdk/rust/trailbase-wasm/src -type f 2>/dev/null | sort)
EMBED_ARGS += $(foreach f,$(RUST_TEMPLATE_FILES),trailbase-guest-rust/$(patsubst sdk/rust/template/%,%,$(f))=$(f)) \
              $(foreach f,$(RUST_SDK_FILES),trailbase-guest-rust/trailbase-wasm/$(patsubst sdk/rust/trailbase-wasm/%,%,$(f))=$(f))

$(SDK_TGZ): $(SDK_SRCS) | $(DEPS_STAMP)
	./tools/sdk-pack.sh $(@D)

# The list of embedded names: a file moved in sdk/template changes it, and no file's time.
$(BUILD)/gen/embedded.list: FORCE
	$(call write-if-changed,$(EMBED_ARGS))
$(BUILD)/gen/embedded_files.c: tools/embed.sh $(TEMPLATE_FILES) $(SDK_TGZ) Makefile \
    $(RUST_TEMPLATE_FILES) $(RUST_SDK_FILES) \
    $(BUILD)/gen/embedded.list
	@mkdir -p $(@D)
	./tools/embed.sh $@ cli_embedded_files $(EMBED_ARGS)

# The guest prelude (standard globals of every isolate).
$(BUILD)/gen/prelude_js.c: tools/embed.sh src/guest/prelude.js
	@mkdir -p $(@D)
	./tools/embed.sh $@ guest_prelude_files prelude.js=src/guest/prelude.js

$(BUILD)/rel/prelude_js.o: $(BUILD)/gen/prelude_js.c
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -c $< -o $@

# wasm2c's runtime header, as trail is built with it: compiled components are compiled with it.
$(BUILD)/gen/native_files.c: tools/embed.sh /usr/include/wasm-rt.h | $(DEPS_STAMP)
	@mkdir -p $(@D)
	./tools/embed.sh $@ comp_native_files wasm-rt.h=/usr/include/wasm-rt.h

# trailbase-guest-c's project (`trail components add trailbase-guest-c`): the template and the
# SDK's header.
GUEST_C_FILES := $(wildcard sdk/c/template/*) sdk/c/trailbase.h
$(BUILD)/gen/guest_c_files.c: tools/embed.sh $(GUEST_C_FILES)
	@mkdir -p $(@D)
	./tools/embed.sh $@ cli_guest_c_files $(foreach f,$(GUEST_C_FILES),$(notdir $(f))=$(f))

$(BUILD)/rel/guest_c_files.o: $(BUILD)/gen/guest_c_files.c
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -c $< -o $@

$(BUILD)/rel/native_files.o: $(BUILD)/gen/native_files.c
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -c $< -o $@

$(BUILD)/rel/embedded_files.o: $(BUILD)/gen/embedded_files.c
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -c $< -o $@

# ---- our code ----
$(BUILD)/rel/%.o: %.c | $(BUILD)/gen/quickjs.h $(BUILD)/gen/engine_info.h
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -c $< -o $@

$(BUILD)/third/llhttp.opts: FORCE
	$(call write-if-changed,$(THIRD_CFLAGS))
$(BUILD)/third/llhttp_%.o: $(LLHTTP_DIR)/%.c $(BUILD)/third/llhttp.opts | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(THIRD_CFLAGS) -c $< -o $@

$(BUILD)/third/sqlite.opts: FORCE
	$(call write-if-changed,$(SQLITE_OPTS) pgo=$(PGO))
SQLITE_CC := $(CC) -std=c17 -D_GNU_SOURCE -O2 -g1 -w $(SQLITE_OPTS)
ifeq ($(PGO),1)
# Profile-guided (bench/README.md): SQLite compiled with counters, a training run of a backend's
# usual SQL (tools/sqlite-train.c), then SQLite compiled again with the counts. A 10,000-row
# aggregate takes about a fifth less CPU. Code the run does not reach is compiled as without a
# profile (-fprofile-partial-training). gcc matches a static function's counts by a name that
# includes the compile's dump base, and names the counts' file after it: both compiles name one.
SQLITE_PGO_AUX := -dumpdir $(BUILD)/pgo/ -dumpbase sqlite3.c
$(BUILD)/pgo/sqlite3.o: $(SQLITE_DIR)/sqlite3.c $(BUILD)/third/sqlite.opts | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(SQLITE_CC) $(SQLITE_PGO_AUX) -fprofile-generate -fprofile-update=single \
	    -c $(SQLITE_DIR)/sqlite3.c -o $@
$(BUILD)/pgo/sqlite-train: tools/sqlite-train.c $(BUILD)/pgo/sqlite3.o
	$(CC) -std=c17 -D_GNU_SOURCE $(WARN) -O2 -I$(SQLITE_DIR) -o $@ $^ -lgcov -lm -lpthread
$(BUILD)/pgo/sqlite3.c.gcda: $(BUILD)/pgo/sqlite-train
	@rm -f $@
	@mkdir -p $(BUILD)/pgo/run
	$< $(BUILD)/pgo/run
# -w hides gcc's word that the counts were not found; the check after the compile does not: the
# heart of SQLite, its bytecode engine, must have been laid out as hot code.
$(SQLITE_OBJ): $(BUILD)/pgo/sqlite3.c.gcda
	@mkdir -p $(@D)
	$(SQLITE_CC) $(SQLITE_PGO_AUX) -fprofile-use -fprofile-partial-training \
	    -c $(SQLITE_DIR)/sqlite3.c -o $@
	@objdump -t $@ | grep -q '\.text\.hot.* sqlite3VdbeExec$$' || { rm -f $@; \
	  echo "Makefile: SQLite's profile ($<) did not apply; PGO=0 builds without" >&2; exit 1; }
else
$(SQLITE_OBJ): $(SQLITE_DIR)/sqlite3.c $(BUILD)/third/sqlite.opts | $(DEPS_STAMP)
	$(SQLITE_CC) -c $(SQLITE_DIR)/sqlite3.c -o $@
endif

$(BUILD)/rel/libtrail.a: $(REL_OBJS) $(BUILD)/rel/embedded_files.o $(BUILD)/rel/prelude_js.o \
    $(BUILD)/rel/native_files.o $(BUILD)/rel/guest_c_files.o
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/trail: $(BUILD)/rel/src/main.o $(BUILD)/rel/libtrail.a $(ENGINE_LIB) $(THIRD_OBJS)
	$(CC) -pthread -o $@ $^ $(LDLIBS)

# ---- instrumented builds: $(call instrumented,DIR,CFLAGS,LDFLAGS) builds under $(BUILD)/DIR our
# objects, libtrail.a, trail, and the test runner DIR/run, all with CFLAGS (a sanitizer) ----
define instrumented
$(BUILD)/$(1)/%.o: %.c | $(BUILD)/gen/quickjs.h $(BUILD)/gen/engine_info.h $(WAT_HDRS)
	@mkdir -p $$(@D)
	$$(CC) $(2) -I$(BUILD)/testgen -Itests -c $$< -o $$@
$(BUILD)/$(1)/%.o: $(BUILD)/gen/%.c
	@mkdir -p $$(@D)
	$$(CC) $(2) -c $$< -o $$@
$(BUILD)/$(1)/libtrail.a: $(SRCS:%.c=$(BUILD)/$(1)/%.o) $(BUILD)/$(1)/embedded_files.o \
    $(BUILD)/$(1)/prelude_js.o $(BUILD)/$(1)/native_files.o $(BUILD)/$(1)/guest_c_files.o
	@rm -f $$@
	ar rcs $$@ $$^
$(BUILD)/$(1)/trail: $(BUILD)/$(1)/src/main.o $(BUILD)/$(1)/libtrail.a $(ENGINE_LIB) $(THIRD_OBJS)
	$$(CC) -pthread $(3) -o $$@ $$^ $(LDLIBS)
$(BUILD)/$(1)/run: $(TEST_SRCS:%.c=$(BUILD)/$(1)/%.o) $(BUILD)/$(1)/libtrail.a $(ENGINE_LIB) \
    $(THIRD_OBJS) $(WAT_OBJS)
	$$(CC) -pthread $(3) -o $$@ $(TEST_SRCS:%.c=$(BUILD)/$(1)/%.o) $(WAT_OBJS) \
	    $(BUILD)/$(1)/libtrail.a $(ENGINE_LIB) $(THIRD_OBJS) $(LDLIBS)
endef
$(eval $(call instrumented,asan,$(TEST_CFLAGS),$(SAN)))
$(eval $(call instrumented,tsan,$(TSAN_CFLAGS),$(TSAN)))

# ---- fuzz targets (libFuzzer, with clang): `make fuzz` runs each for FUZZ_SECONDS on its corpus
# under $(BUILD)/fuzz/; `make test` builds them, so that they keep compiling ----
FUZZ_CC      := clang
FUZZ_FLAGS   := -std=c17 -D_GNU_SOURCE -Isrc -I$(LLHTTP_INC) -DLLHTTP_STRICT_MODE=1 -g -O1 \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_BASE    := src/base/alloc.c src/base/err.c src/base/log.c src/base/str.c
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(BUILD)/fuzz/fuzz_http $(BUILD)/fuzz/fuzz_config $(BUILD)/fuzz/fuzz_dqlite
$(BUILD)/fuzz/fuzz_http: tests/fuzz/fuzz_http.c $(wildcard src/http/*.c) src/loop/loop.c \
    $(FUZZ_BASE) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^) $(LLHTTP_SRCS)
$(BUILD)/fuzz/fuzz_config: tests/fuzz/fuzz_config.c src/config/config.c src/config/textproto.c \
    $(FUZZ_BASE)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^)
$(BUILD)/fuzz/fuzz_dqlite: tests/fuzz/fuzz_dqlite.c src/cluster/proto.c $(FUZZ_BASE)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^)
fuzz-build: $(FUZZ_TARGETS)
fuzz: $(FUZZ_TARGETS)
	@set -e; for t in $(FUZZ_TARGETS); do mkdir -p $$t.corpus; echo "fuzz: $$t, $(FUZZ_SECONDS) s"; \
	  rc=0; $$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 $$t.corpus \
	    > $$t.log 2>&1 || rc=$$?; \
	  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY)' $$t.log || true; \
	  if [ $$rc != 0 ]; then tail -40 $$t.log; exit $$rc; fi; done

# ---- hand-written test modules: .wat -> .wasm -> C, compiled like the engine ----
$(BUILD)/testgen/%.wasm: tests/data/%.wat | $(DEPS_STAMP)
	@mkdir -p $(@D)
	wat2wasm $< -o $@
$(BUILD)/testgen/%.c $(BUILD)/testgen/%.h: $(BUILD)/testgen/%.wasm
	wasm2c --module-name=$(notdir $*) $< -o $(BUILD)/testgen/$*.c
$(BUILD)/testgen/%.o: $(BUILD)/testgen/%.c
	$(CC) $(GEN_CFLAGS) -c $< -o $@


# ---- the Rust examples (examples/rust), built with the real toolchain for the tests, which
# find them in TRAIL_RUST_DIR ----
RUST_EXAMPLE_SRCS := $(shell find examples/rust sdk/rust/template -name '*.rs' -o -name Cargo.toml \
                       2>/dev/null | sort)
$(BUILD)/rust/examples.stamp: tools/rust-build.sh $(RUST_EXAMPLE_SRCS) $(RUST_SDK_FILES) | $(DEPS_STAMP)
	./tools/rust-build.sh examples/rust $(BUILD)/rust
	@touch $@
# and the tests' own Rust components (tests/data/rust), into the same directory
RUST_TEST_SRCS := $(shell find tests/data/rust -name '*.rs' -o -name Cargo.toml 2>/dev/null | sort)
$(BUILD)/rust/tests.stamp: tools/rust-build.sh $(RUST_TEST_SRCS) $(RUST_SDK_FILES) | $(DEPS_STAMP)
	./tools/rust-build.sh tests/data/rust $(BUILD)/rust
	@touch $@

# The test runner finds the binaries under test through these variables.
# tools/check-layers.sh first: an #include from a lower layer to a higher one fails the run.
test: $(BUILD)/asan/run $(BUILD)/asan/trail $(BUILD)/trail $(FUZZ_TARGETS) $(BUILD)/rust/examples.stamp \
      $(BUILD)/rust/tests.stamp
	./tools/check-layers.sh
	TRAIL_BIN=$(abspath $(BUILD)/asan/trail) TRAIL_REL_BIN=$(abspath $(BUILD)/trail) \
	TRAIL_RUST_DIR=$(abspath $(BUILD)/rust) \
	TRAIL_ROOT=$(CURDIR) TRAIL_TEST_OUTPUT=$(CURDIR)/$(BUILD)/test-output \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/asan/run $(T)

# The tests where trail's threads meet (T= to choose others), under ThreadSanitizer: a race
# report ends the process that found it, and fails the test.
TSAN_TESTS ?= kv_ e2e_cluster_guest_sql_through_the_leader e2e_cluster_guest_transactions hostile_cluster_guest e2e_kv e2e_reload e2e_jobs e2e_cli_jobs hostile_parallel e2e_http loop_ e2e_records_realtime hostile_auth_credential e2e_native_quickstart
tsan: $(BUILD)/tsan/run $(BUILD)/tsan/trail $(BUILD)/trail
	@set -e; for t in $(or $(T),$(TSAN_TESTS)); do \
	  TRAIL_BIN=$(abspath $(BUILD)/tsan/trail) TRAIL_REL_BIN=$(abspath $(BUILD)/trail) \
	  TRAIL_ROOT=$(CURDIR) TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$(CURDIR)/tools/tsan.supp" \
	  $(BUILD)/tsan/run $$t; done

run: $(BUILD)/trail
	./tools/demo.sh $(BUILD)/trail

# The benchmark table (bench/README.md): endpoints of a component, each beside the references.
bench: $(BUILD)/trail
	./bench/run.sh $(BUILD)/trail

# The engine's microbenchmarks: isolate creation, host->JS->host calls, JSON.stringify.
$(BUILD)/bench/bench_engine: bench/engine/bench_engine.c $(BUILD)/rel/libtrail.a $(ENGINE_LIB) $(THIRD_OBJS)
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $< $(BUILD)/rel/libtrail.a $(ENGINE_LIB) $(THIRD_OBJS) $(LDLIBS)
bench-engine: $(BUILD)/bench/bench_engine
	$(BUILD)/bench/bench_engine

# The key-value store's increments per second with one thread and two (bench/kv/bench_kv.c).
$(BUILD)/bench/bench_kv: bench/kv/bench_kv.c $(BUILD)/rel/libtrail.a
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $< $(BUILD)/rel/libtrail.a $(LDLIBS)
bench-kv: $(BUILD)/bench/bench_kv
	$(BUILD)/bench/bench_kv

# Resolving a request's caller: an access token's verification, CPU microseconds per call.
$(BUILD)/bench/bench_jwt: bench/auth/bench_jwt.c $(BUILD)/rel/libtrail.a $(ENGINE_LIB) $(THIRD_OBJS)
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $< $(BUILD)/rel/libtrail.a $(ENGINE_LIB) $(THIRD_OBJS) $(LDLIBS)
bench-auth: $(BUILD)/bench/bench_jwt
	$(BUILD)/bench/bench_jwt

# Hot reload: from a new dist/component.wasm being complete to the first response from its code,
# median and max over 20 reloads under a steady client load, against the release build.
bench-reload: $(BUILD)/asan/run $(BUILD)/trail
	TRAIL_BIN=$(abspath $(BUILD)/trail) TRAIL_ROOT=$(CURDIR) \
	$(BUILD)/asan/run e2e_reload_under_load_never_drops_a_request

# make bench's cluster line alone: three trail nodes in a cluster beside one trail (bench/cluster.py).
bench-cluster: $(BUILD)/trail
	python3 bench/cluster.py $(BUILD)/trail

# GET /api/healthcheck with wrk: trail (one worker) beside nginx, CPU microseconds per request.
bench-http: $(BUILD)/trail
	./bench/http/bench.sh $(BUILD)/trail

format:
	clang-format -i $$(find src tests bench -name '*.c' -o -name '*.h')

clean:
	rm -rf $(BUILD)

FORCE:

# Keep generated intermediates (the test modules' .wasm, .c and .h) so rebuilds stay incremental.
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
