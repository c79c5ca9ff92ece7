# smtpkit - build, test, check, bench, fuzz.
#
# Switches (make VAR=value):
#   LUA=5.4      Lua ABI to build for: 5.4 (default), 5.3, 5.1 (PUC) or jit
#                (LuaJIT 2.1, the Lua 5.1 ABI that OpenResty runs). One build
#                directory per ABI: build/<LUA>/smtpkit/{core,net}.so. Never
#                load a module built for one ABI from another.
#   SAN=1        AddressSanitizer + UndefinedBehaviorSanitizer build, in
#                build/<LUA>-san.
#   CC=clang     any C99 compiler; gcc and clang are both kept warning-free.
#   LUA_INCDIR   Lua headers, when not found with pkg-config (luarocks sets it).
#   FUZZ_SECONDS time per fuzz target for `make fuzz` (CI's check uses 10).
#
# Targets: all (default) · test · check · bench · fuzz · doc · install · clean
#   test   installs missing Debian packages (as root), builds for Lua 5.4 and
#          LuaJIT, runs luacheck and the busted specs on both.
#   check  test + specs under ASan/UBSan + C unit tests under valgrind + a
#          bounded fuzz run of every target. This is what CI runs.

LUA ?= 5.4
CC ?= cc
PKG_CONFIG ?= pkg-config

lua_pc_5.4 := lua5.4
lua_pc_5.3 := lua5.3
lua_pc_5.1 := lua5.1
lua_pc_jit := luajit
lua_bin_5.4 := lua5.4
lua_bin_5.3 := lua5.3
lua_bin_5.1 := lua5.1
lua_bin_jit := luajit
# LuaJIT looks for modules in the Lua 5.1 directories.
lua_dir_5.4 := 5.4
lua_dir_5.3 := 5.3
lua_dir_5.1 := 5.1
lua_dir_jit := 5.1
LUA_PC := $(lua_pc_$(LUA))
LUA_BIN := $(lua_bin_$(LUA))
ifeq ($(LUA_PC),)
$(error LUA must be 5.4, 5.3, 5.1 or jit, not '$(LUA)')
endif

ifdef LUA_INCDIR
LUA_CFLAGS := -I$(LUA_INCDIR)
else
LUA_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(LUA_PC))
endif
CJSON_CFLAGS = $(shell $(PKG_CONFIG) --cflags libcjson)
CJSON_LIBS = $(shell $(PKG_CONFIG) --libs libcjson)
SSL_CFLAGS = $(shell $(PKG_CONFIG) --cflags openssl)
SSL_LIBS = $(shell $(PKG_CONFIG) --libs openssl)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifdef SAN
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT := -O1 -g
BUILD := build/$(LUA)-san
else
OPT := -O2 -g
BUILD := build/$(LUA)
endif
CFLAGS ?= $(OPT)
ALL_CFLAGS = -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC $(WARN) $(SANFLAGS) $(CFLAGS)
LDFLAGS_SO := -shared $(SANFLAGS)

# smtpkit.net (the socket + OpenSSL transport) is net*.c, tls*.c, lua_net*.c;
# everything else in csrc/ is smtpkit.core, which must never link OpenSSL.
NET_SRC := $(wildcard csrc/net*.c csrc/tls*.c csrc/lua_net*.c)
CORE_SRC := $(filter-out $(NET_SRC),$(wildcard csrc/*.c))
LIB_SRC := $(filter-out csrc/lua_%,$(CORE_SRC))
CORE_OBJ := $(CORE_SRC:csrc/%.c=$(BUILD)/obj/%.o)
NET_OBJ := $(NET_SRC:csrc/%.c=$(BUILD)/obj/%.o)
HDRS := $(wildcard csrc/*.h)

CORE_SO := $(BUILD)/smtpkit/core.so
NET_SO := $(BUILD)/smtpkit/net.so
TARGETS := $(CORE_SO) $(if $(NET_SRC),$(NET_SO))

all: $(TARGETS)

$(BUILD)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) $(CJSON_CFLAGS) $(if $(filter $(NET_SRC),$<),$(SSL_CFLAGS)) -c $< -o $@

$(CORE_SO): $(CORE_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_SO) -o $@ $^ $(CJSON_LIBS) $(LDFLAGS)

# (lua_result and lua_reply build the result tables both transports return)
$(NET_SO): $(NET_OBJ) $(filter-out $(BUILD)/obj/lua_%,$(CORE_OBJ)) $(BUILD)/obj/lua_result.o $(BUILD)/obj/lua_reply.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_SO) -o $@ $^ $(CJSON_LIBS) $(SSL_LIBS) -pthread $(LDFLAGS)

# --- tests -----------------------------------------------------------------
LUA_PATHS = --cpath=$(BUILD)/?.so
BUSTED_FLAGS ?= -o utfTerminal

deps:
	@bash tools/deps.sh

lint: deps
	luacheck -q lua spec bench $(wildcard bin/smtpkit)

specs: all
	SMTPKIT_LUA=$(LUA_BIN) SMTPKIT_BUILD=$(BUILD) busted --lua=$(LUA_BIN) $(LUA_PATHS) $(BUSTED_FLAGS) spec

test: deps
	$(MAKE) lint
	$(MAKE) LUA=5.4 specs
	$(MAKE) LUA=jit specs

# The ASan runtime must be the first library the interpreter loads.
ASAN_RT = $(shell $(CC) -print-file-name=libasan.so)
san-specs: deps
	$(MAKE) LUA=5.4 SAN=1 all
	LD_PRELOAD=$(ASAN_RT) ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  SMTPKIT_LUA=lua5.4 SMTPKIT_BUILD=build/5.4-san SMTPKIT_SAN=1 \
	  busted --lua=lua5.4 \
	  --cpath=build/5.4-san/?.so $(BUSTED_FLAGS) spec

# C unit tests: spec/c/test_*.c, each linked with the core's C files (no Lua).
CTESTS := $(patsubst spec/c/%.c,$(BUILD)/ctest/%,$(wildcard spec/c/test_*.c))
$(BUILD)/ctest/%: spec/c/%.c $(LIB_SRC) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Icsrc $(CJSON_CFLAGS) -o $@ $< $(LIB_SRC) $(CJSON_LIBS)

ctest: $(CTESTS)
	@for t in $(CTESTS); do echo "valgrind $$t"; \
	  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=all $$t || exit 1; done

check: test
	$(MAKE) san-specs
	$(MAKE) ctest
	$(MAKE) fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-10}
	$(MAKE) CC=clang LUA=5.3 all
	$(MAKE) CC=clang LUA=5.1 all

# --- fuzzing (libFuzzer, clang) ---------------------------------------------
FUZZ_SECONDS ?= 60
FUZZERS := $(patsubst fuzz/%.c,build/fuzz/%,$(wildcard fuzz/fuzz_*.c))
build/fuzz/%: fuzz/%.c $(LIB_SRC) $(HDRS)
	@mkdir -p $(@D)
	clang -std=c99 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=all -Icsrc $(CJSON_CFLAGS) -o $@ $< $(LIB_SRC) $(CJSON_LIBS)

fuzz: deps $(FUZZERS)
	@for f in $(FUZZERS); do n=$$(basename $$f); mkdir -p build/fuzz/corpus-$$n; \
	  echo "fuzz $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=0 \
	    build/fuzz/corpus-$$n $$( [ -d fuzz/seeds/$$n ] && echo fuzz/seeds/$$n ) \
	    2>build/fuzz/$$n.log || { tail -40 build/fuzz/$$n.log; exit 1; }; done

# --- benchmarks -------------------------------------------------------------
bench: deps
	$(MAKE) LUA=5.4 all
	$(MAKE) LUA=jit all
	@for b in bench/run_*.sh; do bash $$b || exit 1; done

# --- install ----------------------------------------------------------------
PREFIX ?= /usr/local
INST_LIBDIR ?= $(PREFIX)/lib/lua/$(lua_dir_$(LUA))
INST_LUADIR ?= $(PREFIX)/share/lua/$(lua_dir_$(LUA))
INST_BINDIR ?= $(PREFIX)/bin
install: all
	install -d $(INST_LIBDIR)/smtpkit
	install -m 755 $(TARGETS) $(INST_LIBDIR)/smtpkit/
	cd lua && find smtpkit -name '*.lua' | while read -r f; do \
	  install -D -m 644 "$$f" "$(INST_LUADIR)/$$f" || exit 1; done
	if [ -f bin/smtpkit ]; then install -d $(INST_BINDIR) && \
	  sed '1s|^#!.*|#!/usr/bin/env $(LUA_BIN)|' bin/smtpkit > $(INST_BINDIR)/smtpkit && \
	  chmod 755 $(INST_BINDIR)/smtpkit; fi

# The API reference (LDoc, settings in config.ld) into build/doc.
doc: deps
	ldoc .

# The README's first command: the smtpkit tour on loopback (bin/smtpkit demo).
demo: deps all
	$(LUA_BIN) bin/smtpkit demo

clean:
	rm -rf build

.PHONY: all deps lint specs test san-specs ctest check fuzz bench install doc demo clean
