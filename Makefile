# feegate build. `make` builds, `make run` starts the local stack, `make test` runs every test.
BUILD   ?= build
CC      ?= cc
OPT     ?= -O2
SAN     ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) $(SAN) -Wall -Wextra -Werror -Wshadow \
           -Wstrict-prototypes -Wno-unused-parameter -MMD -MP -I. -I/usr/include/postgresql
LDLIBS  += -levent -levent_openssl -lpq -lssl -lcrypto -ljansson -lhiredis \
           -lqrencode -lm
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

.PHONY: all deps run test unit system asan bench soak clean
all: $(BUILD)/feegate $(BUILD)/banksim $(UNIT_BIN)

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

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libfeegate.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

deps:
	@bash deploy/install-deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@bash deploy/run.sh

unit: all
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

system: all
	@bash tests/system/run.sh $(BUILD)

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory system

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all
	@ASAN_OPTIONS=detect_leaks=0 $(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" unit system

bench: deps
	@$(MAKE) --no-print-directory all
	@bash tests/bench/run.sh $(BUILD) $(if $(QUICK),quick,full)

soak: deps
	@$(MAKE) --no-print-directory all
	@bash tests/bench/soak.sh $(BUILD)

clean:
	rm -rf build build-asan

-include $(CORE_OBJ:.o=.d) $(BANKSIM_OBJ:.o=.d) $(BUILD)/gateway/main.d \
         $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.d)
