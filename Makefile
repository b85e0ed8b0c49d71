# helpgate - plain GNU Makefile (after Redis src/Makefile).
#
#   make            build bin/helpgate-milter, bin/helpgate-worker, bin/helpgatectl
#   make deps       install missing Debian packages (prints the apt-get line if not root)
#   make run        deps + build + a private Postfix on 127.0.0.1:2525 with milter
#                   and worker, mail under var/mail (MTA=system: the daemons only)
#   make demo       client messages through make run's stack, and what became of them
#   make check      deps + ASan/UBSan build + every unit and integration test
#   make bench      deps + release build + benchmarks (ratios against baselines)
#   make fuzz       libFuzzer targets for a while (FUZZ_SECONDS=60)
#   make eval       the classifier on labelled mail (tests/eval/; EVAL_ARGS=--misses)
#   make model      train the learned part of triage on the dev part (conf/keywords/triage.model)
#   make install    install (PREFIX, DESTDIR, SYSCONFDIR, ...: see mk/install.mk); make uninstall

CC        ?= gcc
PKGS      := milter libetpan sqlite3 libpq libcurl libxml-2.0 gnutls libcares libpsl cairo
CPPFLAGS  += -D_GNU_SOURCE -Ishared -Iworker
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -MMD -MP
LDLIBS    += -lstemmer -lm -lpthread

# SANITIZE=1: AddressSanitizer + UndefinedBehaviorSanitizer, separate tree.
ifeq ($(SANITIZE),1)
  BUILD   := build/san
  BIN     := build/san/bin
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
else
  BUILD   := build/rel
  BIN     := bin
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CPPFLAGS  += $(PKG_CFLAGS)

SHARED_SRC := $(wildcard shared/*.c)
SHARED_OBJ := $(SHARED_SRC:%.c=$(BUILD)/%.o)
MILTER_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard milter/*.c))
# worker/ modules shared by the daemon and helpgatectl (acknowledgements,
# notices, the outbox); each program adds its own main.
WORKER_MODS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out worker/helpgatectl.c worker/helpgate-worker.c worker/ctl_%.c,$(wildcard worker/*.c)))
CTL_MODS   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard worker/ctl_*.c))
WORKER_OBJ := $(BUILD)/worker/helpgate-worker.o $(WORKER_MODS)
CTL_OBJ    := $(BUILD)/worker/helpgatectl.o $(CTL_MODS) $(WORKER_MODS)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
LIBHG      := $(BUILD)/libhelpgate.a

PROGRAMS   := $(BIN)/helpgate-milter $(BIN)/helpgate-worker $(BIN)/helpgatectl
TOOLS      := $(BIN)/trivial-milter

.PHONY: all deps run demo check bench fuzz clean unit programs install uninstall
all: $(PROGRAMS)
programs: $(PROGRAMS) $(TOOLS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIBHG): $(SHARED_OBJ)
	$(AR) rcs $@ $^

$(BIN)/helpgate-milter: $(MILTER_OBJ) $(LIBHG)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BIN)/helpgate-worker: $(WORKER_OBJ) $(LIBHG)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BIN)/helpgatectl: $(CTL_OBJ) $(LIBHG)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BIN)/trivial-milter: $(BUILD)/tests/bench/trivial-milter.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBHG)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

deps:
	@sh tests/lib/deps.sh

# make run: a private Postfix on 127.0.0.1:2525 with the milter and the
# worker, mail delivered under var/mail; MTA=system: the daemons only, for
# a machine whose own Postfix is set up to use them.
run: deps
	@$(MAKE) --no-print-directory all
ifeq ($(MTA),system)
	@sh scripts/run-dev.sh
else
	@bash scripts/run-stack.sh
endif

# make demo: a handful of client messages through make run's stack (started
# here when it is not running), and what became of each.
demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh

# UNIT_BIN names this make's BUILD tree, so the sanitizer tree is reached
# through a target name, not through the expanded list.
.PHONY: unit-bins
unit-bins: $(UNIT_BIN) $(BUILD)/tests/eval-classify

unit:
	@$(MAKE) --no-print-directory SANITIZE=1 unit-bins

check: deps
	@$(MAKE) --no-print-directory SANITIZE=1 programs unit-bins
	@$(MAKE) --no-print-directory fuzz-build
	@bash tests/run.sh build/san

# bench-classify is built when its source exists; tests/bench/run.sh skips it otherwise.
BENCH_TOOLS := $(if $(wildcard tests/bench/bench-classify.c),$(BUILD)/tests/bench-classify) \
	       $(BUILD)/tests/bench-timers
bench: deps
	@$(MAKE) --no-print-directory programs $(BENCH_TOOLS)
	@bash tests/bench/run.sh

$(BUILD)/tests/bench-timers: $(BUILD)/tests/bench/bench-timers.o $(WORKER_MODS) $(LIBHG)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

# make eval: the classifier on labelled mail written from the rubric alone
# (tests/eval/: a dev part to look at, a test part only scored).
EVAL_CORPORA := $(wildcard tests/eval/corpus-*)
.PHONY: eval
eval: deps
	@$(MAKE) --no-print-directory $(BUILD)/tests/eval-classify
	@$(BUILD)/tests/eval-classify conf/keywords $(EVAL_ARGS) $(EVAL_CORPORA)

# make model: trains the learned part of triage on the dev part of the
# corpora only and writes conf/keywords/triage.model (MODEL_ARGS: --epochs,
# --rate, --l2, --p1-weight; choose them with EVAL_ARGS="--cv 5").
.PHONY: model
model: deps
	@$(MAKE) --no-print-directory $(BUILD)/tests/eval-classify
	@$(BUILD)/tests/eval-classify conf/keywords --train conf/keywords/triage.model $(MODEL_ARGS) $(EVAL_CORPORA)

$(BUILD)/tests/eval-classify: $(BUILD)/tests/eval/eval.o $(LIBHG)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BUILD)/tests/bench-classify: $(BUILD)/tests/bench/bench-classify.o $(LIBHG)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

# libFuzzer needs clang; the targets link the shared sources directly.
FUZZ_CC    ?= clang
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ishared $(PKG_CFLAGS)
FUZZ_BIN   := build/fuzz/fuzz-msg build/fuzz/fuzz-mailhints build/fuzz/fuzz-spool build/fuzz/fuzz-authres \
	      build/fuzz/fuzz-mailcmd
.PHONY: fuzz-build
fuzz-build: $(FUZZ_BIN)
build/fuzz/fuzz-msg: tests/fuzz/fuzz_msg.c $(SHARED_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)
build/fuzz/fuzz-mailhints: tests/fuzz/fuzz_mailhints.c $(SHARED_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)
build/fuzz/fuzz-spool: tests/fuzz/fuzz_spool.c $(SHARED_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)
build/fuzz/fuzz-authres: tests/fuzz/fuzz_authres.c $(SHARED_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)
build/fuzz/fuzz-mailcmd: tests/fuzz/fuzz_mailcmd.c $(SHARED_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

FUZZ_SECONDS ?= 60
# Seconds one input may take: decoding and classifying are linear, so an
# input slower than this is a finding (tests/fuzz/corpus/adv-*: the shapes
# of bench-classify that once took seconds).
FUZZ_TIMEOUT ?= 2
fuzz: deps fuzz-build
	@mkdir -p tests/fuzz/corpus-run
	build/fuzz/fuzz-msg -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=$(FUZZ_TIMEOUT) tests/fuzz/corpus-run tests/fuzz/corpus tests/data
	@mkdir -p build/fuzz/corpus-mailhints-run
	build/fuzz/fuzz-mailhints -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build/fuzz/corpus-mailhints-run tests/fuzz/corpus-mailhints tests/data
	@mkdir -p build/fuzz/corpus-spool-run
	build/fuzz/fuzz-spool -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build/fuzz/corpus-spool-run tests/fuzz/corpus-spool
	@mkdir -p build/fuzz/corpus-authres-run
	build/fuzz/fuzz-authres -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=2 build/fuzz/corpus-authres-run tests/fuzz/corpus-authres
	@mkdir -p build/fuzz/corpus-mailcmd-run
	build/fuzz/fuzz-mailcmd -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=2 build/fuzz/corpus-mailcmd-run tests/fuzz/corpus-mailcmd tests/data

clean:
	rm -rf build bin

include mk/install.mk

-include $(shell find build -name '*.d' -type f 2>/dev/null)
