# Waymark: one non-recursive Makefile. Everything but each main.c goes into a static
# library, so the unit tests link exactly the objects the daemons run.

PKGS      := libzmq hiredis libcurl libwebsockets libuv msgpack jansson libmicrohttpd libxxhash
BUILD     ?= build
CC        ?= cc
OPT       ?= -O2 -g
SAN       ?=
CFLAGS    += -std=c11 -D_GNU_SOURCE $(OPT) $(SAN) -Wall -Wextra -Werror -Wshadow \
             -Wno-unused-parameter -MMD -MP -Icommon
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)
LDFLAGS   += $(SAN)
LDLIBS    += $(PKG_LIBS) -lm

COMMON_SRC := $(wildcard common/*.c)
GW_SRC     := $(filter-out gateway/main.c,$(wildcard gateway/*.c))
DP_SRC     := $(filter-out dispatcher/main.c dispatcher/bump_main.c,$(wildcard dispatcher/*.c))
FT_SRC     := $(filter-out fetcher/main.c,$(wildcard fetcher/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB_COMMON := $(BUILD)/libwmcommon.a
LIB_GW     := $(BUILD)/libwmgateway.a
LIB_DP     := $(BUILD)/libwmdispatcher.a
LIB_FT     := $(BUILD)/libwmfetcher.a

BINS := $(BUILD)/waymark-gateway $(BUILD)/waymark-dispatcher $(BUILD)/waymark-fetcher \
        $(BUILD)/waymark-bump

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(wildcard tests/bench/bench_*.c))
TOOL_BINS  := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(wildcard tests/tools/*.c))

.PHONY: all deps test unit integration run bench asan valgrind clean
# Keep intermediate objects (the unit test .o files) instead of deleting them after linking.
.SECONDARY:
all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(LIB_COMMON): $(call obj,$(COMMON_SRC))
$(LIB_GW): $(call obj,$(GW_SRC))
$(LIB_DP): $(call obj,$(DP_SRC))
$(LIB_FT): $(call obj,$(FT_SRC))
$(BUILD)/%.a:
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/waymark-gateway: $(call obj,gateway/main.c) $(LIB_GW) $(LIB_COMMON)
$(BUILD)/waymark-dispatcher: $(call obj,dispatcher/main.c) $(LIB_DP) $(LIB_COMMON)
$(BUILD)/waymark-bump: $(call obj,dispatcher/bump_main.c) $(LIB_DP) $(LIB_COMMON)
$(BUILD)/waymark-fetcher: $(call obj,fetcher/main.c) $(LIB_FT) $(LIB_COMMON)
$(BINS):
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests: tests/unit/test_gw_*.c link the gateway library, test_dp_* the
# dispatcher's, test_ft_* the fetcher's; all link common.
$(BUILD)/tests/test_gw_%: $(call obj,tests/unit/test_gw_%.c) $(LIB_GW) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)
$(BUILD)/tests/test_dp_%: $(call obj,tests/unit/test_dp_%.c) $(LIB_DP) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)
$(BUILD)/tests/test_ft_%: $(call obj,tests/unit/test_ft_%.c) $(LIB_FT) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)
$(BUILD)/tests/test_wm_%: $(call obj,tests/unit/test_wm_%.c) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)

# Benchmarks link the gateway library (they measure its hot paths); test tools
# (small ZeroMQ peers used by the end-to-end tests) link common.
$(BUILD)/bench/bench_%: $(call obj,tests/bench/bench_%.c) $(LIB_GW) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/tools/%: $(call obj,tests/tools/%.c) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The Debian packages the build, the tests and `make run` need: the libraries, a real
# redis-server, PHP for the demo backend and the PHP client, Chromium for the browser
# test, Autobahn|Python as a second real WAMP client. The npm packages of each folder
# with a package-lock.json come from `npm ci`.
DEB_PKGS := build-essential pkg-config libzmq3-dev libhiredis-dev libcurl4-openssl-dev \
            libwebsockets-dev libmsgpack-dev libjansson-dev uthash-dev libmicrohttpd-dev libxxhash-dev \
            libcmocka-dev redis-server valgrind python3-autobahn \
            php-cli php-redis php-mbstring php-xml phpunit chromium
NPM_DIRS := tests clients/js tests/browser
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "deps: run as root:  apt-get install -y $$missing"; exit 1; fi
	@for d in $(NPM_DIRS); do [ -d $$d/node_modules ] || (cd $$d && npm ci --no-audit --no-fund) || exit 1; done

unit: $(UNIT_BINS)
test: all $(UNIT_BINS) $(TOOL_BINS)
	@tests/run-tests.sh $(BUILD)

run: deps all
	@deploy/run-local.sh $(BUILD)

bench: all $(BENCH_BINS)
	@tests/bench/run-bench.sh $(BUILD)

# Sanitizer build in its own tree, then the whole test suite against it.
asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

# The unit tests under valgrind, then the real daemons under valgrind through the
# end-to-end suites (about 3 minutes on 2 cores): the harness starts each daemon as
# VALGRIND_DAEMON with {dir}/{name} filled in, so every daemon writes its own log in the
# stack's temp dir, and a test fails on exit status 99 or a non-empty log (harness.mjs
# shutdownProblems). Narrow it with e.g. VALGRIND_SUITES=tests/integration/wamp.test.mjs.
VALGRIND_DAEMON := valgrind -q --error-exitcode=99 --leak-check=full \
                   --errors-for-leak-kinds=definite --log-file={dir}/{name}.%p.valgrind.log
VALGRIND_SUITES ?= tests/integration/
valgrind: all $(UNIT_BINS)
	@for t in $(UNIT_BINS); do valgrind -q --error-exitcode=1 --leak-check=full $$t || exit 1; done
	WAYMARK_BUILD=$(BUILD) WAYMARK_DAEMON_WRAPPER="$(VALGRIND_DAEMON)" \
	  timeout --kill-after=15 1200 node --test $(VALGRIND_SUITES)

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# libFuzzer harnesses (tests/fuzz/fuzz_*.c), built with clang straight from the sources
# they exercise; `make fuzz` builds them, tests/fuzz/run-fuzz.sh [SECONDS] runs each.
FUZZ_CC    ?= clang
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Werror \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
              -Icommon -Igateway -Idispatcher
FUZZ_SRC_fuzz_wm_msg  := common/wm_msg.c common/wm_buf.c
FUZZ_SRC_fuzz_gw_wamp := gateway/gw_wamp.c common/wm_buf.c
FUZZ_SRC_fuzz_dp_bump := dispatcher/dp_bump.c common/wm_path.c common/wm_buf.c
FUZZ_SRC_fuzz_wm_path := common/wm_path.c
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
.PHONY: fuzz
fuzz: $(FUZZ_BINS)
.SECONDEXPANSION:
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(FUZZ_SRC_fuzz_$$*) common/*.h gateway/*.h dispatcher/*.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) -o $@ $< $(FUZZ_SRC_fuzz_$*) $(PKG_LIBS) -lm

# The docker-compose deployment (deploy/) end to end: its own dockerd when none runs,
# every image built, the stack up and checked from the host; ends "N passed, N failed".
.PHONY: compose-test
compose-test:
	@tests/compose/compose-test.sh
