# Tessera ISA tests (bare-metal RV64GC, reporting through the virt test device).
# Included by the top-level Makefile, which defines BUILD.

ISA_CROSS   ?= riscv64-linux-gnu-
ISA_CC      := $(ISA_CROSS)gcc
ISA_OBJCOPY := $(ISA_CROSS)objcopy
ISA_CFLAGS  := -march=rv64gc -mabi=lp64d -nostdlib -nostartfiles -static -fno-pie -no-pie -mcmodel=medany \
               -Wl,--no-relax -Wl,--build-id=none -Itests/isa -T tests/isa/link.ld
ISA_SRCS    := $(sort $(wildcard tests/isa/*.S))
ISA_ELFS    := $(ISA_SRCS:tests/isa/%.S=$(BUILD)/isa/%.elf)

.PHONY: isa isa-jit isa-asan isa-qemu isa-build

isa-build: $(ISA_ELFS)

$(BUILD)/isa/%.elf: tests/isa/%.S tests/isa/isa.h tests/isa/link.ld tests/isa/isa.mk
	@mkdir -p $(dir $@)
	$(ISA_CC) $(ISA_CFLAGS) -o $@ $<
	$(ISA_CROSS)objdump -d $@ > $(@:.elf=.dump)

# The interpreter, named: the default engine is the JIT on x86-64 hosts (isa-jit below).
isa: $(BUILD)/tessera $(ISA_ELFS)
	@tests/isa/run.sh --tessera $(BUILD)/tessera --cpu-engine interp $(ISA_ELFS)

# The same under the JIT engine, every block translated before its first run (threshold 0),
# so each test checks the translated code rather than the interpreter warming it up.
isa-jit: $(BUILD)/tessera $(ISA_ELFS)
	@TESSERA_JIT_THRESHOLD=0 tests/isa/run.sh --tessera $(BUILD)/tessera --cpu-engine jit \
	    $(ISA_ELFS)

isa-qemu: $(ISA_ELFS)
	@tests/isa/run.sh --qemu $(ISA_ELFS)

# Under the ASan+UBSan build: any undefined behaviour in the hart fails the test that hit it.
isa-asan: $(BUILD)/tessera-asan $(ISA_ELFS)
	@ISA_TIMEOUT=$${ISA_TIMEOUT:-60} tests/isa/run.sh --tessera $(BUILD)/tessera-asan \
	    --cpu-engine interp $(ISA_ELFS)
