# Tessera build. `make` builds build/tessera; `make test` runs every test level.
# Out-of-tree objects under build/; nothing is written into src/.

CC        ?= cc
BUILD     ?= build
OPT       ?= -O2
CFLAGS_COMMON := -std=c17 -g $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
                 -D_GNU_SOURCE -Isrc -pthread -MMD -MP $(shell pkg-config --cflags slirp gnutls sqlite3 libcurl)
# libcurl is not linked: the CLI client loads it when a command talks to the daemon
# (src/cli/client_http.h), so the VMM and the daemon start without it and its dependencies.
LDLIBS    := -lfdt -lm -lz -lzstd -lmicrohttpd -ljansson -lcrypt -pthread $(shell pkg-config --libs slirp gnutls sqlite3)
LDLIBS    += $(shell pkg-config --libs libseccomp)

SRCS      := $(shell find src -name '*.c' | sort)
MAIN_SRC  := src/cli/main.c src/daemon/main.c
LIB_SRCS  := $(filter-out $(MAIN_SRC),$(SRCS))

OBJ_DIR   := $(BUILD)/obj
ASAN_DIR  := $(BUILD)/asan
OBJS      := $(SRCS:%.c=$(OBJ_DIR)/%.o)
LIB_OBJS  := $(LIB_SRCS:%.c=$(OBJ_DIR)/%.o)
ASAN_OBJS := $(LIB_SRCS:%.c=$(ASAN_DIR)/%.o)

# The FPU relies on the host's dynamic rounding mode: the compiler must not fold or move
# floating-point operations across fesetround().
FPU_FLAGS := -frounding-math -fno-fast-math -ffp-contract=off

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_ASAN := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests-asan/%)
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: all clean test unit unit-asan isa guest guest-test format check-format bench print-libs \
        web-test
all: $(BUILD)/tessera $(BUILD)/tesserad $(BUILD)/web/index.html

# The web console (docs/web.md): bundled from web/ with its npm dependencies into build/web/,
# beside build/tesserad, which serves it. Without npm the rule warns and builds nothing.
WEB_SRCS := $(sort $(wildcard web/src/*)) web/package.json web/package-lock.json web/build.mjs \
            scripts/web-build.sh
$(BUILD)/web/index.html: $(WEB_SRCS)
	@scripts/web-build.sh build $(BUILD)/web

web-test:
	@scripts/web-build.sh test

# Everything but main() is one library; each binary is its main() linked against it. A new
# binary (tesserad) is one more line of the form below.
LIB       := $(BUILD)/libtessera.a
LIB_ASAN  := $(BUILD)/libtessera-asan.a

$(LIB): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIB_ASAN): $(ASAN_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

# Devices, disk formats and net backends register themselves from constructors that nothing
# calls by name, so the library is linked whole.
WHOLE = -Wl,--whole-archive $(1) -Wl,--no-whole-archive

$(BUILD)/tessera: $(OBJ_DIR)/src/cli/main.o $(LIB)
	$(CC) $(CFLAGS_COMMON) -o $@ $< $(call WHOLE,$(LIB)) $(LDLIBS)

$(BUILD)/tesserad: $(OBJ_DIR)/src/daemon/main.o $(LIB)
	$(CC) $(CFLAGS_COMMON) -o $@ $< $(call WHOLE,$(LIB)) $(LDLIBS)

# The same program built with ASan+UBSan (every report fatal), for `make isa-asan`.
$(BUILD)/tessera-asan: $(ASAN_DIR)/src/cli/main.o $(LIB_ASAN)
	$(CC) $(CFLAGS_COMMON) -O1 $(SANFLAGS) -o $@ $< $(call WHOLE,$(LIB_ASAN)) $(LDLIBS)

$(OBJ_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(if $(findstring fpu,$<),$(FPU_FLAGS)) -c -o $@ $<

$(ASAN_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O1 $(SANFLAGS) $(if $(findstring fpu,$<),$(FPU_FLAGS)) -c -o $@ $<

# Unit tests link the whole library, as the binaries do.
.SECONDARY:
$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Itests/unit -o $@ $< $(call WHOLE,$(LIB)) $(LDLIBS)

$(BUILD)/tests-asan/%: tests/unit/%.c $(LIB_ASAN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O1 $(SANFLAGS) -Itests/unit -o $@ $< $(call WHOLE,$(LIB_ASAN)) \
	    $(LDLIBS)

# test_vmproc runs the real VMM (build/tessera, with the default guest of guest/build.sh).
unit: $(UNIT_BINS) $(BUILD)/tessera
	@tests/run-unit.sh $(UNIT_BINS)

unit-asan: $(UNIT_ASAN) $(BUILD)/tessera
	@tests/run-unit.sh $(UNIT_ASAN)

include tests/isa/isa.mk
include tests/hostile/hostile.mk

guest:
	guest/build.sh

guest-test: $(BUILD)/tessera guest
	tests/guest/run.sh

format:
	clang-format -i $$(git ls-files 'src/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]' 'guest/*.[ch]')

check-format:
	@clang-format --dry-run -Werror $$(git ls-files 'src/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]' 'guest/*.[ch]') && echo "format: ok"

bench: $(BUILD)/tessera guest
	bench/run.sh

# Everything CI runs, in order of cost.
test: $(BUILD)/tessera
	tests/run-all.sh

# What a program built outside this Makefile (a fuzz target's "// build:" line) needs to link
# the sources of src/: the libraries, one line.
print-libs:
	@echo $(LDLIBS)

clean:
	rm -rf $(BUILD)

-include $(OBJS:.o=.d) $(ASAN_OBJS:.o=.d) $(ASAN_DIR)/src/cli/main.d
# A unit test may include sources from outside src/ (test_seed.c: the guest agent's reader).
-include $(UNIT_BINS:=.d) $(UNIT_ASAN:=.d)
