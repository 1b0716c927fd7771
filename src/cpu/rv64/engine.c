/* The RV64 hart behind the CPU engine seam (src/cpu/engine.h), as two engines: "interp", the
 * interpreter, and "jit", the same hart with hot blocks translated to host code
 * (src/cpu/rv64/jit/jit.h), registered only where the host can run the translator. Each op is
 * the matching rv64_hart_* call of rv64.h; the two share everything but creation, so their
 * state sections are one format and a snapshot of either loads into the other. */
#include <string.h>

#include "cpu/engine.h"
#include "cpu/rv64/rv64.h"

_Static_assert(VCPU_MAX_MEM_REGIONS <= RV64_MAX_MEM_REGIONS, "rv64 holds fewer mem regions");
_Static_assert((int)VCPU_IRQ_SSI == RV64_IRQ_SSI && (int)VCPU_IRQ_MSI == RV64_IRQ_MSI &&
                   (int)VCPU_IRQ_STI == RV64_IRQ_STI && (int)VCPU_IRQ_MTI == RV64_IRQ_MTI &&
                   (int)VCPU_IRQ_SEI == RV64_IRQ_SEI && (int)VCPU_IRQ_MEI == RV64_IRQ_MEI,
               "interrupt numbers differ");

static int hart_create(const struct vcpu_config *cfg, bool jit, void **impl)
{
    struct rv64_config rc = {
        .hartid = cfg->id, .bus = cfg->bus, .mem_count = cfg->mem_count, .jit = jit};
    struct rv64_hart *h;
    int ret;

    for (unsigned i = 0; i < cfg->mem_count && i < VCPU_MAX_MEM_REGIONS; i++) {
        const struct vcpu_mem_region *r = &cfg->mem[i];

        rc.mem[i] =
            (struct rv64_mem_region){r->base, r->size, r->host, r->readonly, r->dirty, r->code};
    }
    ret = rv64_hart_create(&rc, &h);
    if (!ret)
        *impl = h;
    return ret;
}

static int interp_create(const struct vcpu_config *cfg, void **impl)
{
    return hart_create(cfg, false, impl);
}

static void interp_destroy(void *impl)
{
    rv64_hart_destroy(impl);
}

static void interp_set_time_source(void *impl, uint64_t (*time)(void *), void *opaque)
{
    rv64_hart_set_time_source(impl, time, opaque);
}

static void interp_set_stimer(void *impl, void (*arm)(void *, unsigned, uint64_t), void *opaque)
{
    rv64_hart_set_stimer(impl, arm, opaque);
}

static void interp_reset(void *impl, uint64_t reset_pc)
{
    rv64_hart_reset(impl, reset_pc);
}

static int interp_run(void *impl)
{
    return rv64_hart_run(impl);
}

static void interp_request_stop(void *impl)
{
    rv64_hart_request_stop(impl);
}

static void interp_clear_stop(void *impl)
{
    rv64_hart_clear_stop(impl);
}

static uint64_t interp_instret(const void *impl)
{
    return rv64_hart_instret(impl);
}

static void interp_dirty_rearm(void *impl)
{
    rv64_hart_flush_tlb(impl);
}

static void interp_save(const void *impl, struct sbuf *out)
{
    rv64_hart_save(impl, out);
}

static int interp_load(void *impl, struct scur *in, uint32_t version)
{
    return rv64_hart_load(impl, in, version);
}

static const struct cpu_engine rv64_interp_engine = {
    .name = "interp",
    .summary = "RV64GC interpreter with a decoded-block cache (src/cpu/rv64)",
    .state_version = RV64_STATE_VERSION,
    .create = interp_create,
    .destroy = interp_destroy,
    .set_time_source = interp_set_time_source,
    .set_stimer = interp_set_stimer,
    .reset = interp_reset,
    .run = interp_run,
    .request_stop = interp_request_stop,
    .clear_stop = interp_clear_stop,
    .set_irq = rv64_hart_set_irq,
    .instret = interp_instret,
    .dirty_rearm = interp_dirty_rearm,
    .save = interp_save,
    .load = interp_load,
};

CPU_ENGINE_REGISTER(rv64_interp_engine)

#if defined(__x86_64__) && defined(__linux__)
static int jit_create(const struct vcpu_config *cfg, void **impl)
{
    return hart_create(cfg, true, impl);
}

static const struct cpu_engine rv64_jit_engine = {
    .name = "jit",
    .summary = "RV64GC interpreter that translates hot blocks to x86-64 code (src/cpu/rv64/jit)",
    .state_version = RV64_STATE_VERSION,
    .create = jit_create,
    .destroy = interp_destroy,
    .set_time_source = interp_set_time_source,
    .set_stimer = interp_set_stimer,
    .reset = interp_reset,
    .run = interp_run,
    .request_stop = interp_request_stop,
    .clear_stop = interp_clear_stop,
    .set_irq = rv64_hart_set_irq,
    .instret = interp_instret,
    .dirty_rearm = interp_dirty_rearm,
    .save = interp_save,
    .load = interp_load,
};

CPU_ENGINE_REGISTER(rv64_jit_engine)
#endif
