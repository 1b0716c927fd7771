/* The decoder: raw instruction bits to struct rv_insn (RISC-V unprivileged 20191213,
 * chapter 24 "Instruction Set Listings" for RV64GC, chapter 16 for the compressed forms). It
 * runs once per instruction per block build, never per execution. Every encoding that is not
 * valid RV64GC decodes to rv_op_illegal. */
#include "cpu/rv64/insn.h"

/* Sign-extends the low `bits` bits of v. Done in unsigned arithmetic: shifting a negative
 * signed value left is undefined in C17 (§6.5.7), and right is implementation-defined. */
static int64_t sext(uint64_t v, unsigned bits)
{
    uint64_t sign = 1ull << (bits - 1);

    return (int64_t)(((v & ((sign << 1) - 1)) ^ sign) - sign);
}

static unsigned bits(uint32_t raw, unsigned hi, unsigned lo)
{
    return (raw >> lo) & ((1u << (hi - lo + 1)) - 1);
}

/* PAUSE (Zihintpause): FENCE with pred = W, succ = 0, fm = 0, rs1 = rd = x0. */
#define RV_PAUSE 0x0100000fu

/* Whether FENCE r orders an earlier write before a later read (unprivileged ISA 20191213
 * §2.7: pred and succ sets, bits 27:24 PI PO PR PW and 23:20 SI SO SR SW; fm 1000 with
 * pred = succ = RW is FENCE.TSO, which orders all but write-to-read). A host with TSO
 * ordering (x86-64) gives every other order for free, so only these fences need a full host
 * barrier; Linux's acquire and release fences (r,rw and rw,w), smp_rmb and smp_wmb (r,r and
 * w,w), FENCE.TSO and PAUSE (w,0) do not. Device accesses are function calls that complete
 * before the hart goes on, so I and O count as R and W. Other fm values are reserved and
 * treated as fm 0. */
static bool fence_needs_full(uint32_t r)
{
    unsigned fm = bits(r, 31, 28), pred = bits(r, 27, 24), succ = bits(r, 23, 20);

    if (fm == 8 && pred == 3 && succ == 3)
        return false;
    return (pred & 0x5) && (succ & 0xa); /* (PO or PW) and (SI or SR) */
}

static uint8_t xd(unsigned rd)
{
    return rd ? (uint8_t)rd : RV_X_SINK;
}

static void set(struct rv_insn *in, rv_exec_fn fn, unsigned rd, unsigned rs1, unsigned rs2,
                int64_t imm)
{
    in->fn = fn;
    in->rd = (uint8_t)rd;
    in->rs1 = (uint8_t)rs1;
    in->rs2 = (uint8_t)rs2;
    in->imm = imm;
}

static void set_end(struct rv_insn *in, rv_exec_fn fn, unsigned rd, unsigned rs1, unsigned rs2,
                    int64_t imm)
{
    set(in, fn, rd, rs1, rs2, imm);
    in->flags |= RV_INSN_ENDS_BLOCK;
}

static void illegal(struct rv_insn *in)
{
    set_end(in, rv_op_illegal, RV_X_SINK, 0, 0, 0);
}

static int64_t imm_i(uint32_t r)
{
    return sext(r >> 20, 12);
}

static int64_t imm_s(uint32_t r)
{
    return sext((bits(r, 31, 25) << 5) | bits(r, 11, 7), 12);
}

static int64_t imm_b(uint32_t r)
{
    return sext((bits(r, 31, 31) << 12) | (bits(r, 7, 7) << 11) | (bits(r, 30, 25) << 5) |
                    (bits(r, 11, 8) << 1),
                13);
}

static int64_t imm_j(uint32_t r)
{
    return sext((bits(r, 31, 31) << 20) | (bits(r, 19, 12) << 12) | (bits(r, 20, 20) << 11) |
                    (bits(r, 30, 21) << 1),
                21);
}

static void decode_op_fp(uint32_t r, struct rv_insn *in)
{
    unsigned rd = bits(r, 11, 7), rs1 = bits(r, 19, 15), rs2 = bits(r, 24, 20);
    unsigned f3 = bits(r, 14, 12), f7 = bits(r, 31, 25);
    rv_exec_fn fn = NULL;
    bool int_rd = false;

    switch (f7) {
    case 0x00: fn = rv_op_fadd_s; break;
    case 0x01: fn = rv_op_fadd_d; break;
    case 0x04: fn = rv_op_fsub_s; break;
    case 0x05: fn = rv_op_fsub_d; break;
    case 0x08: fn = rv_op_fmul_s; break;
    case 0x09: fn = rv_op_fmul_d; break;
    case 0x0c: fn = rv_op_fdiv_s; break;
    case 0x0d: fn = rv_op_fdiv_d; break;
    case 0x2c: fn = rs2 == 0 ? rv_op_fsqrt_s : NULL; break;
    case 0x2d: fn = rs2 == 0 ? rv_op_fsqrt_d : NULL; break;
    case 0x10:
        fn = f3 == 0 ? rv_op_fsgnj_s : f3 == 1 ? rv_op_fsgnjn_s : f3 == 2 ? rv_op_fsgnjx_s : NULL;
        break;
    case 0x11:
        fn = f3 == 0 ? rv_op_fsgnj_d : f3 == 1 ? rv_op_fsgnjn_d : f3 == 2 ? rv_op_fsgnjx_d : NULL;
        break;
    case 0x14: fn = f3 == 0 ? rv_op_fmin_s : f3 == 1 ? rv_op_fmax_s : NULL; break;
    case 0x15: fn = f3 == 0 ? rv_op_fmin_d : f3 == 1 ? rv_op_fmax_d : NULL; break;
    case 0x20: fn = rs2 == 1 ? rv_op_fcvt_s_d : NULL; break;
    case 0x21: fn = rs2 == 0 ? rv_op_fcvt_d_s : NULL; break;
    case 0x50:
        fn = f3 == 0 ? rv_op_fle_s : f3 == 1 ? rv_op_flt_s : f3 == 2 ? rv_op_feq_s : NULL;
        int_rd = true;
        break;
    case 0x51:
        fn = f3 == 0 ? rv_op_fle_d : f3 == 1 ? rv_op_flt_d : f3 == 2 ? rv_op_feq_d : NULL;
        int_rd = true;
        break;
    case 0x60: {
        static const rv_exec_fn t[4] = {rv_op_fcvt_w_s, rv_op_fcvt_wu_s, rv_op_fcvt_l_s,
                                        rv_op_fcvt_lu_s};
        fn = rs2 < 4 ? t[rs2] : NULL;
        int_rd = true;
        break;
    }
    case 0x61: {
        static const rv_exec_fn t[4] = {rv_op_fcvt_w_d, rv_op_fcvt_wu_d, rv_op_fcvt_l_d,
                                        rv_op_fcvt_lu_d};
        fn = rs2 < 4 ? t[rs2] : NULL;
        int_rd = true;
        break;
    }
    case 0x68: {
        static const rv_exec_fn t[4] = {rv_op_fcvt_s_w, rv_op_fcvt_s_wu, rv_op_fcvt_s_l,
                                        rv_op_fcvt_s_lu};
        fn = rs2 < 4 ? t[rs2] : NULL;
        break;
    }
    case 0x69: {
        static const rv_exec_fn t[4] = {rv_op_fcvt_d_w, rv_op_fcvt_d_wu, rv_op_fcvt_d_l,
                                        rv_op_fcvt_d_lu};
        fn = rs2 < 4 ? t[rs2] : NULL;
        break;
    }
    case 0x70:
        fn = rs2 != 0 ? NULL : f3 == 0 ? rv_op_fmv_x_w : f3 == 1 ? rv_op_fclass_s : NULL;
        int_rd = true;
        break;
    case 0x71:
        fn = rs2 != 0 ? NULL : f3 == 0 ? rv_op_fmv_x_d : f3 == 1 ? rv_op_fclass_d : NULL;
        int_rd = true;
        break;
    case 0x78: fn = (rs2 == 0 && f3 == 0) ? rv_op_fmv_w_x : NULL; break;
    case 0x79: fn = (rs2 == 0 && f3 == 0) ? rv_op_fmv_d_x : NULL; break;
    default: break;
    }
    if (!fn) {
        illegal(in);
        return;
    }
    set(in, fn, int_rd ? xd(rd) : rd, rs1, rs2, 0);
    in->rm = (uint8_t)f3;
}

static void decode_amo(uint32_t r, struct rv_insn *in)
{
    unsigned f3 = bits(r, 14, 12), f5 = bits(r, 31, 27);
    unsigned rd = bits(r, 11, 7), rs1 = bits(r, 19, 15), rs2 = bits(r, 24, 20);
    rv_exec_fn fn = NULL;
    bool d = f3 == 3;

    if (f3 != 2 && f3 != 3) {
        illegal(in);
        return;
    }
    switch (f5) {
    case 0x02: fn = rs2 ? NULL : d ? rv_op_lr_d : rv_op_lr_w; break;
    case 0x03: fn = d ? rv_op_sc_d : rv_op_sc_w; break;
    case 0x01: fn = d ? rv_op_amoswap_d : rv_op_amoswap_w; break;
    case 0x00: fn = d ? rv_op_amoadd_d : rv_op_amoadd_w; break;
    case 0x04: fn = d ? rv_op_amoxor_d : rv_op_amoxor_w; break;
    case 0x0c: fn = d ? rv_op_amoand_d : rv_op_amoand_w; break;
    case 0x08: fn = d ? rv_op_amoor_d : rv_op_amoor_w; break;
    case 0x10: fn = d ? rv_op_amomin_d : rv_op_amomin_w; break;
    case 0x14: fn = d ? rv_op_amomax_d : rv_op_amomax_w; break;
    case 0x18: fn = d ? rv_op_amominu_d : rv_op_amominu_w; break;
    case 0x1c: fn = d ? rv_op_amomaxu_d : rv_op_amomaxu_w; break;
    default: break;
    }
    if (!fn)
        illegal(in);
    else
        set(in, fn, xd(rd), rs1, rs2, 0);
}

static void decode_system(uint32_t r, struct rv_insn *in)
{
    unsigned f3 = bits(r, 14, 12), rd = bits(r, 11, 7), rs1 = bits(r, 19, 15);

    if (f3 == 0) {
        if (r == 0x00000073)
            set_end(in, rv_op_ecall, RV_X_SINK, 0, 0, 0);
        else if (r == 0x00100073)
            set_end(in, rv_op_ebreak, RV_X_SINK, 0, 0, 0);
        else if (r == 0x30200073)
            set_end(in, rv_op_mret, RV_X_SINK, 0, 0, 0);
        else if (r == 0x10200073)
            set_end(in, rv_op_sret, RV_X_SINK, 0, 0, 0);
        else if (r == 0x10500073)
            set_end(in, rv_op_wfi, RV_X_SINK, 0, 0, 0);
        else if (bits(r, 31, 25) == 0x09 && rd == 0)
            set_end(in, rv_op_sfence_vma, RV_X_SINK, rs1, bits(r, 24, 20), 0);
        else
            illegal(in);
        return;
    }
    if (f3 == 4) {
        illegal(in);
        return;
    }
    {
        static const rv_exec_fn ops[4] = {NULL, rv_op_csrrw, rv_op_csrrs, rv_op_csrrc};
        unsigned kind = f3 & 3;
        bool writes = kind == 1 || rs1 != 0; /* CSRRS/C with x0 or uimm 0 do not write */

        set_end(in, ops[kind], xd(rd), rs1, 0, (int64_t)(r >> 20));
        in->rm = (uint8_t)((writes ? RV_CSR_WRITES : 0) | ((f3 & 4) ? RV_CSR_IMM : 0));
    }
}

/* OP and OP-32 (register-register): funct7 0 selects `base`, 1 the M extension, 0x20 the
 * subtract and arithmetic-shift forms. */
static void decode_op_rr(uint32_t r, struct rv_insn *in, const rv_exec_fn base[8],
                         const rv_exec_fn mext[8], rv_exec_fn sub, rv_exec_fn sra)
{
    unsigned f3 = bits(r, 14, 12), f7 = bits(r, 31, 25);
    rv_exec_fn fn = NULL;

    if (f7 == 0)
        fn = base[f3];
    else if (f7 == 1)
        fn = mext[f3];
    else if (f7 == 0x20 && f3 == 0)
        fn = sub;
    else if (f7 == 0x20 && f3 == 5)
        fn = sra;
    if (fn)
        set(in, fn, xd(bits(r, 11, 7)), bits(r, 19, 15), bits(r, 24, 20), 0);
    else
        illegal(in);
}

/* Zba/Zbb/Zbs register-register forms in OP (0x33) and OP-32 (0x3b), bit manipulation 1.0.0
 * chapter 2. Returns the handler, or NULL when (funct7, funct3) is not one of them. */
static rv_exec_fn decode_bitmanip_rr(uint32_t r, bool w)
{
    unsigned f3 = bits(r, 14, 12), f7 = bits(r, 31, 25), rs2 = bits(r, 24, 20);

    if (w) {
        switch (f7) {
        case 0x04: return f3 == 0 ? rv_op_add_uw : f3 == 4 && rs2 == 0 ? rv_op_zext_h : NULL;
        case 0x10:
            return f3 == 2   ? rv_op_sh1add_uw
                   : f3 == 4 ? rv_op_sh2add_uw
                   : f3 == 6 ? rv_op_sh3add_uw
                             : NULL;
        case 0x30: return f3 == 1 ? rv_op_rolw : f3 == 5 ? rv_op_rorw : NULL;
        default: return NULL;
        }
    }
    switch (f7) {
    case 0x20: return f3 == 4 ? rv_op_xnor : f3 == 6 ? rv_op_orn : f3 == 7 ? rv_op_andn : NULL;
    case 0x05: {
        static const rv_exec_fn ops[8] = {NULL,      NULL,       NULL,      NULL,
                                          rv_op_min, rv_op_minu, rv_op_max, rv_op_maxu};
        return ops[f3];
    }
    case 0x10:
        return f3 == 2 ? rv_op_sh1add : f3 == 4 ? rv_op_sh2add : f3 == 6 ? rv_op_sh3add : NULL;
    case 0x30: return f3 == 1 ? rv_op_rol : f3 == 5 ? rv_op_ror : NULL;
    case 0x24: return f3 == 1 ? rv_op_bclr : f3 == 5 ? rv_op_bext : NULL;
    case 0x34: return f3 == 1 ? rv_op_binv : NULL;
    case 0x14: return f3 == 1 ? rv_op_bset : NULL;
    default: return NULL;
    }
}

/* Zbb/Zbs immediate forms in OP-IMM (0x13) with funct3 1 or 5: the unary ones are told
 * apart by the whole imm[11:0], the shift-amount ones by imm[11:6]. NULL if none. */
static rv_exec_fn decode_bitmanip_imm(uint32_t r, unsigned f3)
{
    unsigned imm12 = bits(r, 31, 20), hi6 = bits(r, 31, 26);

    if (f3 == 1) {
        switch (imm12) {
        case 0x600: return rv_op_clz;
        case 0x601: return rv_op_ctz;
        case 0x602: return rv_op_cpop;
        case 0x604: return rv_op_sext_b;
        case 0x605: return rv_op_sext_h;
        default: break;
        }
        return hi6 == 0x12   ? rv_op_bclri
               : hi6 == 0x1a ? rv_op_binvi
               : hi6 == 0x0a ? rv_op_bseti
                             : NULL;
    }
    if (imm12 == 0x287)
        return rv_op_orc_b;
    if (imm12 == 0x6b8)
        return rv_op_rev8;
    return hi6 == 0x18 ? rv_op_rori : hi6 == 0x12 ? rv_op_bexti : NULL;
}

static void decode32(uint32_t r, struct rv_insn *in)
{
    unsigned opcode = r & 0x7f;
    unsigned rd = bits(r, 11, 7), rs1 = bits(r, 19, 15), rs2 = bits(r, 24, 20);
    unsigned f3 = bits(r, 14, 12), f7 = bits(r, 31, 25);

    switch (opcode) {
    case 0x37: set(in, rv_op_lui, xd(rd), 0, 0, (int64_t)(int32_t)(r & 0xfffff000)); return;
    case 0x17: set(in, rv_op_auipc, xd(rd), 0, 0, (int64_t)(int32_t)(r & 0xfffff000)); return;
    case 0x6f: set_end(in, rv_op_jal, xd(rd), 0, 0, imm_j(r)); return;
    case 0x67:
        if (f3 == 0)
            set_end(in, rv_op_jalr, xd(rd), rs1, 0, imm_i(r));
        else
            illegal(in);
        return;
    case 0x63: {
        static const rv_exec_fn ops[8] = {rv_op_beq, rv_op_bne, NULL,       NULL,
                                          rv_op_blt, rv_op_bge, rv_op_bltu, rv_op_bgeu};
        if (ops[f3])
            set_end(in, ops[f3], RV_X_SINK, rs1, rs2, imm_b(r));
        else
            illegal(in);
        return;
    }
    case 0x03: {
        static const rv_exec_fn ops[8] = {rv_op_lb,  rv_op_lh,  rv_op_lw,  rv_op_ld,
                                          rv_op_lbu, rv_op_lhu, rv_op_lwu, NULL};
        if (ops[f3])
            set(in, ops[f3], xd(rd), rs1, 0, imm_i(r));
        else
            illegal(in);
        return;
    }
    case 0x23: {
        static const rv_exec_fn ops[8] = {rv_op_sb, rv_op_sh, rv_op_sw, rv_op_sd};
        if (ops[f3])
            set(in, ops[f3], RV_X_SINK, rs1, rs2, imm_s(r));
        else
            illegal(in);
        return;
    }
    case 0x13: {
        unsigned hi6 = bits(r, 31, 26);
        int64_t imm = imm_i(r);
        rv_exec_fn fn;

        switch (f3) {
        case 0: set(in, rv_op_addi, xd(rd), rs1, 0, imm); return;
        case 2: set(in, rv_op_slti, xd(rd), rs1, 0, imm); return;
        case 3: set(in, rv_op_sltiu, xd(rd), rs1, 0, imm); return;
        case 4: set(in, rv_op_xori, xd(rd), rs1, 0, imm); return;
        case 6: set(in, rv_op_ori, xd(rd), rs1, 0, imm); return;
        case 7: set(in, rv_op_andi, xd(rd), rs1, 0, imm); return;
        case 1:
            if (hi6 == 0)
                set(in, rv_op_slli, xd(rd), rs1, 0, bits(r, 25, 20));
            else if ((fn = decode_bitmanip_imm(r, f3)))
                set(in, fn, xd(rd), rs1, 0, bits(r, 25, 20));
            else
                illegal(in);
            return;
        default: /* 5 */
            if (hi6 == 0)
                set(in, rv_op_srli, xd(rd), rs1, 0, bits(r, 25, 20));
            else if (hi6 == 0x10)
                set(in, rv_op_srai, xd(rd), rs1, 0, bits(r, 25, 20));
            else if ((fn = decode_bitmanip_imm(r, f3)))
                set(in, fn, xd(rd), rs1, 0, bits(r, 25, 20));
            else
                illegal(in);
            return;
        }
    }
    case 0x1b:
        if (f3 == 0)
            set(in, rv_op_addiw, xd(rd), rs1, 0, imm_i(r));
        else if (f3 == 1 && f7 == 0)
            set(in, rv_op_slliw, xd(rd), rs1, 0, rs2);
        else if (f3 == 5 && f7 == 0)
            set(in, rv_op_srliw, xd(rd), rs1, 0, rs2);
        else if (f3 == 5 && f7 == 0x20)
            set(in, rv_op_sraiw, xd(rd), rs1, 0, rs2);
        else if (f3 == 5 && f7 == 0x30) /* Zbb roriw */
            set(in, rv_op_roriw, xd(rd), rs1, 0, rs2);
        else if (f3 == 1 && bits(r, 31, 26) == 0x02) /* Zba slli.uw: a 6-bit shift amount */
            set(in, rv_op_slli_uw, xd(rd), rs1, 0, bits(r, 25, 20));
        else if (f3 == 1 && f7 == 0x30 && rs2 <= 2) /* Zbb clzw, ctzw, cpopw */
            set(in, rs2 == 0 ? rv_op_clzw : rs2 == 1 ? rv_op_ctzw : rv_op_cpopw, xd(rd), rs1, 0, 0);
        else
            illegal(in);
        return;
    case 0x33: {
        static const rv_exec_fn base[8] = {rv_op_add, rv_op_sll, rv_op_slt, rv_op_sltu,
                                           rv_op_xor, rv_op_srl, rv_op_or,  rv_op_and};
        static const rv_exec_fn mext[8] = {rv_op_mul, rv_op_mulh, rv_op_mulhsu, rv_op_mulhu,
                                           rv_op_div, rv_op_divu, rv_op_rem,    rv_op_remu};
        rv_exec_fn fn = decode_bitmanip_rr(r, false);

        if (fn)
            set(in, fn, xd(rd), rs1, rs2, 0);
        else
            decode_op_rr(r, in, base, mext, rv_op_sub, rv_op_sra);
        return;
    }
    case 0x3b: {
        static const rv_exec_fn base[8] = {rv_op_addw, rv_op_sllw, NULL, NULL,
                                           NULL,       rv_op_srlw, NULL, NULL};
        static const rv_exec_fn mext[8] = {rv_op_mulw, NULL,        NULL,       NULL,
                                           rv_op_divw, rv_op_divuw, rv_op_remw, rv_op_remuw};
        rv_exec_fn fn = decode_bitmanip_rr(r, true);

        if (fn)
            set(in, fn, xd(rd), rs1, rs2, 0);
        else
            decode_op_rr(r, in, base, mext, rv_op_subw, rv_op_sraw);
        return;
    }
    case 0x0f:
        if (f3 == 0)
            set(in,
                r == RV_PAUSE         ? rv_op_pause
                : fence_needs_full(r) ? rv_op_fence
                                      : rv_op_fence_order,
                RV_X_SINK, 0, 0, 0);
        else if (f3 == 1)
            set_end(in, rv_op_fence_i, RV_X_SINK, 0, 0, 0);
        else
            illegal(in);
        return;
    case 0x73: decode_system(r, in); return;
    case 0x2f: decode_amo(r, in); return;
    case 0x07:
        if (f3 == 2 || f3 == 3)
            set(in, f3 == 2 ? rv_op_flw : rv_op_fld, rd, rs1, 0, imm_i(r));
        else
            illegal(in);
        return;
    case 0x27:
        if (f3 == 2 || f3 == 3)
            set(in, f3 == 2 ? rv_op_fsw : rv_op_fsd, RV_X_SINK, rs1, rs2, imm_s(r));
        else
            illegal(in);
        return;
    case 0x43:
    case 0x47:
    case 0x4b:
    case 0x4f: {
        static const rv_exec_fn s[4] = {rv_op_fmadd_s, rv_op_fmsub_s, rv_op_fnmsub_s,
                                        rv_op_fnmadd_s};
        static const rv_exec_fn d[4] = {rv_op_fmadd_d, rv_op_fmsub_d, rv_op_fnmsub_d,
                                        rv_op_fnmadd_d};
        unsigned fmt = bits(r, 26, 25), k = (opcode >> 2) & 3;

        if (fmt > 1) {
            illegal(in);
            return;
        }
        set(in, fmt ? d[k] : s[k], rd, rs1, rs2, 0);
        in->rs3 = (uint8_t)bits(r, 31, 27);
        in->rm = (uint8_t)f3;
        return;
    }
    case 0x53: decode_op_fp(r, in); return;
    default: illegal(in); return;
    }
}

/* RVC (unprivileged chapter 16): each compressed form is decoded to the handler of its
 * 32-bit expansion, with the operands it implies. Reserved encodings are illegal. */
static void decode16(uint32_t r, struct rv_insn *in)
{
    unsigned op = r & 3, f3 = bits(r, 15, 13);
    unsigned rd = bits(r, 11, 7), rs2 = bits(r, 6, 2);
    unsigned rdp = 8 + bits(r, 4, 2), rs1p = 8 + bits(r, 9, 7);
    int64_t imm6 = sext((bits(r, 12, 12) << 5) | bits(r, 6, 2), 6);

    switch (op) {
    case 0:
        switch (f3) {
        case 0: {
            unsigned u = (bits(r, 12, 11) << 4) | (bits(r, 10, 7) << 6) | (bits(r, 6, 6) << 2) |
                         (bits(r, 5, 5) << 3);
            if (u == 0)
                illegal(in);
            else
                set(in, rv_op_addi, rdp, 2, 0, u);
            return;
        }
        case 1: /* c.fld */
            set(in, rv_op_fld, rdp, rs1p, 0, (bits(r, 12, 10) << 3) | (bits(r, 6, 5) << 6));
            return;
        case 2: /* c.lw */
            set(in, rv_op_lw, rdp, rs1p, 0,
                (bits(r, 12, 10) << 3) | (bits(r, 6, 6) << 2) | (bits(r, 5, 5) << 6));
            return;
        case 3: /* c.ld */
            set(in, rv_op_ld, rdp, rs1p, 0, (bits(r, 12, 10) << 3) | (bits(r, 6, 5) << 6));
            return;
        case 5: /* c.fsd */
            set(in, rv_op_fsd, RV_X_SINK, rs1p, rdp, (bits(r, 12, 10) << 3) | (bits(r, 6, 5) << 6));
            return;
        case 6: /* c.sw */
            set(in, rv_op_sw, RV_X_SINK, rs1p, rdp,
                (bits(r, 12, 10) << 3) | (bits(r, 6, 6) << 2) | (bits(r, 5, 5) << 6));
            return;
        case 7: /* c.sd */
            set(in, rv_op_sd, RV_X_SINK, rs1p, rdp, (bits(r, 12, 10) << 3) | (bits(r, 6, 5) << 6));
            return;
        default: illegal(in); return;
        }
    case 1:
        switch (f3) {
        case 0: set(in, rv_op_addi, xd(rd), rd, 0, imm6); return; /* c.addi, c.nop */
        case 1:
            if (rd == 0)
                illegal(in);
            else
                set(in, rv_op_addiw, rd, rd, 0, imm6);
            return;
        case 2: set(in, rv_op_addi, xd(rd), 0, 0, imm6); return; /* c.li */
        case 3:
            if (rd == 2) { /* c.addi16sp */
                int64_t imm =
                    sext((bits(r, 12, 12) << 9) | (bits(r, 6, 6) << 4) | (bits(r, 5, 5) << 6) |
                             (bits(r, 4, 3) << 7) | (bits(r, 2, 2) << 5),
                         10);
                if (imm == 0)
                    illegal(in);
                else
                    set(in, rv_op_addi, 2, 2, 0, imm);
            } else { /* c.lui */
                if (imm6 == 0)
                    illegal(in);
                else
                    set(in, rv_op_lui, xd(rd), 0, 0, (int64_t)((uint64_t)imm6 << 12));
            }
            return;
        case 4: {
            unsigned f2 = bits(r, 11, 10);
            unsigned shamt = (bits(r, 12, 12) << 5) | bits(r, 6, 2);

            if (f2 == 0)
                set(in, rv_op_srli, rs1p, rs1p, 0, shamt);
            else if (f2 == 1)
                set(in, rv_op_srai, rs1p, rs1p, 0, shamt);
            else if (f2 == 2)
                set(in, rv_op_andi, rs1p, rs1p, 0, imm6);
            else {
                static const rv_exec_fn ops[8] = {rv_op_sub,  rv_op_xor,  rv_op_or, rv_op_and,
                                                  rv_op_subw, rv_op_addw, NULL,     NULL};
                rv_exec_fn fn = ops[(bits(r, 12, 12) << 2) | bits(r, 6, 5)];

                if (fn)
                    set(in, fn, rs1p, rs1p, rdp, 0);
                else
                    illegal(in);
            }
            return;
        }
        case 5: { /* c.j */
            int64_t imm =
                sext((bits(r, 12, 12) << 11) | (bits(r, 11, 11) << 4) | (bits(r, 10, 9) << 8) |
                         (bits(r, 8, 8) << 10) | (bits(r, 7, 7) << 6) | (bits(r, 6, 6) << 7) |
                         (bits(r, 5, 3) << 1) | (bits(r, 2, 2) << 5),
                     12);
            set_end(in, rv_op_jal, RV_X_SINK, 0, 0, imm);
            return;
        }
        default: { /* 6: c.beqz, 7: c.bnez */
            int64_t imm =
                sext((bits(r, 12, 12) << 8) | (bits(r, 11, 10) << 3) | (bits(r, 6, 5) << 6) |
                         (bits(r, 4, 3) << 1) | (bits(r, 2, 2) << 5),
                     9);
            set_end(in, f3 == 6 ? rv_op_beq : rv_op_bne, RV_X_SINK, rs1p, 0, imm);
            return;
        }
        }
    default: /* op == 2 */
        switch (f3) {
        case 0: set(in, rv_op_slli, xd(rd), rd, 0, (bits(r, 12, 12) << 5) | bits(r, 6, 2)); return;
        case 1: /* c.fldsp */
            set(in, rv_op_fld, rd, 2, 0,
                (bits(r, 12, 12) << 5) | (bits(r, 6, 5) << 3) | (bits(r, 4, 2) << 6));
            return;
        case 2: /* c.lwsp */
            if (rd == 0)
                illegal(in);
            else
                set(in, rv_op_lw, rd, 2, 0,
                    (bits(r, 12, 12) << 5) | (bits(r, 6, 4) << 2) | (bits(r, 3, 2) << 6));
            return;
        case 3: /* c.ldsp */
            if (rd == 0)
                illegal(in);
            else
                set(in, rv_op_ld, rd, 2, 0,
                    (bits(r, 12, 12) << 5) | (bits(r, 6, 5) << 3) | (bits(r, 4, 2) << 6));
            return;
        case 4:
            if (!bits(r, 12, 12)) {
                if (rs2 == 0) { /* c.jr */
                    if (rd == 0)
                        illegal(in);
                    else
                        set_end(in, rv_op_jalr, RV_X_SINK, rd, 0, 0);
                } else { /* c.mv */
                    set(in, rv_op_add, xd(rd), 0, rs2, 0);
                }
            } else {
                if (rs2 == 0 && rd == 0)
                    set_end(in, rv_op_ebreak, RV_X_SINK, 0, 0, 0);
                else if (rs2 == 0)
                    set_end(in, rv_op_jalr, 1, rd, 0, 0); /* c.jalr */
                else
                    set(in, rv_op_add, xd(rd), rd, rs2, 0);
            }
            return;
        case 5: /* c.fsdsp */
            set(in, rv_op_fsd, RV_X_SINK, 2, rs2, (bits(r, 12, 10) << 3) | (bits(r, 9, 7) << 6));
            return;
        case 6: /* c.swsp */
            set(in, rv_op_sw, RV_X_SINK, 2, rs2, (bits(r, 12, 9) << 2) | (bits(r, 8, 7) << 6));
            return;
        default: /* c.sdsp */
            set(in, rv_op_sd, RV_X_SINK, 2, rs2, (bits(r, 12, 10) << 3) | (bits(r, 9, 7) << 6));
            return;
        }
    }
}

void rv_decode(uint32_t raw, struct rv_insn *in)
{
    memset(in, 0, sizeof(*in));
    in->raw = raw;
    if ((raw & 3) == 3) {
        in->len = 4;
        decode32(raw, in);
    } else {
        in->len = 2;
        in->raw = raw & 0xffff;
        decode16(raw & 0xffff, in);
    }
}
