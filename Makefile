# spotrun top-level Makefile: builds ./spotrun, the unit tests and the test
# suite.  Every dependency comes through pkg-config.  `make SAN=1 ...` builds the
# same tree with ASan+UBSan into build-san/ (binary spotrun-san).

PKGS    := libcurl openssl libarchive libzstd liburing jansson expat
# Loaded with dlopen on first use (runner/lazylib.c), not linked: a run that
# never talks HTTP or writes a tar does not map them and their ~40 dependencies.
LAZY_PKGS := libcurl libarchive
LINK_PKGS := $(filter-out $(LAZY_PKGS),$(PKGS))
CC      ?= cc
SAN     ?=
MODULES := runner checkpoint transfer providers hooks

ifeq ($(SAN),1)
BUILD   := build-san
BIN     := spotrun-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     := -O1 -g
else
BUILD   := build
BIN     := spotrun
SANFLAGS :=
OPT     := -O2 -g
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(LINK_PKGS) 2>/dev/null)
# soname of a lazily loaded library, read from the one the build would link
soname = $(shell objdump -p $$(pkg-config --variable=libdir $(1) 2>/dev/null)/$(2).so 2>/dev/null | \
	   awk '/SONAME/ {print $$2}')
CURL_SONAME    := $(call soname,libcurl,libcurl)
ARCHIVE_SONAME := $(call soname,libarchive,libarchive)
LAZY_DEFS  := $(if $(CURL_SONAME),-DSPOTRUN_CURL_SONAME='"$(CURL_SONAME)"') \
	      $(if $(ARCHIVE_SONAME),-DSPOTRUN_ARCHIVE_SONAME='"$(ARCHIVE_SONAME)"')
VERSION    := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

CFLAGS  ?= $(OPT)
CFLAGS  += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2 \
           -pthread -D_GNU_SOURCE -DSPOTRUN_VERSION='"$(VERSION)"' $(LAZY_DEFS) \
           $(addprefix -I,$(MODULES)) $(PKG_CFLAGS) $(SANFLAGS) -MMD -MP
# -z now: nothing left to bind lazily in a forked child while another
# thread holds the loader's lock in dlopen.
LDFLAGS += -pthread -Wl,-z,now $(SANFLAGS)
LDLIBS  += $(PKG_LIBS) -ldl -lm

SRCS    := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
MAIN    := runner/main.c
LIBSRCS := $(filter-out $(MAIN),$(SRCS))
OBJS    := $(LIBSRCS:%.c=$(BUILD)/%.o)
LIB     := $(BUILD)/libspotrun.a

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all deps check test unit demo bench fuzz fuzz-libfuzzer install clean

PREFIX  ?= /usr/local
DESTDIR ?=
all: $(BIN) $(UNIT_BINS) $(TOOL_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/runner/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Test tools: small drivers of one module's API that shell tests call.
$(BUILD)/tools/%: tests/tools/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Fuzz targets: built with libFuzzer when clang is present, else as plain
# replay drivers (tests/fuzz/driver.c) that run the corpus in tests/fuzz/corpus.
$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/driver.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< tests/fuzz/driver.c $(LIB) $(LDLIBS)

deps:
	@sh tests/deps.sh

# The whole test suite: unit binaries, CLI tests, integration tests with real
# servers, fuzz corpus replays.  Ends with "N passed, N failed".
check: deps
	@$(MAKE) --no-print-directory all $(FUZZ_BINS)
	@SPOTRUN_BIN=$(CURDIR)/$(BIN) SPOTRUN_BUILD=$(CURDIR)/$(BUILD) sh tests/run.sh $(TESTS)

test: check

demo: deps
	@$(MAKE) --no-print-directory $(BIN)
	@sh examples/demo.sh

bench: deps
	@$(MAKE) --no-print-directory $(BIN)
	@sh tests/bench.sh
	@sh tests/bench_s3.sh
	@sh tests/bench_start.sh

fuzz: $(FUZZ_BINS)

# Open-ended fuzzing with libFuzzer (clang): make fuzz-libfuzzer, then run
# build-fuzz/fuzz_NAME tests/fuzz/corpus/NAME
fuzz-libfuzzer:
	@mkdir -p build-fuzz
	$(MAKE) --no-print-directory CC=clang SAN=1 BUILD=build-fuzz build-fuzz/libspotrun.a
	for f in $(FUZZ_SRCS); do \
		clang $(filter-out -MMD -MP,$(CFLAGS)) -fsanitize=fuzzer -o build-fuzz/$$(basename $$f .c) \
			$$f build-fuzz/libspotrun.a $(LDFLAGS) $(LDLIBS) || exit 1; done

# The binary, its man page, bash completion and the default price catalog.
install: $(BIN)
	install -D -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/spotrun
	install -D -m 644 docs/spotrun.1 $(DESTDIR)$(PREFIX)/share/man/man1/spotrun.1
	install -D -m 644 contrib/bash-completion/spotrun $(DESTDIR)$(PREFIX)/share/bash-completion/completions/spotrun
	install -D -m 644 examples/catalog.json $(DESTDIR)/usr/share/spotrun/catalog.json

clean:
	rm -rf build build-san build-fuzz spotrun spotrun-san

-include $(OBJS:.o=.d) $(BUILD)/runner/main.d
