/* Private to src/cpu/rv64/: the list of instruction handlers, shared by the decoder (which
 * picks one) and exec.c (which defines them). One X-macro list, so the two cannot drift. */
#ifndef TESSERA_CPU_RV64_INSN_H
#define TESSERA_CPU_RV64_INSN_H

#include "cpu/rv64/hart.h"

// clang-format off
#define RV_OPS(X)                                                                                  \
    X(illegal)                                                                                     \
    X(lui) X(auipc) X(jal) X(jalr)                                                                 \
    X(beq) X(bne) X(blt) X(bge) X(bltu) X(bgeu)                                                    \
    X(lb) X(lh) X(lw) X(ld) X(lbu) X(lhu) X(lwu)                                                   \
    X(sb) X(sh) X(sw) X(sd)                                                                        \
    X(addi) X(slti) X(sltiu) X(xori) X(ori) X(andi) X(slli) X(srli) X(srai)                        \
    X(addiw) X(slliw) X(srliw) X(sraiw)                                                            \
    X(add) X(sub) X(sll) X(slt) X(sltu) X(xor) X(srl) X(sra) X(or) X(and)                          \
    X(addw) X(subw) X(sllw) X(srlw) X(sraw)                                                        \
    X(mul) X(mulh) X(mulhsu) X(mulhu) X(div) X(divu) X(rem) X(remu)                                \
    X(mulw) X(divw) X(divuw) X(remw) X(remuw)                                                      \
    X(add_uw) X(sh1add) X(sh2add) X(sh3add) X(sh1add_uw) X(sh2add_uw) X(sh3add_uw) X(slli_uw)      \
    X(andn) X(orn) X(xnor) X(clz) X(clzw) X(ctz) X(ctzw) X(cpop) X(cpopw)                          \
    X(max) X(maxu) X(min) X(minu) X(sext_b) X(sext_h) X(zext_h)                                    \
    X(rol) X(rolw) X(ror) X(rorw) X(rori) X(roriw) X(orc_b) X(rev8)                                \
    X(bclr) X(bclri) X(bext) X(bexti) X(binv) X(binvi) X(bset) X(bseti)                            \
    X(fence) X(fence_order) X(pause) X(fence_i) X(ecall) X(ebreak) X(mret) X(sret) X(wfi)          \
    X(sfence_vma)                                                                                  \
    X(csrrw) X(csrrs) X(csrrc)                                                                     \
    X(lr_w) X(sc_w) X(lr_d) X(sc_d)                                                                \
    X(amoswap_w) X(amoadd_w) X(amoxor_w) X(amoand_w) X(amoor_w)                                    \
    X(amomin_w) X(amomax_w) X(amominu_w) X(amomaxu_w)                                              \
    X(amoswap_d) X(amoadd_d) X(amoxor_d) X(amoand_d) X(amoor_d)                                    \
    X(amomin_d) X(amomax_d) X(amominu_d) X(amomaxu_d)                                              \
    X(flw) X(fld) X(fsw) X(fsd)                                                                    \
    X(fmadd_s) X(fmsub_s) X(fnmsub_s) X(fnmadd_s)                                                  \
    X(fmadd_d) X(fmsub_d) X(fnmsub_d) X(fnmadd_d)                                                  \
    X(fadd_s) X(fsub_s) X(fmul_s) X(fdiv_s) X(fsqrt_s)                                             \
    X(fadd_d) X(fsub_d) X(fmul_d) X(fdiv_d) X(fsqrt_d)                                             \
    X(fsgnj_s) X(fsgnjn_s) X(fsgnjx_s) X(fsgnj_d) X(fsgnjn_d) X(fsgnjx_d)                          \
    X(fmin_s) X(fmax_s) X(fmin_d) X(fmax_d)                                                        \
    X(fcvt_s_d) X(fcvt_d_s)                                                                        \
    X(feq_s) X(flt_s) X(fle_s) X(feq_d) X(flt_d) X(fle_d)                                          \
    X(fcvt_w_s) X(fcvt_wu_s) X(fcvt_l_s) X(fcvt_lu_s)                                              \
    X(fcvt_w_d) X(fcvt_wu_d) X(fcvt_l_d) X(fcvt_lu_d)                                              \
    X(fcvt_s_w) X(fcvt_s_wu) X(fcvt_s_l) X(fcvt_s_lu)                                              \
    X(fcvt_d_w) X(fcvt_d_wu) X(fcvt_d_l) X(fcvt_d_lu)                                              \
    X(fmv_x_w) X(fclass_s) X(fmv_x_d) X(fclass_d) X(fmv_w_x) X(fmv_d_x)
// clang-format on

#define RV_DECLARE_OP(name) int rv_op_##name(struct rv64_hart *h, const struct rv_insn *in);
RV_OPS(RV_DECLARE_OP)
#undef RV_DECLARE_OP

#endif
