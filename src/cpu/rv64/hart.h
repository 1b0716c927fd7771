/* Private to src/cpu/rv64/: the hart's state, the decoded-instruction format, the software
 * TLB and the inline fast paths for guest memory access.
 *
 * Execution model. Guest code is decoded once into blocks of struct rv_insn (a handler
 * pointer plus pre-extracted operands). A block starts at any pc, never crosses a 4 KiB page
 * and ends after an instruction that may change control flow, privilege, translation or
 * interrupt enables. Blocks are found by the host address of their first instruction, so a
 * block is valid whatever virtual address maps that physical page; they are flushed by
 * FENCE.I on the same hart, which is exactly the visibility the ISA promises (unprivileged
 * §3.1: stores become visible to instruction fetch after FENCE.I). Interrupts and stop
 * requests are checked between blocks. Engine "jit" hangs x86-64 code on hot blocks and
 * keeps this model (jit/jit.h).
 *
 * All of struct rv64_hart is owned by the hart's thread except `mip` (atomic; any thread
 * raises bits), the interrupt sources `seip_line`, `seip_sw`, `stip_timer`, `stip_sw` and
 * `stce` (atomic), `stop` (atomic), and the lock/cond pair used to sleep in WFI. */
#ifndef TESSERA_CPU_RV64_HART_H
#define TESSERA_CPU_RV64_HART_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/park.h"
#include "cpu/rv64/rv64.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define RV_PAGE_SHIFT 12
#define RV_PAGE_SIZE  4096ull
#define RV_PAGE_MASK  (~(RV_PAGE_SIZE - 1))

enum rv_priv { RV_PRIV_U = 0, RV_PRIV_S = 1, RV_PRIV_M = 3 };

/* Exception causes (privileged §3.1.15). */
enum rv_exc {
    RV_EXC_INSN_MISALIGNED = 0,
    RV_EXC_INSN_ACCESS = 1,
    RV_EXC_ILLEGAL = 2,
    RV_EXC_BREAKPOINT = 3,
    RV_EXC_LOAD_MISALIGNED = 4,
    RV_EXC_LOAD_ACCESS = 5,
    RV_EXC_STORE_MISALIGNED = 6,
    RV_EXC_STORE_ACCESS = 7,
    RV_EXC_ECALL_U = 8,
    RV_EXC_ECALL_S = 9,
    RV_EXC_ECALL_M = 11,
    RV_EXC_INSN_PAGE = 12,
    RV_EXC_LOAD_PAGE = 13,
    RV_EXC_STORE_PAGE = 15,
};

#define RV_CAUSE_INTERRUPT (1ull << 63)

/* mstatus fields (privileged §3.1.6). */
#define MSTATUS_SIE  (1ull << 1)
#define MSTATUS_MIE  (1ull << 3)
#define MSTATUS_SPIE (1ull << 5)
#define MSTATUS_UBE  (1ull << 6)
#define MSTATUS_MPIE (1ull << 7)
#define MSTATUS_SPP  (1ull << 8)
#define MSTATUS_VS   (3ull << 9)
#define MSTATUS_MPP  (3ull << 11)
#define MSTATUS_FS   (3ull << 13)
#define MSTATUS_XS   (3ull << 15)
#define MSTATUS_MPRV (1ull << 17)
#define MSTATUS_SUM  (1ull << 18)
#define MSTATUS_MXR  (1ull << 19)
#define MSTATUS_TVM  (1ull << 20)
#define MSTATUS_TW   (1ull << 21)
#define MSTATUS_TSR  (1ull << 22)
#define MSTATUS_UXL  (3ull << 32)
#define MSTATUS_SXL  (3ull << 34)
#define MSTATUS_SD   (1ull << 63)
/* The bits of mstatus with storage; the rest read as constants (UXL, SXL) or are computed (SD). */
#define MSTATUS_WRITABLE                                                                   \
    (MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE | MSTATUS_SPP | MSTATUS_MPP | \
     MSTATUS_FS | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_TVM | MSTATUS_TW |    \
     MSTATUS_TSR)

/* Exceptions that may be delegated to S: everything but ecall from M (§3.1.8). */
#define MEDELEG_WRITABLE 0xb3ffull

/* satp (§4.1.11): MODE, a 16-bit ASID (ASIDLEN = 16, the most RV64 allows) and PPN. The TLB
 * keeps translations per address space: see struct rv_tlb. */
#define SATP_WRITABLE ((0xfull << 60) | (0xffffull << 44) | ((1ull << 44) - 1))

/* satp.MODE values this hart implements (privileged §4.1.11): Bare and Sv39, Sv48, Sv57, whose
 * walks have 3, 4 and 5 levels. Writes of any other MODE are ignored. */
#define SATP_MODE_BARE 0
#define SATP_MODE_SV39 8
#define SATP_MODE_SV48 9
#define SATP_MODE_SV57 10

static inline bool rv_satp_mode_ok(unsigned mode)
{
    return mode == SATP_MODE_BARE || (mode >= SATP_MODE_SV39 && mode <= SATP_MODE_SV57);
}

#define MIP_SSIP   (1ull << RV64_IRQ_SSI)
#define MIP_MSIP   (1ull << RV64_IRQ_MSI)
#define MIP_STIP   (1ull << RV64_IRQ_STI)
#define MIP_MTIP   (1ull << RV64_IRQ_MTI)
#define MIP_SEIP   (1ull << RV64_IRQ_SEI)
#define MIP_MEIP   (1ull << RV64_IRQ_MEI)
#define MIP_S_MASK (MIP_SSIP | MIP_STIP | MIP_SEIP)
#define MIP_ALL    (MIP_S_MASK | MIP_MSIP | MIP_MTIP | MIP_MEIP)

/* menvcfg.STCE (Sstc 1.0): S-mode may use stimecmp, and mip.STIP follows time >= stimecmp.
 * The only menvcfg field with storage. */
#define MENVCFG_STCE (1ull << 63)

/* Return values of instruction handlers. */
#define RV_NEXT 0 /* fall through to the next instruction of the block */
#define RV_JUMP 1 /* retired; h->pc holds the next pc; leave the block */
#define RV_TRAP 2 /* not retired; h->pc holds the trap vector; leave the block */

struct rv64_hart;
struct rv_insn;
typedef int (*rv_exec_fn)(struct rv64_hart *h, const struct rv_insn *in);

/* One decoded instruction. Register numbers are pre-mapped: a destination x0 becomes
 * RV_X_SINK so handlers write without testing for x0; sources read x[0], which stays 0. */
struct rv_insn {
    rv_exec_fn fn;
    int64_t imm;
    uint32_t raw;    /* the instruction bits as fetched (16-bit ones zero-extended) */
    uint16_t pc_off; /* offset from the block's first instruction */
    uint8_t rd, rs1, rs2, rs3;
    uint8_t len;   /* 2 or 4 */
    uint8_t rm;    /* FP rounding-mode field; for CSR ops: RV_CSR_* flags */
    uint8_t idx;   /* position in the block: instructions retired before this one */
    uint8_t flags; /* RV_INSN_* */
};

#define RV_INSN_ENDS_BLOCK 0x01 /* may change pc, privilege, translation or interrupt state */

#define RV_CSR_WRITES 0x01 /* the instruction writes the CSR */
#define RV_CSR_IMM    0x02 /* the source is the 5-bit immediate held in rs1 */

#define RV_X_SINK 32

/* The software TLB: one direct-mapped table per translation context (below), 4 KiB entries.
 * An entry caches one virtual page -> host pointer; each access kind has its own tag so a
 * page readable but not writable hits for loads only. A tag never matches when it has low
 * bits set: RV_TLB_INVALID is all ones, so that the JIT's probe, which compares the tag with
 * the address's page and its low bits that must be zero for an aligned access, never matches
 * it either. 1024 entries (4 MiB per context): with 256, a loop striding over a few MiB (a
 * sieve, a large array's columns) missed on nearly every access. */
#define RV_TLB_BITS    10
#define RV_TLB_SIZE    (1u << RV_TLB_BITS)
#define RV_TLB_INVALID (~0ull)

struct rv_tlb_entry {
    uint64_t tag_r, tag_w, tag_x;
    uintptr_t addend; /* host address = guest virtual address + addend */
};

/* Translation contexts: the effective privilege and, for S, SUM (which decides whether S may
 * touch U pages). Keeping them apart means mode switches and SUM toggles flush nothing. */
enum rv_mmu_idx { RV_MMU_M, RV_MMU_S, RV_MMU_S_SUM, RV_MMU_U, RV_MMU_COUNT };
_Static_assert(RV_MMU_COUNT <= 4, "fetch_key holds the fetch context in two bits");

enum rv_access { RV_ACCESS_READ, RV_ACCESS_WRITE, RV_ACCESS_EXEC };

/* How many entries of a table a clear resets one by one (those filled since the last clear,
 * logged); a table filled more is cleared whole. Flushes come often (every SFENCE.VMA and
 * every switch to an address space not kept), so a flush after few fills costs as many
 * stores as there were fills, not the 4096 entries' worth a whole table costs. */
#define RV_TLB_LOG  256
#define RV_TLB_WLOG 128

/* One address space's translations, in every context. The hart keeps RV_TLB_SETS + 1 of
 * them: the live one (h->tlb, whatever satp selects now) and the others, each holding the
 * translations of the satp value (MODE, ASID and root together) it was last live under, so
 * that switching back (a satp write that selects an ASID seen before) finds them instead of
 * walking the page tables again; a switch only moves the pointer. A switch to a satp no table
 * holds takes the least recently left one and clears it. SFENCE.VMA with an ASID and no
 * address drops the tables of that ASID (and clears the live one if it is that ASID's); with
 * neither it drops them all. SFENCE.VMA with an address (Linux runs one after every page fault
 * it serves) drops only that page's entries, in the tables it names, unless the address lies
 * in the range of a table's superpage entries (one 4 KiB entry per page used, so the other
 * pages of a changed superpage could be cached too): then that whole table goes. Global
 * mappings are cached per table, which only costs a refill (privileged §4.2.1 lets an
 * SFENCE.VMA with an ASID leave global mappings alone, and lets a hart refill any time). */
#define RV_TLB_SETS          8
#define RV_TLB_BIG           4
#define RV_CHAIN_PAGE_BITS   4096u
#define RV_CHAIN_PAGE_BITS_G 32768u
#define RV_S_NONGLOBAL_MAX   1024u

struct rv_tlb {
    struct rv_tlb_entry e[RV_MMU_COUNT][RV_TLB_SIZE]; /* first: the JIT adds offsets to it */
    bool valid;       /* not live: holds satp's translations (the live table ignores it) */
    bool mapped;      /* its pages were mapped in at its first clear (tlb_clear, mmu.c) */
    uint64_t satp;    /* not live: the satp it was last live under */
    uint64_t left;    /* not live: when it stopped being live (a count of switches) */
    unsigned nfilled; /* entries filled since the last clear, RV_TLB_LOG + 1 if more */
    /* Where entries filled from superpages lie since the last clear: nbig ranges of
     * addresses, [big_first[i], big_last[i]], that hold every such superpage (adjacent ones
     * merged; when there would be more than RV_TLB_BIG, the two closest become one). */
    unsigned nbig;
    uint64_t big_first[RV_TLB_BIG + 1], big_last[RV_TLB_BIG + 1]; /* + 1: a new one, merging */
    uint16_t filled[RV_TLB_LOG]; /* their indexes into e[][] as one array */
    /* The entries given a write tag since the last clear (indexes as in filled[]; some may
     * have been refilled since), RV_TLB_WLOG + 1 if more: what a code-watch sweep visits. */
    unsigned nwritable;
    uint16_t writable[RV_TLB_WLOG];
    uint64_t cw_epoch; /* the code-watch epoch this table was last swept for (cpu.c) */
    /* Bit i: e[RV_MMU_S][i]'s fetch tag was filled from a leaf PTE with G set (as of that
     * fill; a bit of an entry without a fetch tag means nothing): rv_tlb_fetch_global(). */
    uint64_t s_exec_global[RV_TLB_SIZE / 64];
};

struct rv_block;
struct rv_chain;
struct rv_jit;

struct rv_block_cache {
    struct rv_block **buckets; /* RV_BC_BUCKETS chains keyed by host address */
    uint8_t *arena;            /* blocks are bump-allocated; full arena = flush all */
    size_t arena_used;
    size_t arena_limit;        /* bytes of the arena in use: grows on frequent flushes (cpu.c) */
    size_t populated;          /* the arena's bytes mapped in ahead of use (bc_populate) */
    bool no_populate;          /* the kernel cannot: pages fault in one by one */
    unsigned flushes_at_limit; /* flushes since arena_limit last changed */
    uint64_t flushes;
    /* Bumped by a FENCE.I that cannot keep every block (see bc_lookup()) and by a PMP write;
     * never 0. A chain entry to a pc of its block's own page holds while it is unchanged
     * (block.h, `lkey`). */
    uint64_t code_gen;
};

#define RV_PMP_COUNT 16

/* A PMP entry that matches some address: the bytes [lo, hi) it covers and its pmpcfg. */
struct rv_pmp_range {
    uint64_t lo, hi;
    uint8_t cfg;
};

struct rv64_hart {
    /* Hot: touched by nearly every instruction. */
    uint64_t x[33];
    uint64_t pc;       /* inside a block: the pc of the block's first instruction */
    unsigned mmu_data; /* enum rv_mmu_idx for loads and stores */
    /* Bits 1:0, the enum rv_mmu_idx of instruction fetch (rv_mmu_fetch(), set by
     * rv_update_mmu_idx()); above them the fetch generation its chains live under: gen_g or
     * gen_a (rv_fetch_key_set()). A chain entry (block.h) holds while the key it recorded is
     * the hart's: one compare. */
    uint64_t fetch_key;
    struct rv_tlb *tlb; /* the live translations: one of tlbs[] (struct rv_tlb) */
    _Atomic uint64_t mip;
    uint64_t mie;
    /* The bits of mie whose interrupts would be taken now: mie as the privilege mode,
     * mstatus.MIE/SIE and mideleg let through (rv_update_irq_enable). mip & irq_enable is
     * nonzero exactly when rv_check_interrupts() would trap, so the run loop and translated
     * code test it to know that they must stop, and an interrupt pending but masked (firmware
     * in M-mode with a supervisor timer pending, a kernel with interrupts off) does not send
     * every block back to the run loop. */
    uint64_t irq_enable;
    unsigned priv;
    uint64_t instret;

    /* Set by a failing memory helper, consumed by rv_raise_pending(). */
    uint64_t exc_cause;
    uint64_t exc_tval;

    /* Floating point. */
    uint64_t f[32];
    unsigned fflags;
    unsigned frm;

    /* LR/SC reservation: a host pointer and the value LR saw (SC is a compare-and-swap). */
    void *res_host;
    uint64_t res_value;

    /* Machine and supervisor CSRs. */
    uint64_t mstatus;
    uint64_t medeleg, mideleg;
    uint64_t mtvec, mscratch, mepc, mcause, mtval;
    uint32_t mcounteren, scounteren, mcountinhibit;
    uint64_t menvcfg, senvcfg;
    uint64_t stvec, sscratch, sepc, scause, stval;
    uint64_t satp;
    uint64_t stimecmp;       /* Sstc; the timer callback (cfg.stimer) holds a copy */
    uint64_t cycle_offset;   /* mcycle = instret + cycle_offset */
    uint64_t instret_offset; /* minstret = instret + instret_offset */
    uint8_t pmpcfg[RV_PMP_COUNT];
    uint64_t pmpaddr[RV_PMP_COUNT];
    bool pmp_active; /* some entry has A != OFF */
    /* The entries that match some address, lowest-numbered (highest priority) first, their
     * ranges decoded when a PMP register is written (rv_pmp_update) rather than on each of
     * the checks of every TLB refill: firmware uses 2 or 3 of the 16. */
    struct rv_pmp_range pmp_ranges[RV_PMP_COUNT];
    unsigned pmp_nranges;

    struct rv_tlb *tlbs;   /* RV_TLB_SETS + 1 tables, one of them live */
    uint64_t tlb_switches; /* satp writes that changed the live table: ages the others */

    struct rv_block_cache bc;
    struct rv_jit *jit; /* engine "jit": translates hot blocks (jit/jit.h); NULL: interpret */
    struct rv_chain *jit_link; /* set by translated code as it returns (block.h, jit.h) */
    /* The fetch generations (multiples of 4, each new one drawn from gen_next, so a value is
     * never seen twice). Chains recorded in M, and in S while s_global holds, lead into pages
     * mapped global (S records no other chain then: chain_key(), cpu.c) and live under gen_g,
     * which only what can change a global mapping moves (rv_fetch_gen_bump()). Chains of U,
     * and of S once s_global is off, live under gen_a, which a switch of address space or a
     * fence by ASID moves too (rv_fetch_gen_bump_local()). The kernel's chains then survive
     * the context switches and per-process fences that dropped them all before. */
    uint64_t gen_g, gen_a, gen_next;
    /* S records chains into global pages only; off for good (S then keys its chains by gen_a,
     * as U does) once RV_S_NONGLOBAL_MAX chains into other pages were refused: a kernel that
     * does not mark its mappings global would go through the run loop at every exit. */
    bool s_global;
    unsigned s_nonglobal;
    /* The virtual pages (bit: page number mod the map's size) that block chains living under
     * gen_g (chain_pages_g) and gen_a (chain_pages_a) were recorded into while those were
     * chain_pages_g_gen and chain_pages_a_gen: a page fence needs to bump a generation only
     * for these (rv_tlb_flush_page). Each is cleared lazily, on the first record under a new
     * generation. The global map is larger: it holds the kernel's pages for as long as no
     * global change comes, and a fence of a user page that falls on one of their bits would
     * drop every chain. */
    uint64_t chain_pages_g[RV_CHAIN_PAGE_BITS_G / 64];
    uint64_t chain_pages_a[RV_CHAIN_PAGE_BITS / 64];
    uint64_t chain_pages_g_gen, chain_pages_a_gen;
    /* FENCE.I without a full revalidation (src/base/codewatch.h, cpu.c): the watch of the
     * memory the hart runs code from, NULL if none or if the hart cannot take part. */
    struct code_watch *cw;
    uint64_t cw_seen;   /* the epoch the live TLB was last swept for, and acknowledged */
    uint64_t cw_need;   /* every other hart must have swept for this epoch to trust cw_writes */
    uint64_t cw_writes; /* the hart's count of writes as of its last full revalidation */
    bool cw_unwatched;  /* holds blocks of writable memory no watch covers: trust nothing */
    unsigned pauses;    /* PAUSE instructions since the hart last gave its host CPU away */
    bool in_wfi;
    bool bc_flush_pending; /* FENCE.I ran: act on it once the block is left */

    /* Configuration and host plumbing. */
    struct rv64_config cfg;
    /* From here on, what other threads write (stop, mip's sources, the WFI park) and what
     * translated code reads at every chained exit (need_loop): on cache lines of their own,
     * the struct being allocated aligned (rv64_hart_create), so that no other data shares
     * them. With the struct 8 bytes larger and calloc'd, translated code ran at about half
     * speed; which neighbour on need_loop's line did it was not found (docs/hart.md). */
    _Alignas(64) _Atomic bool stop;
    /* Set by any thread that raises an interrupt or requests a stop (kick(), cpu.c), after it
     * did so; cleared by the run loop before it looks at stop and mip. Translated code tests
     * this one byte to leave for the loop, where it tested stop and mip & irq_enable: an
     * interrupt that becomes pending and enabled otherwise comes from a CSR write, a trap or
     * an xRET, which leave through a handler to the loop anyway. */
    _Atomic bool need_loop;
    /* mip.SEIP has two sources (privileged §3.1.9): the PLIC's S-mode line (any thread) and
     * a bit only M-mode software writes (this thread). mip holds their OR; these hold the
     * sources, so that a write of mip never erases the line's level, nor the line the
     * software's bit. Changed only with rv_mip_sync_seip(). */
    _Atomic bool seip_line;
    _Atomic bool seip_sw;
    /* mip.STIP likewise (Sstc 1.0): with menvcfg.STCE set it is the timer's level (time >=
     * stimecmp, raised by the board's timer through rv64_hart_set_irq(), any thread) and
     * read-only; with STCE clear it is the bit M-mode software writes. `stce` mirrors
     * menvcfg.STCE for the other threads. Changed only with rv_mip_sync(). */
    _Atomic bool stip_timer;
    _Atomic bool stip_sw;
    _Atomic bool stce;
    struct park wfi_park; /* the hart sleeps here in WFI; set_irq() and request_stop() wake it */
};

/* --- traps and CSRs (csr.c) --- */

/* Enters the trap handler for `cause` (RV_CAUSE_INTERRUPT set for interrupts) taken at `epc`,
 * applying medeleg/mideleg; sets h->pc to the vector. */
void rv_trap(struct rv64_hart *h, uint64_t cause, uint64_t tval, uint64_t epc);

/* Takes the highest-priority pending and enabled interrupt, if any. Returns true if taken. */
bool rv_check_interrupts(struct rv64_hart *h);

/* CSR access for Zicsr instructions: 0, or -1 after which the caller raises illegal insn. */
int rv_csr_read(struct rv64_hart *h, unsigned csr, uint64_t *value);
int rv_csr_write(struct rv64_hart *h, unsigned csr, uint64_t value);

/* The value CSRRS and CSRRC modify, given what rv_csr_read() returned: the same, except that
 * for mip the SEIP bit is the software-written one, not its OR with the PLIC's line
 * (privileged §3.1.9), which would otherwise stick once written back. */
uint64_t rv_csr_rmw_base(struct rv64_hart *h, unsigned csr, uint64_t read);

/* Makes mip.SEIP the OR of seip_line and seip_sw, and mip.STIP stip_timer or stip_sw as stce
 * selects, whatever other thread changes mip at the same time. Any thread. Returns true when
 * SEIP or STIP went from 0 to 1. */
bool rv_mip_sync(struct rv64_hart *h);

/* Hands stimecmp to the board's timer (cfg.stimer), which sets stip_timer to time >= stimecmp
 * now and again whenever that changes. Hart thread, or with the hart stopped. */
void rv_stimer_arm(struct rv64_hart *h);

/* Recomputes mmu_data and the fetch context (fetch_key) after priv, MPRV, MPP or SUM changed. */
void rv_update_mmu_idx(struct rv64_hart *h);

/* The enum rv_mmu_idx of instruction fetch. */
static inline unsigned rv_mmu_fetch(const struct rv64_hart *h)
{
    return (unsigned)(h->fetch_key & 3);
}

/* Whether the fetch context's chains live under gen_g (hart.h). */
static inline bool rv_fetch_global(const struct rv64_hart *h)
{
    unsigned ctx = rv_mmu_fetch(h);

    return ctx == RV_MMU_M || (ctx == RV_MMU_S && h->s_global);
}

/* fetch_key = the fetch context's generation and the context. */
static inline void rv_fetch_key_set(struct rv64_hart *h)
{
    h->fetch_key = (rv_fetch_global(h) ? h->gen_g : h->gen_a) | rv_mmu_fetch(h);
}

/* A map of the virtual pages that chains under one generation lead into (hart.h,
 * chain_pages_g and chain_pages_a): `nbits` bits, page number mod nbits, valid while *map_gen
 * is that generation. Notes va's page, clearing the map first if the generation moved. */
static inline void rv_chain_page_note(uint64_t *map, unsigned nbits, uint64_t *map_gen,
                                      uint64_t gen, uint64_t va)
{
    uint64_t bit = (va >> RV_PAGE_SHIFT) % nbits;

    if (*map_gen != gen) {
        memset(map, 0, nbits / 8);
        *map_gen = gen;
    }
    map[bit / 64] |= 1ull << (bit % 64);
}

/* Whether the map may hold va's page under generation gen. */
static inline bool rv_chain_page_hit(const uint64_t *map, unsigned nbits, uint64_t map_gen,
                                     uint64_t gen, uint64_t va)
{
    uint64_t bit = (va >> RV_PAGE_SHIFT) % nbits;

    return map_gen == gen && (map[bit / 64] >> (bit % 64) & 1);
}

/* Drops every block chain: the fetch TLB or the block cache changed under them. */
static inline void rv_fetch_gen_bump(struct rv64_hart *h)
{
    h->gen_next += 4;
    h->gen_g = h->gen_a = h->gen_next;
    rv_fetch_key_set(h);
}

/* Drops the chains that may lead into pages not mapped global: what changed can only be
 * such a page's mapping (a switch of address space of one translation mode, a fence by
 * ASID, privileged §4.2.1 and §4.3.1). */
static inline void rv_fetch_gen_bump_local(struct rv64_hart *h)
{
    h->gen_next += 4;
    h->gen_a = h->gen_next;
    rv_fetch_key_set(h);
}

/* Sets the privilege mode (trap entry and return). */
void rv_set_priv(struct rv64_hart *h, unsigned priv);

/* Recomputes irq_enable after priv, mstatus.MIE/SIE, mie or mideleg changed. */
void rv_update_irq_enable(struct rv64_hart *h);

/* Recomputes pmp_active from pmpcfg and flushes the TLB, after a PMP register changed. */
void rv_pmp_update(struct rv64_hart *h);

/* Recomputes pmp_ranges from the PMP registers (rv_pmp_update calls it). */
void rv_pmp_decode(struct rv64_hart *h);

/* --- memory (mmu.c) --- */

/* Drops every cached translation, of every address space. */
void rv_tlb_flush(struct rv64_hart *h);

/* Drops the write tags of table t's entries that map a page holding code now (h->cw), and
 * counts a write for the harts named there: this hart may have written through them. */
void rv_tlb_sweep_code(struct rv64_hart *h, struct rv_tlb *t);

/* Drops the write tags of the live table's entries that map the host page `page`. */
void rv_tlb_drop_writable(struct rv64_hart *h, uintptr_t page);

/* The mem region whose host mapping holds p, or NULL. */
const struct rv64_mem_region *rv_mem_of_host(const struct rv64_hart *h, const void *p);

/* The code-watch byte of the page of host address p (h->cw), or NULL: not watched, and then
 * *unwatched set if p is writable memory. */
_Atomic uint8_t *rv_code_byte(const struct rv64_hart *h, const void *p, bool *unwatched);

/* Makes the live table current with the code watch after a switch to it (cpu.c). */
void rv_code_table_live(struct rv64_hart *h);

/* Makes every table of h->tlbs empty and the first one live, once they are allocated. */
void rv_tlb_init(struct rv64_hart *h);

/* A satp write: saves the live TLB under old_satp, and restores the one saved under
 * new_satp or starts empty. */
void rv_tlb_switch(struct rv64_hart *h, uint64_t old_satp, uint64_t new_satp);

/* SFENCE.VMA with rs1 = x0 and rs2 != x0: drops the translations of ASID `asid`. */
void rv_tlb_flush_asid(struct rv64_hart *h, uint64_t asid);

/* SFENCE.VMA with rs1 != x0: drops the translations of the page of `va` in every address
 * space (by_asid false) or in those of ASID `asid` (privileged §4.2.1). */
void rv_tlb_flush_page(struct rv64_hart *h, uint64_t va, bool by_asid, uint64_t asid);

/* Slow paths behind the inline helpers below: translate, check PMP, fill the TLB, or go to
 * MMIO. Return 0, or -1 with h->exc_cause/exc_tval set. Misaligned and page-crossing
 * accesses are performed byte-wise-correct here (the hart supports misaligned accesses). */
int rv_load_slow(struct rv64_hart *h, uint64_t va, unsigned size, uint64_t *value);

/* For the JIT's TLB misses: translates a naturally aligned data access of `size` bytes at va
 * (a store when `write` is nonzero) and fills its TLB entry, with no access made and no trap
 * raised. 1 when the entry now hits for it; 0 for a misaligned access, a fault, MMIO, or a
 * page the TLB must not cache, which the instruction's handler then takes (and faults again,
 * the same way: the page-table walk's A/D updates are the ones the access makes anyway).
 * int, not bool, since generated code tests all of eax. */
int rv_tlb_fill(struct rv64_hart *h, uint64_t va, unsigned size, int write);
int rv_store_slow(struct rv64_hart *h, uint64_t va, unsigned size, uint64_t value);

/* Host pointer for a naturally aligned access of `size` bytes at `va` for an atomic memory
 * operation (read and write permission both needed). NULL with the exception set (store/AMO
 * access fault for MMIO or misaligned AMOs as the privileged spec's §3.6.3.3 permits). */
void *rv_amo_ptr(struct rv64_hart *h, uint64_t va, unsigned size, bool is_lr);

/* Host pointer to the instruction bytes at va (at least up to the end of its page), or NULL
 * with the exception set (instruction page fault / access fault). */
uint8_t *rv_fetch_ptr(struct rv64_hart *h, uint64_t va);

/* Whether the live table's S-mode fetch entry for va holds va's page, mapped global (a leaf
 * PTE with G set, or no translation at all). False where it holds no entry for va, as after a
 * fetch from a page the TLB could not cache. */
bool rv_tlb_fetch_global(const struct rv64_hart *h, uint64_t va);

/* --- execution (exec.c, decode.c, cpu.c) --- */

/* Decodes one instruction (`raw`: 16 or 32 bits as fetched) into *in; never fails: invalid
 * encodings decode to a handler that raises illegal instruction. */
void rv_decode(uint32_t raw, struct rv_insn *in);

void rv_block_cache_flush(struct rv64_hart *h);

/* Raises the exception recorded by a failing memory helper for instruction `in`. */
static inline int rv_raise_pending(struct rv64_hart *h, const struct rv_insn *in)
{
    rv_trap(h, h->exc_cause, h->exc_tval, h->pc + in->pc_off);
    return RV_TRAP;
}

static inline int rv_raise(struct rv64_hart *h, const struct rv_insn *in, uint64_t cause,
                           uint64_t tval)
{
    rv_trap(h, cause, tval, h->pc + in->pc_off);
    return RV_TRAP;
}

static inline int rv_illegal(struct rv64_hart *h, const struct rv_insn *in)
{
    return rv_raise(h, in, RV_EXC_ILLEGAL, in->raw);
}

/* --- inline fast paths: a TLB hit touches host memory directly --- */

static inline struct rv_tlb_entry *rv_tlb_entry(struct rv64_hart *h, unsigned idx, uint64_t va)
{
    return &h->tlb->e[idx][(va >> RV_PAGE_SHIFT) & (RV_TLB_SIZE - 1)];
}

/* True when [va, va+size) stays inside one page. */
static inline bool rv_in_page(uint64_t va, unsigned size)
{
    return (va & (RV_PAGE_SIZE - 1)) <= RV_PAGE_SIZE - size;
}

#define RV_DEFINE_LOAD(name, type)                                                     \
    static inline int name(struct rv64_hart *h, uint64_t va, uint64_t *value)          \
    {                                                                                  \
        struct rv_tlb_entry *e = rv_tlb_entry(h, h->mmu_data, va);                     \
        if (likely(e->tag_r == (va & RV_PAGE_MASK) && rv_in_page(va, sizeof(type)))) { \
            type v;                                                                    \
            memcpy(&v, (void *)(uintptr_t)(va + e->addend), sizeof(type));             \
            *value = (uint64_t)(int64_t)v;                                             \
            return 0;                                                                  \
        }                                                                              \
        if (rv_load_slow(h, va, sizeof(type), value))                                  \
            return -1;                                                                 \
        *value = (uint64_t)(int64_t)(type)*value;                                      \
        return 0;                                                                      \
    }

RV_DEFINE_LOAD(rv_load_i8, int8_t)
RV_DEFINE_LOAD(rv_load_u8, uint8_t)
RV_DEFINE_LOAD(rv_load_i16, int16_t)
RV_DEFINE_LOAD(rv_load_u16, uint16_t)
RV_DEFINE_LOAD(rv_load_i32, int32_t)
RV_DEFINE_LOAD(rv_load_u32, uint32_t)
RV_DEFINE_LOAD(rv_load_u64, uint64_t)

static inline int rv_store(struct rv64_hart *h, uint64_t va, unsigned size, uint64_t value)
{
    struct rv_tlb_entry *e = rv_tlb_entry(h, h->mmu_data, va);

    if (likely(e->tag_w == (va & RV_PAGE_MASK) && rv_in_page(va, size))) {
        void *p = (void *)(uintptr_t)(va + e->addend);

        switch (size) {
        case 1: *(uint8_t *)p = (uint8_t)value; break;
        case 2: memcpy(p, &(uint16_t){(uint16_t)value}, 2); break;
        case 4: memcpy(p, &(uint32_t){(uint32_t)value}, 4); break;
        default: memcpy(p, &value, 8); break;
        }
        return 0;
    }
    return rv_store_slow(h, va, size, value);
}

#endif
