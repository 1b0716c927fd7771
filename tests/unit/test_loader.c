/* machine/loader: ELF, Linux Image and raw images read from their files into guest RAM, and
 * what hostile or changing files get. The images are built here byte by byte, so each check
 * knows where every byte must land. */
#include "machine/loader.h"

#include <elf.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (4ull << 20)

static char dir[] = "/tmp/tessera-test-loader-XXXXXX";

/* Writes `len` bytes to a file of the test's directory, replacing what was there in place
 * (the same inode, as an editor that rewrites a kernel file would), and returns its path. */
static const char *write_file(const char *name, const void *data, size_t len)
{
    static char path[4][256];
    static unsigned next;
    char *p = path[next++ % 4];
    FILE *f;

    snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
    f = fopen(p, "r+b");
    if (!f)
        f = fopen(p, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || ftruncate(fileno(f), (off_t)len)) {
        perror(p);
        exit(2);
    }
    fclose(f);
    return p;
}

/* An RV64 ELF with one PT_LOAD segment: `filesz` bytes of 0x5a at file offset 0x100, placed at
 * paddr, `memsz` bytes in memory; entry at paddr. */
static size_t make_elf(uint8_t *buf, uint64_t paddr, uint64_t filesz, uint64_t memsz)
{
    Elf64_Ehdr eh = {0};
    Elf64_Phdr ph = {0};

    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_machine = EM_RISCV;
    eh.e_entry = paddr;
    eh.e_phoff = sizeof(eh);
    eh.e_phentsize = sizeof(ph);
    eh.e_phnum = 1;
    ph.p_type = PT_LOAD;
    ph.p_offset = 0x100;
    ph.p_paddr = paddr;
    ph.p_filesz = filesz;
    ph.p_memsz = memsz;
    memcpy(buf, &eh, sizeof(eh));
    memcpy(buf + sizeof(eh), &ph, sizeof(ph));
    memset(buf + 0x100, 0x5a, filesz);
    return 0x100 + filesz;
}

static bool all(const uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != v)
            return false;
    }
    return true;
}

/* An ELF segment lands at its physical address with its bss zero, where RAM held a previous
 * boot's data; the span covers the bss. */
static void test_elf_bss(struct guest_ram *ram)
{
    static uint8_t buf[0x2000];
    struct loader_file f;
    struct loader_span sp;
    char err[LOADER_ERR_LEN];
    uint8_t *p = guest_ram_ptr(ram, RAM_BASE, RAM_SIZE);
    size_t len = make_elf(buf, RAM_BASE + 0x1000, 0x800, 0x3000);

    memset(p, 0xee, RAM_SIZE); /* the last boot's memory */
    CHECK(loader_open_file(write_file("fw.elf", buf, len), &f, err) == 0);
    guest_ram_clear(ram); /* what virt_load() does before loading */
    CHECK(loader_load_firmware(&f, ram, &sp, err) == 0);
    CHECK_EQ_U64(sp.start, RAM_BASE + 0x1000);
    CHECK_EQ_U64(sp.size, 0x3000);
    CHECK_EQ_U64(sp.entry, RAM_BASE + 0x1000);
    CHECK(all(p + 0x1000, 0x800, 0x5a));
    CHECK(all(p + 0x1800, 0x2800, 0)); /* the bss */
    CHECK(all(p, 0x1000, 0));
    loader_close_file(&f);
}

/* A segment that reaches past the file, or past RAM, is refused with the file's name and the
 * reason, before anything of it is read. */
static void test_elf_hostile(struct guest_ram *ram)
{
    static uint8_t buf[0x2000];
    struct loader_file f;
    struct loader_span sp;
    char err[LOADER_ERR_LEN];
    size_t len = make_elf(buf, RAM_BASE, 0x800, 0x800);

    /* The file cut short inside the segment. */
    CHECK(loader_open_file(write_file("cut.elf", buf, len - 1), &f, err) == 0);
    CHECK(loader_load_firmware(&f, ram, &sp, err) == -1);
    CHECK(strstr(err, "cut.elf: segment 0") && strstr(err, "lies outside the file"));
    loader_close_file(&f);

    /* A segment placed past the end of RAM. */
    make_elf(buf, RAM_BASE + RAM_SIZE - 0x400, 0x800, 0x800);
    CHECK(loader_open_file(write_file("high.elf", buf, len), &f, err) == 0);
    CHECK(loader_load_firmware(&f, ram, &sp, err) == -1);
    CHECK(strstr(err, "high.elf: ELF segment at 0x803ffc00") && strstr(err, "does not fit"));
    loader_close_file(&f);

    /* A bss that wraps the address space. */
    make_elf(buf, RAM_BASE, 0x800, UINT64_MAX - RAM_BASE + 0x1000);
    CHECK(loader_open_file(write_file("wrap.elf", buf, len), &f, err) == 0);
    CHECK(loader_load_firmware(&f, ram, &sp, err) == -1);
    CHECK(strstr(err, "does not fit in RAM") != NULL);
    loader_close_file(&f);

    /* Program headers past the end of the file. */
    CHECK(loader_open_file(write_file("phdr.elf", buf, sizeof(Elf64_Ehdr) + 8), &f, err) == 0);
    CHECK(loader_load_firmware(&f, ram, &sp, err) == -1);
    CHECK(strstr(err, "program headers") && strstr(err, "lie outside the file"));
    loader_close_file(&f);
}

/* A Linux Image goes at the load address with its header's image_size as its span; a file
 * without the Image magic is refused. */
static void test_image(struct guest_ram *ram)
{
    static uint8_t img[0x1000];
    struct loader_file f;
    struct loader_span sp;
    char err[LOADER_ERR_LEN];
    uint64_t image_size = 0x10000;
    uint8_t *p = guest_ram_ptr(ram, RAM_BASE, RAM_SIZE);

    memset(img, 0x11, sizeof(img));
    memcpy(img + 16, &image_size, 8);
    memcpy(img + 56, "RSC\x05", 4);
    CHECK(loader_open_file(write_file("Image", img, sizeof(img)), &f, err) == 0);
    guest_ram_clear(ram);
    CHECK(loader_load_kernel(&f, ram, RAM_BASE + 0x200000, &sp, err) == 0);
    CHECK_EQ_U64(sp.start, RAM_BASE + 0x200000);
    CHECK_EQ_U64(sp.size, image_size);
    CHECK(memcmp(p + 0x200000, img, sizeof(img)) == 0);
    CHECK(all(p + 0x200000 + sizeof(img), image_size - sizeof(img), 0));
    loader_close_file(&f);

    memset(img + 56, 0, 8);
    CHECK(loader_open_file(write_file("notimage", img, sizeof(img)), &f, err) == 0);
    CHECK(loader_load_kernel(&f, ram, RAM_BASE + 0x200000, &sp, err) == -1);
    CHECK(strstr(err, "notimage: not a RISC-V Linux kernel") != NULL);
    loader_close_file(&f);
}

/* A reset loads what the open file holds then: rewritten in place, the new bytes; cut to
 * nothing, an error (and a file that shrinks between the check and the read says so). */
static void test_reload(struct guest_ram *ram)
{
    uint8_t a[3000], b[5000];
    struct loader_file f;
    struct loader_span sp;
    char err[LOADER_ERR_LEN];
    const char *path;
    uint8_t *p = guest_ram_ptr(ram, RAM_BASE, RAM_SIZE);

    memset(a, 0xa1, sizeof(a));
    memset(b, 0xb2, sizeof(b));
    path = write_file("initrd", a, sizeof(a));
    CHECK(loader_open_file(path, &f, err) == 0);
    guest_ram_clear(ram);
    CHECK(loader_load_raw(&f, ram, RAM_BASE + 0x100000, &sp, err) == 0);
    CHECK_EQ_U64(sp.size, sizeof(a));
    CHECK(all(p + 0x100000, sizeof(a), 0xa1));

    write_file("initrd", b, sizeof(b));
    CHECK(loader_check_file(&f, err) == 0);
    guest_ram_clear(ram);
    CHECK(loader_load_raw(&f, ram, RAM_BASE + 0x100000, &sp, err) == 0);
    CHECK_EQ_U64(sp.size, sizeof(b));
    CHECK(all(p + 0x100000, sizeof(b), 0xb2));

    write_file("initrd", b, 100); /* shrank after the check: the read finds the end early */
    CHECK(loader_load_raw(&f, ram, RAM_BASE + 0x100000, &sp, err) == -1);
    CHECK(strstr(err, "initrd: read failed: file shrank while reading") != NULL);

    write_file("initrd", b, 0);
    CHECK(loader_check_file(&f, err) == -1);
    CHECK(strstr(err, "initrd: file is empty") != NULL);
    loader_close_file(&f);

    CHECK(loader_open_file(dir, &f, err) == -1);
    CHECK(strstr(err, "not a regular file") != NULL);
}

int main(void)
{
    struct guest_ram ram;

    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    if (guest_ram_init(&ram, RAM_BASE, RAM_SIZE)) {
        fprintf(stderr, "guest_ram_init failed\n");
        return 2;
    }
    test_elf_bss(&ram);
    test_elf_hostile(&ram);
    test_image(&ram);
    test_reload(&ram);
    guest_ram_destroy(&ram);
    {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd))
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return test_finish("loader");
}
