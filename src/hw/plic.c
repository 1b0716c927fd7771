/* SiFive PLIC. See plic.h for the register map, the gateway rules and the locking. */
#include "hw/plic.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/state.h"

#define PLIC_PRIORITY_BASE  0x000000
#define PLIC_PENDING_BASE   0x001000
#define PLIC_ENABLE_BASE    0x002000
#define PLIC_ENABLE_STRIDE  0x80
#define PLIC_CONTEXT_BASE   0x200000
#define PLIC_CONTEXT_STRIDE 0x1000
#define PLIC_THRESHOLD      0x0
#define PLIC_CLAIM          0x4

struct plic {
    /* Immutable after plic_create(). */
    unsigned nsources;
    unsigned ncontexts;
    unsigned nwords;        /* 32-bit words per source bitmap */
    uint32_t *valid;        /* [nwords]: bits of the sources that exist (never source 0) */
    struct irq_line *lines; /* [ncontexts] */

    /* Everything below is protected by `lock`. */
    pthread_mutex_t lock;
    uint8_t *priority;    /* [nsources], 0..PLIC_MAX_PRIORITY */
    uint32_t *level;      /* [nwords]: the input wires */
    uint32_t *in_service; /* [nwords]: claimed and not yet completed */
    uint32_t *pending;    /* [nwords]: requests latched by the gateways, cleared by a claim */
    uint32_t *enable;     /* [ncontexts * nwords] */
    uint8_t *threshold;   /* [ncontexts] */
    bool *out;            /* [ncontexts]: the level last set on lines[c] */
};

/* Caller holds p->lock. Pending bits of word w. A gateway latches a request when its level
 * input is high and the source is not in service; the request stays pending until a claim
 * takes it, even if the level drops meanwhile (RISC-V PLIC spec, "Interrupt Gateways"). */
static uint32_t plic_pending_locked(const struct plic *p, unsigned w)
{
    return p->pending[w] & p->valid[w];
}

/* Caller holds p->lock. Latches requests for sources whose level is high and that are not in
 * service. */
static void plic_gateway_locked(struct plic *p, unsigned w)
{
    p->pending[w] |= p->level[w] & ~p->in_service[w] & p->valid[w];
}

/* Caller holds p->lock. The pending source enabled for context `ctx` with the highest priority
 * above its threshold, the lowest id among equals; 0 if none. */
static unsigned plic_best_locked(const struct plic *p, unsigned ctx)
{
    const uint32_t *en = &p->enable[(size_t)ctx * p->nwords];
    unsigned best = 0, best_prio = p->threshold[ctx];

    for (unsigned w = 0; w < p->nwords; w++) {
        uint32_t bits = plic_pending_locked(p, w) & en[w];

        while (bits) {
            unsigned src = w * 32 + (unsigned)__builtin_ctz(bits);

            bits &= bits - 1;
            if (p->priority[src] > best_prio) { /* strict: ties keep the lower id */
                best = src;
                best_prio = p->priority[src];
            }
        }
    }
    return best;
}

/* Caller holds p->lock. Brings every context's output line to its level, calling a line only
 * when it changes (receivers take only hart atomics: safe under our lock). */
static void plic_update_locked(struct plic *p)
{
    for (unsigned c = 0; c < p->ncontexts; c++) {
        bool level = plic_best_locked(p, c) != 0;

        if (level != p->out[c]) {
            p->out[c] = level;
            irq_set(&p->lines[c], level);
        }
    }
}

static void plic_free(struct plic *p)
{
    free(p->valid);
    free(p->lines);
    free(p->priority);
    free(p->level);
    free(p->in_service);
    free(p->pending);
    free(p->enable);
    free(p->threshold);
    free(p->out);
    free(p);
}

int plic_create(unsigned nsources, unsigned ncontexts, const struct irq_line *ctx_lines,
                struct plic **out)
{
    struct plic *p;
    int err;

    if (nsources < 2 || nsources > PLIC_MAX_SOURCES || ncontexts == 0 ||
        ncontexts > PLIC_MAX_CONTEXTS || !ctx_lines || !out)
        return -EINVAL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->nsources = nsources;
    p->ncontexts = ncontexts;
    p->nwords = (nsources + 31) / 32;
    p->valid = calloc(p->nwords, sizeof(*p->valid));
    p->lines = calloc(ncontexts, sizeof(*p->lines));
    p->priority = calloc(nsources, sizeof(*p->priority));
    p->level = calloc(p->nwords, sizeof(*p->level));
    p->in_service = calloc(p->nwords, sizeof(*p->in_service));
    p->pending = calloc(p->nwords, sizeof(*p->pending));
    p->enable = calloc((size_t)ncontexts * p->nwords, sizeof(*p->enable));
    p->threshold = calloc(ncontexts, sizeof(*p->threshold));
    p->out = calloc(ncontexts, sizeof(*p->out));
    if (!p->valid || !p->lines || !p->priority || !p->level || !p->in_service || !p->pending ||
        !p->enable || !p->threshold || !p->out) {
        err = -ENOMEM;
        goto err_free;
    }
    for (unsigned src = 1; src < nsources; src++)
        p->valid[src / 32] |= 1u << (src % 32);
    for (unsigned c = 0; c < ncontexts; c++)
        p->lines[c] = ctx_lines[c];
    err = -pthread_mutex_init(&p->lock, NULL);
    if (err)
        goto err_free;
    *out = p;
    return 0;

err_free:
    plic_free(p);
    return err;
}

void plic_destroy(struct plic *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->lock);
    plic_free(p);
}

void plic_reset(struct plic *p)
{
    pthread_mutex_lock(&p->lock);
    for (unsigned src = 0; src < p->nsources; src++)
        p->priority[src] = 0;
    for (unsigned w = 0; w < p->nwords; w++) {
        p->in_service[w] = 0;
        p->pending[w] = 0;
        plic_gateway_locked(p, w); /* the input wires keep their levels across a reset */
    }
    for (size_t i = 0; i < (size_t)p->ncontexts * p->nwords; i++)
        p->enable[i] = 0;
    for (unsigned c = 0; c < p->ncontexts; c++) {
        p->threshold[c] = 0;
        p->out[c] = false;
        irq_set(&p->lines[c], false); /* unconditionally: whatever the receiver believed */
    }
    pthread_mutex_unlock(&p->lock);
}

void plic_set_irq(void *opaque, unsigned src, bool level)
{
    struct plic *p = opaque;
    uint32_t bit;

    if (src == 0 || src >= p->nsources) {
        log_guest("plic: input %u set, but sources are 1..%u", src, p->nsources - 1);
        return;
    }
    bit = 1u << (src % 32);
    pthread_mutex_lock(&p->lock);
    if (!!(p->level[src / 32] & bit) != level) {
        p->level[src / 32] ^= bit;
        plic_gateway_locked(p, src / 32);
        plic_update_locked(p);
    }
    pthread_mutex_unlock(&p->lock);
}

void plic_save(struct plic *p, struct sbuf *out)
{
    pthread_mutex_lock(&p->lock);
    sbuf_put_u32(out, p->nsources);
    sbuf_put_u32(out, p->ncontexts);
    sbuf_put_bytes(out, p->priority, p->nsources);
    for (unsigned w = 0; w < p->nwords; w++)
        sbuf_put_u32(out, p->level[w]);
    for (unsigned w = 0; w < p->nwords; w++)
        sbuf_put_u32(out, p->pending[w]);
    for (unsigned w = 0; w < p->nwords; w++)
        sbuf_put_u32(out, p->in_service[w]);
    for (unsigned c = 0; c < p->ncontexts; c++) {
        for (unsigned w = 0; w < p->nwords; w++)
            sbuf_put_u32(out, p->enable[(size_t)c * p->nwords + w]);
        sbuf_put_u8(out, p->threshold[c]);
    }
    pthread_mutex_unlock(&p->lock);
}

/* The registers of a section being loaded, read and checked before any is applied. */
struct plic_saved {
    uint8_t *priority;  /* [nsources] */
    uint32_t *words;    /* level, pending, in_service: [3 * nwords] */
    uint32_t *enable;   /* [ncontexts * nwords] */
    uint8_t *threshold; /* [ncontexts] */
};

static int plic_check_bits(const struct plic *p, struct scur *in, const char *field,
                           const uint32_t *bits)
{
    for (unsigned w = 0; w < p->nwords; w++) {
        if (bits[w] & ~p->valid[w])
            return scur_fail(in,
                             "field '%s' word %u is 0x%08" PRIx32 ", but only bits 0x%08" PRIx32
                             " are sources of this machine",
                             field, w, bits[w], p->valid[w]);
    }
    return 0;
}

static int plic_read_saved(const struct plic *p, struct scur *in, struct plic_saved *s)
{
    uint32_t *level = s->words, *pending = level + p->nwords, *in_service = pending + p->nwords;

    scur_get_bytes(in, s->priority, p->nsources);
    for (unsigned i = 0; i < 3 * p->nwords; i++)
        s->words[i] = scur_get_u32(in);
    for (unsigned c = 0; c < p->ncontexts; c++) {
        for (unsigned w = 0; w < p->nwords; w++)
            s->enable[(size_t)c * p->nwords + w] = scur_get_u32(in);
        s->threshold[c] = scur_get_u8(in);
    }
    if (scur_finish(in))
        return -1;
    if (s->priority[0] != 0)
        return scur_fail(in, "field 'priority[0]' is %u, but source 0 does not exist",
                         s->priority[0]);
    for (unsigned src = 1; src < p->nsources; src++) {
        if (s->priority[src] > PLIC_MAX_PRIORITY)
            return scur_fail(in, "field 'priority[%u]' is %u, at most %u allowed", src,
                             s->priority[src], PLIC_MAX_PRIORITY);
    }
    if (plic_check_bits(p, in, "level", level) || plic_check_bits(p, in, "pending", pending) ||
        plic_check_bits(p, in, "in_service", in_service))
        return -1;
    for (unsigned w = 0; w < p->nwords; w++) {
        if (pending[w] & in_service[w])
            return scur_fail(in,
                             "fields 'pending' and 'in_service' word %u share bits 0x%08" PRIx32
                             ": a source in service cannot be pending",
                             w, pending[w] & in_service[w]);
        if (level[w] & ~in_service[w] & ~pending[w])
            return scur_fail(in,
                             "field 'pending' word %u lacks bits 0x%08" PRIx32
                             " whose level is high and that are not in service",
                             w, level[w] & ~in_service[w] & ~pending[w]);
    }
    for (unsigned c = 0; c < p->ncontexts; c++) {
        char field[32];

        snprintf(field, sizeof(field), "enable[%u]", c);
        if (plic_check_bits(p, in, field, &s->enable[(size_t)c * p->nwords]))
            return -1;
        if (s->threshold[c] > PLIC_MAX_PRIORITY)
            return scur_fail(in, "field 'threshold[%u]' is %u, at most %u allowed", c,
                             s->threshold[c], PLIC_MAX_PRIORITY);
    }
    return 0;
}

int plic_load(struct plic *p, struct scur *in, uint32_t version)
{
    struct plic_saved s;
    uint32_t nsources, ncontexts;
    int ret = -1;

    if (version != PLIC_STATE_VERSION)
        return scur_fail(in, "section version %" PRIu32 " is not supported (this build reads %u)",
                         version, PLIC_STATE_VERSION);
    nsources = scur_get_u32(in);
    ncontexts = scur_get_u32(in);
    if (scur_ok(in))
        return -1;
    if (nsources != p->nsources)
        return scur_fail(in, "field 'sources' is %" PRIu32 ", this machine has %u", nsources,
                         p->nsources);
    if (ncontexts != p->ncontexts)
        return scur_fail(in, "field 'contexts' is %" PRIu32 ", this machine has %u", ncontexts,
                         p->ncontexts);
    s.priority = calloc(p->nsources, sizeof(*s.priority));
    s.words = calloc(3 * (size_t)p->nwords, sizeof(*s.words));
    s.enable = calloc((size_t)p->ncontexts * p->nwords, sizeof(*s.enable));
    s.threshold = calloc(p->ncontexts, sizeof(*s.threshold));
    if (!s.priority || !s.words || !s.enable || !s.threshold) {
        scur_fail(in, "out of memory for %u sources and %u contexts", p->nsources, p->ncontexts);
        goto free_saved;
    }
    if (plic_read_saved(p, in, &s))
        goto free_saved;

    pthread_mutex_lock(&p->lock);
    memcpy(p->priority, s.priority, p->nsources);
    memcpy(p->level, s.words, p->nwords * sizeof(uint32_t));
    memcpy(p->pending, s.words + p->nwords, p->nwords * sizeof(uint32_t));
    memcpy(p->in_service, s.words + 2 * p->nwords, p->nwords * sizeof(uint32_t));
    memcpy(p->enable, s.enable, (size_t)p->ncontexts * p->nwords * sizeof(uint32_t));
    memcpy(p->threshold, s.threshold, p->ncontexts);
    for (unsigned c = 0; c < p->ncontexts; c++) {
        p->out[c] = plic_best_locked(p, c) != 0;
        irq_set(&p->lines[c], p->out[c]); /* unconditionally: whatever the receiver believed */
    }
    pthread_mutex_unlock(&p->lock);
    ret = 0;

free_saved:
    free(s.priority);
    free(s.words);
    free(s.enable);
    free(s.threshold);
    return ret;
}

/* Caller holds p->lock. Claim for context ctx ("Interrupt Claim Process"): the best source leaves
 * pending and enters service. */
static unsigned plic_claim_locked(struct plic *p, unsigned ctx)
{
    unsigned src = plic_best_locked(p, ctx);

    if (src) {
        p->in_service[src / 32] |= 1u << (src % 32);
        p->pending[src / 32] &= ~(1u << (src % 32));
        plic_update_locked(p);
    }
    return src;
}

/* Caller holds p->lock. Completion from context ctx ("Interrupt Completion"). */
static void plic_complete_locked(struct plic *p, unsigned ctx, uint32_t src)
{
    uint32_t bit;

    if (src == 0 || src >= p->nsources) {
        log_guest("plic: context %u completes source %u, which does not exist", ctx, src);
        return;
    }
    bit = 1u << (src % 32);
    if (!(p->enable[(size_t)ctx * p->nwords + src / 32] & bit) || !(p->in_service[src / 32] & bit))
        return; /* silently ignored, as the spec says */
    p->in_service[src / 32] &= ~bit;
    plic_gateway_locked(p, src / 32); /* re-pends the source if its level is still high */
    plic_update_locked(p);
}

/* vCPU thread; takes the PLIC lock. A claim read changes state. */
static int plic_mmio_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct plic *p = opaque;

    *value = 0;
    pthread_mutex_lock(&p->lock);
    if (offset < PLIC_PENDING_BASE) {
        uint64_t src = (offset - PLIC_PRIORITY_BASE) / 4;

        if (src < p->nsources)
            *value = p->priority[src]; /* source 0 always holds 0 */
    } else if (offset < PLIC_ENABLE_BASE) {
        uint64_t w = (offset - PLIC_PENDING_BASE) / 4;

        if (w < p->nwords)
            *value = plic_pending_locked(p, (unsigned)w);
    } else if (offset < PLIC_CONTEXT_BASE) {
        uint64_t c = (offset - PLIC_ENABLE_BASE) / PLIC_ENABLE_STRIDE;
        uint64_t w = (offset - PLIC_ENABLE_BASE) % PLIC_ENABLE_STRIDE / 4;

        if (c < p->ncontexts && w < p->nwords)
            *value = p->enable[c * p->nwords + w];
    } else {
        uint64_t c = (offset - PLIC_CONTEXT_BASE) / PLIC_CONTEXT_STRIDE;
        uint64_t reg = (offset - PLIC_CONTEXT_BASE) % PLIC_CONTEXT_STRIDE;

        if (c < p->ncontexts && reg == PLIC_THRESHOLD)
            *value = p->threshold[c];
        else if (c < p->ncontexts && reg == PLIC_CLAIM)
            *value = plic_claim_locked(p, (unsigned)c);
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* vCPU thread; takes the PLIC lock and sets output lines under it. */
static int plic_mmio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct plic *p = opaque;
    uint32_t v = (uint32_t)value;

    pthread_mutex_lock(&p->lock);
    if (offset < PLIC_PENDING_BASE) {
        uint64_t src = (offset - PLIC_PRIORITY_BASE) / 4;

        if (src != 0 && src < p->nsources) {
            p->priority[src] = v & PLIC_MAX_PRIORITY; /* WARL, like QEMU's 3-bit field */
            plic_update_locked(p);
        }
    } else if (offset < PLIC_ENABLE_BASE) {
        log_guest("plic: write to read-only pending word at 0x%" PRIx64, offset);
    } else if (offset < PLIC_CONTEXT_BASE) {
        uint64_t c = (offset - PLIC_ENABLE_BASE) / PLIC_ENABLE_STRIDE;
        uint64_t w = (offset - PLIC_ENABLE_BASE) % PLIC_ENABLE_STRIDE / 4;

        if (c < p->ncontexts && w < p->nwords) {
            p->enable[c * p->nwords + w] = v & p->valid[w];
            plic_update_locked(p);
        }
    } else {
        uint64_t c = (offset - PLIC_CONTEXT_BASE) / PLIC_CONTEXT_STRIDE;
        uint64_t reg = (offset - PLIC_CONTEXT_BASE) % PLIC_CONTEXT_STRIDE;

        if (c < p->ncontexts && reg == PLIC_THRESHOLD) {
            p->threshold[c] = v & PLIC_MAX_PRIORITY;
            plic_update_locked(p);
        } else if (c < p->ncontexts && reg == PLIC_CLAIM) {
            plic_complete_locked(p, (unsigned)c, v);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

const struct mmio_ops plic_mmio_ops = {
    .read = plic_mmio_read,
    .write = plic_mmio_write,
    .min_size = 4,
    .max_size = 4,
};
