/* The hart's life cycle and run loop: the decoded-block cache, interrupt checks at block
 * boundaries and WFI sleeping. See hart.h for the execution model. */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "base/codewatch.h"
#include "base/log.h"
#include "base/populate.h"
#include "cpu/rv64/block.h"
#include "cpu/rv64/insn.h"

#define RV_BLOCK_MAX_INSNS 64
#define RV_BC_BUCKETS_LOG2 15
#define RV_BC_BUCKETS      (1u << RV_BC_BUCKETS_LOG2)
/* Decoded blocks one hart keeps; full: flush all (with the JIT's translations, which refer to
 * them). A Linux boot to userspace decodes about 10 MiB of blocks, most of them run a few
 * times; 4 MiB keeps the hot ones between the few flushes a boot makes, and the VMM's
 * resident memory near 37 MB for a 256 MiB guest (docs/hart.md, "Memory"). A guest whose hot
 * code is larger flushes over and over (a Debian boot to its SSH login: 3,000 times, with 50%
 * more host CPU than with 32 MiB), so every RV_BC_GROW_FLUSHES flushes at one size double the
 * arena and the JIT's code cache, up to RV_BC_ARENA_MAX; the arena is mapped that large from
 * the start, and only the pages written become resident. */
#define RV_BC_ARENA_SIZE   (4u << 20)
#define RV_BC_ARENA_MAX    (32u << 20)
#define RV_BC_GROW_FLUSHES 4

/* The arena's pages are mapped in this many bytes at a time, ahead of the blocks. */
#define RV_BC_POPULATE_CHUNK (256u << 10)

/* Maps the arena's pages in up to at least `end` (bc_build), rather than a page fault per 4 KiB
 * of blocks (base/populate.h): the arena's were 1,500 of the 6,800 faults of a default boot.
 * Where the kernel cannot, the pages fault in one by one. */
static void bc_populate(struct rv64_hart *h, size_t end)
{
    while (h->bc.populated < end && !h->bc.no_populate) {
        size_t len = RV_BC_ARENA_MAX - h->bc.populated;

        if (len > RV_BC_POPULATE_CHUNK)
            len = RV_BC_POPULATE_CHUNK;
        if (mem_populate(h->bc.arena + h->bc.populated, len))
            h->bc.no_populate = true;
        else
            h->bc.populated += len;
    }
}

/* Fibonacci hashing of the key's address (instructions are 2-byte aligned): the top bits of
 * the product depend on every bit of the key, so blocks at the same offset of many pages, or
 * in pages a power of two apart, still spread over the buckets. */
static unsigned bc_hash(uintptr_t key)
{
    return (unsigned)(((uint64_t)(key >> 1) * 0x9e3779b97f4a7c15ull) >> (64 - RV_BC_BUCKETS_LOG2));
}

void rv_block_cache_flush(struct rv64_hart *h)
{
    memset(h->bc.buckets, 0, RV_BC_BUCKETS * sizeof(h->bc.buckets[0]));
    h->bc.arena_used = 0;
    h->bc.flushes++;
    rv_fetch_gen_bump(h);
    if (h->jit)
        rv_jit_flush(h->jit); /* translations hang off blocks, which are gone */
    h->bc_flush_pending = false;
    h->cw_unwatched = false;
}

/* The flush when the arena or the code cache is full, which also grows them when it comes
 * often (RV_BC_GROW_FLUSHES). */
static void bc_flush_full(struct rv64_hart *h)
{
    rv_block_cache_flush(h);
    if (++h->bc.flushes_at_limit >= RV_BC_GROW_FLUSHES && h->bc.arena_limit < RV_BC_ARENA_MAX) {
        h->bc.arena_limit *= 2;
        h->bc.flushes_at_limit = 0;
        if (h->jit)
            rv_jit_grow(h->jit);
    }
}

/* --- The code watch (base/codewatch.h): FENCE.I keeps what no write changed --- */

/* Sweeps the live TLB for the watch's epoch and acknowledges that epoch. */
static void code_sweep(struct rv64_hart *h)
{
    uint64_t e = atomic_load(&h->cw->epoch);

    rv_tlb_sweep_code(h, h->tlb);
    h->cw_seen = e;
    atomic_store(&h->cw->hart[h->cfg.hartid].ack, e);
}

void rv_code_table_live(struct rv64_hart *h)
{
    if (h->cw && h->tlb->cw_epoch != h->cw_seen)
        rv_tlb_sweep_code(h, h->tlb);
}

/* The hart stops running guest code (WFI, or out of rv64_hart_run): it cannot write, and
 * sweeps in code_unpark() before it runs again, so no hart need wait for it. */
static void code_park(struct rv64_hart *h)
{
    if (h->cw)
        atomic_store(&h->cw->hart[h->cfg.hartid].ack, CODE_WATCH_PARKED);
}

static void code_unpark(struct rv64_hart *h)
{
    struct code_watch_hart *me;

    if (!h->cw)
        return;
    me = &h->cw->hart[h->cfg.hartid];
    /* WAKING first: a hart that read PARKED moved the epoch before this reads it. */
    atomic_store(&me->ack, CODE_WATCH_WAKING);
    if (atomic_load(&h->cw->epoch) != h->cw_seen)
        code_sweep(h);
    else
        atomic_store(&me->ack, h->cw_seen);
}

/* Notes, before the block at `host` is decoded or compared with memory, that the hart holds
 * code of that page (byte: its code-watch byte, NULL if none), so that a write from now on is
 * counted. A page that held no code moves the epoch: the hart's own writable mappings of it go
 * now, the other harts' at their next sweep. */
static void code_note(struct rv64_hart *h, _Atomic uint8_t *byte, uintptr_t host)
{
    uint8_t bit = (uint8_t)(1u << h->cfg.hartid); /* < CODE_WATCH_HARTS when h->cw is set */
    uint64_t need;
    unsigned old;

    if (!byte || (atomic_load(byte) & bit))
        return;
    old = atomic_fetch_or(byte, bit);
    if (old & bit)
        return;
    if (old) {
        need = atomic_load(&h->cw->epoch); /* its epoch moved when it became code */
    } else {
        uint64_t e;

        rv_tlb_drop_writable(h, host & ~(uintptr_t)(RV_PAGE_SIZE - 1));
        e = atomic_fetch_add(&h->cw->epoch, 1);
        need = e + 1;
        if (e == h->cw_seen) {
            /* Only this page moved it, and the live table maps it writable no more. */
            h->cw_seen = need;
            atomic_store(&h->cw->hart[h->cfg.hartid].ack, need);
        }
    }
    if (need > h->cw_need)
        h->cw_need = need;
}

/* Whether this FENCE.I can keep every block: no page this hart holds code of was written since
 * its blocks were last compared with memory, as far as every hart has swept. */
static bool code_unchanged(struct rv64_hart *h)
{
    struct code_watch *cw = h->cw;
    bool acked;
    uint64_t w;

    if (!cw || h->cw_unwatched)
        return false;
    if (atomic_load(&cw->epoch) != h->cw_seen)
        code_sweep(h);
    /* The acknowledgements first: a sweep counts its writes before it acknowledges. */
    acked = code_watch_acked(cw, h->cfg.hartid, h->cw_need);
    w = atomic_load(&cw->hart[h->cfg.hartid].writes);
    if (acked && w == h->cw_writes)
        return true;
    h->cw_writes = w; /* every block is compared with memory after this */
    return false;
}

/* FENCE.I (Zifencei): makes stores to instruction memory visible to this hart's fetches. When
 * the code watch cannot show that none of the hart's code was written, blocks decoded before
 * are compared with memory on their next use, and chains, which skip that, are dropped. */
static void fence_i(struct rv64_hart *h)
{
    h->bc_flush_pending = false;
    if (code_unchanged(h))
        return;
    h->bc.code_gen++;
    rv_fetch_gen_bump(h);
}

/* True when the instruction bytes in memory are still the ones the block was decoded from. */
static bool bc_still_valid(const struct rv_block *b)
{
    const uint8_t *code = (const uint8_t *)b->key;

    for (uint32_t i = 0; i < b->n; i++) {
        const struct rv_insn *in = &b->insn[i];
        uint32_t raw = 0;

        memcpy(&raw, code + in->pc_off, in->len);
        if (raw != in->raw)
            return false;
    }
    return true;
}

/* Whether block b still holds the bytes at its key: after a FENCE.I, compared once. */
static bool bc_current(struct rv64_hart *h, struct rv_block *b)
{
    if (likely(b->code_gen == h->bc.code_gen))
        return true;
    /* The watch byte is looked up again rather than kept in every block: this runs once per
     * block after a FENCE.I that changed code, and the block stays 128 bytes before its
     * instructions. */
    code_note(h, rv_code_byte(h, (const void *)b->key, &h->cw_unwatched), b->key);
    if (!bc_still_valid(b))
        return false;
    b->code_gen = h->bc.code_gen;
    return true;
}

/* The cached block for `key`, or NULL. FENCE.I only bumps code_gen (privileged-spec
 * visibility of stores to fetch needs no more): a block decoded before it is compared with
 * memory on its next use, kept if unchanged, dropped from its chain if the code changed. */
static struct rv_block *bc_lookup(struct rv64_hart *h, uintptr_t key)
{
    struct rv_block **head = &h->bc.buckets[bc_hash(key)];
    struct rv_block **link = head;
    struct rv_block *b;

    while ((b = *link) && b->key != key)
        link = &b->next;
    if (!b)
        return NULL;
    if (unlikely(!bc_current(h, b))) {
        *link = b->next; /* its arena space comes back at the next full flush */
        return NULL;
    }
    if (link != head) {
        /* To the front: a chain also holds blocks of code long gone (a page freed and used
         * again keeps its blocks until FENCE.I finds them changed or the arena is flushed),
         * and each step of the walk is a cache miss, so the blocks in use should come first. */
        *link = b->next;
        b->next = *head;
        *head = b;
    }
    return b;
}

/* Whether `in` jumps, when it does, to its own pc plus its immediate. */
static bool insn_direct(const struct rv_insn *in)
{
    return in->fn == rv_op_jal || in->fn == rv_op_beq || in->fn == rv_op_bne ||
           in->fn == rv_op_blt || in->fn == rv_op_bge || in->fn == rv_op_bltu ||
           in->fn == rv_op_bgeu;
}

/* b->local (block.h) for a block at page offset `at`. */
static void block_locals(struct rv_block *b, unsigned at)
{
    const struct rv_insn *last = &b->insn[b->n - 1];
    bool direct = insn_direct(last);

    b->local[0] = b->local[1] = RV_NO_LOCAL;
    if (!direct && (last->flags & RV_INSN_ENDS_BLOCK))
        return;
    if (at + b->bytes < RV_PAGE_SIZE)
        b->local[0] = (int16_t)b->bytes;
    if (direct) {
        int64_t t = (int64_t)last->pc_off + last->imm;

        if ((int64_t)at + t >= 0 && (int64_t)at + t < (int64_t)RV_PAGE_SIZE &&
            t != (int64_t)b->bytes)
            b->local[1] = (int16_t)t;
    }
}

/* Decodes a block starting at guest pc whose bytes are at `host` (valid to the end of the
 * page). Returns NULL when the first instruction crosses into the next page; the caller then
 * runs it on its own. */
static struct rv_block *bc_build(struct rv64_hart *h, uint64_t pc, const uint8_t *host)
{
    size_t max = sizeof(struct rv_block) + RV_BLOCK_MAX_INSNS * sizeof(struct rv_insn);
    unsigned avail_page = (unsigned)(RV_PAGE_SIZE - (pc & (RV_PAGE_SIZE - 1)));
    unsigned off = 0, n = 0;
    struct rv_block *b;
    _Atomic uint8_t *watch;

    if (h->bc.arena_used + max > h->bc.arena_limit)
        bc_flush_full(h);
    if (h->bc.arena_used + max > h->bc.populated)
        bc_populate(h, h->bc.arena_used + max);
    b = (struct rv_block *)(h->bc.arena + h->bc.arena_used);
    watch = rv_code_byte(h, host, &h->cw_unwatched);
    code_note(h, watch, (uintptr_t)host); /* before its bytes are read */
    while (n < RV_BLOCK_MAX_INSNS && avail_page - off >= 2) {
        struct rv_insn *in = &b->insn[n];
        uint16_t lo;
        uint32_t raw;

        memcpy(&lo, host + off, 2);
        if ((lo & 3) == 3) {
            if (avail_page - off < 4)
                break;
            memcpy(&raw, host + off, 4);
        } else {
            raw = lo;
        }
        rv_decode(raw, in);
        in->pc_off = (uint16_t)off;
        in->idx = (uint8_t)n;
        off += in->len;
        n++;
        if (in->flags & RV_INSN_ENDS_BLOCK)
            break;
    }
    if (n == 0)
        return NULL;
    b->key = (uintptr_t)host;
    b->code_gen = h->bc.code_gen;
    memset(b->chain, 0, sizeof(b->chain));
    b->runs = 0;
    b->code = NULL;
    b->n = n;
    b->bytes = off;
    block_locals(b, (unsigned)(pc & (RV_PAGE_SIZE - 1)));
    h->bc.arena_used += sizeof(struct rv_block) + n * sizeof(struct rv_insn);
    h->bc.arena_used = (h->bc.arena_used + 15) & ~(size_t)15;
    b->next = h->bc.buckets[bc_hash(b->key)];
    h->bc.buckets[bc_hash(b->key)] = b;
    return b;
}

static void exec_block(struct rv64_hart *h, const struct rv_block *b)
{
    const struct rv_insn *in = b->insn, *end = in + b->n;

    for (; in < end; in++) {
        int r = in->fn(h, in);

        if (unlikely(r)) {
            h->instret += in->idx + (r == RV_JUMP);
            return;
        }
    }
    h->pc += b->bytes;
    h->instret += b->n;
}

/* A 32-bit instruction whose second half lies on the next page: fetch both halves (either
 * may fault, and the fault names the half that did, privileged §3.1.16) and run it alone. */
static void exec_cross_page(struct rv64_hart *h, const uint8_t *host)
{
    struct rv_insn in;
    uint16_t lo, hi;
    const uint8_t *next = rv_fetch_ptr(h, h->pc + 2);
    int r;

    if (!next) {
        rv_trap(h, h->exc_cause, h->exc_tval, h->pc);
        return;
    }
    memcpy(&lo, host, 2);
    memcpy(&hi, next, 2);
    rv_decode((uint32_t)lo | ((uint32_t)hi << 16), &in);
    r = in.fn(h, &in);
    if (r == RV_NEXT)
        h->pc += in.len;
    if (r != RV_TRAP)
        h->instret++;
}

/* Sleeps until an enabled interrupt is pending or a stop is asked. The park is announced
 * before mip and stop are read, and their writers store before they wake (base/park.h), so a
 * wake is never lost; a waker finding the hart running makes no system call. (A mutex and
 * condition variable cost three to four futex calls per interrupt a device thread raised.) */
static void hart_wfi(struct rv64_hart *h)
{
    code_park(h);
    for (;;) {
        park_prepare(&h->wfi_park);
        if ((atomic_load(&h->mip) & h->mie) || atomic_load(&h->stop)) {
            park_cancel(&h->wfi_park);
            break;
        }
        park_wait(&h->wfi_park, 0);
    }
    if (!atomic_load(&h->stop))
        h->in_wfi = false;
    code_unpark(h);
}

/* The key that a chain into pc, just fetched, records (hart.h, gen_g and gen_a), with its
 * page noted for page fences. In S while s_global holds, a chain into a page not mapped
 * global gets RV_CHAIN_NO_KEY, which no fetch_key equals (its context is never S with SUM):
 * such a chain would wrongly survive a switch of address space. */
static uint64_t chain_key(struct rv64_hart *h, uint64_t pc)
{
    switch (rv_mmu_fetch(h)) {
    case RV_MMU_M: return h->fetch_key; /* no translation: no fence can change it */
    case RV_MMU_S:
        if (!h->s_global)
            break;
        if (rv_tlb_fetch_global(h, pc)) {
            rv_chain_page_note(h->chain_pages_g, RV_CHAIN_PAGE_BITS_G, &h->chain_pages_g_gen,
                               h->gen_g, pc);
            return h->fetch_key;
        }
        if (++h->s_nonglobal < RV_S_NONGLOBAL_MAX)
            return RV_CHAIN_NO_KEY;
        log_debug("hart %u: S-mode code runs from pages not mapped global; its block chains "
                  "now go by address space",
                  h->cfg.hartid);
        h->s_global = false;
        rv_fetch_key_set(h);
        break;
    default: break;
    }
    rv_chain_page_note(h->chain_pages_a, RV_CHAIN_PAGE_BITS, &h->chain_pages_a_gen, h->gen_a, pc);
    return h->fetch_key;
}

/* The block that chain entry c belongs to, and which of its two entries c is (*i): blocks
 * start 16-byte aligned in the arena (bc_build) and an entry's size is 8 past a multiple of 16
 * (block.h), so of the two places the block could start, only one is aligned. */
static const struct rv_block *chain_owner(const struct rv_chain *c, unsigned *i)
{
    uintptr_t at = (uintptr_t)c - offsetof(struct rv_block, chain);

    *i = (at & 15) != 0;
    return (const struct rv_block *)(at - *i * sizeof(*c));
}

/* c->lkey for entry c leading to b (block.h). */
static uint64_t chain_lkey(const struct rv64_hart *h, const struct rv_chain *c,
                           const struct rv_block *b)
{
    unsigned i;
    const struct rv_block *o = chain_owner(c, &i);

    if (o->local[i] == RV_NO_LOCAL || b->key != o->key + (uintptr_t)(intptr_t)o->local[i])
        return 0;
    return h->bc.code_gen;
}

/* The block for h->pc: from chain entry c (of the block that ran last) when it is still
 * valid, else through the fetch TLB and the block cache (building it if needed), recording
 * the link in c. NULL when the pc's instruction crossed a page and was executed here, or when
 * fetching trapped. */
static struct rv_block *next_block(struct rv64_hart *h, struct rv_chain *c)
{
    const uint8_t *host;
    struct rv_block *b;
    uint64_t flushes;

    if (c && likely(c->pc == h->pc && c->key == h->fetch_key && c->blk)) {
        c->entry = rv_jit_entry(c->blk->code); /* lkey holds: code_gen moves fetch_key too */
        return c->blk;
    }
    host = rv_fetch_ptr(h, h->pc);
    if (unlikely(!host)) {
        rv_trap(h, h->exc_cause, h->exc_tval, h->pc);
        return NULL;
    }
    /* A chain entry whose generation moved (a FENCE.I, a switch of address space and back, a
     * fence of a page it leads into) still names, most often, the block for this address: when
     * it does, that is what the lookup would find, without its walk (a cache miss or more). */
    if (c && c->blk && c->blk->key == (uintptr_t)host && bc_current(h, c->blk))
        b = c->blk;
    else
        b = bc_lookup(h, (uintptr_t)host);
    if (unlikely(!b)) {
        flushes = h->bc.flushes;
        b = bc_build(h, h->pc, host);
        if (!b) {
            exec_cross_page(h, host);
            return NULL;
        }
        if (flushes != h->bc.flushes)
            c = NULL; /* the arena was recycled: c's block no longer exists */
    }
    if (c) {
        c->pc = h->pc;
        c->key = chain_key(h, h->pc);
        c->blk = b;
        c->entry = rv_jit_entry(b->code);
        c->lkey = chain_lkey(h, c, b);
    }
    return b;
}

/* Translates b (run often enough to be worth it). Returns true when the code cache was full
 * and the block cache, b included, was flushed instead; b is then found, and later
 * translated, again. A block that cannot be translated stays interpreted. */
static bool jit_block(struct rv64_hart *h, struct rv_block *b)
{
    bool full;

    b->code = rv_jit_compile(h->jit, b, &full);
    if (full)
        bc_flush_full(h);
    return full;
}

bool rv64_jit_host(void)
{
    return RV_JIT_HOST;
}

int rv64_hart_run(struct rv64_hart *h)
{
    struct rv_chain *link = NULL; /* where the block that ran last records its successor */

    code_unpark(h);
    for (;;) {
        struct rv_block *b;
        uint64_t pc;

        /* Cleared before stop and mip are read: a kick that set it after this read it set
         * again, and one before is seen in what the reads return (kick() releases, this
         * acquires). */
        if (unlikely(atomic_load_explicit(&h->need_loop, memory_order_relaxed)))
            atomic_exchange_explicit(&h->need_loop, false, memory_order_acq_rel);
        if (unlikely(atomic_load_explicit(&h->stop, memory_order_relaxed)))
            break;
        if (h->cw &&
            unlikely(atomic_load_explicit(&h->cw->epoch, memory_order_relaxed) != h->cw_seen))
            code_sweep(h);
        if (unlikely(atomic_load_explicit(&h->mip, memory_order_relaxed) & h->irq_enable))
            rv_check_interrupts(h);
        if (unlikely(h->in_wfi)) {
            hart_wfi(h);
            continue;
        }
        pc = h->pc;
        b = next_block(h, link);
        if (unlikely(!b)) {
            link = NULL;
            continue;
        }
        /* Translated once, when the block becomes hot: one that cannot be is not retried. */
        if (unlikely(!b->code) && h->jit && b->runs++ == rv_jit_threshold(h->jit) &&
            jit_block(h, b)) {
            link = NULL; /* the code cache was full: every block was flushed, b included */
            continue;
        }
        if (b->code) {
            /* Translated code may go on into successors' code; it leaves the chain entry of
             * the last block it ran in h->jit_link. */
            b->code(h);
            link = h->jit_link;
        } else {
            exec_block(h, b);
            link = &b->chain[h->pc != pc + b->bytes];
        }
        if (unlikely(h->bc_flush_pending))
            fence_i(h);
    }
    code_park(h);
    return 0;
}

/* After an interrupt was raised or a stop requested: translated code leaves for the run loop
 * (need_loop, hart.h), a hart in WFI wakes. */
static void kick(struct rv64_hart *h)
{
    atomic_store_explicit(&h->need_loop, true, memory_order_release);
    park_wake(&h->wfi_park);
}

void rv64_hart_set_irq(void *hart, unsigned irq, bool level)
{
    struct rv64_hart *h = hart;
    uint64_t bit = 1ull << irq;

    if (irq == RV64_IRQ_SEI || irq == RV64_IRQ_STI) {
        /* SEIP and STIP also have a software source that mip writes change (hart.h). */
        atomic_store(irq == RV64_IRQ_SEI ? &h->seip_line : &h->stip_timer, level);
        if (rv_mip_sync(h))
            kick(h);
        return;
    }
    if (level) {
        if (!(atomic_fetch_or(&h->mip, bit) & bit))
            kick(h);
    } else {
        atomic_fetch_and(&h->mip, ~bit);
    }
}

void rv64_hart_request_stop(struct rv64_hart *h)
{
    atomic_store(&h->stop, true);
    kick(h);
}

void rv64_hart_clear_stop(struct rv64_hart *h)
{
    atomic_store(&h->stop, false);
}

void rv64_hart_reset(struct rv64_hart *h, uint64_t reset_pc)
{
    memset(h->x, 0, sizeof(h->x));
    memset(h->f, 0, sizeof(h->f));
    h->pc = reset_pc;
    /* The PLIC's line keeps its level across a hart reset; the software bit does not. */
    atomic_store(&h->seip_sw, false);
    atomic_store(&h->stip_sw, false);
    atomic_store(&h->stce, false);
    atomic_store(&h->mip, atomic_load(&h->seip_line) ? MIP_SEIP : 0);
    h->mie = 0;
    h->instret = 0;
    h->fflags = h->frm = 0;
    h->res_host = NULL;
    h->mstatus = 0;
    h->medeleg = h->mideleg = 0;
    h->mtvec = h->mscratch = h->mepc = h->mcause = h->mtval = 0;
    h->mcounteren = h->scounteren = h->mcountinhibit = 0;
    h->menvcfg = h->senvcfg = 0;
    h->stvec = h->sscratch = h->sepc = h->scause = h->stval = 0;
    h->satp = 0;
    h->stimecmp = UINT64_MAX; /* never due, like the CLINT's mtimecmp at reset */
    rv_stimer_arm(h);
    h->cycle_offset = h->instret_offset = 0;
    memset(h->pmpcfg, 0, sizeof(h->pmpcfg));
    memset(h->pmpaddr, 0, sizeof(h->pmpaddr));
    h->pmp_active = false;
    h->pmp_nranges = 0;
    h->in_wfi = false;
    h->s_global = true;
    h->s_nonglobal = 0;
    rv_set_priv(h, RV_PRIV_M);
    rv_tlb_flush(h);
    rv_block_cache_flush(h);
}

int rv64_hart_create(const struct rv64_config *cfg, struct rv64_hart **out)
{
    struct rv64_hart *h = aligned_alloc(_Alignof(struct rv64_hart), sizeof(*h));
    int err = -ENOMEM;

    if (!h)
        return -ENOMEM;
    memset(h, 0, sizeof(*h));
    h->cfg = *cfg;
    for (unsigned i = 0; i < cfg->mem_count && !h->cw; i++) {
        struct code_watch *cw = cfg->mem[i].code;

        if (cw && code_watch_join(cw, cfg->hartid))
            h->cw = cw;
    }
    h->tlbs = calloc(RV_TLB_SETS + 1, sizeof(h->tlbs[0]));
    if (!h->tlbs)
        goto free_hart;
    rv_tlb_init(h);
    h->bc.buckets = calloc(RV_BC_BUCKETS, sizeof(h->bc.buckets[0]));
    if (!h->bc.buckets)
        goto free_sets;
    h->bc.arena_limit = RV_BC_ARENA_SIZE;
    h->bc.code_gen = 1; /* a chain entry's lkey of 0 never holds */
    h->bc.arena = mmap(NULL, RV_BC_ARENA_MAX, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (h->bc.arena == MAP_FAILED)
        goto free_buckets;
    /* The run loop reads block headers all over an arena that grows to 32 MiB for a larger
     * guest: on 4 KiB pages most of those reads also missed the host's TLB. */
    mem_huge(h->bc.arena, RV_BC_ARENA_MAX);
    if (cfg->jit) {
        err = rv_jit_create(&h->jit);
        if (err)
            goto unmap_arena;
    }
    rv64_hart_reset(h, 0);
    *out = h;
    return 0;

unmap_arena:
    munmap(h->bc.arena, RV_BC_ARENA_MAX);
free_buckets:
    free(h->bc.buckets);
free_sets:
    free(h->tlbs);
free_hart:
    if (h->cw)
        code_watch_leave(h->cw, cfg->hartid);
    free(h);
    return err;
}

void rv64_hart_destroy(struct rv64_hart *h)
{
    if (!h)
        return;
    if (h->cw)
        code_watch_leave(h->cw, h->cfg.hartid);
    rv_jit_destroy(h->jit);
    munmap(h->bc.arena, RV_BC_ARENA_MAX);
    free(h->bc.buckets);
    free(h->tlbs);
    free(h);
}

void rv64_hart_set_time_source(struct rv64_hart *h, uint64_t (*time)(void *), void *opaque)
{
    h->cfg.time = time;
    h->cfg.time_opaque = opaque;
}

void rv64_hart_set_stimer(struct rv64_hart *h, void (*stimer)(void *, unsigned, uint64_t),
                          void *opaque)
{
    h->cfg.stimer = stimer;
    h->cfg.stimer_opaque = opaque;
    rv_stimer_arm(h);
}

uint64_t rv64_hart_get_pc(const struct rv64_hart *h)
{
    return h->pc;
}

uint64_t rv64_hart_get_x(const struct rv64_hart *h, unsigned reg)
{
    return reg < 32 ? h->x[reg] : 0;
}

void rv64_hart_set_x(struct rv64_hart *h, unsigned reg, uint64_t value)
{
    if (reg > 0 && reg < 32)
        h->x[reg] = value;
}

uint64_t rv64_hart_instret(const struct rv64_hart *h)
{
    return h->instret;
}

void rv64_hart_flush_tlb(struct rv64_hart *h)
{
    rv_tlb_flush(h);
}
