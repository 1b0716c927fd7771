/* The hart's saved state (see rv64_hart_save() in rv64.h for the contract).
 *
 * Section layout, version 2, every field little-endian (src/base/state.h):
 *   u32 hartid          must equal the loading hart's
 *   u64 pc              even (IALIGN 16, unprivileged §1.5 with C)
 *   u64 x1..x31
 *   u64 f0..f31         NaN-boxed singles as stored
 *   u8  fflags, u8 frm  fcsr fields (unprivileged §11.2): 0..0x1f, 0..7
 *   u8  priv            0 (U), 1 (S) or 3 (M)
 *   u64 mstatus         storage bits only (MSTATUS_WRITABLE); MPP != 2
 *   u64 medeleg, mideleg, mie, mip
 *   u64 mtvec, mscratch, mepc, mcause, mtval
 *   u64 stvec, sscratch, sepc, scause, stval
 *   u32 mcounteren, scounteren, mcountinhibit
 *   u64 menvcfg         STCE (bit 63) only; 0 in version 1, which had no fields
 *   u64 senvcfg         no fields implemented: 0
 *   u64 satp            MODE Bare, Sv39, Sv48 or Sv57; any 16-bit ASID
 *   u64 instret, cycle_offset, instret_offset   (mcycle/minstret = instret + offset)
 *   u8  pmpcfg[16], u64 pmpaddr[16]
 *   bool in_wfi
 *   bool reservation, u64 reservation address (guest physical), u64 value LR read
 *        (both 0 without a reservation)
 * Version 2 adds, at the end (Sstc 1.0):
 *   u64 stimecmp
 *   bool stip_sw        the STIP bit M-mode last wrote, which mip.STIP shows while
 *                       menvcfg.STCE is 0 (with STCE set, mip holds the timer's level)
 * A version 1 section (written before Sstc) loads as stimecmp = 2^64 - 1 (never due) and
 * stip_sw = mip.STIP.
 * Not saved, because they are caches or transient: the TLBs, decoded blocks and chains,
 * mmu_data, the fetch context in fetch_key and pmp_active (recomputed), exc_cause/exc_tval (valid
 * only inside an instruction), a pending FENCE.I (the load flushes the block cache anyway). */
#include <inttypes.h>

#include "base/state.h"
#include "cpu/rv64/hart.h"

#define PMPCFG_WRITABLE 0x9f /* L, A, X, W, R */
#define PMPADDR_MASK    ((1ull << 54) - 1)

/* The fields of the section, read before any is applied, so a refused payload leaves the
 * hart untouched until it is reset. */
struct rv_saved {
    uint32_t hartid;
    uint64_t pc, x[32], f[32];
    uint8_t fflags, frm, priv;
    uint64_t mstatus, medeleg, mideleg, mie, mip;
    uint64_t mtvec, mscratch, mepc, mcause, mtval;
    uint64_t stvec, sscratch, sepc, scause, stval;
    uint32_t mcounteren, scounteren, mcountinhibit;
    uint64_t menvcfg, senvcfg, satp;
    uint64_t instret, cycle_offset, instret_offset;
    uint8_t pmpcfg[RV_PMP_COUNT];
    uint64_t pmpaddr[RV_PMP_COUNT];
    bool in_wfi, res_valid;
    uint64_t res_pa, res_value;
    uint64_t stimecmp;
    bool stip_sw;
};

/* The mem region holding [pa, pa + len), or NULL. */
static const struct rv64_mem_region *state_region_of_pa(const struct rv64_hart *h, uint64_t pa,
                                                        uint64_t len)
{
    for (unsigned i = 0; i < h->cfg.mem_count; i++) {
        const struct rv64_mem_region *m = &h->cfg.mem[i];

        if (pa - m->base < m->size && m->size - (pa - m->base) >= len)
            return m;
    }
    return NULL;
}

/* The guest physical address of the reservation's host pointer; false if it has none (or,
 * impossibly, one outside every region: dropping a reservation is always allowed, SC then
 * fails, unprivileged §8.2). */
static bool state_reservation_pa(const struct rv64_hart *h, uint64_t *pa)
{
    const uint8_t *p = h->res_host;
    const struct rv64_mem_region *m = p ? rv_mem_of_host(h, p) : NULL;

    if (!m)
        return false;
    *pa = m->base + (uint64_t)(p - m->host);
    return true;
}

void rv64_hart_save(const struct rv64_hart *h, struct sbuf *out)
{
    uint64_t res_pa = 0;
    bool res = state_reservation_pa(h, &res_pa);

    sbuf_put_u32(out, h->cfg.hartid);
    sbuf_put_u64(out, h->pc);
    for (unsigned i = 1; i < 32; i++)
        sbuf_put_u64(out, h->x[i]);
    for (unsigned i = 0; i < 32; i++)
        sbuf_put_u64(out, h->f[i]);
    sbuf_put_u8(out, (uint8_t)h->fflags);
    sbuf_put_u8(out, (uint8_t)h->frm);
    sbuf_put_u8(out, (uint8_t)h->priv);
    sbuf_put_u64(out, h->mstatus);
    sbuf_put_u64(out, h->medeleg);
    sbuf_put_u64(out, h->mideleg);
    sbuf_put_u64(out, h->mie);
    sbuf_put_u64(out, atomic_load(&h->mip));
    sbuf_put_u64(out, h->mtvec);
    sbuf_put_u64(out, h->mscratch);
    sbuf_put_u64(out, h->mepc);
    sbuf_put_u64(out, h->mcause);
    sbuf_put_u64(out, h->mtval);
    sbuf_put_u64(out, h->stvec);
    sbuf_put_u64(out, h->sscratch);
    sbuf_put_u64(out, h->sepc);
    sbuf_put_u64(out, h->scause);
    sbuf_put_u64(out, h->stval);
    sbuf_put_u32(out, h->mcounteren);
    sbuf_put_u32(out, h->scounteren);
    sbuf_put_u32(out, h->mcountinhibit);
    sbuf_put_u64(out, h->menvcfg);
    sbuf_put_u64(out, h->senvcfg);
    sbuf_put_u64(out, h->satp);
    sbuf_put_u64(out, h->instret);
    sbuf_put_u64(out, h->cycle_offset);
    sbuf_put_u64(out, h->instret_offset);
    sbuf_put_bytes(out, h->pmpcfg, RV_PMP_COUNT);
    for (unsigned i = 0; i < RV_PMP_COUNT; i++)
        sbuf_put_u64(out, h->pmpaddr[i]);
    sbuf_put_bool(out, h->in_wfi);
    sbuf_put_bool(out, res);
    sbuf_put_u64(out, res ? res_pa : 0);
    sbuf_put_u64(out, res ? h->res_value : 0);
    sbuf_put_u64(out, h->stimecmp);
    sbuf_put_bool(out, atomic_load(&h->stip_sw));
}

static void state_read(struct scur *in, struct rv_saved *s, uint32_t version)
{
    s->hartid = scur_get_u32(in);
    s->pc = scur_get_u64(in);
    s->x[0] = 0;
    for (unsigned i = 1; i < 32; i++)
        s->x[i] = scur_get_u64(in);
    for (unsigned i = 0; i < 32; i++)
        s->f[i] = scur_get_u64(in);
    s->fflags = scur_get_u8(in);
    s->frm = scur_get_u8(in);
    s->priv = scur_get_u8(in);
    s->mstatus = scur_get_u64(in);
    s->medeleg = scur_get_u64(in);
    s->mideleg = scur_get_u64(in);
    s->mie = scur_get_u64(in);
    s->mip = scur_get_u64(in);
    s->mtvec = scur_get_u64(in);
    s->mscratch = scur_get_u64(in);
    s->mepc = scur_get_u64(in);
    s->mcause = scur_get_u64(in);
    s->mtval = scur_get_u64(in);
    s->stvec = scur_get_u64(in);
    s->sscratch = scur_get_u64(in);
    s->sepc = scur_get_u64(in);
    s->scause = scur_get_u64(in);
    s->stval = scur_get_u64(in);
    s->mcounteren = scur_get_u32(in);
    s->scounteren = scur_get_u32(in);
    s->mcountinhibit = scur_get_u32(in);
    s->menvcfg = scur_get_u64(in);
    s->senvcfg = scur_get_u64(in);
    s->satp = scur_get_u64(in);
    s->instret = scur_get_u64(in);
    s->cycle_offset = scur_get_u64(in);
    s->instret_offset = scur_get_u64(in);
    scur_get_bytes(in, s->pmpcfg, RV_PMP_COUNT);
    for (unsigned i = 0; i < RV_PMP_COUNT; i++)
        s->pmpaddr[i] = scur_get_u64(in);
    s->in_wfi = scur_get_bool(in);
    s->res_valid = scur_get_bool(in);
    s->res_pa = scur_get_u64(in);
    s->res_value = scur_get_u64(in);
    if (version >= 2) {
        s->stimecmp = scur_get_u64(in);
        s->stip_sw = scur_get_bool(in);
    } else {
        s->stimecmp = UINT64_MAX;
        s->stip_sw = (s->mip & MIP_STIP) != 0;
    }
}

/* A 64-bit field must have no bits outside `allowed` (a WARL field's legal values). */
static int state_check_mask(struct scur *in, const char *field, uint64_t v, uint64_t allowed)
{
    if (v & ~allowed)
        return scur_fail(in, "field '%s' is 0x%" PRIx64 ", only bits 0x%" PRIx64 " may be set",
                         field, v, allowed);
    return 0;
}

/* Every value against what this hart can hold; the first wrong field is reported. */
static int state_validate(const struct rv64_hart *h, struct scur *in, const struct rv_saved *s,
                          uint32_t version)
{
    unsigned satp_mode = (unsigned)(s->satp >> 60);

    if (s->hartid != h->cfg.hartid)
        return scur_fail(in, "field 'hartid' is %" PRIu32 ", this hart is %u", s->hartid,
                         h->cfg.hartid);
    if (s->pc & 1)
        return scur_fail(in, "field 'pc' is 0x%" PRIx64 ", expected an even address", s->pc);
    if (s->fflags > 0x1f)
        return scur_fail(in, "field 'fflags' is 0x%x, expected at most 0x1f", s->fflags);
    if (s->frm > 7)
        return scur_fail(in, "field 'frm' is %u, expected 0..7", s->frm);
    if (s->priv != RV_PRIV_U && s->priv != RV_PRIV_S && s->priv != RV_PRIV_M)
        return scur_fail(in, "field 'priv' is %u, expected 0 (U), 1 (S) or 3 (M)", s->priv);
    if (state_check_mask(in, "mstatus", s->mstatus, MSTATUS_WRITABLE) ||
        state_check_mask(in, "medeleg", s->medeleg, MEDELEG_WRITABLE) ||
        state_check_mask(in, "mideleg", s->mideleg, MIP_S_MASK) ||
        state_check_mask(in, "mie", s->mie, MIP_ALL) ||
        state_check_mask(in, "mip", s->mip, MIP_ALL) ||
        state_check_mask(in, "mtvec", s->mtvec, ~2ull) ||
        state_check_mask(in, "mepc", s->mepc, ~1ull) ||
        state_check_mask(in, "stvec", s->stvec, ~2ull) ||
        state_check_mask(in, "sepc", s->sepc, ~1ull) ||
        state_check_mask(in, "mcountinhibit", s->mcountinhibit, ~2ull & 0xffffffffull) ||
        state_check_mask(in, "menvcfg", s->menvcfg, version >= 2 ? MENVCFG_STCE : 0) ||
        state_check_mask(in, "senvcfg", s->senvcfg, 0) ||
        state_check_mask(in, "satp", s->satp, SATP_WRITABLE))
        return -1;
    if (((s->mstatus & MSTATUS_MPP) >> 11) == 2)
        return scur_fail(in, "field 'mstatus' has MPP = 2, a reserved privilege");
    if (!rv_satp_mode_ok(satp_mode))
        return scur_fail(in,
                         "field 'satp' has MODE %u, expected 0 (Bare), 8 (Sv39), 9 (Sv48) or "
                         "10 (Sv57)",
                         satp_mode);
    for (unsigned i = 0; i < RV_PMP_COUNT; i++) {
        if ((s->pmpcfg[i] & ~PMPCFG_WRITABLE) || (s->pmpcfg[i] & 3) == 2)
            return scur_fail(in, "field 'pmpcfg[%u]' is 0x%02x, not a legal PMP configuration", i,
                             s->pmpcfg[i]);
        if (s->pmpaddr[i] & ~PMPADDR_MASK)
            return scur_fail(in, "field 'pmpaddr[%u]' is 0x%" PRIx64 ", wider than 54 bits", i,
                             s->pmpaddr[i]);
    }
    if (!s->res_valid && (s->res_pa || s->res_value))
        return scur_fail(in, "fields 'reservation address/value' are set without a reservation");
    if (s->res_valid && ((s->res_pa & 3) || !state_region_of_pa(h, s->res_pa, 4)))
        return scur_fail(in,
                         "field 'reservation address' is 0x%" PRIx64
                         ", not an aligned word in this hart's RAM",
                         s->res_pa);
    return 0;
}

static void state_apply(struct rv64_hart *h, const struct rv_saved *s)
{
    memcpy(h->x, s->x, sizeof(s->x));
    h->x[RV_X_SINK] = 0;
    memcpy(h->f, s->f, sizeof(s->f));
    h->pc = s->pc;
    h->fflags = s->fflags;
    h->frm = s->frm;
    h->mstatus = s->mstatus;
    h->medeleg = s->medeleg;
    h->mideleg = s->mideleg;
    h->mie = s->mie;
    /* A saved SEIP is taken as the PLIC's line (no software here writes SEIP), which the
     * PLIC's own load then sets to its saved level. */
    atomic_store(&h->seip_sw, false);
    atomic_store(&h->seip_line, (s->mip & MIP_SEIP) != 0);
    /* STIP: the software bit as saved; the timer's level as saved too, until the CLINT's
     * load sets it again from the restored mtime and the stimecmp handed over below. */
    atomic_store(&h->stip_sw, s->stip_sw);
    atomic_store(&h->stce, (s->menvcfg & MENVCFG_STCE) != 0);
    atomic_store(&h->stip_timer, (s->menvcfg & MENVCFG_STCE) && (s->mip & MIP_STIP));
    atomic_store(&h->mip, s->mip);
    h->mtvec = s->mtvec;
    h->mscratch = s->mscratch;
    h->mepc = s->mepc;
    h->mcause = s->mcause;
    h->mtval = s->mtval;
    h->stvec = s->stvec;
    h->sscratch = s->sscratch;
    h->sepc = s->sepc;
    h->scause = s->scause;
    h->stval = s->stval;
    h->mcounteren = s->mcounteren;
    h->scounteren = s->scounteren;
    h->mcountinhibit = s->mcountinhibit;
    h->menvcfg = s->menvcfg;
    h->senvcfg = s->senvcfg;
    h->satp = s->satp;
    h->stimecmp = s->stimecmp;
    rv_stimer_arm(h);
    h->instret = s->instret;
    h->cycle_offset = s->cycle_offset;
    h->instret_offset = s->instret_offset;
    memcpy(h->pmpcfg, s->pmpcfg, sizeof(s->pmpcfg));
    memcpy(h->pmpaddr, s->pmpaddr, sizeof(s->pmpaddr));
    h->in_wfi = s->in_wfi;
    h->res_host = NULL;
    h->res_value = 0;
    if (s->res_valid) {
        const struct rv64_mem_region *m = state_region_of_pa(h, s->res_pa, 4);

        h->res_host = m->host + (s->res_pa - m->base);
        h->res_value = s->res_value;
    }
    h->exc_cause = h->exc_tval = 0;
    rv_set_priv(h, s->priv); /* after mstatus: the data context depends on MPRV, MPP, SUM */
    rv_pmp_update(h);
    rv_tlb_flush(h);
    rv_block_cache_flush(h);
}

int rv64_hart_load(struct rv64_hart *h, struct scur *in, uint32_t version)
{
    struct rv_saved s;

    if (version < 1 || version > RV64_STATE_VERSION) {
        scur_fail(in, "section version %" PRIu32 " is not supported (this build reads 1 to %u)",
                  version, RV64_STATE_VERSION);
        goto reset;
    }
    state_read(in, &s, version);
    if (scur_ok(in) || state_validate(h, in, &s, version) || scur_finish(in))
        goto reset;
    state_apply(h, &s);
    return 0;

reset:
    rv64_hart_reset(h, 0);
    return -1;
}
