/* Zba, Zbb and Zbs (RISC-V bit-manipulation ISA extensions 1.0.0, chapter 2 and the
 * instruction pages of chapter 3), every instruction including the RV64 W and .uw forms, and
 * Zihintpause (unprivileged 20211203, "Zihintpause": PAUSE is a FENCE hint with pred = W,
 * succ = 0, fm = 0). Expected values were computed with a few lines of Python implementing
 * the chapter 3 pseudo-code (operations on 64-bit two's-complement values, W forms on the low
 * word with the result sign-extended); the encodings come from the GNU assembler. Also: the
 * reserved neighbours of the new encodings still raise illegal instruction. */
#include "isa.h"

    .option arch, +zba, +zbb, +zbs

    TEST_BEGIN

    /* ---- Zba ---- */
    CHECK 1             /* add.uw */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    add.uw a2, a0, a1
    EXPECT a2, 0x17ff00f44
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    add.uw a2, a0, a1
    EXPECT a2, 0x800000107ff00f44
    li a0, 0xffffffffffffffff
    li a1, 0x0
    add.uw a2, a0, a1
    EXPECT a2, 0xffffffff
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    add.uw a2, a0, a1
    EXPECT a2, 0x7fffffff8000fdfe
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    add.uw a2, a0, a1
    EXPECT a2, 0x8000003d
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    add.uw a2, a0, a1
    EXPECT a2, 0xfff00f21
    CHECK 2             /* sh1add */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    sh1add a2, a0, a1
    EXPECT a2, 0x207fe01e45
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    sh1add a2, a0, a1
    EXPECT a2, 0x80000010fff00f87
    li a0, 0xffffffffffffffff
    li a1, 0x0
    sh1add a2, a0, a1
    EXPECT a2, 0xfffffffffffffffe
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    sh1add a2, a0, a1
    EXPECT a2, 0x81fdffff8001fbfe
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    sh1add a2, a0, a1
    EXPECT a2, 0xffffffff0000003b
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    sh1add a2, a0, a1
    EXPECT a2, 0x1fffe01e22
    CHECK 3             /* sh2add */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    sh2add a2, a0, a1
    EXPECT a2, 0x407fc03c47
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    sh2add a2, a0, a1
    EXPECT a2, 0x80000011fff0100d
    li a0, 0xffffffffffffffff
    li a1, 0x0
    sh2add a2, a0, a1
    EXPECT a2, 0xfffffffffffffffc
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    sh2add a2, a0, a1
    EXPECT a2, 0x83fbffff8003f7fe
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    sh2add a2, a0, a1
    EXPECT a2, 0xfffffffe00000037
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    sh2add a2, a0, a1
    EXPECT a2, 0x3fffc03c24
    CHECK 4             /* sh3add */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    sh3add a2, a0, a1
    EXPECT a2, 0x807f80784b
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    sh3add a2, a0, a1
    EXPECT a2, 0x80000013fff01119
    li a0, 0xffffffffffffffff
    li a1, 0x0
    sh3add a2, a0, a1
    EXPECT a2, 0xfffffffffffffff8
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    sh3add a2, a0, a1
    EXPECT a2, 0x87f7ffff8007effe
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    sh3add a2, a0, a1
    EXPECT a2, 0xfffffffc0000002f
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    sh3add a2, a0, a1
    EXPECT a2, 0x7fff807828
    CHECK 5             /* sh1add.uw */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    sh1add.uw a2, a0, a1
    EXPECT a2, 0x27fe01e45
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    sh1add.uw a2, a0, a1
    EXPECT a2, 0x80000010fff00f87
    li a0, 0xffffffffffffffff
    li a1, 0x0
    sh1add.uw a2, a0, a1
    EXPECT a2, 0x1fffffffe
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    sh1add.uw a2, a0, a1
    EXPECT a2, 0x7fffffff8001fbfe
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    sh1add.uw a2, a0, a1
    EXPECT a2, 0x10000003b
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    sh1add.uw a2, a0, a1
    EXPECT a2, 0x1ffe01e22
    CHECK 6             /* sh2add.uw */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    sh2add.uw a2, a0, a1
    EXPECT a2, 0x47fc03c47
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    sh2add.uw a2, a0, a1
    EXPECT a2, 0x80000011fff0100d
    li a0, 0xffffffffffffffff
    li a1, 0x0
    sh2add.uw a2, a0, a1
    EXPECT a2, 0x3fffffffc
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    sh2add.uw a2, a0, a1
    EXPECT a2, 0x7fffffff8003f7fe
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    sh2add.uw a2, a0, a1
    EXPECT a2, 0x200000037
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    sh2add.uw a2, a0, a1
    EXPECT a2, 0x3ffc03c24
    CHECK 7             /* sh3add.uw */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    sh3add.uw a2, a0, a1
    EXPECT a2, 0x87f80784b
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    sh3add.uw a2, a0, a1
    EXPECT a2, 0x80000013fff01119
    li a0, 0xffffffffffffffff
    li a1, 0x0
    sh3add.uw a2, a0, a1
    EXPECT a2, 0x7fffffff8
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    sh3add.uw a2, a0, a1
    EXPECT a2, 0x7fffffff8007effe
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    sh3add.uw a2, a0, a1
    EXPECT a2, 0x40000002f
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    sh3add.uw a2, a0, a1
    EXPECT a2, 0x7ff807828
    CHECK 8             /* slli.uw */
    li a0, 0x8000000ffff00f01
    slli.uw a2, a0, 0
    EXPECT a2, 0xfff00f01
    li a0, 0x8000000ffff00f01
    slli.uw a2, a0, 5
    EXPECT a2, 0x1ffe01e020
    li a0, 0x8000000ffff00f01
    slli.uw a2, a0, 63
    EXPECT a2, 0x8000000000000000
    li a0, 0x80000043
    slli.uw a2, a0, 0
    EXPECT a2, 0x80000043
    li a0, 0x80000043
    slli.uw a2, a0, 5
    EXPECT a2, 0x1000000860
    li a0, 0x80000043
    slli.uw a2, a0, 63
    EXPECT a2, 0x8000000000000000
    li a0, 0xffffffffffffffff
    slli.uw a2, a0, 0
    EXPECT a2, 0xffffffff
    li a0, 0xffffffffffffffff
    slli.uw a2, a0, 5
    EXPECT a2, 0x1fffffffe0
    li a0, 0xffffffffffffffff
    slli.uw a2, a0, 63
    EXPECT a2, 0x8000000000000000
    li a0, 0x0
    slli.uw a2, a0, 0
    EXPECT a2, 0x0
    li a0, 0x0
    slli.uw a2, a0, 5
    EXPECT a2, 0x0
    li a0, 0x0
    slli.uw a2, a0, 63
    EXPECT a2, 0x0
    /* ---- Zbb ---- */
    CHECK 9             /* andn */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    andn a2, a0, a1
    EXPECT a2, 0x8000000f7ff00f00
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    andn a2, a0, a1
    EXPECT a2, 0x42
    li a0, 0xffffffffffffffff
    li a1, 0x0
    andn a2, a0, a1
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    andn a2, a0, a1
    EXPECT a2, 0x0
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    andn a2, a0, a1
    EXPECT a2, 0x7fffffff7fffffc0
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    andn a2, a0, a1
    EXPECT a2, 0x8000000ffff00f01
    CHECK 10             /* orn */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    orn a2, a0, a1
    EXPECT a2, 0xffffffffffffffbd
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    orn a2, a0, a1
    EXPECT a2, 0x7ffffff0800ff0ff
    li a0, 0xffffffffffffffff
    li a1, 0x0
    orn a2, a0, a1
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    orn a2, a0, a1
    EXPECT a2, 0x80ff00008000fe01
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    orn a2, a0, a1
    EXPECT a2, 0xfffffffffffffffe
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    orn a2, a0, a1
    EXPECT a2, 0xffffffffffffffdf
    CHECK 11             /* xnor */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    xnor a2, a0, a1
    EXPECT a2, 0x7ffffff0800ff0bd
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    xnor a2, a0, a1
    EXPECT a2, 0x7ffffff0800ff0bd
    li a0, 0xffffffffffffffff
    li a1, 0x0
    xnor a2, a0, a1
    EXPECT a2, 0x0
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    xnor a2, a0, a1
    EXPECT a2, 0x80ff00008000fe01
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    xnor a2, a0, a1
    EXPECT a2, 0x800000008000003e
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    xnor a2, a0, a1
    EXPECT a2, 0x7ffffff0000ff0de
    CHECK 12             /* clz */
    li a0, 0x8000000ffff00f01
    clz a2, a0
    EXPECT a2, 0x0
    li a0, 0x80000043
    clz a2, a0
    EXPECT a2, 0x20
    li a0, 0xffffffffffffffff
    clz a2, a0
    EXPECT a2, 0x0
    li a0, 0x0
    clz a2, a0
    EXPECT a2, 0x40
    li a0, 0xff00000000fe00
    clz a2, a0
    EXPECT a2, 0x8
    li a0, 0x7fffffff7ffffffe
    clz a2, a0
    EXPECT a2, 0x1
    li a0, 0x100000000
    clz a2, a0
    EXPECT a2, 0x1f
    li a0, 0x80
    clz a2, a0
    EXPECT a2, 0x38
    CHECK 13             /* clzw */
    li a0, 0x8000000ffff00f01
    clzw a2, a0
    EXPECT a2, 0x0
    li a0, 0x80000043
    clzw a2, a0
    EXPECT a2, 0x0
    li a0, 0xffffffffffffffff
    clzw a2, a0
    EXPECT a2, 0x0
    li a0, 0x0
    clzw a2, a0
    EXPECT a2, 0x20
    li a0, 0xff00000000fe00
    clzw a2, a0
    EXPECT a2, 0x10
    li a0, 0x7fffffff7ffffffe
    clzw a2, a0
    EXPECT a2, 0x1
    li a0, 0x100000000
    clzw a2, a0
    EXPECT a2, 0x20
    li a0, 0x80
    clzw a2, a0
    EXPECT a2, 0x18
    CHECK 14             /* ctz */
    li a0, 0x8000000ffff00f01
    ctz a2, a0
    EXPECT a2, 0x0
    li a0, 0x80000043
    ctz a2, a0
    EXPECT a2, 0x0
    li a0, 0xffffffffffffffff
    ctz a2, a0
    EXPECT a2, 0x0
    li a0, 0x0
    ctz a2, a0
    EXPECT a2, 0x40
    li a0, 0xff00000000fe00
    ctz a2, a0
    EXPECT a2, 0x9
    li a0, 0x7fffffff7ffffffe
    ctz a2, a0
    EXPECT a2, 0x1
    li a0, 0x100000000
    ctz a2, a0
    EXPECT a2, 0x20
    li a0, 0x80
    ctz a2, a0
    EXPECT a2, 0x7
    CHECK 15             /* ctzw */
    li a0, 0x8000000ffff00f01
    ctzw a2, a0
    EXPECT a2, 0x0
    li a0, 0x80000043
    ctzw a2, a0
    EXPECT a2, 0x0
    li a0, 0xffffffffffffffff
    ctzw a2, a0
    EXPECT a2, 0x0
    li a0, 0x0
    ctzw a2, a0
    EXPECT a2, 0x20
    li a0, 0xff00000000fe00
    ctzw a2, a0
    EXPECT a2, 0x9
    li a0, 0x7fffffff7ffffffe
    ctzw a2, a0
    EXPECT a2, 0x1
    li a0, 0x100000000
    ctzw a2, a0
    EXPECT a2, 0x20
    li a0, 0x80
    ctzw a2, a0
    EXPECT a2, 0x7
    CHECK 16             /* cpop */
    li a0, 0x8000000ffff00f01
    cpop a2, a0
    EXPECT a2, 0x16
    li a0, 0x80000043
    cpop a2, a0
    EXPECT a2, 0x4
    li a0, 0xffffffffffffffff
    cpop a2, a0
    EXPECT a2, 0x40
    li a0, 0x0
    cpop a2, a0
    EXPECT a2, 0x0
    li a0, 0xff00000000fe00
    cpop a2, a0
    EXPECT a2, 0xf
    li a0, 0x7fffffff7ffffffe
    cpop a2, a0
    EXPECT a2, 0x3d
    li a0, 0x100000000
    cpop a2, a0
    EXPECT a2, 0x1
    li a0, 0x80
    cpop a2, a0
    EXPECT a2, 0x1
    CHECK 17             /* cpopw */
    li a0, 0x8000000ffff00f01
    cpopw a2, a0
    EXPECT a2, 0x11
    li a0, 0x80000043
    cpopw a2, a0
    EXPECT a2, 0x4
    li a0, 0xffffffffffffffff
    cpopw a2, a0
    EXPECT a2, 0x20
    li a0, 0x0
    cpopw a2, a0
    EXPECT a2, 0x0
    li a0, 0xff00000000fe00
    cpopw a2, a0
    EXPECT a2, 0x7
    li a0, 0x7fffffff7ffffffe
    cpopw a2, a0
    EXPECT a2, 0x1e
    li a0, 0x100000000
    cpopw a2, a0
    EXPECT a2, 0x0
    li a0, 0x80
    cpopw a2, a0
    EXPECT a2, 0x1
    CHECK 18             /* max */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    max a2, a0, a1
    EXPECT a2, 0x80000043
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    max a2, a0, a1
    EXPECT a2, 0x80000043
    li a0, 0xffffffffffffffff
    li a1, 0x0
    max a2, a0, a1
    EXPECT a2, 0x0
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    max a2, a0, a1
    EXPECT a2, 0x7fffffff7ffffffe
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    max a2, a0, a1
    EXPECT a2, 0x7fffffff7ffffffe
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    max a2, a0, a1
    EXPECT a2, 0x20
    CHECK 19             /* maxu */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    maxu a2, a0, a1
    EXPECT a2, 0x8000000ffff00f01
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    maxu a2, a0, a1
    EXPECT a2, 0x8000000ffff00f01
    li a0, 0xffffffffffffffff
    li a1, 0x0
    maxu a2, a0, a1
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    maxu a2, a0, a1
    EXPECT a2, 0x7fffffff7ffffffe
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    maxu a2, a0, a1
    EXPECT a2, 0x7fffffff7ffffffe
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    maxu a2, a0, a1
    EXPECT a2, 0x8000000ffff00f01
    CHECK 20             /* min */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    min a2, a0, a1
    EXPECT a2, 0x8000000ffff00f01
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    min a2, a0, a1
    EXPECT a2, 0x8000000ffff00f01
    li a0, 0xffffffffffffffff
    li a1, 0x0
    min a2, a0, a1
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    min a2, a0, a1
    EXPECT a2, 0xff00000000fe00
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    min a2, a0, a1
    EXPECT a2, 0x3f
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    min a2, a0, a1
    EXPECT a2, 0x8000000ffff00f01
    CHECK 21             /* minu */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    minu a2, a0, a1
    EXPECT a2, 0x80000043
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    minu a2, a0, a1
    EXPECT a2, 0x80000043
    li a0, 0xffffffffffffffff
    li a1, 0x0
    minu a2, a0, a1
    EXPECT a2, 0x0
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    minu a2, a0, a1
    EXPECT a2, 0xff00000000fe00
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    minu a2, a0, a1
    EXPECT a2, 0x3f
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    minu a2, a0, a1
    EXPECT a2, 0x20
    CHECK 22             /* sext.b */
    li a0, 0x8000000ffff00f01
    sext.b a2, a0
    EXPECT a2, 0x1
    li a0, 0x80000043
    sext.b a2, a0
    EXPECT a2, 0x43
    li a0, 0xffffffffffffffff
    sext.b a2, a0
    EXPECT a2, 0xffffffffffffffff
    li a0, 0x0
    sext.b a2, a0
    EXPECT a2, 0x0
    li a0, 0xff00000000fe00
    sext.b a2, a0
    EXPECT a2, 0x0
    li a0, 0x7fffffff7ffffffe
    sext.b a2, a0
    EXPECT a2, 0xfffffffffffffffe
    li a0, 0x100000000
    sext.b a2, a0
    EXPECT a2, 0x0
    li a0, 0x80
    sext.b a2, a0
    EXPECT a2, 0xffffffffffffff80
    CHECK 23             /* sext.h */
    li a0, 0x8000000ffff00f01
    sext.h a2, a0
    EXPECT a2, 0xf01
    li a0, 0x80000043
    sext.h a2, a0
    EXPECT a2, 0x43
    li a0, 0xffffffffffffffff
    sext.h a2, a0
    EXPECT a2, 0xffffffffffffffff
    li a0, 0x0
    sext.h a2, a0
    EXPECT a2, 0x0
    li a0, 0xff00000000fe00
    sext.h a2, a0
    EXPECT a2, 0xfffffffffffffe00
    li a0, 0x7fffffff7ffffffe
    sext.h a2, a0
    EXPECT a2, 0xfffffffffffffffe
    li a0, 0x100000000
    sext.h a2, a0
    EXPECT a2, 0x0
    li a0, 0x80
    sext.h a2, a0
    EXPECT a2, 0x80
    CHECK 24             /* zext.h */
    li a0, 0x8000000ffff00f01
    zext.h a2, a0
    EXPECT a2, 0xf01
    li a0, 0x80000043
    zext.h a2, a0
    EXPECT a2, 0x43
    li a0, 0xffffffffffffffff
    zext.h a2, a0
    EXPECT a2, 0xffff
    li a0, 0x0
    zext.h a2, a0
    EXPECT a2, 0x0
    li a0, 0xff00000000fe00
    zext.h a2, a0
    EXPECT a2, 0xfe00
    li a0, 0x7fffffff7ffffffe
    zext.h a2, a0
    EXPECT a2, 0xfffe
    li a0, 0x100000000
    zext.h a2, a0
    EXPECT a2, 0x0
    li a0, 0x80
    zext.h a2, a0
    EXPECT a2, 0x80
    CHECK 25             /* rol */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    rol a2, a0, a1
    EXPECT a2, 0x7fff80780c
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    rol a2, a0, a1
    EXPECT a2, 0x100000086
    li a0, 0xffffffffffffffff
    li a1, 0x0
    rol a2, a0, a1
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    rol a2, a0, a1
    EXPECT a2, 0x3fc00000003f80
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    rol a2, a0, a1
    EXPECT a2, 0x3fffffffbfffffff
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    rol a2, a0, a1
    EXPECT a2, 0xfff00f018000000f
    CHECK 26             /* rolw */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    rolw a2, a0, a1
    EXPECT a2, 0xffffffffff80780f
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    rolw a2, a0, a1
    EXPECT a2, 0x87
    li a0, 0xffffffffffffffff
    li a1, 0x0
    rolw a2, a0, a1
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    rolw a2, a0, a1
    EXPECT a2, 0x3f80
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    rolw a2, a0, a1
    EXPECT a2, 0x3fffffff
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    rolw a2, a0, a1
    EXPECT a2, 0xfffffffffff00f01
    CHECK 27             /* ror */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    ror a2, a0, a1
    EXPECT a2, 0x30000001fffe01e0
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    ror a2, a0, a1
    EXPECT a2, 0x8000000040000021
    li a0, 0xffffffffffffffff
    li a1, 0x0
    ror a2, a0, a1
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    ror a2, a0, a1
    EXPECT a2, 0x3fc00000003f800
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    ror a2, a0, a1
    EXPECT a2, 0xfffffffefffffffc
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    ror a2, a0, a1
    EXPECT a2, 0xfff00f018000000f
    CHECK 28             /* rori */
    li a0, 0x8000000ffff00f01
    rori a2, a0, 0
    EXPECT a2, 0x8000000ffff00f01
    li a0, 0x8000000ffff00f01
    rori a2, a0, 1
    EXPECT a2, 0xc0000007fff80780
    li a0, 0x8000000ffff00f01
    rori a2, a0, 32
    EXPECT a2, 0xfff00f018000000f
    li a0, 0x8000000ffff00f01
    rori a2, a0, 63
    EXPECT a2, 0x1fffe01e03
    li a0, 0x80000043
    rori a2, a0, 0
    EXPECT a2, 0x80000043
    li a0, 0x80000043
    rori a2, a0, 1
    EXPECT a2, 0x8000000040000021
    li a0, 0x80000043
    rori a2, a0, 32
    EXPECT a2, 0x8000004300000000
    li a0, 0x80000043
    rori a2, a0, 63
    EXPECT a2, 0x100000086
    li a0, 0xffffffffffffffff
    rori a2, a0, 0
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xffffffffffffffff
    rori a2, a0, 1
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xffffffffffffffff
    rori a2, a0, 32
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xffffffffffffffff
    rori a2, a0, 63
    EXPECT a2, 0xffffffffffffffff
    li a0, 0x0
    rori a2, a0, 0
    EXPECT a2, 0x0
    li a0, 0x0
    rori a2, a0, 1
    EXPECT a2, 0x0
    li a0, 0x0
    rori a2, a0, 32
    EXPECT a2, 0x0
    li a0, 0x0
    rori a2, a0, 63
    EXPECT a2, 0x0
    CHECK 29             /* roriw */
    li a0, 0x8000000ffff00f01
    roriw a2, a0, 0
    EXPECT a2, 0xfffffffffff00f01
    li a0, 0x8000000ffff00f01
    roriw a2, a0, 1
    EXPECT a2, 0xfffffffffff80780
    li a0, 0x8000000ffff00f01
    roriw a2, a0, 31
    EXPECT a2, 0xffffffffffe01e03
    li a0, 0x80000043
    roriw a2, a0, 0
    EXPECT a2, 0xffffffff80000043
    li a0, 0x80000043
    roriw a2, a0, 1
    EXPECT a2, 0xffffffffc0000021
    li a0, 0x80000043
    roriw a2, a0, 31
    EXPECT a2, 0x87
    li a0, 0xffffffffffffffff
    roriw a2, a0, 0
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xffffffffffffffff
    roriw a2, a0, 1
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xffffffffffffffff
    roriw a2, a0, 31
    EXPECT a2, 0xffffffffffffffff
    li a0, 0x0
    roriw a2, a0, 0
    EXPECT a2, 0x0
    li a0, 0x0
    roriw a2, a0, 1
    EXPECT a2, 0x0
    li a0, 0x0
    roriw a2, a0, 31
    EXPECT a2, 0x0
    CHECK 30             /* rorw */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    rorw a2, a0, a1
    EXPECT a2, 0x3ffe01e0
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    rorw a2, a0, a1
    EXPECT a2, 0xffffffffc0000021
    li a0, 0xffffffffffffffff
    li a1, 0x0
    rorw a2, a0, a1
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    rorw a2, a0, a1
    EXPECT a2, 0x3f800
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    rorw a2, a0, a1
    EXPECT a2, 0xfffffffffffffffc
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    rorw a2, a0, a1
    EXPECT a2, 0xfffffffffff00f01
    CHECK 31             /* orc.b */
    li a0, 0x8000000ffff00f01
    orc.b a2, a0
    EXPECT a2, 0xff0000ffffffffff
    li a0, 0x80000043
    orc.b a2, a0
    EXPECT a2, 0xff0000ff
    li a0, 0xffffffffffffffff
    orc.b a2, a0
    EXPECT a2, 0xffffffffffffffff
    li a0, 0x0
    orc.b a2, a0
    EXPECT a2, 0x0
    li a0, 0xff00000000fe00
    orc.b a2, a0
    EXPECT a2, 0xff00000000ff00
    li a0, 0x7fffffff7ffffffe
    orc.b a2, a0
    EXPECT a2, 0xffffffffffffffff
    li a0, 0x100000000
    orc.b a2, a0
    EXPECT a2, 0xff00000000
    li a0, 0x80
    orc.b a2, a0
    EXPECT a2, 0xff
    CHECK 32             /* rev8 */
    li a0, 0x8000000ffff00f01
    rev8 a2, a0
    EXPECT a2, 0x10ff0ff0f000080
    li a0, 0x80000043
    rev8 a2, a0
    EXPECT a2, 0x4300008000000000
    li a0, 0xffffffffffffffff
    rev8 a2, a0
    EXPECT a2, 0xffffffffffffffff
    li a0, 0x0
    rev8 a2, a0
    EXPECT a2, 0x0
    li a0, 0xff00000000fe00
    rev8 a2, a0
    EXPECT a2, 0xfe00000000ff00
    li a0, 0x7fffffff7ffffffe
    rev8 a2, a0
    EXPECT a2, 0xfeffff7fffffff7f
    li a0, 0x100000000
    rev8 a2, a0
    EXPECT a2, 0x1000000
    li a0, 0x80
    rev8 a2, a0
    EXPECT a2, 0x8000000000000000
    /* ---- Zbs ---- */
    CHECK 33             /* bclr */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    bclr a2, a0, a1
    EXPECT a2, 0x8000000ffff00f01
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    bclr a2, a0, a1
    EXPECT a2, 0x80000041
    li a0, 0xffffffffffffffff
    li a1, 0x0
    bclr a2, a0, a1
    EXPECT a2, 0xfffffffffffffffe
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    bclr a2, a0, a1
    EXPECT a2, 0xff00000000fe00
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    bclr a2, a0, a1
    EXPECT a2, 0x7fffffff7ffffffe
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    bclr a2, a0, a1
    EXPECT a2, 0x8000000efff00f01
    CHECK 34             /* bclri */
    li a0, 0x8000000ffff00f01
    bclri a2, a0, 0
    EXPECT a2, 0x8000000ffff00f00
    li a0, 0x8000000ffff00f01
    bclri a2, a0, 31
    EXPECT a2, 0x8000000f7ff00f01
    li a0, 0x8000000ffff00f01
    bclri a2, a0, 63
    EXPECT a2, 0xffff00f01
    li a0, 0x80000043
    bclri a2, a0, 0
    EXPECT a2, 0x80000042
    li a0, 0x80000043
    bclri a2, a0, 31
    EXPECT a2, 0x43
    li a0, 0x80000043
    bclri a2, a0, 63
    EXPECT a2, 0x80000043
    li a0, 0xffffffffffffffff
    bclri a2, a0, 0
    EXPECT a2, 0xfffffffffffffffe
    li a0, 0xffffffffffffffff
    bclri a2, a0, 31
    EXPECT a2, 0xffffffff7fffffff
    li a0, 0xffffffffffffffff
    bclri a2, a0, 63
    EXPECT a2, 0x7fffffffffffffff
    li a0, 0x0
    bclri a2, a0, 0
    EXPECT a2, 0x0
    li a0, 0x0
    bclri a2, a0, 31
    EXPECT a2, 0x0
    li a0, 0x0
    bclri a2, a0, 63
    EXPECT a2, 0x0
    CHECK 35             /* bext */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    bext a2, a0, a1
    EXPECT a2, 0x0
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    bext a2, a0, a1
    EXPECT a2, 0x1
    li a0, 0xffffffffffffffff
    li a1, 0x0
    bext a2, a0, a1
    EXPECT a2, 0x1
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    bext a2, a0, a1
    EXPECT a2, 0x0
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    bext a2, a0, a1
    EXPECT a2, 0x0
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    bext a2, a0, a1
    EXPECT a2, 0x1
    CHECK 36             /* bexti */
    li a0, 0x8000000ffff00f01
    bexti a2, a0, 0
    EXPECT a2, 0x1
    li a0, 0x8000000ffff00f01
    bexti a2, a0, 31
    EXPECT a2, 0x1
    li a0, 0x8000000ffff00f01
    bexti a2, a0, 63
    EXPECT a2, 0x1
    li a0, 0x80000043
    bexti a2, a0, 0
    EXPECT a2, 0x1
    li a0, 0x80000043
    bexti a2, a0, 31
    EXPECT a2, 0x1
    li a0, 0x80000043
    bexti a2, a0, 63
    EXPECT a2, 0x0
    li a0, 0xffffffffffffffff
    bexti a2, a0, 0
    EXPECT a2, 0x1
    li a0, 0xffffffffffffffff
    bexti a2, a0, 31
    EXPECT a2, 0x1
    li a0, 0xffffffffffffffff
    bexti a2, a0, 63
    EXPECT a2, 0x1
    li a0, 0x0
    bexti a2, a0, 0
    EXPECT a2, 0x0
    li a0, 0x0
    bexti a2, a0, 31
    EXPECT a2, 0x0
    li a0, 0x0
    bexti a2, a0, 63
    EXPECT a2, 0x0
    CHECK 37             /* binv */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    binv a2, a0, a1
    EXPECT a2, 0x8000000ffff00f09
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    binv a2, a0, a1
    EXPECT a2, 0x80000041
    li a0, 0xffffffffffffffff
    li a1, 0x0
    binv a2, a0, a1
    EXPECT a2, 0xfffffffffffffffe
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    binv a2, a0, a1
    EXPECT a2, 0x40ff00000000fe00
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    binv a2, a0, a1
    EXPECT a2, 0xffffffff7ffffffe
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    binv a2, a0, a1
    EXPECT a2, 0x8000000efff00f01
    CHECK 38             /* binvi */
    li a0, 0x8000000ffff00f01
    binvi a2, a0, 0
    EXPECT a2, 0x8000000ffff00f00
    li a0, 0x8000000ffff00f01
    binvi a2, a0, 40
    EXPECT a2, 0x8000010ffff00f01
    li a0, 0x8000000ffff00f01
    binvi a2, a0, 63
    EXPECT a2, 0xffff00f01
    li a0, 0x80000043
    binvi a2, a0, 0
    EXPECT a2, 0x80000042
    li a0, 0x80000043
    binvi a2, a0, 40
    EXPECT a2, 0x10080000043
    li a0, 0x80000043
    binvi a2, a0, 63
    EXPECT a2, 0x8000000080000043
    li a0, 0xffffffffffffffff
    binvi a2, a0, 0
    EXPECT a2, 0xfffffffffffffffe
    li a0, 0xffffffffffffffff
    binvi a2, a0, 40
    EXPECT a2, 0xfffffeffffffffff
    li a0, 0xffffffffffffffff
    binvi a2, a0, 63
    EXPECT a2, 0x7fffffffffffffff
    li a0, 0x0
    binvi a2, a0, 0
    EXPECT a2, 0x1
    li a0, 0x0
    binvi a2, a0, 40
    EXPECT a2, 0x10000000000
    li a0, 0x0
    binvi a2, a0, 63
    EXPECT a2, 0x8000000000000000
    CHECK 39             /* bset */
    li a0, 0x8000000ffff00f01
    li a1, 0x80000043
    bset a2, a0, a1
    EXPECT a2, 0x8000000ffff00f09
    li a0, 0x80000043
    li a1, 0x8000000ffff00f01
    bset a2, a0, a1
    EXPECT a2, 0x80000043
    li a0, 0xffffffffffffffff
    li a1, 0x0
    bset a2, a0, a1
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xff00000000fe00
    li a1, 0x7fffffff7ffffffe
    bset a2, a0, a1
    EXPECT a2, 0x40ff00000000fe00
    li a0, 0x7fffffff7ffffffe
    li a1, 0x3f
    bset a2, a0, a1
    EXPECT a2, 0xffffffff7ffffffe
    li a0, 0x8000000ffff00f01
    li a1, 0x20
    bset a2, a0, a1
    EXPECT a2, 0x8000000ffff00f01
    CHECK 40             /* bseti */
    li a0, 0x8000000ffff00f01
    bseti a2, a0, 0
    EXPECT a2, 0x8000000ffff00f01
    li a0, 0x8000000ffff00f01
    bseti a2, a0, 8
    EXPECT a2, 0x8000000ffff00f01
    li a0, 0x8000000ffff00f01
    bseti a2, a0, 63
    EXPECT a2, 0x8000000ffff00f01
    li a0, 0x80000043
    bseti a2, a0, 0
    EXPECT a2, 0x80000043
    li a0, 0x80000043
    bseti a2, a0, 8
    EXPECT a2, 0x80000143
    li a0, 0x80000043
    bseti a2, a0, 63
    EXPECT a2, 0x8000000080000043
    li a0, 0xffffffffffffffff
    bseti a2, a0, 0
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xffffffffffffffff
    bseti a2, a0, 8
    EXPECT a2, 0xffffffffffffffff
    li a0, 0xffffffffffffffff
    bseti a2, a0, 63
    EXPECT a2, 0xffffffffffffffff
    li a0, 0x0
    bseti a2, a0, 0
    EXPECT a2, 0x1
    li a0, 0x0
    bseti a2, a0, 8
    EXPECT a2, 0x100
    li a0, 0x0
    bseti a2, a0, 63
    EXPECT a2, 0x8000000000000000

    CHECK 41            /* register aliasing: rd = rs1 = rs2, and rd = x0 writes nothing */
    li a0, 0x1234
    sh3add a0, a0, a0
    EXPECT a0, 0xa3d4
    li a0, 0xf0
    andn a0, a0, a0
    EXPECT a0, 0
    li a0, 5
    sh1add zero, a0, a0
    EXPECT zero, 0

    CHECK 42            /* Zihintpause: PAUSE retires as a no-op (registers, memory kept) */
    li a0, 0x5a5a
    li a1, -1
    .word 0x0100000f    /* pause = fence w, 0 */
    EXPECT a0, 0x5a5a
    EXPECT a1, -1

    CHECK 43            /* reserved encodings beside the new ones are still illegal */
    MUST_TRAP CAUSE_ILLEGAL, .word 0x0815c63b /* OP-32 funct7=0x04 funct3=4 rs2=1 (pack of Zbkb) */
    MUST_TRAP CAUSE_ILLEGAL, .word 0x60359613 /* OP-IMM funct3=1 imm=0x603 (no such unary op) */
    MUST_TRAP CAUSE_ILLEGAL, .word 0x6035961b /* OP-IMM-32 funct3=1 imm=0x603 */
    MUST_TRAP CAUSE_ILLEGAL, .word 0x0805d613 /* OP-IMM funct3=5 imm[11:6]=0x02 */
    MUST_TRAP CAUSE_ILLEGAL, .word 0x2ad59633 /* OP funct7=0x15 funct3=1 */
    MUST_TRAP CAUSE_ILLEGAL, .word 0x60d5a63b /* OP-32 funct7=0x30 funct3=2 */

    TEST_END
