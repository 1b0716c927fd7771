/* The code watch (src/base/codewatch.h) and FENCE.I on both engines: a hart keeps the blocks it
 * decoded across a FENCE.I when nothing wrote their pages, and drops them when a device wrote
 * one (and said so, as every device does through guest_ram_mark_dirty()), when another hart
 * wrote one through a writable mapping it had cached before the page held code, and when the
 * memory has no watch at all. */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "base/codewatch.h"
#include "cpu/engine.h"
#include "hw/bus.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (64u << 10)
#define DEV      0x10000000ull
#define PAGE_P   0x1000u /* the called code */
#define LI_A0(i) (0x00000513u | ((uint32_t)(i) << 20))
#define RET      0x00008067u

/* --- the watch itself --- */

static void test_watch(void)
{
    struct code_watch cw;

    CHECK(code_watch_init(&cw, 4) == 0);
    CHECK_EQ_U64(atomic_load(&cw.epoch), 1);
    CHECK(code_watch_join(&cw, 0) && code_watch_join(&cw, 2));

    /* A write to pages holding no code counts nothing. */
    code_watch_write(&cw, 0, 4 * 4096);
    CHECK_EQ_U64(atomic_load(&cw.hart[0].writes), 0);

    /* One to a page holding harts 0 and 2's code counts one for each, and the page holds no
     * code for the watch afterwards: the next write counts nothing. */
    atomic_store(&cw.code[1], 0x5);
    code_watch_write(&cw, 4096 + 100, 1);
    CHECK_EQ_U64(atomic_load(&cw.hart[0].writes), 1);
    CHECK_EQ_U64(atomic_load(&cw.hart[2].writes), 1);
    CHECK_EQ_U64(atomic_load(&cw.code[1]), 0);
    code_watch_write(&cw, 4096, 4096);
    CHECK_EQ_U64(atomic_load(&cw.hart[0].writes), 1);

    /* A range that starts past the end, or that wraps around, reaches no byte outside. */
    atomic_store(&cw.code[3], 0x1);
    code_watch_write(&cw, 4 * 4096, 4096);
    code_watch_write(&cw, UINT64_MAX - 10, 100);
    CHECK_EQ_U64(atomic_load(&cw.hart[0].writes), 1);
    code_watch_write(&cw, 3 * 4096 + 5, UINT64_MAX);
    CHECK_EQ_U64(atomic_load(&cw.hart[0].writes), 2);
    code_watch_write(&cw, 0, 0);

    /* Acknowledgements: parked harts never hold the others up, a waking one does, and one
     * that swept for an older epoch does. */
    CHECK(code_watch_acked(&cw, 0, 5));
    atomic_store(&cw.hart[2].ack, CODE_WATCH_WAKING);
    CHECK(!code_watch_acked(&cw, 0, 1));
    atomic_store(&cw.hart[2].ack, 4);
    CHECK(code_watch_acked(&cw, 0, 4));
    CHECK(!code_watch_acked(&cw, 0, 5));
    CHECK(code_watch_acked(&cw, 2, 5)); /* a hart does not wait for itself */
    code_watch_leave(&cw, 2);
    CHECK(code_watch_acked(&cw, 0, 5));

    /* A hart that cannot take part makes every count untrusted. */
    CHECK(!code_watch_join(&cw, CODE_WATCH_HARTS));
    CHECK(!code_watch_acked(&cw, 0, 0));
    code_watch_destroy(&cw);
}

/* --- one hart, and a device that rewrites its code --- */

/* li s3, 40; then jalr s2 (call P), addi s3, s3, -1, bnez s3 back to the jalr. */
#define CALL_P_40_TIMES 0x02800993, 0x000900e7, 0xfff98993, 0xfe099ce3

/* addi rd, rs1, imm (imm: 12 bits, signed). */
#define ADDI(rd, rs1, imm) \
    ((((uint32_t)(imm)&0xfffu) << 20) | ((uint32_t)(rs1) << 15) | ((uint32_t)(rd) << 7) | 0x13u)

/* For a program at RAM_BASE + at: s2 = P, s4 = the flags (RAM_BASE + 0x2000), s1 = DEV:
 * auipc s2, 0x1; addi s2, s2, -at; auipc s4, 0x2; addi s4, s4, -(at + 8); lui s1, 0x10000. */
#define HART_SETUP(at) \
    0x00001917, ADDI(18, 18, -(at)), 0x00002a17, ADDI(20, 20, -((at) + 8)), 0x100004b7

/* Calls P 40 times and reports a0 (the device then rewrites P), runs fence.i, calls P 40
 * times again and reports a0. */
static const uint32_t one_hart[] = {
    0x00001917,      /* auipc s2, 0x1: P */
    0x100004b7,      /* lui s1, 0x10000: DEV */
    CALL_P_40_TIMES, /* call P 40 times */
    0x00a4b023,      /* sd a0, 0(s1): the first result; the device rewrites P */
    0x0000100f,      /* fence.i */
    CALL_P_40_TIMES, /* call P 40 times */
    0x00a4b423,      /* sd a0, 8(s1): the second result; stop */
    0x0000006f,      /* j . */
};

enum report { REPORT, SILENT, NO_WATCH };

struct one {
    struct vcpu *v;
    uint8_t *ram;
    struct code_watch *cw;
    enum report report;
    uint64_t result[2];
};

static int one_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    *value = 0;
    return 0;
}

static int one_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct one *t = opaque;
    uint32_t li2 = LI_A0(2);

    t->result[offset / 8 & 1] = value;
    if (offset == 0) {
        /* As a device completing a read into guest memory: write, then report it. */
        memcpy(t->ram + PAGE_P, &li2, 4);
        if (t->report == REPORT)
            code_watch_write(t->cw, PAGE_P, 4);
    } else {
        vcpu_request_stop(t->v);
    }
    return 0;
}

static const struct mmio_ops one_ops = {
    .read = one_read, .write = one_write, .min_size = 1, .max_size = 8};

static void test_one(const char *engine, enum report report)
{
    struct one t = {.report = report};
    struct code_watch cw;
    struct bus bus = {0};
    struct vcpu_config cfg = {.id = 0, .bus = &bus, .mem_count = 1};
    uint32_t code[2] = {LI_A0(1), RET};

    CHECK(code_watch_init(&cw, RAM_SIZE / 4096) == 0);
    t.cw = report == NO_WATCH ? NULL : &cw;
    t.ram = calloc(1, RAM_SIZE);
    CHECK(t.ram != NULL);
    if (!t.ram)
        return;
    memcpy(t.ram, one_hart, sizeof(one_hart));
    memcpy(t.ram + PAGE_P, code, sizeof(code));
    CHECK(bus_add(&bus, &(struct mmio_region){"dev", DEV, 0x1000, &one_ops, &t}) == 0);
    cfg.mem[0] =
        (struct vcpu_mem_region){.base = RAM_BASE, .size = RAM_SIZE, .host = t.ram, .code = t.cw};
    CHECK(vcpu_create(cpu_engine_find(engine), &cfg, &t.v) == 0);
    vcpu_reset(t.v, RAM_BASE);
    vcpu_run(t.v);
    CHECK_EQ_U64(t.result[0], 1);
    /* Reported or not watched: the new code runs. Not reported: the block decoded before the
     * fence.i is what runs, which shows that the fence kept it. */
    CHECK_EQ_U64(t.result[1], report == SILENT ? 1 : 2);
    vcpu_destroy(t.v);
    free(t.ram);
    code_watch_destroy(&cw);
}

/* --- two harts: B writes the code that A runs --- */

/* Hart B, at +0x100: stores data to P (a writable mapping of P is cached), then "li a0, 1;
 * ret" at P. Then, in one block that loops until A stops it (so that the hart never comes back
 * between blocks, where it would sweep its TLB), counts its turns into flag 0, stores at P
 * "li a0, 1" while flag 2 is clear and "li a0, 2" once it is set, through the mapping it cached
 * before P held code, and copies flag 2 to flag 3. */
static const uint32_t hart_b[] = {
    HART_SETUP(0x100), /* s2 = P, s4 = the flags, s1 = DEV */
    0x00800293,        /* li t0, 8 */
    0x00593423,        /* sd t0, 8(s2) */
    0xfff28293,        /* addi t0, t0, -1 */
    0xfe029ce3,        /* bnez t0, -8 */
    0x00100337,        /* lui t1, 0x100 */
    0x5133031b,        /* addiw t1, t1, 1299: li a0, 1 */
    0x00692023,        /* sw t1, 0(s2) */
    0x00008337,        /* lui t1, 0x8 */
    0x0673031b,        /* addiw t1, t1, 103: ret */
    0x00692223,        /* sw t1, 4(s2) */
    0x00100293,        /* li t0, 1 */
    0x005a3023,        /* sd t0, 0(s4) */
    0x001003b7,        /* lui t2, 0x100 */
    0x5133839b,        /* addiw t2, t2, 1299: li a0, 1 */
    0x00300e37,        /* lui t3, 0x300: li a0, 1 ^ li a0, 2 */
    0x001f0f13,        /* addi t5, t5, 1 */
    0x01ea3c23,        /* sd t5, 24(s4): flag 0, the turns */
    0x008a3283,        /* ld t0, 8(s4): flag 2 */
    0x40500eb3,        /* neg t4, t0 */
    0x01cefeb3,        /* and t4, t4, t3 */
    0x007eceb3,        /* xor t4, t4, t2: li a0, 1 or li a0, 2 */
    0x01d92023,        /* sw t4, 0(s2) */
    0x0110000f,        /* fence w, w */
    0x005a3823,        /* sd t0, 16(s4): flag 3 */
    0xfd9ff06f,        /* j -40 */
};

/* Hart A, at +0x200: waits until B's loop has turned twice (B is then inside its block),
 * fence.i, calls P 40 times (P now holds code) and reports a0; sets flag 2, waits for flag 3,
 * fence.i, calls P 40 times and reports a0, and stops B and itself. */
static const uint32_t hart_a[] = {
    HART_SETUP(0x200), /* s2 = P, s4 = the flags, s1 = DEV */
    0x00200313,        /* li t1, 2 */
    0x018a3283,        /* ld t0, 24(s4) */
    0xfe62eee3,        /* bltu t0, t1, -4: until flag 0 >= 2 */
    0x0330000f,        /* fence rw, rw */
    0x0000100f,        /* fence.i */
    CALL_P_40_TIMES,   /* call P 40 times */
    0x00a4b023,        /* sd a0, 0(s1): the first result */
    0x00100293,        /* li t0, 1 */
    0x005a3423,        /* sd t0, 8(s4): flag 2 */
    0x010a3283,        /* ld t0, 16(s4) */
    0xfe028ee3,        /* beqz t0, -4: until flag 3 */
    0x0330000f,        /* fence rw, rw */
    0x0000100f,        /* fence.i */
    CALL_P_40_TIMES,   /* call P 40 times */
    0x00a4b423,        /* sd a0, 8(s1): the second result */
    0x0004bc23,        /* sd zero, 24(s1): stop B */
    0x0004b823,        /* sd zero, 16(s1): stop A */
    0x0000006f,        /* j . */
};

struct two {
    struct vcpu *v[2]; /* A, B */
    _Atomic uint64_t result[2];
};

static int two_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct two *t = opaque;

    if (offset < 16)
        atomic_store(&t->result[offset / 8], value);
    else
        vcpu_request_stop(t->v[offset == 16 ? 0 : 1]);
    return 0;
}

static const struct mmio_ops two_ops = {
    .read = one_read, .write = two_write, .min_size = 1, .max_size = 8};

static void *run_vcpu(void *v)
{
    vcpu_run(v);
    return NULL;
}

static void test_two(const char *engine)
{
    struct two t = {0};
    struct code_watch cw;
    struct bus bus = {0};
    struct vcpu_config cfg = {.bus = &bus, .mem_count = 1};
    uint8_t *ram = calloc(1, RAM_SIZE);
    pthread_t th[2];

    CHECK(ram != NULL && code_watch_init(&cw, RAM_SIZE / 4096) == 0);
    if (!ram)
        return;
    memcpy(ram + 0x100, hart_b, sizeof(hart_b));
    memcpy(ram + 0x200, hart_a, sizeof(hart_a));
    CHECK(bus_add(&bus, &(struct mmio_region){"dev", DEV, 0x1000, &two_ops, &t}) == 0);
    cfg.mem[0] =
        (struct vcpu_mem_region){.base = RAM_BASE, .size = RAM_SIZE, .host = ram, .code = &cw};
    for (unsigned i = 0; i < 2; i++) {
        cfg.id = i;
        CHECK(vcpu_create(cpu_engine_find(engine), &cfg, &t.v[i]) == 0);
        vcpu_reset(t.v[i], RAM_BASE + (i ? 0x100 : 0x200));
    }
    for (unsigned i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, run_vcpu, t.v[i]) == 0);
    for (unsigned i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_U64(atomic_load(&t.result[0]), 1);
    CHECK_EQ_U64(atomic_load(&t.result[1]), 2);
    for (unsigned i = 0; i < 2; i++)
        vcpu_destroy(t.v[i]);
    free(ram);
    code_watch_destroy(&cw);
}

int main(void)
{
    const char *engines[] = {"interp", "jit"};

    setenv("TESSERA_JIT_THRESHOLD", "0", 1); /* every block translated at once */
    test_watch();
    for (unsigned e = 0; e < 2; e++) {
        if (!cpu_engine_find(engines[e]))
            continue; /* no JIT on this host */
        test_one(engines[e], REPORT);
        test_one(engines[e], SILENT);
        test_one(engines[e], NO_WATCH);
        for (unsigned i = 0; i < 20; i++)
            test_two(engines[e]);
    }
    return test_finish("codewatch");
}
