/* The whole board, no guest OS: two machines in one process run side by side (nothing is
 * global), each computes its own answer and reports it through the test device; console
 * output reaches the fd the machine was given; the CPU engine is chosen by name. Each
 * machine's device tree carries its own entropy in /chosen and the RTC node the kernel looks
 * for. */
#include "test.h"

#include <libfdt.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "cpu/engine.h"
#include "machine/virt.h"

static uint32_t enc_i(unsigned op, unsigned rd, unsigned f3, unsigned rs1, int imm)
{
    return ((uint32_t)(imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}

static uint32_t enc_r(unsigned op, unsigned rd, unsigned f3, unsigned rs1, unsigned rs2,
                      unsigned f7)
{
    return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}

static uint32_t enc_s(unsigned rs1, unsigned rs2, unsigned f3, int imm)
{
    return ((uint32_t)((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
           ((uint32_t)(imm & 0x1f) << 7) | 0x23;
}

static uint32_t enc_b(unsigned rs1, unsigned rs2, unsigned f3, int imm)
{
    uint32_t u = (uint32_t)imm;

    return (((u >> 12) & 1) << 31) | (((u >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) |
           (f3 << 12) | (((u >> 1) & 0xf) << 8) | (((u >> 11) & 1) << 7) | 0x63;
}

enum { T0 = 5, T1 = 6, T2 = 7, T3 = 28 };

/* sum = 1 + ... + n; print 'A' + n % 26 on the UART; fail through the test device with
 * code = sum & 0xffff, so the exit status proves the computation ran on this machine. */
static char *write_program(unsigned n)
{
    uint32_t p[] = {
        enc_i(0x13, T0, 0, 0, (int)n),              /* addi t0, x0, n */
        enc_i(0x13, T1, 0, 0, 0),                   /* addi t1, x0, 0 */
        enc_r(0x33, T1, 0, T1, T0, 0),              /* loop: add t1, t1, t0 */
        enc_i(0x13, T0, 0, T0, -1),                 /* addi t0, t0, -1 */
        enc_b(T0, 0, 1, -8),                        /* bne t0, x0, loop */
        (0x10000u << 12) | (T2 << 7) | 0x37,        /* lui t2, 0x10000 (UART) */
        enc_i(0x13, T3, 0, 0, 'A' + (int)(n % 26)), /* addi t3, x0, ch */
        enc_s(T2, T3, 0, 0),                        /* sb t3, 0(t2) */
        (0x100u << 12) | (T2 << 7) | 0x37,          /* lui t2, 0x100 (test device) */
        enc_i(0x13, T1, 1, T1, 16),                 /* slli t1, t1, 16 */
        (0x3u << 12) | (T3 << 7) | 0x37,            /* lui t3, 0x3 */
        enc_i(0x13, T3, 0, T3, 0x333),              /* addi t3, t3, 0x333 */
        enc_r(0x33, T1, 6, T1, T3, 0),              /* or t1, t1, t3 */
        enc_s(T2, T1, 2, 0),                        /* sw t1, 0(t2) */
        0x0000006f,                                 /* j . */
    };
    char *path = strdup("/tmp/tessera-test-virt-XXXXXX");
    int fd = mkstemp(path);

    if (fd < 0 || write(fd, p, sizeof(p)) != (ssize_t)sizeof(p))
        abort();
    close(fd);
    return path;
}

/* The device tree has /chosen/rng-seed (64 bytes) and kaslr-seed (u64) and the goldfish RTC
 * where QEMU's virt has it. Copies the seed to `seed` to compare machines. */
static void check_fdt(struct virt_machine *m, uint8_t seed[64])
{
    const void *fdt = virt_fdt(m);
    const uint8_t *p;
    const fdt32_t *cell;
    const char *compat;
    int chosen, rtc, len = -1;
    uint8_t zero[64] = {0};

    CHECK(fdt != NULL);
    if (!fdt)
        return;
    chosen = fdt_path_offset(fdt, "/chosen");
    CHECK(chosen >= 0);
    p = fdt_getprop(fdt, chosen, "rng-seed", &len);
    CHECK(p != NULL && len == 64);
    if (p && len == 64) {
        memcpy(seed, p, 64);
        CHECK(memcmp(seed, zero, 64) != 0);
    }
    p = fdt_getprop(fdt, chosen, "kaslr-seed", &len);
    CHECK(p != NULL && len == 8);

    rtc = fdt_path_offset(fdt, "/soc/rtc@101000");
    CHECK(rtc >= 0);
    compat = fdt_getprop(fdt, rtc, "compatible", &len);
    CHECK(compat && !strcmp(compat, "google,goldfish-rtc"));
    cell = fdt_getprop(fdt, rtc, "reg", &len);
    CHECK(cell && len == 16 && fdt32_to_cpu(cell[1]) == 0x101000 &&
          fdt32_to_cpu(cell[3]) == 0x1000);
    cell = fdt_getprop(fdt, rtc, "interrupts", &len);
    CHECK(cell && len == 4 && fdt32_to_cpu(cell[0]) == 11);
    cell = fdt_getprop(fdt, rtc, "interrupt-parent", &len);
    CHECK(cell && len == 4 &&
          fdt_node_offset_by_phandle(fdt, fdt32_to_cpu(cell[0])) ==
              fdt_path_offset(fdt, "/soc/plic@c000000"));
}

struct run {
    struct virt_machine *m;
    int status;
};

static void *run_thread(void *opaque)
{
    struct run *r = opaque;

    r->status = virt_run(r->m);
    return NULL;
}

int main(void)
{
    unsigned n[2] = {100, 200};
    int pipes[2][2];
    char *paths[2];
    struct run runs[2];
    pthread_t threads[2];
    uint8_t seeds[2][64] = {{0}};

    for (int i = 0; i < 2; i++) {
        struct virt_config cfg = {.cpus = 2, .mem_size = 32ull << 20};

        /* The second machine names its CPU engine; the first gets the default. */
        if (i == 1)
            cfg.cpu_engine = "interp";
        CHECK(pipe(pipes[i]) == 0);
        paths[i] = write_program(n[i]);
        cfg.bios = paths[i];
        cfg.console_fd = pipes[i][1];
        CHECK(virt_create(&cfg, &runs[i].m) == 0);
        check_fdt(runs[i].m, seeds[i]);
    }
    CHECK(memcmp(seeds[0], seeds[1], 64) != 0); /* from getrandom(), per machine */
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&threads[i], NULL, run_thread, &runs[i]) == 0);
    for (int i = 0; i < 2; i++) {
        char ch = 0;

        pthread_join(threads[i], NULL);
        /* Both harts run the program; the first to reach the test device decides. */
        CHECK_EQ_U64(runs[i].status, (n[i] * (n[i] + 1) / 2) & 0xffff);
        CHECK(read(pipes[i][0], &ch, 1) == 1);
        CHECK_EQ_U64(ch, 'A' + n[i] % 26);
        virt_destroy(runs[i].m);
        unlink(paths[i]);
        free(paths[i]);
    }
    {
        /* An engine name that no engine registered is refused before anything runs. */
        struct virt_config cfg = {.cpus = 1, .mem_size = 32ull << 20, .cpu_engine = "nope"};
        struct virt_machine *m = NULL;
        char known[64];

        paths[0] = write_program(1);
        cfg.bios = paths[0];
        cfg.console_fd = pipes[0][1];
        CHECK(virt_create(&cfg, &m) == -1);
        CHECK(m == NULL);
        unlink(paths[0]);
        free(paths[0]);
        CHECK(cpu_engine_find("interp") != NULL);
        CHECK(cpu_engine_find("nope") == NULL);
        cpu_engine_list(known, sizeof(known));
        CHECK(strstr(known, "interp") != NULL);
    }
    return test_finish("virt");
}
