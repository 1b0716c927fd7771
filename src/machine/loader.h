/* Loading firmware, kernel and initrd images into guest RAM.
 *
 * Image files are outside input: every header field is checked against the file's size and
 * the RAM it must land in. Errors are one line for people, naming the file and what is wrong,
 * written into the caller's buffer. */
#ifndef TESSERA_MACHINE_LOADER_H
#define TESSERA_MACHINE_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "hw/guest_mem.h"

#define LOADER_ERR_LEN 512

/* A file read whole into memory. */
struct loader_file {
    const char *path;
    uint8_t *data;
    size_t size;
};

/* Reads `path` whole. Refuses missing, unreadable and empty files. 0 or -1 with err set. */
int loader_read_file(const char *path, struct loader_file *f, char *err);
void loader_free_file(struct loader_file *f);

/* What was placed where. */
struct loader_span {
    gpa_t start;
    uint64_t size; /* bytes the image occupies in RAM, including zero-filled parts (bss) */
    gpa_t entry;
};

/* Firmware (--bios): a RISC-V ELF64 loaded at its own physical addresses, or else a flat
 * binary at RAM base. 0 or -1 with err. */
int loader_load_firmware(const struct loader_file *f, struct guest_ram *ram,
                         struct loader_span *out, char *err);

/* A Linux kernel: a RISC-V "Image" (arch/riscv/boot/Image, with its header) or a RISC-V ELF.
 * An Image goes at `load_addr`; an ELF at its physical addresses. */
int loader_load_kernel(const struct loader_file *f, struct guest_ram *ram, gpa_t load_addr,
                       struct loader_span *out, char *err);

/* Copies raw bytes (an initrd) to `addr`; refuses if they do not fit in RAM. */
int loader_load_raw(const struct loader_file *f, struct guest_ram *ram, gpa_t addr,
                    struct loader_span *out, char *err);

#endif
