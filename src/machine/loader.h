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

/* An image file, kept open from the first load on. Each load reads it again, from the same
 * open file, straight into guest RAM: a file renamed or deleted meanwhile still loads, and no
 * copy of it stays in the VMM (a kernel and initrd kept for a reset that may never come would
 * cost their size in its RSS, and reading them into a buffer first would fault that buffer's
 * pages in and copy everything twice). */
struct loader_file {
    const char *path; /* NULL: not open */
    int fd;
    uint64_t size; /* at the last open or check */
};

/* Opens `path`. Refuses missing, unreadable, empty and non-regular files and files over 4 GiB.
 * 0 or -1 with err set (f is then not open). */
int loader_open_file(const char *path, struct loader_file *f, char *err);
/* The same checks on an open file again, before a reset loads what it holds now. 0 or -1. */
int loader_check_file(struct loader_file *f, char *err);
/* Closes the file; f must be open or zeroed by loader_open_file(). */
void loader_close_file(struct loader_file *f);

/* What was placed where. */
struct loader_span {
    gpa_t start;
    uint64_t size; /* bytes the image occupies in RAM, including zero-filled parts (bss) */
    gpa_t entry;
};

/* The loaders below read into RAM that reads as zero (virt_load() clears it first): what an
 * image leaves unwritten (an ELF segment's bss, a kernel's image_size beyond the file) is not
 * zeroed again. */

/* Firmware (--bios): a RISC-V ELF64 loaded at its own physical addresses, or else a flat
 * binary at RAM base. 0 or -1 with err. */
int loader_load_firmware(const struct loader_file *f, struct guest_ram *ram,
                         struct loader_span *out, char *err);

/* A Linux kernel: a RISC-V "Image" (arch/riscv/boot/Image, with its header) or a RISC-V ELF.
 * An Image goes at `load_addr`; an ELF at its physical addresses. */
int loader_load_kernel(const struct loader_file *f, struct guest_ram *ram, gpa_t load_addr,
                       struct loader_span *out, char *err);

/* Reads raw bytes (an initrd) to `addr`; refuses if they do not fit in RAM. */
int loader_load_raw(const struct loader_file *f, struct guest_ram *ram, gpa_t addr,
                    struct loader_span *out, char *err);

#endif
