# ringcast: the one build.  `make` builds everything into $(BUILD)/.
#   make            libringcast (.so/.a), ringcastd, ringcast, BPF objects
#   make check      installs missing packages, builds, runs every test
#                   (also under ASan+UBSan, and the ring's threads under TSan)
#   make demo       installs missing packages, builds, runs the demo
#   make bench      fan-out benchmark
#   make fuzz       libFuzzer targets ($(BUILD)-fuzz/)
#   make install    PREFIX=/usr/local DESTDIR= (as root, no DESTDIR: also
#                   creates the group ringcast if missing)
# V=1 shows the commands.  SAN=address,undefined or SAN=thread builds a
# sanitizer variant (use a separate BUILD=...).

BUILD   ?= build
CC      ?= gcc
PREFIX  ?= /usr/local
DESTDIR ?=
SAN     ?=
VERSION := 0.1.0
# The shared object: the real file carries the version, the soname only
# its major (what a program linked against it asks the loader for), and
# libringcast.so is the name -lringcast finds at link time.
SONAME  := libringcast.so.0
SOREAL  := libringcast.so.$(VERSION)

ifeq ($(V),1)
Q :=
else
Q := @
endif

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes
# LTO: a publish runs through client_pub.c, ring_pub.c and client.c, and
# inlining across them takes about a third off its cost (docs/benchmarks.md,
# Findings).  Fat objects keep libringcast.a usable by non-LTO links.
CFLAGS  ?= -O2 -g -flto=auto -ffat-lto-objects
AR      := gcc-ar
# include/ is what every program sees; lib/'s internal headers are for
# the library, the daemon, the unit tests and the integration tests'
# harness only.  The CLI is a program like any user's, and links the
# shared library.  The integration tests see include/ and, by path, the
# two format headers (lib/ring_format.h, lib/proto.h) an attacker knows
# from the docs; their harness is their one door into the rest
# (tests/integration/harness.h).
BASEFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -Iinclude -MMD -MP -fno-strict-aliasing
INTERNAL  := -Ilib
ifeq ($(shell uname -m),x86_64)
BASEFLAGS += -mcx16
endif
ifneq ($(SAN),)
BASEFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer
LDSAN := -fsanitize=$(SAN)
endif
ALL_CFLAGS := $(BASEFLAGS) $(CFLAGS)
# What the links need of CFLAGS: the same optimisation, LTO or not.
LDOPT := $(filter -O% -flto% -g,$(CFLAGS))
ifneq ($(filter -flto%,$(CFLAGS)),)
# Each file was compiled with -Werror already; across files GCC's
# maybe-uninitialized guesses wrong where an out-parameter is set on
# success only, so the link does not repeat that one warning.
LDOPT += -Wno-maybe-uninitialized
# Tests link the archive's plain (fat) code: they need no LTO, and link
# faster without it.
NOLTO := -fno-lto
endif
LIBS_URING := $(shell pkg-config --libs liburing 2>/dev/null || echo -luring)
# The daemon keys topic ids with SipHash (daemon/topic_key.h).
LIBS_SODIUM := $(shell pkg-config --libs libsodium 2>/dev/null || echo -lsodium)
LDLIBS_COMMON := -lpthread

LIB_SRCS    := $(sort $(wildcard lib/*.c))
DAEMON_SRCS := $(sort $(wildcard daemon/*.c))
# The CLI (tools/: main, shared parsing, one file a command) and the
# benchmark it runs (tools/bench/; its peer modules are built apart).
TOOL_SRCS   := $(sort $(wildcard tools/*.c))
BENCH_SRCS  := $(sort $(wildcard tools/bench/*.c))
UNIT_SRCS   := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRCS   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
ITEST_SRCS  := $(sort $(wildcard tests/integration/it_*.c))

LIB_OBJS    := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(BUILD)/obj/%.o)
TOOL_OBJS   := $(TOOL_SRCS:%.c=$(BUILD)/obj/%.o)
BENCH_OBJS  := $(BENCH_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_BINS   := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
ITEST_BINS  := $(ITEST_SRCS:tests/integration/%.c=$(BUILD)/itests/%)

.DELETE_ON_ERROR:
.PHONY: all check demo bench bench-peers fuzz install clean deps test-unit test-integration \
	test-unprivileged test-asan test-tsan test-header test-fuzz test-packaging FORCE

all: $(BUILD)/libringcast.so $(BUILD)/libringcast.a $(BUILD)/ringcastd $(BUILD)/ringcast \
	$(BUILD)/ringcast.pc $(UNIT_BINS) $(ITEST_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(LIB_OBJS) $(DAEMON_OBJS): ALL_CFLAGS += $(INTERNAL)

$(BUILD)/libringcast.a: $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# Only ringcast_* leaves the shared object (lib/libringcast.map).
$(BUILD)/$(SOREAL): $(LIB_OBJS) lib/libringcast.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDOPT) -shared -Wl,-soname,$(SONAME) -Wl,-z,defs \
		-Wl,--version-script=lib/libringcast.map $(LDSAN) -o $@ $(LIB_OBJS) $(LDLIBS_COMMON) $(LIBS_URING)

# The links, as install makes them: a program linked against $(BUILD)/
# (with an rpath to it) finds its libringcast.so.0 there.
$(BUILD)/$(SONAME): $(BUILD)/$(SOREAL)
	$(Q)ln -sf $(SOREAL) $@
$(BUILD)/libringcast.so: $(BUILD)/$(SONAME)
	$(Q)ln -sf $(SONAME) $@

$(BUILD)/ringcastd: $(DAEMON_OBJS) $(BUILD)/libringcast.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDOPT) $(LDSAN) -o $@ $(DAEMON_OBJS) $(BUILD)/libringcast.a $(LIBS_URING) \
		$(LIBS_SODIUM) $(LDLIBS_COMMON)

# The benchmark reports through the CLI's messages and parses with its
# helpers (tools/cli.h).
$(BENCH_OBJS): ALL_CFLAGS += -Itools

# Against the shared library, as any user's program: it finds it beside
# itself in $(BUILD), and in ../lib once installed.
$(BUILD)/ringcast: $(TOOL_OBJS) $(BENCH_OBJS) $(BUILD)/libringcast.so
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDOPT) $(LDSAN) -o $@ $(TOOL_OBJS) $(BENCH_OBJS) $(TRACE_OBJS) -L$(BUILD) -lringcast \
		-Wl,-rpath,'$$ORIGIN:$$ORIGIN/../lib' $(LDLIBS_COMMON) $(LIBS_BPF) -lm

# The programs' code for their unit tests: every object of ringcastd and
# of ringcast but the one holding main(), so a test links the code it
# tests as the program does, instead of compiling it in.  Internal: never
# installed.  The programs themselves still link their objects directly.
DAEMON_INTERNAL := $(BUILD)/libringcastd-internal.a
CLI_INTERNAL    := $(BUILD)/libringcast-cli-internal.a

$(DAEMON_INTERNAL): $(filter-out $(BUILD)/obj/daemon/main.o,$(DAEMON_OBJS))
$(CLI_INTERNAL): $(filter-out $(BUILD)/obj/tools/ringcast.o,$(TOOL_OBJS)) $(BENCH_OBJS)
$(DAEMON_INTERNAL) $(CLI_INTERNAL):
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# Which tests link which: before libringcast.a, which both archives use.
$(BUILD)/tests/test_config $(BUILD)/tests/test_ring $(BUILD)/tests/test_ring_mt: $(DAEMON_INTERNAL)
$(BUILD)/tests/test_cli_args $(BUILD)/tests/test_bench_args $(BUILD)/tests/test_hist: $(CLI_INTERNAL)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libringcast.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(INTERNAL) $(NOLTO) $(LDSAN) -o $@ $< $(filter %-internal.a,$^) $(BUILD)/libringcast.a \
		-lcmocka $(LIBS_URING) $(LDLIBS_COMMON) -lm

# Integration tests: real processes against a real ringcastd (tests/integration/run.sh).
# The harness alone is compiled with $(INTERNAL), into an archive the
# tests link; the tests themselves are not, so a test that reaches into
# lib/ other than through the harness does not compile.  Plain code, as
# the tests: no LTO, no -fPIC.
HARNESS_SRCS := $(sort $(wildcard tests/integration/harness*.c))
HARNESS_OBJS := $(HARNESS_SRCS:%.c=$(BUILD)/obj/%.o)
HARNESS_LIB  := $(BUILD)/itests/libharness.a

$(HARNESS_OBJS): $(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(INTERNAL) $(NOLTO) -c $< -o $@

$(HARNESS_LIB): $(HARNESS_OBJS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/itests/%: tests/integration/%.c $(HARNESS_LIB) $(BUILD)/libringcast.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  ITEST   $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(NOLTO) $(LDSAN) -Itests/integration -o $@ $< $(HARNESS_LIB) \
		$(BUILD)/libringcast.a -lcmocka $(LIBS_URING) $(LDLIBS_COMMON) -lm

# The .pc names PREFIX, so it is made again whenever PREFIX is not the
# one it was made with: `make` then `make install PREFIX=/opt/x` must not
# install a .pc that says /usr/local.  $(BUILD)/prefix holds that PREFIX
# and is rewritten (so newer) only when it changes.  DESTDIR is where
# install puts the files, never a path they name.
$(BUILD)/prefix: FORCE
	@mkdir -p $(dir $@)
	$(Q)echo '$(PREFIX)' | cmp -s - $@ || echo '$(PREFIX)' > $@

$(BUILD)/ringcast.pc: lib/ringcast.pc.in $(BUILD)/prefix
	@mkdir -p $(dir $@)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

# ---- BPF: delivery tracing (bpf/, `ringcast trace`, docs/tracing.md) ----
# vmlinux.h is generated from the running kernel's BTF; the CO-RE object
# is built with clang -target bpf and embedded in a skeleton header
# (bpftool gen skeleton) that the loader bpf/ringcast_trace.c includes.
# The loader and helpers link into build/ringcast and it_trace.
BPF_CLANG     ?= clang
BPFTOOL       ?= bpftool
LLVM_STRIP    ?= llvm-strip
BPF_ARCH      := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BPF_MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
BPF_OUT       := $(BUILD)/bpf
BPF_OBJS      := $(BPF_OUT)/ringcast_trace.bpf.o
BPF_SKELS     := $(BPF_OBJS:.bpf.o=.skel.h)
TRACE_OBJS    := $(BUILD)/obj/bpf/ringcast_trace.o $(BUILD)/obj/bpf/trace_helpers.o
LIBS_BPF      := -lbpf -lelf -lz

all: $(BPF_SKELS)
.SECONDARY: $(BPF_OBJS) # a build output (docs/tracing.md), not an intermediate to delete

$(BPF_OUT)/vmlinux.h:
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BTF     $@")
	$(Q)test -r /sys/kernel/btf/vmlinux || { echo "no /sys/kernel/btf/vmlinux: the BPF" \
		"tracer needs a kernel built with CONFIG_DEBUG_INFO_BTF=y" >&2; exit 1; }
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(BPF_OUT)/%.bpf.o: bpf/%.bpf.c bpf/%.h $(BPF_OUT)/vmlinux.h
	@$(if $(Q),echo "  BPF     $@")
	$(Q)$(BPF_CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(BPF_ARCH) \
		-I$(BPF_OUT) -Ibpf $(if $(BPF_MULTIARCH),-idirafter /usr/include/$(BPF_MULTIARCH)) \
		-c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@ # DWARF out, BTF stays

$(BPF_OUT)/%.skel.h: $(BPF_OUT)/%.bpf.o
	@$(if $(Q),echo "  SKEL    $@")
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(TRACE_OBJS): ALL_CFLAGS += -I$(BPF_OUT) -Ibpf
$(TRACE_OBJS): $(BPF_SKELS)
$(BUILD)/obj/tools/cmd_trace.o: ALL_CFLAGS += -Ibpf
$(BUILD)/ringcast: $(TRACE_OBJS)

# As the other integration tests, and the tracer's loader (bpf/).
$(BUILD)/itests/it_trace: tests/integration/it_trace.c $(HARNESS_LIB) $(BUILD)/libringcast.a \
		$(TRACE_OBJS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  ITEST   $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(NOLTO) $(LDSAN) -Itests/integration -Ibpf -o $@ $< $(HARNESS_LIB) \
		$(TRACE_OBJS) $(BUILD)/libringcast.a -lcmocka $(LIBS_URING) $(LDLIBS_COMMON) $(LIBS_BPF) -lm
# ---- end of the BPF section ----

deps:
	$(Q)tools/install-deps.sh build

# ---- tests ----
test-unit: all
	$(Q)tests/run-unit.sh $(BUILD)

test-integration: all
	$(Q)RINGCAST_BUILD=$(BUILD) tests/integration/run.sh

# The integration tests again, against a ringcastd confined as its systemd
# unit confines it: user ringcast, no capability, the unit's system call
# filter (tests/integration/run-unprivileged.sh; root only, creates the user).
test-unprivileged: all
	$(Q)tests/integration/run-unprivileged.sh $(BUILD)

test-header:
	@mkdir -p $(BUILD)/tests
	$(Q)echo '#include <ringcast.h>' | $(CC) -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude -x c -c - -o $(BUILD)/tests/header-c.o
	$(Q)echo '#include <ringcast.h>' | g++ -std=c++11 -Wall -Wextra -Werror -pedantic -Iinclude -x c++ -c - -o $(BUILD)/tests/header-cxx.o
	@echo "  header  include/ringcast.h compiles alone as C11 and C++11"

# make install into a scratch DESTDIR with a PREFIX other than the one
# `all` made the .pc with; tests/packaging.sh checks what landed there
# and runs a program linked against $(BUILD)/libringcast.so.
PKGTEST_PREFIX := /opt/ringcast-pkgtest
test-packaging: all
	$(Q)rm -rf $(BUILD)/pkgtest
	$(Q)$(MAKE) --no-print-directory install PREFIX=$(PKGTEST_PREFIX) DESTDIR=$(abspath $(BUILD))/pkgtest >/dev/null
	$(Q)tests/packaging.sh $(BUILD) $(abspath $(BUILD))/pkgtest $(PKGTEST_PREFIX)

test-asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan SAN=address,undefined CFLAGS="-O1 -g" all
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		tests/run-unit.sh build-asan
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		RINGCAST_BUILD=build-asan tests/integration/run.sh

test-tsan:
	$(Q)$(MAKE) --no-print-directory BUILD=build-tsan SAN=thread CFLAGS="-O1 -g" build-tsan/tests/test_ring_mt
	$(Q)TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/test_ring_mt

FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)-fuzz/%)
# Each target is built from source with the fuzzer's instrumentation, so
# it cannot link the programs' objects; fuzz_config gets the daemon's
# config files as sources of their own, next to lib/'s.
FUZZ_CONFIG_SRCS := daemon/acl.c daemon/config.c daemon/config_args.c daemon/config_settings.c
$(BUILD)-fuzz/fuzz_config: FUZZ_EXTRA_SRCS := $(FUZZ_CONFIG_SRCS)
$(BUILD)-fuzz/fuzz_config: $(FUZZ_CONFIG_SRCS) $(wildcard daemon/*.h)
# The keeper's message decoder; keeper.c logs through log.c.
$(BUILD)-fuzz/fuzz_keeper: FUZZ_EXTRA_SRCS := daemon/keeper.c daemon/log.c
$(BUILD)-fuzz/fuzz_keeper: daemon/keeper.c daemon/keeper.h daemon/log.c
# The daemon's side of the ring: its repair reads what publishers wrote.
$(BUILD)-fuzz/fuzz_ring: FUZZ_EXTRA_SRCS := daemon/ring_daemon.c
$(BUILD)-fuzz/fuzz_ring: daemon/ring_daemon.c daemon/ring_daemon.h
$(BUILD)-fuzz/%: tests/fuzz/%.c $(LIB_SRCS) $(wildcard lib/*.h include/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang -std=gnu11 -D_GNU_SOURCE -Iinclude -Ilib -g -O1 -mcx16 -fsanitize=fuzzer,address,undefined \
		-o $@ $< $(FUZZ_EXTRA_SRCS) $(LIB_SRCS) $(LIBS_URING) -lpthread

fuzz: $(FUZZ_BINS)

# A short run of every fuzz target over its seed corpus (make check).
test-fuzz: fuzz
	$(Q)for f in $(FUZZ_BINS); do n=$$(basename $$f); \
		mkdir -p $(BUILD)-fuzz/corpus-$$n; \
		$$f -max_total_time=$${FUZZ_SECONDS:-20} -max_len=70000 $(BUILD)-fuzz/corpus-$$n tests/fuzz/corpus/$$n \
			>$(BUILD)-fuzz/$$n.log 2>&1 || { tail -40 $(BUILD)-fuzz/$$n.log; exit 1; }; \
		echo "  fuzz    $$n: $$(grep -c . $(BUILD)-fuzz/$$n.log) log lines, no crash"; done

check: deps
	$(Q)$(MAKE) --no-print-directory all test-header
	$(Q)$(MAKE) --no-print-directory test-packaging
	$(Q)$(MAKE) --no-print-directory test-unit test-integration test-unprivileged
	$(Q)$(MAKE) --no-print-directory test-asan
	$(Q)$(MAKE) --no-print-directory test-tsan
	$(Q)$(MAKE) --no-print-directory test-fuzz
	@echo "make check: all passed"

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/demo.sh $(BUILD)

# ---- bench: ringcast against its peers (tools/bench/bench.sh, docs/benchmarks.md) ----
# The peers (ZeroMQ, nng, Redis) are modules that `ringcast bench
# --transport` loads from $(BUILD)/bench-peers/; only bench-peers builds
# them, after installing their packages, so make and make check never
# need libzmq, nng or hiredis.
BENCH_PEERS     := zmq nng redis
BENCH_PEER_SOS  := $(BENCH_PEERS:%=$(BUILD)/bench-peers/%.so)
BENCH_LIBS_zmq  := -lzmq
BENCH_LIBS_nng  := -lnng
BENCH_LIBS_redis := -lhiredis

$(BUILD)/bench-peers/%.so: tools/bench/peers/%.c tools/bench/bench_transport.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  PEER    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Itools/bench -fPIC -shared -Wl,-z,defs -o $@ $< $(BENCH_LIBS_$*)

bench-peers:
	$(Q)tools/install-deps.sh bench
	$(Q)$(MAKE) --no-print-directory $(BENCH_PEER_SOS)

bench: all bench-peers
	$(Q)tools/bench/bench.sh $(BUILD)
# ---- end of the bench section ----

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/lib \
		$(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(BUILD)/ringcast $(DESTDIR)$(PREFIX)/bin/ringcast
	install -m 0755 $(BUILD)/ringcastd $(DESTDIR)$(PREFIX)/sbin/ringcastd
	install -m 0755 $(BUILD)/$(SOREAL) $(DESTDIR)$(PREFIX)/lib/$(SOREAL)
	ln -sf $(SOREAL) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libringcast.so
	install -m 0644 $(BUILD)/libringcast.a $(DESTDIR)$(PREFIX)/lib/libringcast.a
	install -m 0644 include/ringcast.h $(DESTDIR)$(PREFIX)/include/ringcast.h
	install -m 0644 $(BUILD)/ringcast.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/ringcast.pc
# The socket's group (docs/operations.md, "Who gets in"): made on this
# host only, by root, and never for a staged install (DESTDIR).
	$(Q)if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && ! getent group ringcast >/dev/null; then \
		echo "groupadd --system ringcast"; groupadd --system ringcast; fi

clean:
	rm -rf build build-asan build-tsan build-fuzz $(BUILD) $(BUILD)-fuzz

# Tests too: they must rebuild when a header they include changes.
-include $(shell find $(BUILD)/obj $(BUILD)/tests $(BUILD)/itests -name '*.d' 2>/dev/null)
