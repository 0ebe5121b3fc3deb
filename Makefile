# feegate build. `make` builds, `make run` starts the local stack, `make test` runs every test.
BUILD   ?= build
CC      ?= cc
OPT     ?= -O2
SAN     ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) $(SAN) -Wall -Wextra -Werror -Wshadow \
           -Wstrict-prototypes -Wno-unused-parameter -MMD -MP -I. -I/usr/include/postgresql
LDLIBS  += -levent -levent_openssl -lpq -lssl -lcrypto -ljansson -lhiredis \
           -lqrencode -lm
LDLIBS  += -lhttp_parser
LDLIBS  += -lxml2
CFLAGS  += -I/usr/include/libxml2
LDLIBS  += -lxlsxwriter
LDLIBS  += $(shell pkg-config --libs pangocairo) -lpthread
CFLAGS  += $(shell pkg-config --cflags pangocairo)
LDFLAGS += $(SAN)

CORE_SRC    := $(wildcard lib/*.c adapters/*.c ledger/*.c) \
               $(filter-out gateway/main.c,$(wildcard gateway/*.c))
CORE_OBJ    := $(CORE_SRC:%.c=$(BUILD)/%.o)
BANKSIM_SRC := $(wildcard tools/banksim/*.c)
BANKSIM_OBJ := $(BANKSIM_SRC:%.c=$(BUILD)/%.o)
BENCH_SRC   := $(wildcard tests/bench/*.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES  := $(FUZZ_SRC:tests/fuzz/%.c=%)
REPLAY_BIN  := $(FUZZ_NAMES:%=$(BUILD)/tests/replay_%)
FUZZ_SECONDS ?= 60

.PHONY: all deps run test unit system asan valgrind bench soak fuzz chaos image ha ha-short clean
.SECONDARY:
all: $(BUILD)/feegate $(BUILD)/banksim $(BUILD)/faultproxy $(UNIT_BIN) $(REPLAY_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libfeegate.a: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BUILD)/feegate: $(BUILD)/gateway/main.o $(BUILD)/libfeegate.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/banksim: $(BANKSIM_OBJ) $(BUILD)/libfeegate.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The TCP fault proxy of the outage tests (tests/system/test_outages.py).
$(BUILD)/faultproxy: $(BUILD)/tools/faultproxy/faultproxy.o
	$(CC) $(LDFLAGS) -o $@ $^ -levent

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libfeegate.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# The fuzz targets' committed corpus, replayed by every `make unit` with the normal compiler.
$(BUILD)/tests/replay_%: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay.o $(BUILD)/tests/fuzz/common.o $(BUILD)/libfeegate.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	@bash deploy/install-deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@bash deploy/run.sh

unit: all
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done
	@set -e; for f in $(FUZZ_NAMES); do echo "== replay $$f"; $(BUILD)/tests/replay_$$f tests/fuzz/corpus/$$f; done

system: all
	@bash tests/system/run.sh $(BUILD) $(SYSTEM_ARGS)

# The container image, built with podman from a debootstrap base and tried (deploy/image.sh;
# minutes, root, not part of make test).
image:
	@bash deploy/image.sh

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory system
	@$(MAKE) --no-print-directory ha-short

# Several machines on this one (tests/ha/run.py, root): network namespaces with three etcd, two
# PostgreSQL under Patroni, two gateways behind HAProxy, Redis with Sentinel; four faults under
# an open-loop load, one HA-RESULT line each (docs/ha.md). Niced: the machine is shared.
# HA_FAULTS=kill_primary runs one fault; HA_PHASE_S sets each fault's seconds of load.
ha:
	@bash deploy/install-deps.sh ha
	@$(MAKE) --no-print-directory all
	@$(HA_SUDO) nice -n 5 /usr/bin/python3 tests/ha/run.py $(BUILD)

# make test's short form: the same shape, one fault (the primary's SIGKILL), 10 s of load; about
# 75 s, most of it starting etcd, Patroni's bootstrap and its standby's base backup.
ha-short:
	@bash deploy/install-deps.sh ha
	@$(HA_SUDO) env HA_FAULTS=kill_primary HA_PHASE_S=10 nice -n 5 /usr/bin/python3 tests/ha/run.py $(BUILD)
HA_SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The sanitizers' build (ASan and UBSan, every report fatal) over the unit tests, the fuzz corpus
# replays and the whole system suite; tests/system/run.sh also fails the run on a sanitizer
# report that no test saw (a worker ended by ASan is restarted by its master). .ci/run runs it
# after make test and make valgrind. The whole suite, not a subset: on the shared 2-core machine
# make asan took 9 min 36 s from a clean tree (413 system tests in 9 min 12 s), about as long as
# make test, so all three stay far inside CI's 90 minutes. Leaks are memcheck's (make valgrind,
# over the unit tests): the system tests end gateways mid-flight. FEEGATE_TEST_TIME_SCALE widens
# the tests' time limits for the slower build. The release build is made too: test_deploy_files
# checks the container's binaries (build/), which link no sanitizer runtime. SYSTEM_ARGS (as for
# make system) narrows the system run, e.g. SYSTEM_ARGS=tests/system/test_webhooks.py.
ASAN_BUILD := BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
asan: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory $(ASAN_BUILD) all
	@ASAN_OPTIONS=detect_leaks=0 FEEGATE_TEST_TIME_SCALE=3 $(MAKE) --no-print-directory $(ASAN_BUILD) unit system

# Memcheck over the unit tests and the fuzz corpus replays: no error, nothing definitely lost.
valgrind: deps
	@$(MAKE) --no-print-directory all
	@set -e; for t in $(UNIT_BIN); do echo "== valgrind $$t"; \
	  valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite --suppressions=tests/valgrind.supp $$t >/dev/null; done
	@set -e; for f in $(FUZZ_NAMES); do echo "== valgrind replay $$f"; \
	  valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite --suppressions=tests/valgrind.supp \
	    $(BUILD)/tests/replay_$$f tests/fuzz/corpus/$$f >/dev/null; done

bench: deps
	@$(MAKE) --no-print-directory all
	@GROWN=$(GROWN) bash tests/bench/run.sh $(BUILD) $(if $(QUICK),quick,full)

soak: deps
	@$(MAKE) --no-print-directory all
	@bash tests/bench/soak.sh $(BUILD)

# The crash matrix, long form: CYCLES kill -9 cycles under mixed load (SEED replays a run; the
# seed is printed). The short form runs inside `make test`. Niced: the machine is shared.
CYCLES ?= 500
chaos: deps
	@$(MAKE) --no-print-directory all
	@CHAOS_CYCLES=$(CYCLES) $(if $(SEED),CHAOS_SEED=$(SEED)) nice -n 10 bash tests/system/run.sh $(BUILD) -k test_crash_matrix -s

# libFuzzer (clang) with ASan and UBSan: each target for FUZZ_SECONDS; new inputs go to
# build-fuzz/corpus/NAME (merge the useful ones into tests/fuzz/corpus/NAME), crashes to
# build-fuzz/crashes/.
fuzz:
	@bash deploy/install-deps.sh fuzz
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang OPT=-O1 \
	  SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	  build-fuzz/libfeegate.a build-fuzz/tests/fuzz/common.o $(FUZZ_NAMES:%=build-fuzz/tests/fuzz/%.o)
	@set -e; mkdir -p build-fuzz/crashes; for f in $(FUZZ_NAMES); do \
	  clang -fsanitize=fuzzer,address,undefined -o build-fuzz/$$f build-fuzz/tests/fuzz/$$f.o build-fuzz/tests/fuzz/common.o \
	    build-fuzz/libfeegate.a $(LDLIBS); \
	  mkdir -p build-fuzz/corpus/$$f; echo "== fuzz $$f for $(FUZZ_SECONDS) s"; \
	  build-fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=1024 \
	    -artifact_prefix=build-fuzz/crashes/$$f- -print_final_stats=1 \
	    build-fuzz/corpus/$$f tests/fuzz/corpus/$$f 2>&1 | grep -E '^(stat::|==|INFO: Running|Done|#[0-9]+ +DONE)' || true; \
	  if ls build-fuzz/crashes/$$f-* >/dev/null 2>&1; then echo "fuzz: $$f found a crash:"; ls build-fuzz/crashes/$$f-*; exit 1; fi; \
	done

clean:
	rm -rf build build-asan build-fuzz

-include $(CORE_OBJ:.o=.d) $(BANKSIM_OBJ:.o=.d) $(BUILD)/gateway/main.d $(BUILD)/tools/faultproxy/faultproxy.d \
         $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.d) $(FUZZ_SRC:%.c=$(BUILD)/%.d) $(BUILD)/tests/fuzz/common.d $(BUILD)/tests/fuzz/replay.d
