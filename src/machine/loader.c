#include "machine/loader.h"

#include <elf.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/populate.h"

#define LOADER_MAX_FILE (4ull << 30)

/* Records the open file's size now (a reset loads what the file holds then), after checking
 * that it is a regular, non-empty file of at most LOADER_MAX_FILE bytes. */
int loader_check_file(struct loader_file *f, char *err)
{
    struct stat st;

    if (fstat(f->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, LOADER_ERR_LEN, "%s: not a regular file", f->path);
        return -1;
    }
    if (st.st_size == 0) {
        snprintf(err, LOADER_ERR_LEN, "%s: file is empty", f->path);
        return -1;
    }
    if ((uint64_t)st.st_size > LOADER_MAX_FILE) {
        snprintf(err, LOADER_ERR_LEN, "%s: file is larger than 4 GiB", f->path);
        return -1;
    }
    f->size = (uint64_t)st.st_size;
    return 0;
}

/* Reads len bytes at offset off of the file into dst; the caller has checked that they lie
 * within f->size. 0 or -1 with err set. */
static int file_read_at(const struct loader_file *f, uint64_t off, void *dst, uint64_t len,
                        char *err)
{
    uint64_t done = 0;

    while (done < len) {
        size_t chunk = len - done > (1u << 30) ? 1u << 30 : (size_t)(len - done);
        ssize_t n = pread(f->fd, (uint8_t *)dst + done, chunk, (off_t)(off + done));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, LOADER_ERR_LEN, "%s: read failed: %s", f->path,
                     n < 0 ? strerror(errno) : "file shrank while reading");
            return -1;
        }
        done += (uint64_t)n;
    }
    return 0;
}

int loader_open_file(const char *path, struct loader_file *f, char *err)
{
    memset(f, 0, sizeof(*f));
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        snprintf(err, LOADER_ERR_LEN, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    f->path = path;
    if (loader_check_file(f, err)) {
        loader_close_file(f);
        return -1;
    }
    return 0;
}

void loader_close_file(struct loader_file *f)
{
    if (f->path)
        close(f->fd);
    f->path = NULL;
    f->fd = -1;
}

/* Reads filesz bytes at file offset `off` straight into guest RAM at addr, where memsz bytes
 * must fit. The rest, up to memsz (an ELF segment's bss, an Image's), is left as it is: RAM is
 * zero where images are placed (loader.h), and writing zeros again would only fault in pages
 * the guest may never touch. The pages read into are mapped in first, in one call
 * (base/populate.h): the read would fault each in, 1,360 faults for a default guest's kernel
 * and initramfs. */
static int place(struct guest_ram *ram, gpa_t addr, const struct loader_file *f, uint64_t off,
                 uint64_t filesz, uint64_t memsz, const char *what, char *err)
{
    uint8_t *dst = guest_ram_ptr(ram, addr, memsz);

    if (!dst) {
        snprintf(err, LOADER_ERR_LEN,
                 "%s: %s at 0x%" PRIx64 " (%" PRIu64 " bytes) does not fit in RAM 0x%" PRIx64
                 "-0x%" PRIx64 " (use a larger --mem?)",
                 f->path, what, addr, memsz, ram->base, ram->base + ram->size - 1);
        return -1;
    }
    mem_populate(dst, filesz);
    return file_read_at(f, off, dst, filesz, err);
}

/* 1 when the file starts with the ELF magic, 0 when not, -1 with err set when it cannot be
 * read. */
static int is_elf(const struct loader_file *f, char *err)
{
    uint8_t magic[SELFMAG];

    if (f->size < SELFMAG)
        return 0;
    if (file_read_at(f, 0, magic, SELFMAG, err))
        return -1;
    return memcmp(magic, ELFMAG, SELFMAG) == 0;
}

/* Loads every PT_LOAD segment at its physical address after checking the headers against the
 * file; the checks are the ones a truncated or hostile ELF would trip. */
static int load_elf(const struct loader_file *f, struct guest_ram *ram, struct loader_span *out,
                    char *err)
{
    Elf64_Ehdr eh;
    gpa_t lo = UINT64_MAX, hi = 0;
    unsigned loaded = 0;

    if (f->size < sizeof(eh)) {
        snprintf(err, LOADER_ERR_LEN, "%s: truncated ELF header (%" PRIu64 " bytes)", f->path,
                 f->size);
        return -1;
    }
    if (file_read_at(f, 0, &eh, sizeof(eh), err))
        return -1;
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB) {
        snprintf(err, LOADER_ERR_LEN, "%s: not a 64-bit little-endian ELF (RISC-V RV64 expected)",
                 f->path);
        return -1;
    }
    if (eh.e_machine != EM_RISCV) {
        snprintf(err, LOADER_ERR_LEN, "%s: ELF e_machine is %u, expected %u (RISC-V)", f->path,
                 eh.e_machine, EM_RISCV);
        return -1;
    }
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phoff > f->size ||
        (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > f->size - eh.e_phoff) {
        snprintf(err, LOADER_ERR_LEN,
                 "%s: program headers (offset 0x%" PRIx64 ", %u entries) lie outside the file "
                 "(%" PRIu64 " bytes): truncated or corrupt ELF",
                 f->path, (uint64_t)eh.e_phoff, eh.e_phnum, f->size);
        return -1;
    }
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;

        if (file_read_at(f, eh.e_phoff + i * sizeof(ph), &ph, sizeof(ph), err))
            return -1;
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        if (ph.p_filesz > ph.p_memsz || ph.p_offset > f->size ||
            ph.p_filesz > f->size - ph.p_offset) {
            snprintf(err, LOADER_ERR_LEN,
                     "%s: segment %u (file offset 0x%" PRIx64 ", %" PRIu64
                     " bytes) lies outside the file (%" PRIu64 " bytes): truncated or corrupt ELF",
                     f->path, i, (uint64_t)ph.p_offset, (uint64_t)ph.p_filesz, f->size);
            return -1;
        }
        if (place(ram, ph.p_paddr, f, ph.p_offset, ph.p_filesz, ph.p_memsz, "ELF segment", err))
            return -1;
        if (ph.p_paddr < lo)
            lo = ph.p_paddr;
        if (ph.p_paddr + ph.p_memsz > hi)
            hi = ph.p_paddr + ph.p_memsz;
        loaded++;
    }
    if (!loaded) {
        snprintf(err, LOADER_ERR_LEN, "%s: ELF has no loadable segment", f->path);
        return -1;
    }
    if (eh.e_entry < lo || eh.e_entry >= hi) {
        snprintf(err, LOADER_ERR_LEN,
                 "%s: entry point 0x%" PRIx64 " is outside the loaded segments", f->path,
                 (uint64_t)eh.e_entry);
        return -1;
    }
    out->start = lo;
    out->size = hi - lo;
    out->entry = eh.e_entry;
    return 0;
}

int loader_load_firmware(const struct loader_file *f, struct guest_ram *ram,
                         struct loader_span *out, char *err)
{
    int elf = is_elf(f, err);

    if (elf)
        return elf < 0 ? -1 : load_elf(f, ram, out, err);
    if (place(ram, ram->base, f, 0, f->size, f->size, "flat binary", err))
        return -1;
    out->start = out->entry = ram->base;
    out->size = f->size;
    return 0;
}

/* The RISC-V Linux Image header (Documentation/riscv/boot-image-header.rst). */
struct riscv_image_header {
    uint32_t code0, code1;
    uint64_t text_offset;
    uint64_t image_size;
    uint64_t flags;
    uint32_t version, res1;
    uint64_t res2;
    uint64_t magic;  /* "RISCV\0\0\0", deprecated but still written */
    uint32_t magic2; /* "RSC\x05" */
    uint32_t res3;
};

int loader_load_kernel(const struct loader_file *f, struct guest_ram *ram, gpa_t load_addr,
                       struct loader_span *out, char *err)
{
    struct riscv_image_header hdr;
    uint64_t memsz;
    int elf = is_elf(f, err);

    if (elf)
        return elf < 0 ? -1 : load_elf(f, ram, out, err);
    if (f->size < sizeof(hdr)) {
        snprintf(err, LOADER_ERR_LEN,
                 "%s: %" PRIu64
                 " bytes is too small for a RISC-V Linux Image (header is %zu bytes)",
                 f->path, f->size, sizeof(hdr));
        return -1;
    }
    if (file_read_at(f, 0, &hdr, sizeof(hdr), err))
        return -1;
    if (memcmp(&hdr.magic2, "RSC\x05", 4) != 0 && memcmp(&hdr.magic, "RISCV\0\0\0", 8) != 0) {
        snprintf(err, LOADER_ERR_LEN,
                 "%s: not a RISC-V Linux kernel (no \"RSC\\x05\" Image magic at offset 56 and not "
                 "a RISC-V ELF)",
                 f->path);
        return -1;
    }
    memsz = hdr.image_size;
    if (memsz < f->size)
        memsz = f->size;
    if (memsz > ram->size) {
        snprintf(err, LOADER_ERR_LEN,
                 "%s: kernel needs %" PRIu64 " bytes but RAM is %" PRIu64
                 " bytes (use a larger --mem)",
                 f->path, memsz, ram->size);
        return -1;
    }
    if (place(ram, load_addr, f, 0, f->size, memsz, "kernel image", err))
        return -1;
    out->start = out->entry = load_addr;
    out->size = memsz;
    return 0;
}

int loader_load_raw(const struct loader_file *f, struct guest_ram *ram, gpa_t addr,
                    struct loader_span *out, char *err)
{
    if (place(ram, addr, f, 0, f->size, f->size, "image", err))
        return -1;
    out->start = out->entry = addr;
    out->size = f->size;
    return 0;
}
