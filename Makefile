# umcg - build, test, install.
#
#   make                 library (static + shared), examples, tests, benchmarks
#   make demo            run the example FIFO scheduler demo
#   make test            the whole test suite: plain -O2, ThreadSanitizer,
#                        ASan+UBSan, and (as root) plain again as uid 65534
#   make test-one VARIANT=tsan   one variant only
#   make bench           run the benchmarks
#   make bench-peers[-smoke]   umcg runtime vs pthreads, Go, Boost.Fiber (bench/peers)
#   make install PREFIX=/usr/local
#   make format | format-check | lint
#   make kernel | kernel-test [KDEBUG=1|2]   the UMCG kernel (kernel/README.md)

VARIANT ?= plain
O := build/$(VARIANT)

CC ?= cc
ifeq ($(CC),cc)
CC := gcc
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
BASE_CFLAGS := -std=gnu11 -pthread -D_GNU_SOURCE $(WARN) -Iinclude -Isrc
CFLAGS_plain := -O2 -g
CFLAGS_tsan := -O1 -g -fsanitize=thread
CFLAGS_asan := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
ALL_CFLAGS := $(BASE_CFLAGS) $(CFLAGS_$(VARIANT)) $(CFLAGS)
CFLAGS_static := -O2 -g
LDFLAGS_static := -static
LDFLAGS_tsan := -fsanitize=thread
LDFLAGS_asan := -fsanitize=address,undefined
ALL_LDFLAGS := -pthread $(LDFLAGS_$(VARIANT)) $(LDFLAGS)

LIB_SRC := $(sort $(wildcard src/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(O)/%.o)
LIB_PIC := $(LIB_SRC:%.c=$(O)/pic/%.o)
HDRS := $(wildcard include/*.h) $(wildcard src/*/*.h)

TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(O)/tests/%)
TEST_LIB := $(filter-out $(TEST_SRC),$(wildcard tests/*.c))
BENCH_LIB := bench/bench_common.c bench/bench_cycle.c
BENCH_SRC := $(sort $(filter-out $(BENCH_LIB),$(wildcard bench/*.c)))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(O)/bench/%) $(O)/bench/bench_designs
DESIGNS_SRC := $(sort $(wildcard bench/designs/*.c))
PEER_SRC := $(sort $(wildcard bench/peers/*.c))
PEER_BIN := $(PEER_SRC:bench/peers/%.c=$(O)/bench/%)
PEER_RT_SRC := $(sort $(wildcard bench/peers/rt/*.c))
PEER_RT_BIN := $(PEER_RT_SRC:bench/peers/rt/%.c=$(O)/bench/%)
EX_SRC := $(sort $(wildcard examples/*.c))
EX_BIN := $(EX_SRC:examples/%.c=$(O)/examples/%)

SOVER := 0
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all lib tests bench-bin examples demo test test-one bench bench-peers bench-peers-smoke install uninstall clean format format-check lint spin
all: lib examples tests bench-bin

lib: $(O)/libumcg.a $(O)/libumcg.so
tests: $(TEST_BIN)
bench-bin: $(BENCH_BIN) $(PEER_BIN) $(PEER_RT_BIN)
examples: $(EX_BIN)

$(O)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(O)/pic/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -DUMCG_BUILD_SHARED -c $< -o $@

$(O)/libumcg.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(O)/libumcg.so: $(LIB_PIC)
	$(CC) -shared -Wl,-soname,libumcg.so.$(SOVER) $(ALL_LDFLAGS) -o $@ $^

$(O)/tests/%: tests/%.c $(TEST_LIB) tests/*.h $(O)/libumcg.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests $< $(TEST_LIB) $(O)/libumcg.a $(ALL_LDFLAGS) -o $@

$(O)/bench/%: bench/%.c $(BENCH_LIB) bench/*.h $(O)/libumcg.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Ibench $< $(BENCH_LIB) $(O)/libumcg.a $(ALL_LDFLAGS) -lm -o $@

# bench_designs: one benchmark in several files (bench/designs/main.c)
$(O)/bench/bench_designs: $(DESIGNS_SRC) bench/designs/*.h $(BENCH_LIB) bench/*.h $(O)/libumcg.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Ibench -Ibench/designs $(DESIGNS_SRC) $(BENCH_LIB) $(O)/libumcg.a $(ALL_LDFLAGS) -lm -o $@

# peers of the benchmarks: plain C, no libumcg
$(O)/bench/%: bench/peers/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< $(ALL_LDFLAGS) -o $@

# the umcg runtime's side of bench/peers (run.sh builds its own copies)
$(O)/bench/%: bench/peers/rt/%.c $(O)/libumcg.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< $(O)/libumcg.a $(ALL_LDFLAGS) -o $@

$(O)/examples/%: examples/%.c examples/*.h $(O)/libumcg.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< $(O)/libumcg.a $(ALL_LDFLAGS) -o $@

demo: $(O)/examples/fifo_demo
	$(O)/examples/fifo_demo

# The full suite: every variant, then unprivileged when we are root.
test:
	./scripts/run-tests.sh

test-one: tests
	./scripts/run-tests.sh --variant $(VARIANT) --no-build

# bench/peers: umcg runtime vs pthreads, Go, Boost.Fiber (docs/peers.md)
bench-peers: lib examples
	./bench/peers/run.sh -b $(O) -P
bench-peers-smoke: lib examples
	./bench/peers/run.sh -b $(O) -q

bench: bench-bin
	./scripts/run-bench.sh $(O)

spin:
	./scripts/run-spin.sh

install: lib
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/umcg.h include/umcg_lists.h include/umcg_wrap.h include/umcg_idle.h include/umcg_rt.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(O)/libumcg.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(O)/libumcg.so $(DESTDIR)$(PREFIX)/lib/libumcg.so.$(SOVER)
	ln -sf libumcg.so.$(SOVER) $(DESTDIR)$(PREFIX)/lib/libumcg.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' umcg.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/umcg.pc
	install -d $(DESTDIR)$(PREFIX)/share/man/man3 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 644 docs/man/*.3 $(DESTDIR)$(PREFIX)/share/man/man3/ 2>/dev/null || true
	install -m 644 docs/man/*.7 $(DESTDIR)$(PREFIX)/share/man/man7/ 2>/dev/null || true

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/umcg.h $(DESTDIR)$(PREFIX)/include/umcg_lists.h $(DESTDIR)$(PREFIX)/include/umcg_wrap.h $(DESTDIR)$(PREFIX)/include/umcg_idle.h $(DESTDIR)$(PREFIX)/include/umcg_rt.h
	rm -f $(DESTDIR)$(PREFIX)/lib/libumcg.a $(DESTDIR)$(PREFIX)/lib/libumcg.so $(DESTDIR)$(PREFIX)/lib/libumcg.so.$(SOVER)
	rm -f $(DESTDIR)$(PREFIX)/lib/pkgconfig/umcg.pc

clean:
	rm -rf build

# The kernel backend (kernel/, GPL-2.0): Debian's linux-source-6.1 + our
# patches, built in build/kernel; kernel-test boots it in QEMU with the
# in-guest tests. KDEBUG=1: lockdep + DEBUG_ATOMIC_SLEEP variant; KDEBUG=2: + KASAN.
KDEBUG ?= 0
.PHONY: kernel kernel-test kernel-stress
kernel:
	KDEBUG=$(KDEBUG) kernel/scripts/build.sh
kernel-test:
	KDEBUG=$(KDEBUG) kernel/scripts/test.sh
kernel-stress: # 10^7 counted transitions in the guest (docs/kernel.md)
	KDEBUG=$(KDEBUG) KTEST=test_stress KLIB=0 KTRANS=10000000 KTIMEOUT=3000 kernel/scripts/test.sh

FMT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FMT_FILES)
format-check:
	clang-format --dry-run -Werror $(FMT_FILES)
lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --std=c11 \
	  --suppress=missingIncludeSystem -Iinclude -Isrc src examples
