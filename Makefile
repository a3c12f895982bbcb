# Waymark: one non-recursive Makefile. Everything but each main.c goes into a static
# library, so the unit tests link exactly the objects the daemons run.
#
# `make run` and `make test` (and bench, valgrind, asan, fuzz) first run `deps`, which
# installs what is missing, and only then build in a sub-make: the pkg-config flags are
# read when that sub-make starts, after the packages exist (they were empty on a fresh
# machine when this Makefile read them before installing anything).

PKGS      := libzmq hiredis libcurl libwebsockets libuv msgpack jansson libmicrohttpd libxxhash
# The Debian package that brings each pkg-config module (for the error message).
DEB_OF_libzmq        := libzmq3-dev
DEB_OF_hiredis       := libhiredis-dev
DEB_OF_libcurl       := libcurl4-openssl-dev
DEB_OF_libwebsockets := libwebsockets-dev
DEB_OF_msgpack       := libmsgpack-dev
DEB_OF_jansson       := libjansson-dev
DEB_OF_libmicrohttpd := libmicrohttpd-dev
DEB_OF_libuv         := libuv1-dev
DEB_OF_libxxhash     := libxxhash-dev
DEB_OF_cmocka        := libcmocka-dev
BUILD     ?= build
CC        ?= cc
OPT       ?= -O2 -g
SAN       ?=
CFLAGS    += -std=c11 -D_GNU_SOURCE $(OPT) $(SAN) -Wall -Wextra -Werror -Wshadow \
             -Wno-unused-parameter -MMD -MP -Icommon
LDFLAGS   += $(SAN)
LDLIBS    += $(PKG_LIBS) -lm

# Goals that compile nothing in this make (they install, clean, or start a sub-make that
# compiles): for them the pkg-config modules are neither read nor required.
NOCOMPILE_GOALS := deps deps-fuzz clean help run test bench valgrind asan fuzz fuzz-smoke \
                   compose-test fresh-test
# "Module (Debian package)" for each module of $(1) that pkg-config does not find.
pkg_missing = $(foreach m,$(1),$(if $(shell pkg-config --exists $(m) 2>/dev/null && echo y),,$(m) ($(or $(DEB_OF_$(m)),no Debian package known))))
ifneq ($(filter-out $(NOCOMPILE_GOALS),$(or $(MAKECMDGOALS),all)),)
  ifeq ($(shell command -v pkg-config),)
    $(error pkg-config not found (Debian package pkg-config): run `make deps` as root, or `make run` / `make test`, which install what is missing)
  endif
  PKG_MISSING := $(strip $(call pkg_missing,$(PKGS)))
  ifneq ($(PKG_MISSING),)
    $(error pkg-config modules missing: $(PKG_MISSING). Run `make deps` as root, or `make run` / `make test`, which install what is missing)
  endif
  PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
  PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
  CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)
endif
# Only the unit tests need cmocka: checked when one of them is linked.
need_cmocka = $(if $(CMOCKA_LIBS),,$(error pkg-config module missing: $(call pkg_missing,cmocka). Run `make deps` as root, or `make test`))

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

.PHONY: all deps deps-fuzz test unit tools integration run bench bench-bins asan valgrind \
        fuzz fuzz-bins fuzz-smoke clean help
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
	$(need_cmocka)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)
$(BUILD)/tests/test_dp_%: $(call obj,tests/unit/test_dp_%.c) $(LIB_DP) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(need_cmocka)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)
$(BUILD)/tests/test_ft_%: $(call obj,tests/unit/test_ft_%.c) $(LIB_FT) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(need_cmocka)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)
$(BUILD)/tests/test_wm_%: $(call obj,tests/unit/test_wm_%.c) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(need_cmocka)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)

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
# test, Autobahn|Python as a second real WAMP client; libuv and the libwebsockets libuv
# event-loop plugin for the gateway's event loop. The npm packages of each folder with a
# package-lock.json come from `npm ci`. Node.js 20+ with npm is not a Debian 12 package
# (bookworm has 18): it is checked, not installed.
DEB_PKGS := build-essential pkg-config libzmq3-dev libhiredis-dev libcurl4-openssl-dev \
            libwebsockets-dev libmsgpack-dev libjansson-dev uthash-dev libmicrohttpd-dev \
            libuv1-dev libwebsockets-evlib-uv libxxhash-dev \
            libcmocka-dev redis-server valgrind python3-autobahn \
            php-cli php-redis php-mbstring php-xml phpunit chromium
FUZZ_DEB_PKGS := clang
NPM_DIRS := tests clients/js tests/browser
NODE_MAJOR_MIN := 20

# $(call install_debs,PACKAGES): as root installs the ones not installed; otherwise
# prints the exact apt-get line and fails.
define install_debs
@missing=$$(for p in $(1); do \
	  [ "$$(dpkg-query -W -f='$${Status}' $$p 2>/dev/null)" = "install ok installed" ] || printf '%s ' $$p; \
	done); \
	missing=$${missing% }; \
	if [ -z "$$missing" ]; then echo "deps: all $(words $(1)) Debian packages needed are installed"; \
	elif [ "$$(id -u)" = 0 ]; then echo "deps: installing $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "deps: Debian packages missing; as root run:"; echo "  apt-get install -y $$missing"; exit 1; fi
endef

deps:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "deps: Node.js $(NODE_MAJOR_MIN)+ with npm is required and was not found (Debian 12's nodejs is 18: install Node.js $(NODE_MAJOR_MIN) or later, e.g. from nodejs.org or NodeSource)"; exit 1; }
	@v=$$(node -p 'process.versions.node.split(".")[0]'); [ "$$v" -ge $(NODE_MAJOR_MIN) ] || { \
	  echo "deps: node $$(node --version) is too old: Node.js $(NODE_MAJOR_MIN)+ is required"; exit 1; }
	$(call install_debs,$(DEB_PKGS))
	@for d in $(NPM_DIRS); do [ -d $$d/node_modules ] || (cd $$d && npm ci --no-audit --no-fund) || exit 1; done
deps-fuzz: deps
	$(call install_debs,$(FUZZ_DEB_PKGS))

# The build inside run, test, bench, valgrind and fuzz: a sub-make, started after deps,
# so it reads the pkg-config flags of installed packages; all cores unless -j was given.
SUBMAKE = $(MAKE) --no-print-directory $(if $(filter -j%,$(MAKEFLAGS)),,-j$(shell nproc 2>/dev/null || echo 1))

unit: $(UNIT_BINS)
tools: $(TOOL_BINS)
bench-bins: $(BENCH_BINS)

test: deps
	@$(SUBMAKE) all unit tools
	@tests/run-tests.sh $(BUILD)

run: deps
	@$(SUBMAKE) all
	@deploy/run-local.sh $(BUILD)

bench: deps
	@$(SUBMAKE) all bench-bins
	@tests/bench/run-bench.sh $(BUILD)

# Sanitizer build in its own tree, then the whole test suite against it.
asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

# The unit tests under valgrind, then the real daemons under valgrind through the
# end-to-end suites (about 3 minutes on 2 cores): the harness starts each daemon as
# VALGRIND_DAEMON with {dir}/{name} filled in, so every daemon writes its own log in the
# stack's temp dir, and a test fails on exit status 99 or a non-empty log (harness.mjs
# shutdownProblems). Narrow it with e.g. VALGRIND_SUITES=tests/integration/wamp.test.mjs.
VALGRIND_DAEMON := valgrind -q --error-exitcode=99 --leak-check=full \
                   --errors-for-leak-kinds=definite --log-file={dir}/{name}.%p.valgrind.log
VALGRIND_SUITES ?= tests/integration/
valgrind: deps
	@$(SUBMAKE) all unit tools
	@for t in $(UNIT_BINS); do valgrind -q --error-exitcode=1 --leak-check=full $$t || exit 1; done
	WAYMARK_BUILD=$(BUILD) WAYMARK_DAEMON_WRAPPER="$(VALGRIND_DAEMON)" \
	  timeout --kill-after=15 1200 node --test $(VALGRIND_SUITES)

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# libFuzzer harnesses (tests/fuzz/fuzz_*.c), built with clang straight from the sources
# they exercise; `make fuzz` builds them, tests/fuzz/run-fuzz.sh [SECONDS] runs each, and
# `make fuzz-smoke` does both for FUZZ_SECONDS (30) each, so a harness that stops
# building or a crash on the corpus fails.
FUZZ_CC    ?= clang
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Werror \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
              -Icommon -Igateway -Idispatcher
FUZZ_SECONDS ?= 30
FUZZ_SRC_fuzz_wm_msg  := common/wm_msg.c common/wm_mpscan.c common/wm_buf.c
FUZZ_SRC_fuzz_gw_wamp := gateway/gw_wamp.c common/wm_mpscan.c common/wm_buf.c
FUZZ_SRC_fuzz_dp_bump := dispatcher/dp_bump.c common/wm_path.c common/wm_buf.c
FUZZ_SRC_fuzz_wm_path := common/wm_path.c
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz: deps-fuzz
	@$(SUBMAKE) fuzz-bins
fuzz-bins: $(FUZZ_BINS)
fuzz-smoke: fuzz
	@tests/fuzz/run-fuzz.sh $(FUZZ_SECONDS) $(BUILD)
.SECONDEXPANSION:
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(FUZZ_SRC_fuzz_$$*) common/*.h gateway/*.h dispatcher/*.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) -o $@ $< $(FUZZ_SRC_fuzz_$*) $(PKG_LIBS) -lm

# The docker-compose deployment (deploy/) end to end: its own dockerd when none runs,
# every image built, the stack up and checked from the host; ends "N passed, N failed".
.PHONY: compose-test fresh-test
compose-test:
	@tests/compose/compose-test.sh

# The README's two commands on a clean Debian 12 container (the compose test's base
# image, in the same private dockerd): `make run` serves the demo and stops on Ctrl-C,
# then `make test`; ends "N passed, N failed".
fresh-test:
	@tests/fresh/fresh-test.sh

help:
	@echo "make run          install what is missing, build, start a whole Waymark with the demo"
	@echo "make test         install what is missing, build, run every suite (N passed, N failed)"
	@echo "make              build build/waymark-* (packages must be there: make deps)"
	@echo "make deps         the Debian (as root; else prints the apt-get line) and npm packages"
	@echo "make asan | valgrind | bench | fuzz | fuzz-smoke | compose-test | fresh-test | clean"
