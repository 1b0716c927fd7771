#include "machine/virt.h"

#include <errno.h>
#include <inttypes.h>
#include <libfdt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/log.h"
#include "base/loop.h"
#include "base/time.h"
#include "cpu/engine.h"
#include "hw/bus.h"
#include "hw/clint.h"
#include "hw/goldfish_rtc.h"
#include "hw/guest_mem.h"
#include "hw/irq.h"
#include "hw/plic.h"
#include "hw/sifive_test.h"
#include "hw/uart16550.h"
#include "hw/virtio/vdev.h"
#include "hw/virtio/virtio_mmio.h"
#include "machine/loader.h"
#include "machine/virt_int.h"

/* The address map of QEMU's virt machine (hw/riscv/virt.c) for what we implement. */
#define VIRT_TEST_BASE     0x100000ull
#define VIRT_RTC_BASE      0x101000ull
#define VIRT_RTC_IRQ       11
#define VIRT_CLINT_BASE    0x2000000ull
#define VIRT_PLIC_BASE     0xc000000ull
#define VIRT_UART_BASE     0x10000000ull
#define VIRT_UART_IRQ      10
#define VIRT_VIRTIO_BASE   0x10001000ull /* slot n at base + n * 0x1000, PLIC source 1 + n */
#define VIRT_VIRTIO_STRIDE 0x1000ull
#define VIRT_VIRTIO_IRQ    1
#define VIRT_PLIC_NSRC     97 /* sources 1..96 as QEMU 7.2 (source 0 does not exist) */
#define VIRT_TIMEBASE      10000000ull
#define VIRT_KERNEL_OFF    0x200000ull /* RV64 kernels go 2 MiB above RAM base, after firmware */
#define VIRT_RNG_SEED_LEN  64          /* /chosen/rng-seed: 512 bits, twice what Linux needs */

static void virt_post(struct virt_machine *m, enum virt_event ev, int status)
{
    pthread_mutex_lock(&m->lock);
    /* The first exit wins; a reset never overrides an exit; a pause overrides nothing. */
    if (m->event != VIRT_EV_EXIT && (ev != VIRT_EV_PAUSE || m->event == VIRT_EV_NONE)) {
        m->event = ev;
        m->exit_status = status;
    }
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    for (unsigned i = 0; i < m->cfg.cpus; i++)
        vcpu_request_stop(m->harts[i]);
}

void virt_request_exit(struct virt_machine *m, int status)
{
    virt_post(m, VIRT_EV_EXIT, status);
}

/* The test device's callback, on the hart thread that wrote it. A failure with code 0 still
 * exits non-zero: a failing guest must never look like a passing one. */
static void virt_test_event(void *opaque, enum sifive_test_event ev, unsigned code)
{
    struct virt_machine *m = opaque;

    switch (ev) {
    case SIFIVE_TEST_PASS: virt_post(m, VIRT_EV_EXIT, 0); break;
    case SIFIVE_TEST_FAIL: virt_post(m, VIRT_EV_EXIT, code ? (int)code : 1); break;
    case SIFIVE_TEST_RESET: virt_post(m, VIRT_EV_RESET, 0); break;
    }
}

size_t virt_console_input(struct virt_machine *m, const uint8_t *buf, size_t len)
{
    return uart16550_input(m->uart, buf, len);
}

/* --- device tree (the same nodes and properties as QEMU's virt, for what we implement) --- */

#define FDT_CHECK(call)  \
    do {                 \
        int e_ = (call); \
        if (e_ < 0)      \
            return e_;   \
    } while (0)

static int fdt_reg(void *fdt, uint64_t base, uint64_t size)
{
    fdt64_t reg[2] = {cpu_to_fdt64(base), cpu_to_fdt64(size)};

    return fdt_property(fdt, "reg", reg, sizeof(reg));
}

static int fdt_stringlist(void *fdt, const char *name, const char *const *list, unsigned n)
{
    char buf[256];
    size_t len = 0;

    for (unsigned i = 0; i < n; i++) {
        size_t l = strlen(list[i]) + 1;

        if (len + l > sizeof(buf))
            return -FDT_ERR_NOSPACE;
        memcpy(buf + len, list[i], l);
        len += l;
    }
    return fdt_property(fdt, name, buf, (int)len);
}

enum { PH_PLIC = 1, PH_TEST = 2, PH_CPU_INTC = 16 };

/* What every hart implements, for the device tree: riscv,isa for today's kernels and
 * firmware, riscv,isa-base and riscv,isa-extensions for kernels from 6.6 on (Linux
 * Documentation/devicetree/bindings/riscv/extensions.yaml). Multi-letter extensions go in
 * the ISA manual's canonical order (unprivileged 20191213 §27.11): Zi*, then Zb*, then S*. */
#define VIRT_ISA_BASE "rv64i"
#define VIRT_ISA      "rv64imafdc_zicsr_zifencei_zihintpause_zba_zbb_zbs_sstc"
static const char *const virt_isa_extensions[] = {
    "i", "m", "a", "f", "d", "c", "zicsr", "zifencei", "zihintpause", "zba", "zbb", "zbs", "sstc",
};

/* Fresh entropy for one boot's device tree. */
struct virt_seeds {
    uint8_t rng[VIRT_RNG_SEED_LEN];
    uint64_t kaslr;
};

/* Fills `len` bytes from getrandom(2), which blocks only until the host's own pool was first
 * initialised (early in the host's boot). 0 or -errno. */
static int virt_getrandom(void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t done = 0;

    while (done < len) {
        ssize_t n = getrandom(p + done, len - done, 0);

        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0)
            done += (size_t)n;
    }
    return 0;
}

static int virt_build_fdt(struct virt_machine *m, gpa_t initrd_start, gpa_t initrd_end,
                          const struct virt_seeds *seeds)
{
    void *fdt = m->fdt;
    unsigned n = m->cfg.cpus;
    char name[64];
    uint32_t cells[4 * VIRT_MAX_CPUS];

    FDT_CHECK(fdt_create(fdt, VIRT_FDT_MAX));
    FDT_CHECK(fdt_finish_reservemap(fdt));
    FDT_CHECK(fdt_begin_node(fdt, ""));
    FDT_CHECK(fdt_property_u32(fdt, "#address-cells", 2));
    FDT_CHECK(fdt_property_u32(fdt, "#size-cells", 2));
    FDT_CHECK(fdt_property_string(fdt, "compatible", "riscv-virtio"));
    FDT_CHECK(fdt_property_string(fdt, "model", "tessera,virt"));

    FDT_CHECK(fdt_begin_node(fdt, "chosen"));
    if (m->cfg.append)
        FDT_CHECK(fdt_property_string(fdt, "bootargs", m->cfg.append));
    FDT_CHECK(fdt_property_string(fdt, "stdout-path", "/soc/serial@10000000"));
    /* Entropy before the first driver runs (Devicetree Specification 0.4 §3.6 /chosen): Linux
     * mixes rng-seed into its pool at once, credits it (RANDOM_TRUST_BOOTLOADER, on by default)
     * so the pool is ready before init, and blanks the property (drivers/of/fdt.c). Without it
     * a guest with no hardware RNG waits tens of seconds for "crng init done". kaslr-seed is
     * for kernels that randomise their own placement (QEMU's arm virt passes it the same way). */
    FDT_CHECK(fdt_property(fdt, "rng-seed", seeds->rng, sizeof(seeds->rng)));
    FDT_CHECK(fdt_property_u64(fdt, "kaslr-seed", seeds->kaslr));
    if (initrd_end > initrd_start) {
        FDT_CHECK(fdt_property_u64(fdt, "linux,initrd-start", initrd_start));
        FDT_CHECK(fdt_property_u64(fdt, "linux,initrd-end", initrd_end));
    }
    FDT_CHECK(fdt_end_node(fdt));

    snprintf(name, sizeof(name), "memory@%" PRIx64, m->ram.base);
    FDT_CHECK(fdt_begin_node(fdt, name));
    FDT_CHECK(fdt_property_string(fdt, "device_type", "memory"));
    FDT_CHECK(fdt_reg(fdt, m->ram.base, m->ram.size));
    FDT_CHECK(fdt_end_node(fdt));

    FDT_CHECK(fdt_begin_node(fdt, "cpus"));
    FDT_CHECK(fdt_property_u32(fdt, "#address-cells", 1));
    FDT_CHECK(fdt_property_u32(fdt, "#size-cells", 0));
    FDT_CHECK(fdt_property_u32(fdt, "timebase-frequency", VIRT_TIMEBASE));
    for (unsigned i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "cpu@%u", i);
        FDT_CHECK(fdt_begin_node(fdt, name));
        FDT_CHECK(fdt_property_string(fdt, "device_type", "cpu"));
        FDT_CHECK(fdt_property_u32(fdt, "reg", i));
        FDT_CHECK(fdt_property_string(fdt, "status", "okay"));
        FDT_CHECK(fdt_property_string(fdt, "compatible", "riscv"));
        FDT_CHECK(fdt_property_string(fdt, "riscv,isa", VIRT_ISA));
        FDT_CHECK(fdt_property_string(fdt, "riscv,isa-base", VIRT_ISA_BASE));
        FDT_CHECK(fdt_stringlist(fdt, "riscv,isa-extensions", virt_isa_extensions,
                                 sizeof(virt_isa_extensions) / sizeof(virt_isa_extensions[0])));
        FDT_CHECK(fdt_property_string(fdt, "mmu-type", "riscv,sv57"));
        FDT_CHECK(fdt_begin_node(fdt, "interrupt-controller"));
        FDT_CHECK(fdt_property_u32(fdt, "#interrupt-cells", 1));
        FDT_CHECK(fdt_property(fdt, "interrupt-controller", NULL, 0));
        FDT_CHECK(fdt_property_string(fdt, "compatible", "riscv,cpu-intc"));
        FDT_CHECK(fdt_property_u32(fdt, "phandle", PH_CPU_INTC + i));
        FDT_CHECK(fdt_end_node(fdt));
        FDT_CHECK(fdt_end_node(fdt));
    }
    FDT_CHECK(fdt_end_node(fdt));

    /* Power-off and reboot go through the test device, as on QEMU's virt. */
    FDT_CHECK(fdt_begin_node(fdt, "poweroff"));
    FDT_CHECK(fdt_property_string(fdt, "compatible", "syscon-poweroff"));
    FDT_CHECK(fdt_property_u32(fdt, "regmap", PH_TEST));
    FDT_CHECK(fdt_property_u32(fdt, "offset", 0));
    FDT_CHECK(fdt_property_u32(fdt, "value", 0x5555));
    FDT_CHECK(fdt_end_node(fdt));
    FDT_CHECK(fdt_begin_node(fdt, "reboot"));
    FDT_CHECK(fdt_property_string(fdt, "compatible", "syscon-reboot"));
    FDT_CHECK(fdt_property_u32(fdt, "regmap", PH_TEST));
    FDT_CHECK(fdt_property_u32(fdt, "offset", 0));
    FDT_CHECK(fdt_property_u32(fdt, "value", 0x7777));
    FDT_CHECK(fdt_end_node(fdt));

    FDT_CHECK(fdt_begin_node(fdt, "soc"));
    FDT_CHECK(fdt_property_u32(fdt, "#address-cells", 2));
    FDT_CHECK(fdt_property_u32(fdt, "#size-cells", 2));
    FDT_CHECK(fdt_property_string(fdt, "compatible", "simple-bus"));
    FDT_CHECK(fdt_property(fdt, "ranges", NULL, 0));

    snprintf(name, sizeof(name), "test@%llx", VIRT_TEST_BASE);
    FDT_CHECK(fdt_begin_node(fdt, name));
    {
        static const char *const compat[] = {"sifive,test1", "sifive,test0", "syscon"};
        FDT_CHECK(fdt_stringlist(fdt, "compatible", compat, 3));
    }
    FDT_CHECK(fdt_reg(fdt, VIRT_TEST_BASE, SIFIVE_TEST_MMIO_SIZE));
    FDT_CHECK(fdt_property_u32(fdt, "phandle", PH_TEST));
    FDT_CHECK(fdt_end_node(fdt));

    /* As QEMU's virt: the kernel's clock starts from it (RTC_HCTOSYS). */
    snprintf(name, sizeof(name), "rtc@%llx", VIRT_RTC_BASE);
    FDT_CHECK(fdt_begin_node(fdt, name));
    FDT_CHECK(fdt_property_string(fdt, "compatible", "google,goldfish-rtc"));
    FDT_CHECK(fdt_reg(fdt, VIRT_RTC_BASE, GOLDFISH_RTC_MMIO_SIZE));
    FDT_CHECK(fdt_property_u32(fdt, "interrupt-parent", PH_PLIC));
    FDT_CHECK(fdt_property_u32(fdt, "interrupts", VIRT_RTC_IRQ));
    FDT_CHECK(fdt_end_node(fdt));

    snprintf(name, sizeof(name), "serial@%llx", VIRT_UART_BASE);
    FDT_CHECK(fdt_begin_node(fdt, name));
    FDT_CHECK(fdt_property_string(fdt, "compatible", "ns16550a"));
    FDT_CHECK(fdt_reg(fdt, VIRT_UART_BASE, UART16550_MMIO_SIZE));
    FDT_CHECK(fdt_property_u32(fdt, "clock-frequency", 3686400));
    FDT_CHECK(fdt_property_u32(fdt, "interrupt-parent", PH_PLIC));
    FDT_CHECK(fdt_property_u32(fdt, "interrupts", VIRT_UART_IRQ));
    FDT_CHECK(fdt_end_node(fdt));

    snprintf(name, sizeof(name), "clint@%llx", VIRT_CLINT_BASE);
    FDT_CHECK(fdt_begin_node(fdt, name));
    {
        static const char *const compat[] = {"sifive,clint0", "riscv,clint0"};
        FDT_CHECK(fdt_stringlist(fdt, "compatible", compat, 2));
    }
    FDT_CHECK(fdt_reg(fdt, VIRT_CLINT_BASE, CLINT_MMIO_SIZE));
    for (unsigned i = 0; i < n; i++) {
        cells[4 * i + 0] = cpu_to_fdt32(PH_CPU_INTC + i);
        cells[4 * i + 1] = cpu_to_fdt32(VCPU_IRQ_MSI);
        cells[4 * i + 2] = cpu_to_fdt32(PH_CPU_INTC + i);
        cells[4 * i + 3] = cpu_to_fdt32(VCPU_IRQ_MTI);
    }
    FDT_CHECK(fdt_property(fdt, "interrupts-extended", cells, (int)(n * 16)));
    FDT_CHECK(fdt_end_node(fdt));

    /* Lowest address first: Linux probes in this order, so the first disk becomes vda. */
    for (unsigned i = 0; i < m->cfg.ndevices; i++) {
        uint64_t base = VIRT_VIRTIO_BASE + i * VIRT_VIRTIO_STRIDE;

        snprintf(name, sizeof(name), "virtio_mmio@%" PRIx64, base);
        FDT_CHECK(fdt_begin_node(fdt, name));
        FDT_CHECK(fdt_property_string(fdt, "compatible", "virtio,mmio"));
        FDT_CHECK(fdt_reg(fdt, base, VIRT_VIRTIO_STRIDE));
        FDT_CHECK(fdt_property_u32(fdt, "interrupt-parent", PH_PLIC));
        FDT_CHECK(fdt_property_u32(fdt, "interrupts", VIRT_VIRTIO_IRQ + i));
        FDT_CHECK(fdt_end_node(fdt));
    }

    snprintf(name, sizeof(name), "plic@%llx", VIRT_PLIC_BASE);
    FDT_CHECK(fdt_begin_node(fdt, name));
    {
        static const char *const compat[] = {"sifive,plic-1.0.0", "riscv,plic0"};
        FDT_CHECK(fdt_stringlist(fdt, "compatible", compat, 2));
    }
    FDT_CHECK(fdt_reg(fdt, VIRT_PLIC_BASE, PLIC_MMIO_SIZE));
    FDT_CHECK(fdt_property_u32(fdt, "#interrupt-cells", 1));
    FDT_CHECK(fdt_property_u32(fdt, "#address-cells", 0));
    FDT_CHECK(fdt_property(fdt, "interrupt-controller", NULL, 0));
    FDT_CHECK(fdt_property_u32(fdt, "riscv,ndev", VIRT_PLIC_NSRC - 1));
    for (unsigned i = 0; i < n; i++) {
        cells[4 * i + 0] = cpu_to_fdt32(PH_CPU_INTC + i);
        cells[4 * i + 1] = cpu_to_fdt32(VCPU_IRQ_MEI);
        cells[4 * i + 2] = cpu_to_fdt32(PH_CPU_INTC + i);
        cells[4 * i + 3] = cpu_to_fdt32(VCPU_IRQ_SEI);
    }
    FDT_CHECK(fdt_property(fdt, "interrupts-extended", cells, (int)(n * 16)));
    FDT_CHECK(fdt_property_u32(fdt, "phandle", PH_PLIC));
    FDT_CHECK(fdt_end_node(fdt));

    FDT_CHECK(fdt_end_node(fdt)); /* soc */
    FDT_CHECK(fdt_end_node(fdt)); /* root */
    FDT_CHECK(fdt_finish(fdt));
    return 0;
}

/* The reset vector, as QEMU's virt: a0 = mhartid, a1 = device tree, a2 = fw_dynamic info,
 * then jump to the firmware's entry. Words are RV64 encodings of:
 *   auipc t0, 0; addi a2, t0, 40; csrr a0, mhartid; ld a1, 32(t0); ld t0, 24(t0); jr t0 */
static void virt_write_rom(struct virt_machine *m, gpa_t entry, gpa_t next_addr)
{
    static const uint32_t code[6] = {0x00000297, 0x02828613, 0xf1402573,
                                     0x0202b583, 0x0182b283, 0x00028067};
    /* OpenSBI's struct fw_dynamic_info, version 2: magic, version, next_addr, next_mode
     * (1 = S-mode), options, boot_hart (-1: any hart may win the boot lottery). */
    uint64_t info[6] = {0x4942534f, 2, next_addr, 1, 0, UINT64_MAX};

    memset(m->rom, 0, VIRT_ROM_SIZE);
    memcpy(m->rom, code, sizeof(code));
    memcpy(m->rom + 24, &entry, 8);
    memcpy(m->rom + 32, &m->fdt_addr, 8);
    memcpy(m->rom + 40, info, sizeof(info));
}

static bool overlaps(gpa_t a, uint64_t alen, gpa_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

static int load_optional(const char *path, struct loader_file *f)
{
    char err[LOADER_ERR_LEN];

    if (!path)
        return 0;
    if (f->path ? loader_check_file(f, err) : loader_open_file(path, f, err)) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

/* Places firmware, kernel, initrd and device tree in RAM and writes the ROM. Called at
 * creation and on every reset. The image files are opened at the first call (a restored
 * machine has them in RAM already and opens them only if the guest resets) and read again,
 * from the same open files, straight into the cleared RAM at every call (loader.h). */
static int virt_load(struct virt_machine *m)
{
    char err[LOADER_ERR_LEN];
    struct loader_span fw, kern = {0}, rd = {0};
    gpa_t ram_end = m->ram.base + m->ram.size;
    uint64_t fdt_size;

    if (load_optional(m->cfg.bios, &m->bios) || load_optional(m->cfg.kernel, &m->kernel) ||
        load_optional(m->cfg.initrd, &m->initrd))
        return -1;
    guest_ram_clear(&m->ram);
    if (loader_load_firmware(&m->bios, &m->ram, &fw, err))
        goto fail;
    if (m->kernel.path) {
        gpa_t kaddr = m->ram.base + VIRT_KERNEL_OFF;

        if (overlaps(fw.start, fw.size, kaddr, 1)) {
            snprintf(err, sizeof(err),
                     "%s: firmware reaches 0x%" PRIx64
                     ", past the kernel's load address 0x%" PRIx64,
                     m->bios.path, fw.start + fw.size, kaddr);
            goto fail;
        }
        if (loader_load_kernel(&m->kernel, &m->ram, kaddr, &kern, err))
            goto fail;
    }
    if (m->initrd.path) {
        /* As QEMU: half-way into RAM below 256 MiB, else 128 MiB above the kernel, so that
         * the kernel can grow into its bss and early allocations below it. */
        uint64_t gap = m->ram.size < (256ull << 20) ? m->ram.size / 2 : 128ull << 20;
        gpa_t addr = (kern.start + gap) & ~0xfffull;

        if (addr < kern.start + kern.size)
            addr = (kern.start + kern.size + 0xfff) & ~0xfffull;
        if (loader_load_raw(&m->initrd, &m->ram, addr, &rd, err))
            goto fail;
    }
    {
        struct virt_seeds seeds;
        int e = virt_getrandom(&seeds, sizeof(seeds));

        if (e) {
            snprintf(err, sizeof(err), "device tree: getrandom() for /chosen/rng-seed: %s",
                     strerror(-e));
            goto fail;
        }
        e = virt_build_fdt(m, rd.start, rd.start + rd.size, &seeds);
        explicit_bzero(&seeds, sizeof(seeds));
        if (e < 0) {
            snprintf(err, sizeof(err), "device tree: libfdt failed to build it");
            goto fail;
        }
    }
    fdt_size = fdt_totalsize(m->fdt);
    {
        gpa_t top = ram_end < m->ram.base + (3ull << 30) ? ram_end : m->ram.base + (3ull << 30);

        m->fdt_addr = (top - fdt_size) & ~((2ull << 20) - 1);
    }
    if (overlaps(m->fdt_addr, fdt_size, fw.start, fw.size) ||
        (kern.size && overlaps(m->fdt_addr, fdt_size, kern.start, kern.size)) ||
        (rd.size && overlaps(m->fdt_addr, fdt_size, rd.start, rd.size))) {
        snprintf(err, sizeof(err),
                 "--mem %" PRIu64 "M is too small for the firmware, kernel, initrd and device "
                 "tree together",
                 m->ram.size >> 20);
        goto fail;
    }
    memcpy(guest_ram_ptr(&m->ram, m->fdt_addr, fdt_size), m->fdt, fdt_size);
    virt_write_rom(m, fw.entry, kern.size ? kern.entry : 0);
    return 0;

fail:
    log_error("%s", err);
    return -1;
}

static void virt_reset(struct virt_machine *m)
{
    clint_reset(m->clint);
    plic_reset(m->plic);
    uart16550_reset(m->uart);
    sifive_test_reset(m->test);
    goldfish_rtc_reset(m->rtc);
    for (unsigned i = 0; i < m->cfg.ndevices; i++)
        virtio_mmio_reset(m->vdevs[i].vdev);
    for (unsigned i = 0; i < m->cfg.cpus; i++) {
        vcpu_reset(m->harts[i], VIRT_ROM_BASE);
        vcpu_clear_stop(m->harts[i]);
    }
}

/* Creates each requested virtio device behind its own virtio-mmio transport. */
static int virt_create_devices(struct virt_machine *m)
{
    for (unsigned i = 0; i < m->cfg.ndevices; i++) {
        const struct virt_device_spec *spec = &m->cfg.devices[i];
        struct virt_vdev *v = &m->vdevs[i];
        const struct virtio_device_ops *ops;
        struct vdev_env env = {.ram = &m->ram, .loop = m->loop};
        struct irq_line irq = {plic_set_irq, m->plic, VIRT_VIRTIO_IRQ + i};
        struct mmio_region region = {
            .name = spec->type,
            .base = VIRT_VIRTIO_BASE + i * VIRT_VIRTIO_STRIDE,
            .size = VIRT_VIRTIO_STRIDE,
            .ops = &virtio_mmio_ops,
        };
        char err[VDEV_ERR_LEN] = "";

        v->type = vdev_type_find(spec->type);
        if (!v->type) {
            log_error("--device %s: unknown device type (see `tessera run --help`)", spec->type);
            return -1;
        }
        for (unsigned j = 0; j < i; j++)
            env.index += m->vdevs[j].type == v->type;
        /* Every value checked against the type's table before the device sees it. */
        if (vdev_opts_check(v->type, spec->opts ? spec->opts : "", err)) {
            log_error("%s", err);
            v->type = NULL;
            return -1;
        }
        if (v->type->create(&env, spec->opts ? spec->opts : "", &v->dev, &ops, err) < 0) {
            log_error("%s", err[0] ? err : "cannot create a virtio device");
            v->type = NULL;
            return -1;
        }
        if (virtio_mmio_create(&m->ram, &irq, ops, v->dev, &v->vdev)) {
            log_error("%s: cannot create its virtio-mmio transport", spec->type);
            return -1;
        }
        v->type->attach(v->dev, v->vdev);
        region.opaque = v->vdev;
        if (bus_add(&m->bus, &region)) {
            log_error("bus: cannot map %s", spec->type);
            return -1;
        }
    }
    return 0;
}

static const struct mmio_ops rom_ops = {.min_size = 1, .max_size = 8};

int virt_create(const struct virt_config *cfg, struct virt_machine **out)
{
    struct virt_machine *m = xzalloc(sizeof(*m));
    struct irq_line msip[VIRT_MAX_CPUS], mtip[VIRT_MAX_CPUS], stip[VIRT_MAX_CPUS];
    struct irq_line ctx[2 * VIRT_MAX_CPUS];
    struct irq_line uart_irq;
    const struct cpu_engine *engine;
    struct vcpu_config hc = {0};
    bool restoring = cfg->preloaded_ram != NULL;
    int err;

    m->cfg = *cfg;
    m->start_ns = time_now_ns();
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    if (cfg->preloaded_ram) {
        m->ram = *cfg->preloaded_ram;
        memset(cfg->preloaded_ram, 0, sizeof(*cfg->preloaded_ram));
        m->cfg.preloaded_ram = NULL;
        err = m->ram.size == cfg->mem_size && m->ram.base == VIRT_RAM_BASE ? 0 : -EINVAL;
    } else {
        err = guest_ram_init(&m->ram, VIRT_RAM_BASE, cfg->mem_size);
    }
    if (err) {
        log_error("--mem: cannot reserve %" PRIu64 " MiB of RAM: %s", cfg->mem_size >> 20,
                  strerror(-err));
        goto fail;
    }
    /* Also for adopted RAM: the flag belongs to this process's mapping. A host without KSM
     * only loses the sharing. */
    err = guest_ram_set_mergeable(&m->ram, !cfg->mem_merge_off);
    if (err && !cfg->mem_merge_off)
        log_warn("memory_merge: the host kernel cannot merge pages (%s); guest RAM is not shared",
                 strerror(-err));
    /* As QEMU asks for its RAM blocks. A default boot took 3,380 page faults, 2,900 of them
     * guest RAM's first touch, and a fault costs 10-15 us where the host is itself a VM;
     * with huge pages, 494, and peak RSS at READY went from 33.4 to 37.0 MB. */
    if (guest_ram_set_huge(&m->ram))
        log_debug("guest RAM: no transparent huge pages on this host");
    err = 0;
    m->rom = xzalloc(VIRT_ROM_SIZE);

    /* Harts first: the devices' interrupt lines point at them. */
    engine = cpu_engine_find(cfg->cpu_engine ? cfg->cpu_engine : CPU_ENGINE_DEFAULT);
    if (!engine) {
        char known[128];

        cpu_engine_list(known, sizeof(known));
        log_error("cpu engine '%s' is unknown (known: %s)", cfg->cpu_engine, known);
        goto fail;
    }
    hc.bus = &m->bus;
    hc.mem[0] = (struct vcpu_mem_region){m->ram.base, m->ram.size,   m->ram.host,
                                         false,       &m->ram.dirty, &m->ram.code};
    hc.mem[1] = (struct vcpu_mem_region){VIRT_ROM_BASE, VIRT_ROM_SIZE, m->rom, true, NULL, NULL};
    hc.mem_count = 2;
    for (unsigned i = 0; i < cfg->cpus; i++) {
        hc.id = i;
        if (vcpu_create(engine, &hc, &m->harts[i])) {
            log_error("out of memory creating hart %u", i);
            goto fail;
        }
        msip[i] = (struct irq_line){vcpu_set_irq, m->harts[i], VCPU_IRQ_MSI};
        mtip[i] = (struct irq_line){vcpu_set_irq, m->harts[i], VCPU_IRQ_MTI};
        stip[i] = (struct irq_line){vcpu_set_irq, m->harts[i], VCPU_IRQ_STI};
        ctx[2 * i] = (struct irq_line){vcpu_set_irq, m->harts[i], VCPU_IRQ_MEI};
        ctx[2 * i + 1] = (struct irq_line){vcpu_set_irq, m->harts[i], VCPU_IRQ_SEI};
    }
    if (clint_create(cfg->cpus, VIRT_TIMEBASE, msip, mtip, &m->clint) ||
        clint_set_stip_lines(m->clint, stip) ||
        plic_create(VIRT_PLIC_NSRC, 2 * cfg->cpus, ctx, &m->plic)) {
        log_error("cannot create the interrupt controllers");
        goto fail;
    }
    uart_irq = (struct irq_line){plic_set_irq, m->plic, VIRT_UART_IRQ};
    if (uart16550_create(&uart_irq, cfg->console_fd, &m->uart) ||
        sifive_test_create(virt_test_event, m, &m->test)) {
        log_error("cannot create the console devices");
        goto fail;
    }
    if (cfg->console_ring)
        uart16550_set_output_ring(m->uart, cfg->console_ring);
    for (unsigned i = 0; i < cfg->cpus; i++) {
        vcpu_set_time_source(m->harts[i], clint_time, m->clint);
        /* Sstc: each hart's stimecmp is one more comparator of the CLINT's timer thread. */
        vcpu_set_stimer(m->harts[i], clint_set_stimecmp, m->clint);
    }
    {
        const struct mmio_region regions[] = {
            {"rom", VIRT_ROM_BASE, VIRT_ROM_SIZE, &rom_ops, NULL},
            {"test", VIRT_TEST_BASE, SIFIVE_TEST_MMIO_SIZE, &sifive_test_mmio_ops, m->test},
            {"clint", VIRT_CLINT_BASE, CLINT_MMIO_SIZE, &clint_mmio_ops, m->clint},
            {"plic", VIRT_PLIC_BASE, PLIC_MMIO_SIZE, &plic_mmio_ops, m->plic},
            {"uart", VIRT_UART_BASE, UART16550_MMIO_SIZE, &uart16550_mmio_ops, m->uart},
        };
        for (size_t i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
            if (bus_add(&m->bus, &regions[i])) {
                log_error("bus: cannot map %s", regions[i].name);
                goto fail;
            }
        }
    }
    if (loop_create(&m->loop) || loop_start(m->loop)) {
        log_error("cannot start the I/O event loop");
        goto fail;
    }
    /* The RTC's alarm is a timer on the loop, so it comes after the loop. */
    {
        struct irq_line rtc_irq = {plic_set_irq, m->plic, VIRT_RTC_IRQ};

        if (goldfish_rtc_create(&rtc_irq, m->loop, &m->rtc)) {
            log_error("cannot create the real-time clock");
            goto fail;
        }
    }
    if (bus_add(&m->bus, &(struct mmio_region){"rtc", VIRT_RTC_BASE, GOLDFISH_RTC_MMIO_SIZE,
                                               &goldfish_rtc_mmio_ops, m->rtc})) {
        log_error("bus: cannot map rtc");
        goto fail;
    }
    if (virt_create_devices(m))
        goto fail;
    virt_reset(m);
    if (!restoring && virt_load(m))
        goto fail;
    *out = m;
    return 0;

fail:
    virt_destroy(m);
    return -1;
}

/* Paused: every hart thread has been joined. The guest's clock stops too (as QEMU's
 * virtual clock does): mtime is saved now and written back on resume. Returns true if an
 * exit arrived instead of a resume. */
static bool virt_wait_resume(struct virt_machine *m)
{
    uint64_t mtime = clint_time(m->clint);
    bool exited;

    pthread_mutex_lock(&m->lock);
    m->paused_mtime = mtime;
    m->paused = true;
    pthread_cond_broadcast(&m->cond);
    while (!m->resume_req && m->event != VIRT_EV_EXIT)
        pthread_cond_wait(&m->cond, &m->lock);
    exited = m->event == VIRT_EV_EXIT;
    m->resume_req = false;
    m->paused = false;
    if (m->event == VIRT_EV_PAUSE)
        m->event = VIRT_EV_NONE; /* a reset asked meanwhile stays pending */
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    if (!exited) {
        clint_set_mtime(m->clint, mtime);
        for (unsigned i = 0; i < m->cfg.cpus; i++)
            vcpu_clear_stop(m->harts[i]);
    }
    return exited;
}

int virt_pause(struct virt_machine *m)
{
    pthread_mutex_lock(&m->lock);
    if (m->paused || m->event == VIRT_EV_PAUSE) {
        pthread_mutex_unlock(&m->lock);
        return -EALREADY;
    }
    if (m->event != VIRT_EV_NONE) {
        pthread_mutex_unlock(&m->lock);
        return -EBUSY;
    }
    pthread_mutex_unlock(&m->lock);
    virt_post(m, VIRT_EV_PAUSE, 0);
    /* Return once the harts are really stopped, so the caller can rely on it. */
    pthread_mutex_lock(&m->lock);
    while (!m->paused && m->event == VIRT_EV_PAUSE)
        pthread_cond_wait(&m->cond, &m->lock);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

int virt_resume(struct virt_machine *m)
{
    pthread_mutex_lock(&m->lock);
    if (!m->paused) {
        pthread_mutex_unlock(&m->lock);
        return -EALREADY;
    }
    m->resume_req = true;
    pthread_cond_broadcast(&m->cond);
    while (m->paused)
        pthread_cond_wait(&m->cond, &m->lock);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

void virt_request_reset(struct virt_machine *m)
{
    virt_post(m, VIRT_EV_RESET, 0);
    pthread_mutex_lock(&m->lock);
    if (m->paused) {
        m->resume_req = true; /* a reset of a paused machine runs it again, like QEMU */
        pthread_cond_broadcast(&m->cond);
    }
    pthread_mutex_unlock(&m->lock);
}

void virt_get_info(struct virt_machine *m, struct virt_info *out)
{
    pthread_mutex_lock(&m->lock);
    out->paused = m->paused;
    pthread_mutex_unlock(&m->lock);
    out->cpus = m->cfg.cpus;
    out->mem_size = m->cfg.mem_size;
    out->uptime_ns = time_now_ns() - m->start_ns;
    for (unsigned i = 0; i < m->cfg.cpus; i++)
        out->instret[i] = vcpu_instret(m->harts[i]);
    out->mtime = out->paused ? m->paused_mtime : clint_time(m->clint);
}

void *virt_find_device(struct virt_machine *m, const char *type, unsigned index)
{
    for (unsigned i = 0; i < m->cfg.ndevices; i++) {
        if (m->vdevs[i].type && !strcmp(m->vdevs[i].type->name, type) && index-- == 0)
            return m->vdevs[i].dev;
    }
    return NULL;
}

const void *virt_fdt(const struct virt_machine *m)
{
    return fdt_magic(m->fdt) == FDT_MAGIC ? m->fdt : NULL;
}

const struct virt_config *virt_get_config(const struct virt_machine *m)
{
    return &m->cfg;
}

static void *virt_hart_thread(void *opaque)
{
    vcpu_run(opaque);
    return NULL;
}

int virt_run(struct virt_machine *m)
{
    for (;;) {
        enum virt_event ev;
        unsigned started = 0;

        for (; started < m->cfg.cpus; started++) {
            if (pthread_create(&m->threads[started], NULL, virt_hart_thread, m->harts[started]))
                break;
        }
        if (started < m->cfg.cpus) {
            log_error("cannot start a thread for hart %u", started);
            virt_post(m, VIRT_EV_EXIT, 1);
        }
        pthread_mutex_lock(&m->lock);
        while (m->event == VIRT_EV_NONE)
            pthread_cond_wait(&m->cond, &m->lock);
        ev = m->event;
        pthread_mutex_unlock(&m->lock);

        for (unsigned i = 0; i < m->cfg.cpus; i++)
            vcpu_request_stop(m->harts[i]);
        for (unsigned i = 0; i < started; i++)
            pthread_join(m->threads[i], NULL);
        if (ev == VIRT_EV_EXIT)
            return m->exit_status;
        if (ev == VIRT_EV_PAUSE) {
            if (virt_wait_resume(m))
                return m->exit_status;
            continue;
        }

        /* A guest-requested reset: devices and harts to power-on state, images reloaded. */
        pthread_mutex_lock(&m->lock);
        m->event = VIRT_EV_NONE;
        pthread_mutex_unlock(&m->lock);
        virt_reset(m);
        if (virt_load(m))
            return 1;
    }
}

void virt_destroy(struct virt_machine *m)
{
    if (!m)
        return;
    /* Quiesce every device first (its reset waits for work in flight), then free. */
    for (unsigned i = 0; i < VIRT_VIRTIO_SLOTS; i++) {
        if (m->vdevs[i].vdev)
            virtio_mmio_reset(m->vdevs[i].vdev);
    }
    for (unsigned i = 0; i < VIRT_VIRTIO_SLOTS; i++) {
        if (m->vdevs[i].vdev)
            virtio_mmio_destroy(m->vdevs[i].vdev);
        if (m->vdevs[i].type)
            m->vdevs[i].type->destroy(m->vdevs[i].dev);
    }
    if (m->loop)
        loop_stop(m->loop);
    goldfish_rtc_destroy(m->rtc); /* its alarm timer lives on the loop */
    loop_destroy(m->loop);
    /* The interrupt sources go before the harts their lines point at: the CLINT's timer
     * thread raises MTIP on a hart until clint_destroy() has joined it. */
    clint_destroy(m->clint);
    plic_destroy(m->plic);
    uart16550_destroy(m->uart);
    sifive_test_destroy(m->test);
    for (unsigned i = 0; i < VIRT_MAX_CPUS; i++)
        vcpu_destroy(m->harts[i]);
    guest_ram_destroy(&m->ram);
    for (unsigned i = 0; i < VIRT_VIRTIO_SLOTS; i++)
        free(m->owned_opts[i]);
    free(m->rom);
    loader_close_file(&m->bios);
    loader_close_file(&m->kernel);
    loader_close_file(&m->initrd);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
