/* The engine registry and the vcpu wrappers: every call from a board to an engine passes
 * through here. */
#include "cpu/engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vcpu {
    const struct cpu_engine *engine;
    void *impl;
};

/* Filled by constructors before main(); read-only afterwards. */
static struct cpu_engine_entry *cpu_engines;

void cpu_engine_register(struct cpu_engine_entry *entry)
{
    entry->next = cpu_engines;
    cpu_engines = entry;
}

const struct cpu_engine *cpu_engine_find(const char *name)
{
    for (const struct cpu_engine_entry *e = cpu_engines; e; e = e->next) {
        if (!strcmp(e->engine->name, name))
            return e->engine;
    }
    return NULL;
}

void cpu_engine_list(char *buf, unsigned len)
{
    size_t used = 0;

    if (!len)
        return;
    buf[0] = '\0';
    for (const struct cpu_engine_entry *e = cpu_engines; e && used < len; e = e->next) {
        int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", e->engine->name);

        if (n < 0)
            break;
        used += (size_t)n;
    }
}

int vcpu_create(const struct cpu_engine *engine, const struct vcpu_config *cfg, struct vcpu **out)
{
    struct vcpu *v = calloc(1, sizeof(*v));
    int ret;

    if (!v)
        return -ENOMEM;
    v->engine = engine;
    ret = engine->create(cfg, &v->impl);
    if (ret) {
        free(v);
        return ret;
    }
    *out = v;
    return 0;
}

void vcpu_destroy(struct vcpu *v)
{
    if (!v)
        return;
    v->engine->destroy(v->impl);
    free(v);
}

const struct cpu_engine *vcpu_engine(const struct vcpu *v)
{
    return v->engine;
}

void vcpu_set_time_source(struct vcpu *v, uint64_t (*time)(void *opaque), void *opaque)
{
    v->engine->set_time_source(v->impl, time, opaque);
}

void vcpu_set_stimer(struct vcpu *v, void (*arm)(void *opaque, unsigned id, uint64_t cmp),
                     void *opaque)
{
    if (v->engine->set_stimer)
        v->engine->set_stimer(v->impl, arm, opaque);
}

void vcpu_reset(struct vcpu *v, uint64_t reset_pc)
{
    v->engine->reset(v->impl, reset_pc);
}

int vcpu_run(struct vcpu *v)
{
    return v->engine->run(v->impl);
}

void vcpu_request_stop(struct vcpu *v)
{
    v->engine->request_stop(v->impl);
}

void vcpu_clear_stop(struct vcpu *v)
{
    v->engine->clear_stop(v->impl);
}

void vcpu_set_irq(void *vcpu, unsigned irq, bool level)
{
    struct vcpu *v = vcpu;

    v->engine->set_irq(v->impl, irq, level);
}

uint64_t vcpu_instret(const struct vcpu *v)
{
    return v->engine->instret(v->impl);
}

void vcpu_dirty_rearm(struct vcpu *v)
{
    v->engine->dirty_rearm(v->impl);
}

uint32_t vcpu_state_version(const struct vcpu *v)
{
    return v->engine->state_version;
}

void vcpu_save(const struct vcpu *v, struct sbuf *out)
{
    v->engine->save(v->impl, out);
}

int vcpu_load(struct vcpu *v, struct scur *in, uint32_t version)
{
    return v->engine->load(v->impl, in, version);
}
