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

/* A file kept open, and read whole into memory while it is being loaded. The buffer can be
 * dropped once the image is in guest RAM (a guest reset reads the file again, from the same
 * open file, so a file renamed or deleted meanwhile still loads): a kernel and initrd kept
 * in memory for a reset that may never come cost their size in the VMM's RSS. */
struct loader_file {
    const char *path; /* NULL: not open */
    int fd;
    uint8_t *data; /* NULL while dropped */
    size_t size;
};

/* Opens `path` and reads it whole. Refuses missing, unreadable and empty files. 0 or -1 with
 * err set (f is then not open). */
int loader_read_file(const char *path, struct loader_file *f, char *err);
/* Reads an open file whose data was dropped whole again (what it holds now). 0 (also when the
 * data is there) or -1 with err set. */
int loader_reread_file(struct loader_file *f, char *err);
/* Frees the data, keeps the file open. */
void loader_drop_data(struct loader_file *f);
/* Frees the data and closes the file; f must be open or zeroed by loader_read_file(). */
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
