#!/usr/bin/env python3
"""Host model of RISC-V F/D arithmetic, straight from IEEE 754-2008 and the RISC-V
unprivileged ISA (20191213) chapters 11-12, used to derive the expected values that are
written (as constants) into rv64f.S / rv64d.S.  Exact rational arithmetic (fractions),
tininess detected after rounding, canonical NaN results, RISC-V conversion saturation.

Not run by the build; run it by hand:  python3 tests/isa/fpmodel.py  (prints a self-check).
"""
from fractions import Fraction as Q
import math

NX, UF, OF, DZ, NV = 1, 2, 4, 8, 16
RNE, RTZ, RDN, RUP, RMM = 0, 1, 2, 3, 4


class Fmt:
    def __init__(self, ebits, mbits):
        self.e, self.m = ebits, mbits
        self.bias = (1 << (ebits - 1)) - 1
        self.emin = 1 - self.bias
        self.p = mbits + 1
        self.width = 1 + ebits + mbits
        self.qnan = ((1 << ebits) - 1) << mbits | 1 << (mbits - 1)  # canonical NaN

    def fields(self, b):
        return b >> (self.width - 1), (b >> self.m) & ((1 << self.e) - 1), b & ((1 << self.m) - 1)

    def isnan(self, b):
        s, e, m = self.fields(b)
        return e == (1 << self.e) - 1 and m != 0

    def issnan(self, b):
        return self.isnan(b) and not (b >> (self.m - 1)) & 1

    def isinf(self, b):
        s, e, m = self.fields(b)
        return e == (1 << self.e) - 1 and m == 0

    def sign(self, b):
        return b >> (self.width - 1)

    def value(self, b):
        """exact value of a finite number (zeros -> Q(0); sign of zero via sign())"""
        s, e, m = self.fields(b)
        if e == 0:
            v = Q(m, 1 << self.m) * Q(2) ** self.emin
        else:
            v = (1 + Q(m, 1 << self.m)) * Q(2) ** (e - self.bias)
        return -v if s else v

    def inf(self, s):
        return s << (self.width - 1) | ((1 << self.e) - 1) << self.m

    def zero(self, s):
        return s << (self.width - 1)

    def maxfin(self, s):
        return s << (self.width - 1) | ((1 << self.e) - 2) << self.m | ((1 << self.m) - 1)


F32 = Fmt(8, 23)
F64 = Fmt(11, 52)


def rnd_int(q, rm, neg):
    """round positive rational q to an integer; neg = sign of the true value"""
    fl = q.numerator // q.denominator
    fr = q - fl
    if fr == 0:
        return fl
    if rm == RNE:
        return fl + (fr > Q(1, 2) or (fr == Q(1, 2) and fl % 2 == 1))
    if rm == RMM:
        return fl + (fr >= Q(1, 2))
    if rm == RTZ:
        return fl
    if rm == RDN:
        return fl + (1 if neg else 0)
    if rm == RUP:
        return fl + (0 if neg else 1)
    raise ValueError(rm)


def ilog2(a):
    """floor(log2(a)) for positive rational a"""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Q(2) ** e > a:
        e -= 1
    while Q(2) ** (e + 1) <= a:
        e += 1
    return e


def round_to(f, x, rm, zero_sign=0):
    """round exact rational x into format f: returns (bits, flags)"""
    if x == 0:
        return f.zero(zero_sign), 0
    neg = x < 0
    a = -x if neg else x
    s = 1 if neg else 0
    e = ilog2(a)
    # tininess after rounding: round with unbounded exponent range
    q_unb = Q(2) ** (e - f.p + 1)
    r_unb = rnd_int(a / q_unb, rm, neg) * q_unb
    tiny = r_unb < Q(2) ** f.emin
    quantum = Q(2) ** (max(e, f.emin) - f.p + 1)
    r = rnd_int(a / quantum, rm, neg) * quantum
    flags = 0
    if r != a:
        flags |= NX
        if tiny:
            flags |= UF
    maxv = f.value(f.maxfin(0))
    if r > maxv:
        flags |= OF | NX
        to_inf = rm in (RNE, RMM) or (rm == RUP and not neg) or (rm == RDN and neg)
        return (f.inf(s) if to_inf else f.maxfin(s)), flags
    if r == 0:
        return f.zero(s), flags
    er = ilog2(r)
    if er < f.emin:  # subnormal
        m = r / Q(2) ** (f.emin - f.m)
        assert m.denominator == 1
        return s << (f.width - 1) | int(m), flags
    m = r / Q(2) ** (er - f.m) - (1 << f.m)
    assert m.denominator == 1
    return s << (f.width - 1) | (er + f.bias) << f.m | int(m), flags


def nan_prop(f, *ops):
    flags = NV if any(f.issnan(o) for o in ops) else 0
    if any(f.isnan(o) for o in ops):
        return f.qnan, flags
    return None, flags


def add(f, a, b, rm, sub=False):
    if sub:
        b ^= 1 << (f.width - 1)
    r, fl = nan_prop(f, a, b)
    if r is not None:
        return r, fl
    if f.isinf(a) and f.isinf(b):
        if f.sign(a) != f.sign(b):
            return f.qnan, NV
        return a, 0
    if f.isinf(a):
        return a, 0
    if f.isinf(b):
        return b, 0
    x = f.value(a) + f.value(b)
    if x == 0:
        if f.value(a) == 0 and f.value(b) == 0 and f.sign(a) == f.sign(b):
            zs = f.sign(a)
        else:
            zs = 1 if rm == RDN else 0
        return f.zero(zs), 0
    return round_to(f, x, rm)


def mul(f, a, b, rm):
    r, fl = nan_prop(f, a, b)
    if r is not None:
        return r, fl
    s = f.sign(a) ^ f.sign(b)
    if f.isinf(a) or f.isinf(b):
        other = b if f.isinf(a) else a
        if not f.isinf(other) and f.value(other) == 0:
            return f.qnan, NV
        return f.inf(s), 0
    return round_to(f, f.value(a) * f.value(b), rm, s)


def div(f, a, b, rm):
    r, fl = nan_prop(f, a, b)
    if r is not None:
        return r, fl
    s = f.sign(a) ^ f.sign(b)
    if f.isinf(a):
        return (f.qnan, NV) if f.isinf(b) else (f.inf(s), 0)
    if f.isinf(b):
        return f.zero(s), 0
    if f.value(b) == 0:
        if f.value(a) == 0:
            return f.qnan, NV
        return f.inf(s), DZ
    return round_to(f, f.value(a) / f.value(b), rm, s)


def sqrt(f, a, rm):
    r, fl = nan_prop(f, a)
    if r is not None:
        return r, fl
    if f.value(a) == 0 and not f.isinf(a):
        return a, 0
    if f.sign(a):
        return f.qnan, NV
    if f.isinf(a):
        return a, 0
    v = f.value(a)
    k = 1300  # v * 2^(2k) is an integer with >= 2500 bits for every finite binary64
    n = v * Q(2) ** (2 * k)
    n_int = n.numerator // n.denominator
    s = math.isqrt(n_int)
    exact = s * s == n and Q(s * s) == n
    x = Q(s, 2 ** k) if exact else (Q(s) + Q(1, 2)) / Q(2) ** k
    return round_to(f, x, rm)


def fma(f, a, b, c, rm, negprod=False, negc=False):
    """(+/-)(a*b) (+/-) c, one rounding"""
    sb = 1 << (f.width - 1)
    if negprod:
        a ^= sb
    if negc:
        c ^= sb
    inv = (f.isinf(a) and not f.isnan(b) and not f.isinf(b) and f.value(b) == 0) or \
          (f.isinf(b) and not f.isnan(a) and not f.isinf(a) and f.value(a) == 0)
    if inv:  # inf * 0 is invalid even with a quiet-NaN addend
        return f.qnan, NV
    r, fl = nan_prop(f, a, b, c)
    if r is not None:
        return r, fl
    ps = f.sign(a) ^ f.sign(b)
    if f.isinf(a) or f.isinf(b):
        if f.isinf(c) and f.sign(c) != ps:
            return f.qnan, NV
        return f.inf(ps), 0
    if f.isinf(c):
        return c, 0
    p = f.value(a) * f.value(b)
    x = p + f.value(c)
    if x == 0:
        if p == 0 and f.value(c) == 0 and ps == f.sign(c):
            return f.zero(ps), 0
        return f.zero(1 if rm == RDN else 0), 0
    return round_to(f, x, rm)


def to_int(f, a, rm, bits, signed):
    """fcvt.{w,wu,l,lu}: value as an unsigned 64-bit pattern of the register, flags"""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if f.isnan(a):
        r, fl = hi, NV
    elif f.isinf(a):
        r, fl = (lo if f.sign(a) else hi), NV
    else:
        v = f.value(a)
        neg = v < 0
        i = rnd_int(abs(v), rm, neg)
        i = -i if neg else i
        if i < lo:
            r, fl = lo, NV
        elif i > hi:
            r, fl = hi, NV
        else:
            r, fl = i, (NX if i != v else 0)
    if bits == 32:  # 32-bit results are sign-extended into the 64-bit register
        r &= 0xffffffff
        if r >> 31:
            r -= 1 << 32
    return r & ((1 << 64) - 1), fl


def from_int(f, i, bits, signed, rm):
    i &= (1 << bits) - 1
    if signed and i >> (bits - 1):
        i -= 1 << bits
    return round_to(f, Q(i), rm)


def convert(fsrc, fdst, a, rm):
    r, fl = nan_prop(fsrc, a)
    if r is not None:
        return fdst.qnan, fl
    if fsrc.isinf(a):
        return fdst.inf(fsrc.sign(a)), 0
    return round_to(fdst, fsrc.value(a), rm, fsrc.sign(a))


def minmax(f, a, b, is_max):
    fl = NV if f.issnan(a) or f.issnan(b) else 0
    if f.isnan(a) and f.isnan(b):
        return f.qnan, fl
    if f.isnan(a):
        return b, fl
    if f.isnan(b):
        return a, fl
    va, vb = f.value(a) if not f.isinf(a) else (-1) ** f.sign(a) * Q(10) ** 400, \
             f.value(b) if not f.isinf(b) else (-1) ** f.sign(b) * Q(10) ** 400
    if va == vb:  # signed zeros: -0 < +0
        if is_max:
            return (a if f.sign(a) == 0 else b), fl
        return (a if f.sign(a) == 1 else b), fl
    if is_max:
        return (a if va > vb else b), fl
    return (a if va < vb else b), fl


def compare(f, a, b, op):
    """feq (quiet), flt/fle (signaling)"""
    if f.isnan(a) or f.isnan(b):
        if op == 'eq':
            return 0, NV if f.issnan(a) or f.issnan(b) else 0
        return 0, NV

    def v(x):
        return f.value(x) if not f.isinf(x) else (-1) ** f.sign(x) * Q(10) ** 400
    va, vb = v(a), v(b)
    return int({'eq': va == vb, 'lt': va < vb, 'le': va <= vb}[op]), 0


def fclass(f, a):
    s, e, m = f.fields(a)
    if f.isinf(a):
        return 1 << (0 if s else 7)
    if f.isnan(a):
        return 1 << (8 if f.issnan(a) else 9)
    if e == 0 and m == 0:
        return 1 << (3 if s else 4)
    if e == 0:
        return 1 << (2 if s else 5)
    return 1 << (1 if s else 6)


def _selfcheck():
    import struct

    def b32(x):
        return struct.unpack('<I', struct.pack('<f', x))[0]

    def b64(x):
        return struct.unpack('<Q', struct.pack('<d', x))[0]
    assert add(F32, b32(1.0), b32(2.0), RNE) == (b32(3.0), 0)
    assert div(F32, b32(1.0), b32(3.0), RNE) == (b32(1.0 / 3.0 if False else 0.3333333432674408), NX)
    assert div(F64, b64(1.0), b64(3.0), RNE) == (b64(1.0 / 3.0), NX)
    assert sqrt(F64, b64(2.0), RNE) == (b64(math.sqrt(2.0)), NX)
    assert mul(F32, 0x7f7fffff, b32(2.0), RNE) == (0x7f800000, OF | NX)
    assert mul(F32, 0x7f7fffff, b32(2.0), RTZ) == (0x7f7fffff, OF | NX)
    assert mul(F32, 0x00800000, b32(0.5), RNE) == (0x00400000, 0)  # exact subnormal: no UF
    assert to_int(F32, b32(-1.0), RTZ, 32, False) == (0, NV)
    assert to_int(F32, b32(-0.5), RTZ, 32, False) == (0, NX)
    print("fpmodel: self-check ok")


if __name__ == '__main__':
    _selfcheck()
