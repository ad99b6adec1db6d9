# kiln — one entry point for everything: deps, build, run, test, bench, install.
#
#   make run            install what is missing, build, compile and run the flagship example
#   make test           install what is missing, build, run every test
#   make test-sanitize  the tests again under ASan+UBSan; runtime thread tests under TSan
#   make fuzz           libFuzzer on the .kg parser for a bounded time
#   make bench          benchmarks (ratios against baselines measured in the same run)
#   make install PREFIX=/usr/local
#
# LLVM 19 is the floor: plain llvm-config on Debian 12 is LLVM 14, so the
# versioned name is the default.  `make LLVM_CONFIG=llvm-config-22` works too.

LLVM_CONFIG ?= llvm-config-19
PYTHON      ?= /usr/bin/python3
PREFIX      ?= /usr/local
B           ?= build
SAN         ?=
FUZZ_SECONDS ?= 60

CC       ?= cc
OPT      ?= -O2
CFLAGS_COMMON = -std=c17 -Wall -Wextra -Wno-unused-parameter -g $(OPT) -D_GNU_SOURCE $(SAN)
LLVM_CFLAGS := $(shell $(LLVM_CONFIG) --cflags 2>/dev/null | sed 's/-D_GNU_SOURCE//')
LLVM_LIBS   := $(shell $(LLVM_CONFIG) --ldflags 2>/dev/null) $(shell $(LLVM_CONFIG) --libs 2>/dev/null)

RT_CFLAGS = $(CFLAGS_COMMON) -fPIC -Iruntime -pthread
KC_CFLAGS = $(CFLAGS_COMMON) -Icompiler -Iruntime $(LLVM_CFLAGS) -DKILN_LLVM_VERSION='"$(shell $(LLVM_CONFIG) --version)"'

RT_SRC  := $(wildcard runtime/*.c)
KC_SRC  := $(wildcard compiler/ir/*.c compiler/passes/*.c compiler/ops/*.c compiler/lower/*.c compiler/driver/*.c)
KC_LIB_SRC := $(filter-out compiler/driver/main.c,$(KC_SRC))
RT_OBJ  := $(RT_SRC:%.c=$(B)/%.o)
KC_OBJ  := $(KC_LIB_SRC:%.c=$(B)/%.o)
TEST_SRC := $(wildcard tests/unit/*.c tests/e2e/*.c) tests/testutil.c

DEPS_STAMP := $(B)/.deps-stamp
DEB_PACKAGES := llvm-19-dev libopenblas-dev libcriterion-dev python3-numpy \
                gcc-aarch64-linux-gnu gcc-riscv64-linux-gnu libc6-dev-arm64-cross \
                libc6-dev-riscv64-cross qemu-user graphviz clang-19 libclang-rt-19-dev \
                python3-sklearn python3-torch

.PHONY: all deps run test test-sanitize fuzz bench install clean examples

all: $(B)/kiln $(B)/libkilnrt.a

# ---- dependencies: Debian packages only -------------------------------------
deps: $(DEPS_STAMP)
$(DEPS_STAMP): Makefile
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing || exit 1; \
	fi
	@mkdir -p $(B) && touch $@

# ---- the runtime and the compiler -------------------------------------------
$(B)/runtime/%.o: runtime/%.c runtime/kilnrt.h runtime/kiln_dtype.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(RT_CFLAGS) -c $< -o $@

$(B)/libkilnrt.a: $(RT_OBJ)
	rm -f $@ && ar rcs $@ $^

KC_HEADERS := $(wildcard compiler/*/*.h compiler/*/*.def runtime/*.h)
$(B)/compiler/%.o: compiler/%.c $(KC_HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(KC_CFLAGS) -c $< -o $@

$(B)/libkilnc.a: $(KC_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/kiln: $(B)/compiler/driver/main.o $(B)/libkilnc.a $(B)/libkilnrt.a
	$(CC) $(SAN) -o $@ $(B)/compiler/driver/main.o $(B)/libkilnc.a $(LLVM_LIBS) -lm

# ---- the two README commands -------------------------------------------------
run: $(B)/kiln $(B)/libkilnrt.a
	$(B)/kiln build examples/fifo_queue.kg -o $(B)/fifo_queue
	./$(B)/fifo_queue

$(B)/tests/unit: $(TEST_SRC) tests/testutil.h $(B)/libkilnc.a $(B)/libkilnrt.a
	@mkdir -p $(dir $@)
	$(CC) $(KC_CFLAGS) -Itests -o $@ $(TEST_SRC) $(B)/libkilnc.a $(B)/libkilnrt.a \
	  $(LLVM_LIBS) -lcriterion -lopenblas -lpthread -lm

# ---- the digits data set of examples/train_digits*.kg ------------------------
# sklearn's load_digits (python3-sklearn ships it: nothing is downloaded) as
# .npy files.  Always under build/, whatever $(B) is: the examples read
# build/digits/*.npy relative to the repository root.
DIGITS := build/digits
$(DIGITS)/.stamp: tests/data/digits_to_npy.py | $(DEPS_STAMP)
	$(PYTHON) tests/data/digits_to_npy.py $(DIGITS)
	@touch $@

test: $(B)/kiln $(B)/libkilnrt.a $(B)/tests/unit $(DIGITS)/.stamp
	KILN=$(B)/kiln PYTHON=$(PYTHON) KILN_BUILD=$(B) KILN_LDFLAGS="$(SAN)" $(B)/tests/unit --jobs 2

test-sanitize:
	$(MAKE) B=build/asan SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" OPT=-O1 test
	$(MAKE) B=build/tsan SAN="-fsanitize=thread" OPT=-O1 test-threads

# The queue tests under ThreadSanitizer, through a tiny in-process stand-in
# for Criterion (which cannot start under TSan).
test-threads: $(B)/libkilnrt.a
	@mkdir -p $(B)/tests
	$(CC) $(RT_CFLAGS) -Itests/tsan/shim -o $(B)/tests/queue_tsan tests/unit/test_queue.c tests/tsan/main.c \
	  $(B)/libkilnrt.a -lm
	TSAN_OPTIONS=halt_on_error=1 $(B)/tests/queue_tsan

fuzz: $(B)/fuzz_parser
	@mkdir -p $(B)/fuzz-corpus && cp examples/*.kg $(B)/fuzz-corpus/ 2>/dev/null; \
	$(B)/fuzz_parser -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(B)/fuzz-corpus tests/fuzz/seeds

$(B)/fuzz_parser: tests/fuzz/fuzz_parser.c $(KC_LIB_SRC) $(KC_HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(B)
	clang-19 -std=c17 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icompiler -Iruntime \
	  $(LLVM_CFLAGS) -o $@ tests/fuzz/fuzz_parser.c $(KC_LIB_SRC) $(LLVM_LIBS) -lm

bench: $(B)/kiln $(B)/libkilnrt.a
	@mkdir -p $(B)/bench
	$(B)/kiln build -c bench/ew.kg -o $(B)/bench/ew.o
	$(B)/kiln build -c bench/mm.kg -o $(B)/bench/mm.o
	$(B)/kiln build -c bench/train.kg -o $(B)/bench/train.o
	$(B)/kiln build -c bench/train128.kg -o $(B)/bench/train128.o
	$(B)/kiln build -c bench/train8.kg -o $(B)/bench/train8.o
	$(CC) -std=gnu17 -O2 -Iruntime -I$(B)/bench -o $(B)/bench/bench bench/bench.c $(B)/bench/ew.o $(B)/bench/mm.o \
	  $(B)/bench/train.o $(B)/bench/train128.o $(B)/bench/train8.o $(B)/libkilnrt.a -lopenblas -lpthread -lm
	@echo "== one OpenBLAS thread"; OPENBLAS_NUM_THREADS=1 $(B)/bench/bench
	@echo "== two OpenBLAS threads"; OPENBLAS_NUM_THREADS=2 $(B)/bench/bench
	@echo "== training step vs PyTorch (python3-torch), one thread"
	@dpkg-query -W -f='$${Status}' python3-torch 2>/dev/null | grep -q 'install ok installed' || \
	  { SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get install -y -qq python3-torch; }
	@OPENBLAS_NUM_THREADS=1 $(PYTHON) bench/torch_train.py --kiln-ms $$(OPENBLAS_NUM_THREADS=1 $(B)/bench/bench train) \
	  --kiln-mlp-ms $$(OPENBLAS_NUM_THREADS=1 $(B)/bench/bench mlp)

install: $(B)/kiln $(B)/libkilnrt.a
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/kiln \
	  $(DESTDIR)$(PREFIX)/share/doc/kiln
	install -m 755 $(B)/kiln $(DESTDIR)$(PREFIX)/bin/kiln
	install -m 644 $(B)/libkilnrt.a $(DESTDIR)$(PREFIX)/lib/libkilnrt.a
	install -m 644 runtime/kilnrt.h runtime/kiln_dtype.h $(DESTDIR)$(PREFIX)/include/kiln/
	install -m 644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/kiln/

clean:
	rm -rf build
