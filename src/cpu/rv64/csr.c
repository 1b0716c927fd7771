/* Control and status registers, trap entry and interrupt delivery (RISC-V privileged
 * 20211203, chapters 2-4). CSRs not listed here do not exist: accessing them raises an
 * illegal-instruction exception, which is how firmware probes for them. */
#include "cpu/rv64/hart.h"
#include "cpu/rv64/fpu.h"

enum {
    CSR_FFLAGS = 0x001,
    CSR_FRM = 0x002,
    CSR_FCSR = 0x003,
    CSR_CYCLE = 0xc00,
    CSR_TIME = 0xc01,
    CSR_INSTRET = 0xc02,
    CSR_HPMCOUNTER3 = 0xc03,
    CSR_HPMCOUNTER31 = 0xc1f,
    CSR_SSTATUS = 0x100,
    CSR_SIE = 0x104,
    CSR_STVEC = 0x105,
    CSR_SCOUNTEREN = 0x106,
    CSR_SENVCFG = 0x10a,
    CSR_SSCRATCH = 0x140,
    CSR_SEPC = 0x141,
    CSR_SCAUSE = 0x142,
    CSR_STVAL = 0x143,
    CSR_SIP = 0x144,
    CSR_STIMECMP = 0x14d,
    CSR_SATP = 0x180,
    CSR_MVENDORID = 0xf11,
    CSR_MARCHID = 0xf12,
    CSR_MIMPID = 0xf13,
    CSR_MHARTID = 0xf14,
    CSR_MCONFIGPTR = 0xf15,
    CSR_MSTATUS = 0x300,
    CSR_MISA = 0x301,
    CSR_MEDELEG = 0x302,
    CSR_MIDELEG = 0x303,
    CSR_MIE = 0x304,
    CSR_MTVEC = 0x305,
    CSR_MCOUNTEREN = 0x306,
    CSR_MENVCFG = 0x30a,
    CSR_MCOUNTINHIBIT = 0x320,
    CSR_MHPMEVENT3 = 0x323,
    CSR_MHPMEVENT31 = 0x33f,
    CSR_MSCRATCH = 0x340,
    CSR_MEPC = 0x341,
    CSR_MCAUSE = 0x342,
    CSR_MTVAL = 0x343,
    CSR_MIP = 0x344,
    CSR_PMPCFG0 = 0x3a0,
    CSR_PMPCFG15 = 0x3af,
    CSR_PMPADDR0 = 0x3b0,
    CSR_PMPADDR63 = 0x3ef,
    CSR_TSELECT = 0x7a0,
    CSR_TDATA1 = 0x7a1,
    CSR_TDATA2 = 0x7a2,
    CSR_TDATA3 = 0x7a3,
    CSR_TINFO = 0x7a4,
    CSR_MCYCLE = 0xb00,
    CSR_MINSTRET = 0xb02,
    CSR_MHPMCOUNTER3 = 0xb03,
    CSR_MHPMCOUNTER31 = 0xb1f,
};

/* misa: RV64 with A, C, D, F, I, M, S and U (§3.1.1). */
#define MISA_VALUE                                                                           \
    ((2ull << 62) | (1u << 0) | (1u << 2) | (1u << 3) | (1u << 5) | (1u << 8) | (1u << 12) | \
     (1u << 18) | (1u << 20))

#define SSTATUS_MASK                                                                    \
    (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_UBE | MSTATUS_SPP | MSTATUS_VS | MSTATUS_FS | \
     MSTATUS_XS | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_UXL | MSTATUS_SD)

void rv_update_mmu_idx(struct rv64_hart *h)
{
    unsigned data_priv = h->priv;

    if (h->priv == RV_PRIV_M && (h->mstatus & MSTATUS_MPRV))
        data_priv = (unsigned)((h->mstatus & MSTATUS_MPP) >> 11);
    switch (data_priv) {
    case RV_PRIV_M: h->mmu_data = RV_MMU_M; break;
    case RV_PRIV_U: h->mmu_data = RV_MMU_U; break;
    default: h->mmu_data = (h->mstatus & MSTATUS_SUM) ? RV_MMU_S_SUM : RV_MMU_S; break;
    }
    h->fetch_key = h->priv == RV_PRIV_M ? RV_MMU_M : h->priv == RV_PRIV_U ? RV_MMU_U : RV_MMU_S;
    rv_fetch_key_set(h);
}

void rv_update_irq_enable(struct rv64_hart *h)
{
    /* Privileged spec §3.1.9: M-level interrupts (not delegated) are taken below M always and
     * in M with MIE set; S-level ones (delegated) below S always and in S with SIE set. */
    bool m_on = h->priv < RV_PRIV_M || (h->mstatus & MSTATUS_MIE);
    bool s_on = h->priv < RV_PRIV_S || (h->priv == RV_PRIV_S && (h->mstatus & MSTATUS_SIE));

    h->irq_enable = h->mie & ((m_on ? ~h->mideleg : 0) | (s_on ? h->mideleg : 0));
}

void rv_set_priv(struct rv64_hart *h, unsigned priv)
{
    h->priv = priv;
    rv_update_mmu_idx(h);
    rv_update_irq_enable(h);
}

static uint64_t mstatus_read(const struct rv64_hart *h)
{
    uint64_t v = h->mstatus | (2ull << 32) | (2ull << 34); /* UXL = SXL = 64 */

    if ((v & MSTATUS_FS) == MSTATUS_FS)
        v |= MSTATUS_SD;
    return v;
}

static void mstatus_write(struct rv64_hart *h, uint64_t v, uint64_t mask)
{
    uint64_t old = h->mstatus;
    uint64_t nv = (old & ~mask) | (v & mask);

    /* MPP is WARL: 2 is reserved, keep the old value (§3.1.6.1). */
    if (((nv & MSTATUS_MPP) >> 11) == 2)
        nv = (nv & ~MSTATUS_MPP) | (old & MSTATUS_MPP);
    h->mstatus = nv;
    if ((old ^ nv) & MSTATUS_MXR)
        rv_tlb_flush(h);
    rv_update_mmu_idx(h);
    rv_update_irq_enable(h);
}

/* Sstc 1.0: stimecmp is reachable from S-mode only while menvcfg.STCE and mcounteren.TM are
 * both set; otherwise (and always from U-mode) an access is an illegal instruction. */
static bool stimecmp_allowed(const struct rv64_hart *h)
{
    if (h->priv == RV_PRIV_M)
        return true;
    return (h->menvcfg & MENVCFG_STCE) && (h->mcounteren & 2u);
}

static bool counter_allowed(const struct rv64_hart *h, unsigned bit)
{
    if (h->priv == RV_PRIV_M)
        return true;
    if (!(h->mcounteren & (1u << bit)))
        return false;
    return h->priv == RV_PRIV_S || (h->scounteren & (1u << bit));
}

void rv_pmp_update(struct rv64_hart *h)
{
    h->pmp_active = false;
    for (unsigned i = 0; i < RV_PMP_COUNT; i++) {
        if (h->pmpcfg[i] & 0x18)
            h->pmp_active = true;
    }
    rv_pmp_decode(h);
    rv_tlb_flush(h);
    /* PMP may now forbid fetches that chains within a page skip (block.h, `lkey`); the
     * blocks are compared with memory once more, which costs little at a PMP write. */
    h->bc.code_gen++;
}

int rv_csr_read(struct rv64_hart *h, unsigned csr, uint64_t *value)
{
    if (((csr >> 8) & 3) > h->priv)
        return -1;
    switch (csr) {
    case CSR_FFLAGS:
    case CSR_FRM:
    case CSR_FCSR:
        if (!(h->mstatus & MSTATUS_FS))
            return -1;
        *value = csr == CSR_FFLAGS ? h->fflags
                 : csr == CSR_FRM  ? h->frm
                                   : (h->frm << 5) | h->fflags;
        return 0;
    case CSR_CYCLE:
        if (!counter_allowed(h, 0))
            return -1;
        *value = h->instret + h->cycle_offset;
        return 0;
    case CSR_TIME:
        if (!counter_allowed(h, 1))
            return -1;
        *value = h->cfg.time ? h->cfg.time(h->cfg.time_opaque) : 0;
        return 0;
    case CSR_INSTRET:
        if (!counter_allowed(h, 2))
            return -1;
        *value = h->instret + h->instret_offset;
        return 0;
    case CSR_SSTATUS: *value = mstatus_read(h) & SSTATUS_MASK; return 0;
    case CSR_SIE: *value = h->mie & h->mideleg; return 0;
    case CSR_STVEC: *value = h->stvec; return 0;
    case CSR_SCOUNTEREN: *value = h->scounteren; return 0;
    case CSR_SENVCFG: *value = h->senvcfg; return 0;
    case CSR_SSCRATCH: *value = h->sscratch; return 0;
    case CSR_SEPC: *value = h->sepc; return 0;
    case CSR_SCAUSE: *value = h->scause; return 0;
    case CSR_STVAL: *value = h->stval; return 0;
    case CSR_SIP: *value = atomic_load(&h->mip) & h->mideleg; return 0;
    case CSR_STIMECMP:
        if (!stimecmp_allowed(h))
            return -1;
        *value = h->stimecmp;
        return 0;
    case CSR_SATP:
        if (h->priv == RV_PRIV_S && (h->mstatus & MSTATUS_TVM))
            return -1;
        *value = h->satp;
        return 0;
    case CSR_MVENDORID:
    case CSR_MARCHID:
    case CSR_MIMPID:
    case CSR_MCONFIGPTR: *value = 0; return 0;
    case CSR_MHARTID: *value = h->cfg.hartid; return 0;
    case CSR_MSTATUS: *value = mstatus_read(h); return 0;
    case CSR_MISA: *value = MISA_VALUE; return 0;
    case CSR_MEDELEG: *value = h->medeleg; return 0;
    case CSR_MIDELEG: *value = h->mideleg; return 0;
    case CSR_MIE: *value = h->mie; return 0;
    case CSR_MTVEC: *value = h->mtvec; return 0;
    case CSR_MCOUNTEREN: *value = h->mcounteren; return 0;
    case CSR_MENVCFG: *value = h->menvcfg; return 0;
    case CSR_MCOUNTINHIBIT: *value = h->mcountinhibit; return 0;
    case CSR_MSCRATCH: *value = h->mscratch; return 0;
    case CSR_MEPC: *value = h->mepc; return 0;
    case CSR_MCAUSE: *value = h->mcause; return 0;
    case CSR_MTVAL: *value = h->mtval; return 0;
    case CSR_MIP: *value = atomic_load(&h->mip); return 0;
    case CSR_MCYCLE: *value = h->instret + h->cycle_offset; return 0;
    case CSR_MINSTRET: *value = h->instret + h->instret_offset; return 0;
    /* The trigger module with no triggers (debug spec 1.0 §5, tselect/tdata1/tinfo in §5.7):
     * tselect is WARL and holds only 0, trigger 0 does not exist (tdata1.type = 0, with
     * dmode and data hard-wired to 0), tdata2/tdata3 hold nothing, and tinfo.info = 1 says
     * "no trigger here". Software enumerating triggers finds none instead of trapping. */
    case CSR_TSELECT:
    case CSR_TDATA1:
    case CSR_TDATA2:
    case CSR_TDATA3: *value = 0; return 0;
    case CSR_TINFO: *value = 1; return 0;
    default: break;
    }
    if (csr >= CSR_HPMCOUNTER3 && csr <= CSR_HPMCOUNTER31) {
        if (!counter_allowed(h, csr - CSR_CYCLE))
            return -1;
        *value = 0;
        return 0;
    }
    if ((csr >= CSR_MHPMCOUNTER3 && csr <= CSR_MHPMCOUNTER31) ||
        (csr >= CSR_MHPMEVENT3 && csr <= CSR_MHPMEVENT31)) {
        *value = 0;
        return 0;
    }
    if (csr >= CSR_PMPCFG0 && csr <= CSR_PMPCFG15) {
        unsigned n = csr - CSR_PMPCFG0;
        uint64_t v = 0;

        if (n & 1) /* RV64 has only the even pmpcfg registers (§3.7.1) */
            return -1;
        for (unsigned i = 0; i < 8; i++) {
            unsigned e = n * 4 + i;

            if (e < RV_PMP_COUNT)
                v |= (uint64_t)h->pmpcfg[e] << (8 * i);
        }
        *value = v;
        return 0;
    }
    if (csr >= CSR_PMPADDR0 && csr <= CSR_PMPADDR63) {
        unsigned e = csr - CSR_PMPADDR0;

        *value = e < RV_PMP_COUNT ? h->pmpaddr[e] : 0;
        return 0;
    }
    return -1;
}

static bool pmp_entry_locked(const struct rv64_hart *h, unsigned e)
{
    if (h->pmpcfg[e] & 0x80)
        return true;
    /* A locked TOR entry also locks the address register below it. */
    return e + 1 < RV_PMP_COUNT && (h->pmpcfg[e + 1] & 0x80) && (h->pmpcfg[e + 1] & 0x18) == 0x08;
}

uint64_t rv_csr_rmw_base(struct rv64_hart *h, unsigned csr, uint64_t read)
{
    if (csr != CSR_MIP)
        return read;
    return (read & ~MIP_SEIP) | (atomic_load(&h->seip_sw) ? MIP_SEIP : 0);
}

bool rv_mip_sync(struct rv64_hart *h)
{
    uint64_t old = atomic_load(&h->mip), nv;

    /* The sources are read inside the loop: a CAS that succeeds wrote a value computed after
     * every source store that preceded it, and a later source store runs its own sync. */
    do {
        bool seip = atomic_load(&h->seip_line) || atomic_load(&h->seip_sw);
        bool stip = atomic_load(&h->stce) ? atomic_load(&h->stip_timer) : atomic_load(&h->stip_sw);

        nv = (old & ~(MIP_SEIP | MIP_STIP)) | (seip ? MIP_SEIP : 0) | (stip ? MIP_STIP : 0);
    } while (!atomic_compare_exchange_weak(&h->mip, &old, nv));
    return (~old & nv & (MIP_SEIP | MIP_STIP)) != 0;
}

void rv_stimer_arm(struct rv64_hart *h)
{
    if (h->cfg.stimer)
        h->cfg.stimer(h->cfg.stimer_opaque, h->cfg.hartid, h->stimecmp);
}

int rv_csr_write(struct rv64_hart *h, unsigned csr, uint64_t v)
{
    if (((csr >> 8) & 3) > h->priv || ((csr >> 10) & 3) == 3)
        return -1;
    switch (csr) {
    case CSR_FFLAGS:
    case CSR_FRM:
    case CSR_FCSR:
        if (!(h->mstatus & MSTATUS_FS))
            return -1;
        if (csr == CSR_FFLAGS)
            h->fflags = v & 0x1f;
        else if (csr == CSR_FRM)
            h->frm = v & 7;
        else {
            h->fflags = v & 0x1f;
            h->frm = (v >> 5) & 7;
        }
        h->mstatus |= MSTATUS_FS;
        return 0;
    case CSR_SSTATUS: mstatus_write(h, v, SSTATUS_MASK & MSTATUS_WRITABLE); return 0;
    case CSR_SIE:
        h->mie = (h->mie & ~h->mideleg) | (v & h->mideleg);
        rv_update_irq_enable(h);
        return 0;
    case CSR_STVEC: h->stvec = v & ~2ull; return 0; /* modes 0 and 1 only */
    case CSR_SCOUNTEREN: h->scounteren = (uint32_t)v; return 0;
    case CSR_SENVCFG: return 0; /* no fields implemented (FIOM etc. read 0) */
    case CSR_SSCRATCH: h->sscratch = v; return 0;
    case CSR_SEPC: h->sepc = v & ~1ull; return 0;
    case CSR_SCAUSE: h->scause = v; return 0;
    case CSR_STVAL: h->stval = v; return 0;
    case CSR_SIP:
        /* Only SSIP is writable through sip (§4.1.3), and only if delegated. */
        if (h->mideleg & MIP_SSIP) {
            if (v & MIP_SSIP)
                atomic_fetch_or(&h->mip, MIP_SSIP);
            else
                atomic_fetch_and(&h->mip, ~MIP_SSIP);
        }
        return 0;
    case CSR_STIMECMP:
        if (!stimecmp_allowed(h))
            return -1;
        /* The timer sets STIP to its new level before this returns (rv64.h), so the next
         * instruction already sees it, and the block ends here (a CSR write ends its block),
         * so a now-pending interrupt is taken before the next instruction. */
        h->stimecmp = v;
        rv_stimer_arm(h);
        return 0;
    case CSR_SATP: {
        unsigned mode = (unsigned)(v >> 60);

        if (h->priv == RV_PRIV_S && (h->mstatus & MSTATUS_TVM))
            return -1;
        /* An unsupported mode makes the whole write have no effect (§4.1.11). ASIDLEN is 16. */
        if (!rv_satp_mode_ok(mode))
            return 0;
        v &= SATP_WRITABLE;
        rv_tlb_switch(h, h->satp, v);
        h->satp = v;
        return 0;
    }
    case CSR_MSTATUS: mstatus_write(h, v, MSTATUS_WRITABLE); return 0;
    case CSR_MISA: return 0; /* WARL, not writable */
    case CSR_MEDELEG: h->medeleg = v & MEDELEG_WRITABLE; return 0;
    case CSR_MIDELEG:
        h->mideleg = v & MIP_S_MASK;
        rv_update_irq_enable(h);
        return 0;
    case CSR_MIE:
        h->mie = v & MIP_ALL;
        rv_update_irq_enable(h);
        return 0;
    case CSR_MTVEC: h->mtvec = v & ~2ull; return 0;
    case CSR_MCOUNTEREN: h->mcounteren = (uint32_t)v; return 0;
    case CSR_MENVCFG:
        /* STCE only (Sstc 1.0); FIOM, CBIE, CBCFE, CBZE and PBMTE stay 0. Turning STCE on or
         * off switches mip.STIP between the timer and the software bit. */
        h->menvcfg = v & MENVCFG_STCE;
        atomic_store(&h->stce, (v & MENVCFG_STCE) != 0);
        rv_mip_sync(h);
        return 0;
    case CSR_MCOUNTINHIBIT: h->mcountinhibit = (uint32_t)v & ~2u; return 0;
    case CSR_MSCRATCH: h->mscratch = v; return 0;
    case CSR_MEPC: h->mepc = v & ~1ull; return 0;
    case CSR_MCAUSE: h->mcause = v; return 0;
    case CSR_MTVAL: h->mtval = v; return 0;
    case CSR_MIP: {
        /* SSIP, STIP and SEIP are writable by M (§3.1.9); the others follow the devices.
         * SEIP's written bit is only the software source: the PLIC's line may have risen
         * since the instruction read mip, and the write must not erase it (which left a
         * guest waiting forever for an interrupt the PLIC had already signalled). STIP is
         * a source the same way, and read-only while menvcfg.STCE is set (Sstc 1.0). */
        uint64_t old = atomic_load(&h->mip);

        atomic_store(&h->seip_sw, (v & MIP_SEIP) != 0);
        if (!(h->menvcfg & MENVCFG_STCE))
            atomic_store(&h->stip_sw, (v & MIP_STIP) != 0);
        while (!atomic_compare_exchange_weak(&h->mip, &old, (old & ~MIP_SSIP) | (v & MIP_SSIP)))
            ;
        rv_mip_sync(h);
        return 0;
    }
    case CSR_MCYCLE: h->cycle_offset = v - h->instret; return 0;
    case CSR_MINSTRET:
        /* The write takes effect after this instruction retires (§3.3.1): compensate. */
        h->instret_offset = v - h->instret - 1;
        return 0;
    case CSR_TSELECT: /* WARL: no index but 0 is legal */
    case CSR_TDATA1:  /* type 0: every field hard-wired to 0 */
    case CSR_TDATA2:
    case CSR_TDATA3:
    case CSR_TINFO: return 0; /* read-only fields */
    default: break;
    }
    if ((csr >= CSR_MHPMCOUNTER3 && csr <= CSR_MHPMCOUNTER31) ||
        (csr >= CSR_MHPMEVENT3 && csr <= CSR_MHPMEVENT31))
        return 0;
    if (csr >= CSR_PMPCFG0 && csr <= CSR_PMPCFG15) {
        unsigned n = csr - CSR_PMPCFG0;

        if (n & 1)
            return -1;
        for (unsigned i = 0; i < 8; i++) {
            unsigned e = n * 4 + i;
            uint8_t c = (uint8_t)(v >> (8 * i));

            if (e >= RV_PMP_COUNT || (h->pmpcfg[e] & 0x80))
                continue;
            if ((c & 0x03) == 0x02) /* W without R is reserved: drop W */
                c &= ~0x02;
            h->pmpcfg[e] = c & 0x9f;
        }
        rv_pmp_update(h);
        return 0;
    }
    if (csr >= CSR_PMPADDR0 && csr <= CSR_PMPADDR63) {
        unsigned e = csr - CSR_PMPADDR0;

        if (e < RV_PMP_COUNT && !pmp_entry_locked(h, e)) {
            h->pmpaddr[e] = v & ((1ull << 54) - 1);
            rv_pmp_update(h);
        }
        return 0;
    }
    return -1; /* read-only or unimplemented */
}

void rv_trap(struct rv64_hart *h, uint64_t cause, uint64_t tval, uint64_t epc)
{
    bool interrupt = cause & RV_CAUSE_INTERRUPT;
    unsigned code = (unsigned)(cause & 63);
    uint64_t deleg = interrupt ? h->mideleg : h->medeleg;
    uint64_t vec;

    h->res_host = NULL; /* a trap breaks any LR/SC sequence */
    if (h->priv <= RV_PRIV_S && ((deleg >> code) & 1)) {
        uint64_t s = h->mstatus;

        h->scause = cause;
        h->sepc = epc;
        h->stval = tval;
        s = (s & ~MSTATUS_SPIE) | ((s & MSTATUS_SIE) ? MSTATUS_SPIE : 0);
        s = (s & ~MSTATUS_SPP) | (h->priv == RV_PRIV_S ? MSTATUS_SPP : 0);
        s &= ~MSTATUS_SIE;
        h->mstatus = s;
        vec = h->stvec;
        rv_set_priv(h, RV_PRIV_S);
    } else {
        uint64_t s = h->mstatus;

        h->mcause = cause;
        h->mepc = epc;
        h->mtval = tval;
        s = (s & ~MSTATUS_MPIE) | ((s & MSTATUS_MIE) ? MSTATUS_MPIE : 0);
        s = (s & ~MSTATUS_MPP) | ((uint64_t)h->priv << 11);
        s &= ~MSTATUS_MIE;
        h->mstatus = s;
        vec = h->mtvec;
        rv_set_priv(h, RV_PRIV_M);
    }
    if ((vec & 1) && interrupt)
        h->pc = (vec & ~3ull) + 4ull * code;
    else
        h->pc = vec & ~3ull;
}

/* Interrupt priority for simultaneous pending interrupts (§3.1.9). */
static const unsigned irq_priority[] = {RV64_IRQ_MEI, RV64_IRQ_MSI, RV64_IRQ_MTI,
                                        RV64_IRQ_SEI, RV64_IRQ_SSI, RV64_IRQ_STI};

static int pick_irq(uint64_t pending)
{
    for (unsigned i = 0; i < sizeof(irq_priority) / sizeof(irq_priority[0]); i++) {
        if (pending & (1ull << irq_priority[i]))
            return (int)irq_priority[i];
    }
    return -1;
}

bool rv_check_interrupts(struct rv64_hart *h)
{
    uint64_t pending = atomic_load_explicit(&h->mip, memory_order_acquire) & h->irq_enable;
    int irq;

    if (!pending)
        return false;
    /* M-level interrupts come before S-level ones, whatever their numbers (§3.1.9). */
    irq = pick_irq(pending & ~h->mideleg);
    if (irq < 0)
        irq = pick_irq(pending & h->mideleg);
    if (irq < 0)
        return false;
    h->in_wfi = false;
    rv_trap(h, RV_CAUSE_INTERRUPT | (uint64_t)irq, 0, h->pc);
    return true;
}
