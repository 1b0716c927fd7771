/* Address translation (Sv39, Sv48, Sv57), physical memory protection, the software TLB's fill
 * and the slow paths of guest memory access (RISC-V privileged 20211203, §3.7 and §4.3-4.6). */
#include <stddef.h>

#include "base/codewatch.h"
#include "base/dirty.h"
#include "base/populate.h"
#include "cpu/rv64/hart.h"
#include "hw/bus.h"

#define PTE_V         (1ull << 0)
#define PTE_R         (1ull << 1)
#define PTE_W         (1ull << 2)
#define PTE_X         (1ull << 3)
#define PTE_U         (1ull << 4)
#define PTE_G         (1ull << 5)
#define PTE_A         (1ull << 6)
#define PTE_D         (1ull << 7)
#define PTE_PPN_SHIFT 10
#define PTE_PPN_MASK  ((1ull << 44) - 1)
#define PTE_RESERVED  (0x3ffull << 54) /* PBMT, N and reserved bits: none implemented */

#define PMP_R     0x01
#define PMP_W     0x02
#define PMP_X     0x04
#define PMP_A     0x18
#define PMP_TOR   0x08
#define PMP_NA4   0x10
#define PMP_NAPOT 0x18
#define PMP_L     0x80

enum pmp_result { PMP_DENY, PMP_ALLOW, PMP_MIXED };

/* Forgets every translation of table t: the entries logged as filled, or all of them. */
static void tlb_clear(struct rv_tlb *t)
{
    struct rv_tlb_entry *e = &t->e[0][0];

    if (t->nfilled > RV_TLB_LOG) {
        if (!t->mapped) {
            mem_populate(t->e, sizeof(t->e)); /* the first clear: 32 pages in one call */
            t->mapped = true;
        }
        memset(t->e, 0xff, sizeof(t->e)); /* every tag RV_TLB_INVALID */
    } else {
        for (unsigned i = 0; i < t->nfilled; i++) {
            e[t->filled[i]].tag_r = RV_TLB_INVALID;
            e[t->filled[i]].tag_w = RV_TLB_INVALID;
            e[t->filled[i]].tag_x = RV_TLB_INVALID;
        }
    }
    t->nfilled = 0;
    t->nwritable = 0;
    t->nbig = 0;
}

/* The gap between ranges i and j of t (0 when they touch or overlap). */
static uint64_t big_gap(const struct rv_tlb *t, unsigned i, unsigned j)
{
    if (t->big_first[j] > t->big_last[i])
        return t->big_first[j] - t->big_last[i] - 1;
    if (t->big_first[i] > t->big_last[j])
        return t->big_first[i] - t->big_last[j] - 1;
    return 0;
}

/* Range i of t grows to hold range j too, and range j goes. */
static void big_merge(struct rv_tlb *t, unsigned i, unsigned j)
{
    if (t->big_first[j] < t->big_first[i])
        t->big_first[i] = t->big_first[j];
    if (t->big_last[j] > t->big_last[i])
        t->big_last[i] = t->big_last[j];
    t->nbig--;
    t->big_first[j] = t->big_first[t->nbig];
    t->big_last[j] = t->big_last[t->nbig];
}

/* Notes that the entry for va was filled from a leaf that maps 2^shift bytes. A kernel maps
 * RAM and its own image with superpages, and fences pages elsewhere (its fixmap, vmalloc
 * space) thousands of times in a boot: one range grown to cover all of them (as this was)
 * covered those too, and each such fence cleared the table and every block chain. */
static void tlb_note_superpage(struct rv_tlb *t, uint64_t va, unsigned shift)
{
    uint64_t first = va & ~((1ull << shift) - 1), last = first + ((1ull << shift) - 1);
    unsigned n = t->nbig, best_i = 0, best_j = 0;
    uint64_t best = UINT64_MAX;

    for (unsigned i = 0; i < n; i++) {
        if (first >= t->big_first[i] && last <= t->big_last[i])
            return; /* the usual case: a superpage noted before */
    }
    t->big_first[n] = first;
    t->big_last[n] = last;
    t->nbig = ++n;
    /* The two closest ranges merge when they touch, or when there are too many. */
    for (unsigned i = 0; i < n; i++) {
        for (unsigned j = i + 1; j < n; j++) {
            uint64_t gap = big_gap(t, i, j);

            if (gap < best) {
                best = gap;
                best_i = i;
                best_j = j;
            }
        }
    }
    if (best == 0 || n > RV_TLB_BIG)
        big_merge(t, best_i, best_j);
}

/* Whether va lies in a range of t's superpage entries. */
static bool tlb_in_big(const struct rv_tlb *t, uint64_t va)
{
    for (unsigned i = 0; i < t->nbig; i++) {
        if (va >= t->big_first[i] && va <= t->big_last[i])
            return true;
    }
    return false;
}

/* Clears the live table; `global`: global mappings may have changed too. */
static void tlb_clear_live(struct rv64_hart *h, bool global)
{
    /* Block chains were found through the fetch TLB. */
    if (global)
        rv_fetch_gen_bump(h);
    else
        rv_fetch_gen_bump_local(h);
    tlb_clear(h->tlb);
}

void rv_tlb_init(struct rv64_hart *h)
{
    /* Only the live table is cleared now: another is cleared when a switch first takes it
     * (rv_tlb_switch), so a hart whose guest never switches address spaces never touches
     * (nor faults in) their memory. */
    for (unsigned i = 0; i <= RV_TLB_SETS; i++) {
        h->tlbs[i].nfilled = RV_TLB_LOG + 1;
        h->tlbs[i].valid = false;
    }
    h->tlb = &h->tlbs[0];
    tlb_clear_live(h, true);
}

void rv_tlb_flush(struct rv64_hart *h)
{
    tlb_clear_live(h, true);
    for (unsigned i = 0; i <= RV_TLB_SETS; i++)
        h->tlbs[i].valid = false;
}

static uint64_t satp_asid(uint64_t satp)
{
    return (satp >> 44) & 0xffff;
}

void rv_tlb_switch(struct rv64_hart *h, uint64_t old_satp, uint64_t new_satp)
{
    struct rv_tlb *next = NULL;

    if (old_satp == new_satp)
        return;
    h->tlb->cw_epoch = h->cw_seen; /* swept while live, up to now */
    h->tlb->valid = true;
    h->tlb->satp = old_satp;
    h->tlb->left = ++h->tlb_switches;
    for (unsigned i = 0; i <= RV_TLB_SETS; i++) {
        struct rv_tlb *t = &h->tlbs[i];

        if (t != h->tlb && t->valid && t->satp == new_satp) {
            next = t;
            break;
        }
    }
    if (!next) {
        /* No table holds new_satp: take one that holds nothing, else the longest left. */
        for (unsigned i = 0; i <= RV_TLB_SETS; i++) {
            struct rv_tlb *t = &h->tlbs[i];

            if (t != h->tlb && (!next || !t->valid || (next->valid && t->left < next->left)))
                next = t;
        }
        tlb_clear(next);
    }
    next->valid = false;
    h->tlb = next;
    /* The fetch TLB changed under the block chains. Global mappings are the same in every
     * address space of one translation mode (privileged §4.3.1: where software broke that,
     * either mapping may be used), so only a change of mode moves gen_g. */
    if ((old_satp ^ new_satp) >> 60)
        rv_fetch_gen_bump(h);
    else
        rv_fetch_gen_bump_local(h);
    rv_code_table_live(h);
}

/* Block chains (block.h) name a successor by virtual pc and stay valid while h->fetch_key
 * does. A fence of one page can make wrong only the chains into that page, which
 * h->chain_pages records (cpu.c), or, when a superpage covered it, into any page of the
 * superpage; other fences leave the chains alone. Linux fences one page after every page fault
 * it serves, nearly always a data page, and dropping every chain each time made a Debian boot
 * look its blocks up 200 million times over. Tables that are not live hold no chain's target:
 * the switch to one bumps the generation. */
void rv_tlb_flush_page(struct rv64_hart *h, uint64_t va, bool by_asid, uint64_t asid)
{
    uint64_t page = va & RV_PAGE_MASK;
    unsigned slot = (unsigned)(va >> RV_PAGE_SHIFT) & (RV_TLB_SIZE - 1);
    /* A fence by ASID orders no access through a global mapping, nor any of another address
     * space than the live one's (gen_a chains were all recorded under the live satp). */
    bool global = !by_asid && rv_chain_page_hit(h->chain_pages_g, RV_CHAIN_PAGE_BITS_G,
                                                h->chain_pages_g_gen, h->gen_g, va);
    bool local =
        (!by_asid || asid == satp_asid(h->satp)) &&
        rv_chain_page_hit(h->chain_pages_a, RV_CHAIN_PAGE_BITS, h->chain_pages_a_gen, h->gen_a, va);

    for (unsigned i = 0; i <= RV_TLB_SETS; i++) {
        struct rv_tlb *t = &h->tlbs[i];
        bool live = t == h->tlb;

        if (!live && !t->valid)
            continue;
        if (by_asid && satp_asid(live ? h->satp : t->satp) != asid)
            continue;
        if (tlb_in_big(t, va)) {
            if (live) {
                tlb_clear(t);
                local = true;
                global |= !by_asid;
            } else {
                t->valid = false;
            }
            continue;
        }
        for (unsigned idx = 0; idx < RV_MMU_COUNT; idx++) {
            struct rv_tlb_entry *e = &t->e[idx][slot];

            /* An entry's valid tags all name one page (mmu_resolve resets the others). */
            if (e->tag_r == page || e->tag_w == page || e->tag_x == page)
                e->tag_r = e->tag_w = e->tag_x = RV_TLB_INVALID;
        }
    }
    if (global)
        rv_fetch_gen_bump(h);
    else if (local)
        rv_fetch_gen_bump_local(h);
}

const struct rv64_mem_region *rv_mem_of_host(const struct rv64_hart *h, const void *p)
{
    const uint8_t *b = p;

    for (unsigned i = 0; i < h->cfg.mem_count; i++) {
        const struct rv64_mem_region *m = &h->cfg.mem[i];

        if (b >= m->host && (uint64_t)(b - m->host) < m->size)
            return m;
    }
    return NULL;
}

_Atomic uint8_t *rv_code_byte(const struct rv64_hart *h, const void *p, bool *unwatched)
{
    const struct rv64_mem_region *m = rv_mem_of_host(h, p);

    if (!m)
        return NULL;
    if (m->code && m->code == h->cw)
        return &m->code->code[(uint64_t)((const uint8_t *)p - m->host) >> CODE_WATCH_PAGE_SHIFT];
    if (!m->readonly)
        *unwatched = true;
    return NULL;
}

/* The entries of t that may hold a write tag: those logged, or every entry. */
static unsigned tlb_writable_count(const struct rv_tlb *t)
{
    return t->nwritable > RV_TLB_WLOG ? RV_MMU_COUNT * RV_TLB_SIZE : t->nwritable;
}

static struct rv_tlb_entry *tlb_writable(struct rv_tlb *t, unsigned i)
{
    unsigned idx = t->nwritable > RV_TLB_WLOG ? i : t->writable[i];

    return &t->e[idx / RV_TLB_SIZE][idx % RV_TLB_SIZE];
}

void rv_tlb_sweep_code(struct rv64_hart *h, struct rv_tlb *t)
{
    unsigned n = tlb_writable_count(t), kept = 0;
    bool unwatched = false;

    for (unsigned i = 0; i < n; i++) {
        struct rv_tlb_entry *e = tlb_writable(t, i);
        _Atomic uint8_t *byte;
        unsigned bits;

        if (e->tag_w == RV_TLB_INVALID)
            continue;
        byte = rv_code_byte(h, (const void *)(uintptr_t)(e->tag_w + e->addend), &unwatched);
        bits = byte ? atomic_load(byte) : 0;
        if (bits) {
            code_watch_count(h->cw, bits);
            e->tag_w = RV_TLB_INVALID;
        } else if (kept < RV_TLB_WLOG) {
            /* Compacted in place: kept <= i, and a full scan does not read the log. */
            t->writable[kept++] = (uint16_t)((size_t)(e - &t->e[0][0]));
        } else {
            kept = RV_TLB_WLOG + 1;
        }
    }
    t->nwritable = kept;
}

void rv_tlb_drop_writable(struct rv64_hart *h, uintptr_t page)
{
    struct rv_tlb *t = h->tlb;
    unsigned n = tlb_writable_count(t);

    for (unsigned i = 0; i < n; i++) {
        struct rv_tlb_entry *e = tlb_writable(t, i);

        if (e->tag_w != RV_TLB_INVALID &&
            ((uintptr_t)(e->tag_w + e->addend) & ~(uintptr_t)(RV_PAGE_SIZE - 1)) == page)
            e->tag_w = RV_TLB_INVALID;
    }
}

void rv_tlb_flush_asid(struct rv64_hart *h, uint64_t asid)
{
    for (unsigned i = 0; i <= RV_TLB_SETS; i++) {
        if (&h->tlbs[i] != h->tlb && h->tlbs[i].valid && satp_asid(h->tlbs[i].satp) == asid)
            h->tlbs[i].valid = false;
    }
    if (satp_asid(h->satp) == asid)
        tlb_clear_live(h, false); /* no global mapping is fenced (§4.2.1) */
}

static unsigned mmu_idx_priv(unsigned idx)
{
    switch (idx) {
    case RV_MMU_M: return RV_PRIV_M;
    case RV_MMU_U: return RV_PRIV_U;
    default: return RV_PRIV_S;
    }
}

/* The range [*lo, *hi) that PMP entry i covers; false if the entry is off. */
static bool pmp_range(const struct rv64_hart *h, unsigned i, uint64_t *lo, uint64_t *hi)
{
    uint8_t cfg = h->pmpcfg[i];
    uint64_t a = h->pmpaddr[i];

    switch (cfg & PMP_A) {
    case PMP_TOR:
        *lo = i ? h->pmpaddr[i - 1] << 2 : 0;
        *hi = a << 2;
        return *lo < *hi;
    case PMP_NA4:
        *lo = a << 2;
        *hi = *lo + 4;
        return true;
    case PMP_NAPOT: {
        unsigned t = (unsigned)__builtin_ctzll(~a); /* trailing ones; a has 54 bits */
        uint64_t size = 1ull << (t + 3 > 63 ? 63 : t + 3);

        *lo = (a << 2) & ~(size - 1);
        *hi = *lo + size;
        if (*hi < *lo)
            *hi = UINT64_MAX;
        return true;
    }
    default: return false;
    }
}

void rv_pmp_decode(struct rv64_hart *h)
{
    h->pmp_nranges = 0;
    for (unsigned i = 0; i < RV_PMP_COUNT; i++) {
        struct rv_pmp_range *r = &h->pmp_ranges[h->pmp_nranges];

        if (pmp_range(h, i, &r->lo, &r->hi)) {
            r->cfg = h->pmpcfg[i];
            h->pmp_nranges++;
        }
    }
}

/* PMP decision for [pa, pa+len) (privileged §3.7.1): the lowest-numbered entry that matches
 * any byte decides; it must match all bytes. PMP_MIXED: an entry covers only part of the
 * range, so the answer differs inside it (used to refuse caching a page in the TLB). With no
 * active entry every access is allowed, as QEMU's virt does for bare-metal code. Entries that
 * match nothing (off, or an empty TOR range) are not in pmp_ranges, and cannot decide. */
static enum pmp_result pmp_check(const struct rv64_hart *h, uint64_t pa, uint64_t len,
                                 unsigned priv, enum rv_access acc)
{
    uint64_t end = pa + len;

    if (!h->pmp_active)
        return PMP_ALLOW;
    for (unsigned i = 0; i < h->pmp_nranges; i++) {
        uint64_t lo = h->pmp_ranges[i].lo, hi = h->pmp_ranges[i].hi;
        uint8_t cfg = h->pmp_ranges[i].cfg;
        uint8_t need;

        if (end <= lo || pa >= hi)
            continue;
        if (pa < lo || end > hi)
            return PMP_MIXED;
        if (priv == RV_PRIV_M && !(cfg & PMP_L))
            return PMP_ALLOW;
        need = acc == RV_ACCESS_READ ? PMP_R : acc == RV_ACCESS_WRITE ? PMP_W : PMP_X;
        return (cfg & need) ? PMP_ALLOW : PMP_DENY;
    }
    return priv == RV_PRIV_M ? PMP_ALLOW : PMP_DENY;
}

static enum pmp_result pmp_check_access(const struct rv64_hart *h, uint64_t pa, unsigned len,
                                        unsigned priv, enum rv_access acc)
{
    enum pmp_result r = pmp_check(h, pa, len, priv, acc);

    return r == PMP_MIXED ? PMP_DENY : r;
}

static const struct rv64_mem_region *mem_find(const struct rv64_hart *h, uint64_t pa)
{
    for (unsigned i = 0; i < h->cfg.mem_count; i++) {
        const struct rv64_mem_region *m = &h->cfg.mem[i];

        if (pa - m->base < m->size)
            return m;
    }
    return NULL;
}

static uint64_t cause_page_fault(enum rv_access acc)
{
    return acc == RV_ACCESS_READ    ? RV_EXC_LOAD_PAGE
           : acc == RV_ACCESS_WRITE ? RV_EXC_STORE_PAGE
                                    : RV_EXC_INSN_PAGE;
}

static uint64_t cause_access_fault(enum rv_access acc)
{
    return acc == RV_ACCESS_READ    ? RV_EXC_LOAD_ACCESS
           : acc == RV_ACCESS_WRITE ? RV_EXC_STORE_ACCESS
                                    : RV_EXC_INSN_ACCESS;
}

static int fault(struct rv64_hart *h, uint64_t cause, uint64_t va)
{
    h->exc_cause = cause;
    h->exc_tval = va;
    return -1;
}

/* Tells region m's dirty log and code watch that [off, off + len) of it is about to be written
 * other than through a TLB write entry: see mmu_resolve(). */
static void mem_written(const struct rv64_mem_region *m, uint64_t off, uint64_t len)
{
    dirty_log_mark(m->dirty, off, len);
    code_watch_write(m->code, off, len);
}

/* Sv39/Sv48/Sv57 translation (privileged §4.3.2; Sv48 and Sv57 are the same walk with a
 * fourth and a fifth level, §4.5-4.6). On success *pa is the physical address of va and
 * *pte_out the leaf PTE (with the A/D bits as now stored). */
static int mmu_translate(struct rv64_hart *h, uint64_t va, enum rv_access acc, unsigned idx,
                         uint64_t *pa, uint64_t *pte_out, unsigned *shift)
{
    unsigned priv = mmu_idx_priv(idx);
    unsigned mode = (unsigned)(h->satp >> 60);
    unsigned levels;
    uint64_t base, pte = 0;
    int level;

    if (priv == RV_PRIV_M || mode == SATP_MODE_BARE) {
        *pa = va;
        *pte_out = PTE_V | PTE_R | PTE_W | PTE_X | PTE_G | PTE_A | PTE_D;
        *shift = RV_PAGE_SHIFT; /* no page table: nothing an SFENCE.VMA could change */
        return 0;
    }
    levels = mode - SATP_MODE_SV39 + 3; /* csr.c lets only 8, 9 and 10 into satp */
    {
        /* The VA must be the sign extension of its top translated bit: bits 63..39 equal
         * bit 38 for Sv39, 63..48 bit 47 for Sv48, 63..57 bit 56 for Sv57. */
        unsigned bits = 12 + 9 * levels;
        int64_t sext = (int64_t)(va << (64 - bits)) >> (64 - bits);

        if ((uint64_t)sext != va)
            return fault(h, cause_page_fault(acc), va);
    }

restart:
    base = (h->satp & PTE_PPN_MASK) << RV_PAGE_SHIFT;
    for (level = (int)levels - 1; level >= 0; level--) {
        uint64_t vpn = (va >> (12 + 9 * level)) & 0x1ff;
        uint64_t pte_pa = base + vpn * 8;
        const struct rv64_mem_region *m = mem_find(h, pte_pa);
        uint64_t *pte_host;

        /* Implicit page-table reads are S-mode accesses for PMP (§3.7.1). */
        if (!m || m->readonly ||
            pmp_check_access(h, pte_pa, 8, RV_PRIV_S, RV_ACCESS_READ) != PMP_ALLOW)
            return fault(h, cause_access_fault(acc), va);
        pte_host = (uint64_t *)(m->host + (pte_pa - m->base));
        pte = __atomic_load_n(pte_host, __ATOMIC_ACQUIRE);

        if (!(pte & PTE_V) || (!(pte & PTE_R) && (pte & PTE_W)) || (pte & PTE_RESERVED))
            return fault(h, cause_page_fault(acc), va);
        if (!(pte & (PTE_R | PTE_X))) {
            base = ((pte >> PTE_PPN_SHIFT) & PTE_PPN_MASK) << RV_PAGE_SHIFT;
            continue;
        }

        /* A leaf: check permissions (§4.3.2 step 5). */
        if (priv == RV_PRIV_U && !(pte & PTE_U))
            return fault(h, cause_page_fault(acc), va);
        if (priv == RV_PRIV_S && (pte & PTE_U) && (acc == RV_ACCESS_EXEC || idx != RV_MMU_S_SUM))
            return fault(h, cause_page_fault(acc), va);
        switch (acc) {
        case RV_ACCESS_READ:
            if (!(pte & PTE_R) && !((h->mstatus & MSTATUS_MXR) && (pte & PTE_X)))
                return fault(h, cause_page_fault(acc), va);
            break;
        case RV_ACCESS_WRITE:
            if (!(pte & PTE_W))
                return fault(h, cause_page_fault(acc), va);
            break;
        case RV_ACCESS_EXEC:
            if (!(pte & PTE_X))
                return fault(h, cause_page_fault(acc), va);
            break;
        }
        /* A superpage's PPN must be aligned to its size (step 6). */
        uint64_t ppn = (pte >> PTE_PPN_SHIFT) & PTE_PPN_MASK;
        uint64_t low_mask = (1ull << (9 * level)) - 1;

        if (ppn & low_mask)
            return fault(h, cause_page_fault(acc), va);

        /* Hardware A/D update, atomically with respect to the PTE (step 7). */
        if (!(pte & PTE_A) || (acc == RV_ACCESS_WRITE && !(pte & PTE_D))) {
            uint64_t want = pte | PTE_A | (acc == RV_ACCESS_WRITE ? PTE_D : 0);

            if (pmp_check_access(h, pte_pa, 8, RV_PRIV_S, RV_ACCESS_WRITE) != PMP_ALLOW)
                return fault(h, cause_access_fault(acc), va);
            /* A store to RAM that no TLB entry covers: log it before making it. */
            mem_written(m, pte_pa - m->base, 8);
            if (!__atomic_compare_exchange_n(pte_host, &pte, want, false, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE))
                goto restart;
            pte = want;
        }
        ppn |= (va >> 12) & low_mask;
        *pa = (ppn << RV_PAGE_SHIFT) | (va & (RV_PAGE_SIZE - 1));
        *pte_out = pte;
        *shift = RV_PAGE_SHIFT + 9 * (unsigned)level;
        return 0;
    }
    return fault(h, cause_page_fault(acc), va);
}

/* Translates va for `acc` in context idx and resolves the physical page. On success returns
 * 0 with *pa; *host is the host pointer for pa if it is in a mem region (else NULL: MMIO).
 * Fills the TLB when the whole page may be cached.
 *
 * Dirty logging: the hart stores to RAM only through a TLB write entry filled here or through
 * the host pointer returned here for RV_ACCESS_WRITE (slow paths, AMOs, SC), and page-table
 * A/D updates (mmu_translate()). So a successful write resolution marks its page in the
 * region's log before the entry exists or the pointer is used, and the store fast path needs
 * no test of its own: with logging off the cost is one test of `on` per write fill. The code
 * watch (base/codewatch.h) is told the same way: a page that holds code stops holding it for
 * the watch as it is mapped for writing, and the harts that held it count a write. */
static int mmu_resolve(struct rv64_hart *h, uint64_t va, enum rv_access acc, unsigned idx,
                       unsigned len, uint64_t *pa, uint8_t **host)
{
    uint64_t pte;
    unsigned priv = mmu_idx_priv(idx), shift;
    const struct rv64_mem_region *m;
    enum pmp_result pr;
    bool cacheable;

    if (mmu_translate(h, va, acc, idx, pa, &pte, &shift))
        return -1;
    m = mem_find(h, *pa);
    if (!m) {
        *host = NULL;
        if (pmp_check_access(h, *pa, len, priv, acc) != PMP_ALLOW)
            return fault(h, cause_access_fault(acc), va);
        return 0;
    }
    if (acc == RV_ACCESS_WRITE && m->readonly)
        return fault(h, cause_access_fault(acc), va);
    *host = m->host + (*pa - m->base);

    pr = pmp_check(h, *pa & RV_PAGE_MASK, RV_PAGE_SIZE, priv, acc);
    cacheable = pr == PMP_ALLOW;
    if (pr == PMP_MIXED)
        pr = pmp_check_access(h, *pa, len, priv, acc);
    if (pr != PMP_ALLOW)
        return fault(h, cause_access_fault(acc), va);
    if (acc == RV_ACCESS_WRITE)
        mem_written(m, (*pa - m->base) & RV_PAGE_MASK, RV_PAGE_SIZE);
    if (cacheable) {
        struct rv_tlb_entry *e = rv_tlb_entry(h, idx, va);
        uint64_t tag = va & RV_PAGE_MASK;
        uintptr_t addend = (uintptr_t)(*host - (*pa & (RV_PAGE_SIZE - 1))) - (uintptr_t)tag;

        if (e->tag_r == RV_TLB_INVALID && e->tag_w == RV_TLB_INVALID &&
            e->tag_x == RV_TLB_INVALID) {
            struct rv_tlb *t = h->tlb;

            /* Its first fill since the table was cleared: log it for the next clear. */
            if (t->nfilled < RV_TLB_LOG)
                t->filled[t->nfilled++] = (uint16_t)(e - &t->e[0][0]);
            else
                t->nfilled = RV_TLB_LOG + 1;
        }
        if (shift > RV_PAGE_SHIFT)
            tlb_note_superpage(h->tlb, va, shift);
        if (e->addend != addend || (e->tag_r != tag && e->tag_w != tag && e->tag_x != tag)) {
            e->tag_r = e->tag_w = e->tag_x = RV_TLB_INVALID;
            e->addend = addend;
        }
        if (acc == RV_ACCESS_READ)
            e->tag_r = tag;
        else if (acc == RV_ACCESS_WRITE) {
            struct rv_tlb *t = h->tlb;

            if (e->tag_w != tag) {
                if (t->nwritable < RV_TLB_WLOG)
                    t->writable[t->nwritable++] = (uint16_t)(e - &t->e[0][0]);
                else
                    t->nwritable = RV_TLB_WLOG + 1;
            }
            e->tag_w = tag;
            /* A store set A and D, so a later load needs no walk if the page is readable
             * and PMP agrees. */
            if ((pte & PTE_R) &&
                pmp_check(h, *pa & RV_PAGE_MASK, RV_PAGE_SIZE, priv, RV_ACCESS_READ) == PMP_ALLOW)
                e->tag_r = tag;
        } else {
            e->tag_x = tag;
            if (idx == RV_MMU_S) {
                unsigned i = (unsigned)(e - h->tlb->e[RV_MMU_S]);
                uint64_t bit = 1ull << (i % 64);

                if (pte & PTE_G)
                    h->tlb->s_exec_global[i / 64] |= bit;
                else
                    h->tlb->s_exec_global[i / 64] &= ~bit;
            }
        }
    }
    return 0;
}

static int load_in_page(struct rv64_hart *h, uint64_t va, unsigned size, uint64_t *value)
{
    uint64_t pa;
    uint8_t *host;

    if (mmu_resolve(h, va, RV_ACCESS_READ, h->mmu_data, size, &pa, &host))
        return -1;
    if (host) {
        uint64_t v = 0;

        memcpy(&v, host, size);
        *value = v;
        return 0;
    }
    if (bus_read(h->cfg.bus, pa, size, value))
        return fault(h, RV_EXC_LOAD_ACCESS, va);
    return 0;
}

static int store_in_page(struct rv64_hart *h, uint64_t va, unsigned size, uint64_t value)
{
    uint64_t pa;
    uint8_t *host;

    if (mmu_resolve(h, va, RV_ACCESS_WRITE, h->mmu_data, size, &pa, &host))
        return -1;
    if (host) {
        memcpy(host, &value, size);
        return 0;
    }
    if (bus_write(h->cfg.bus, pa, size, value))
        return fault(h, RV_EXC_STORE_ACCESS, va);
    return 0;
}

int rv_tlb_fill(struct rv64_hart *h, uint64_t va, unsigned size, int write)
{
    const struct rv_tlb_entry *e = rv_tlb_entry(h, h->mmu_data, va);
    uint64_t pa;
    uint8_t *host;

    if (va & (size - 1))
        return 0;
    if (mmu_resolve(h, va, write ? RV_ACCESS_WRITE : RV_ACCESS_READ, h->mmu_data, size, &pa, &host))
        return 0;
    return (write ? e->tag_w : e->tag_r) == (va & RV_PAGE_MASK);
}

int rv_load_slow(struct rv64_hart *h, uint64_t va, unsigned size, uint64_t *value)
{
    uint64_t v = 0;

    if (rv_in_page(va, size))
        return load_in_page(h, va, size, value);
    /* A misaligned access that crosses a page: byte by byte, so a fault reports the
     * address of the part that faulted (privileged §3.1.16), which the OS must map. */
    for (unsigned i = 0; i < size; i++) {
        uint64_t b;

        if (load_in_page(h, va + i, 1, &b))
            return -1;
        v |= b << (8 * i);
    }
    *value = v;
    return 0;
}

int rv_store_slow(struct rv64_hart *h, uint64_t va, unsigned size, uint64_t value)
{
    uint64_t pa;
    uint8_t *host;

    if (rv_in_page(va, size))
        return store_in_page(h, va, size, value);
    /* Check both pages before writing anything, so a fault leaves memory untouched. */
    if (mmu_resolve(h, va, RV_ACCESS_WRITE, h->mmu_data, 1, &pa, &host) ||
        mmu_resolve(h, (va | (RV_PAGE_SIZE - 1)) + 1, RV_ACCESS_WRITE, h->mmu_data, 1, &pa, &host))
        return -1;
    for (unsigned i = 0; i < size; i++) {
        if (store_in_page(h, va + i, 1, (value >> (8 * i)) & 0xff))
            return -1;
    }
    return 0;
}

void *rv_amo_ptr(struct rv64_hart *h, uint64_t va, unsigned size, bool is_lr)
{
    uint64_t pa;
    uint8_t *host;
    enum rv_access acc = is_lr ? RV_ACCESS_READ : RV_ACCESS_WRITE;

    if (va & (size - 1)) {
        fault(h, is_lr ? RV_EXC_LOAD_MISALIGNED : RV_EXC_STORE_MISALIGNED, va);
        return NULL;
    }
    if (!is_lr) {
        /* An AMO both reads and writes: a page that is not readable faults too. */
        struct rv_tlb_entry *e = rv_tlb_entry(h, h->mmu_data, va);

        if (e->tag_w == (va & RV_PAGE_MASK) && e->tag_r == e->tag_w)
            return (void *)(uintptr_t)(va + e->addend);
        if (mmu_resolve(h, va, RV_ACCESS_READ, h->mmu_data, size, &pa, &host)) {
            h->exc_cause =
                h->exc_cause == RV_EXC_LOAD_PAGE ? RV_EXC_STORE_PAGE : RV_EXC_STORE_ACCESS;
            return NULL;
        }
    } else {
        struct rv_tlb_entry *e = rv_tlb_entry(h, h->mmu_data, va);

        if (e->tag_r == (va & RV_PAGE_MASK))
            return (void *)(uintptr_t)(va + e->addend);
    }
    if (mmu_resolve(h, va, acc, h->mmu_data, size, &pa, &host))
        return NULL;
    if (!host) {
        fault(h, is_lr ? RV_EXC_LOAD_ACCESS : RV_EXC_STORE_ACCESS, va);
        return NULL;
    }
    return host;
}

bool rv_tlb_fetch_global(const struct rv64_hart *h, uint64_t va)
{
    unsigned i = (unsigned)(va >> RV_PAGE_SHIFT) & (RV_TLB_SIZE - 1);

    return h->tlb->e[RV_MMU_S][i].tag_x == (va & RV_PAGE_MASK) &&
           (h->tlb->s_exec_global[i / 64] >> (i % 64) & 1);
}

uint8_t *rv_fetch_ptr(struct rv64_hart *h, uint64_t va)
{
    struct rv_tlb_entry *e = rv_tlb_entry(h, rv_mmu_fetch(h), va);
    uint64_t pa;
    uint8_t *host;

    if (likely(e->tag_x == (va & RV_PAGE_MASK)))
        return (uint8_t *)(uintptr_t)(va + e->addend);
    if (mmu_resolve(h, va, RV_ACCESS_EXEC, rv_mmu_fetch(h), 2, &pa, &host))
        return NULL;
    if (!host) {
        fault(h, RV_EXC_INSN_ACCESS, va);
        return NULL;
    }
    return host;
}
