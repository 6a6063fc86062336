/* Vectorised exp((x - max) / T) for one dtype and one instruction set;
 * included by dtype_kernels.h with FS_R, FS_VR, FS_VI, FS_VU, FS_NAME and
 * the FS_EXP_* constants defined.  No include guard on purpose.
 *
 * The argument arrives as d = (x - max) * 2**-e, formed exactly (and without
 * overflow) by vscaled_diff, so the remaining division is by tm, in [1, 2)
 * for ordinary temperatures T = tm * 2**e.  Then
 *     exp(d / tm) = 2**k * exp(r),   r = (d - k * ln2 * tm) / tm,   |r| <= ln2 / 2,
 * with ln2 * tm split into c_hi + c_lo so that k * c_hi is exact and, by
 * Sterbenz, so is d - k * c_hi: the reduction adds no error beyond the one
 * rounding of x - max, whatever the temperature.  exp(r) is a polynomial
 * (tools/fit_exp.py: degree 5 for float32, relative error 1.7e-7; degree 11
 * for float64, 2e-17; where a permute reads a table (float32 with AVX2 or
 * AVX-512, float64 with AVX-512) the table-driven variant below takes k in
 * steps of 1/N and a polynomial of degree 3 (float32) or 6 (float64)).
 * 2**k is read off the low bits of the rounding constant as 2**(k + shift),
 * and the polynomial's coefficients carry the factor 2**-shift, so one
 * multiplication both scales and rounds: results in the subnormal range come
 * out correctly rounded instead of flushed to zero.
 *
 * Error: a few ulp of exp(r) plus |x - max| / T times half an ulp of x - max
 * (for softmax entries >= 1e-8 that is below 1.3e-6 in float32, 2.1e-15 in
 * float64).  Branch-free, no libm calls, exact with or without FMA contraction.
 */

typedef struct {
    FS_VR s_pre, s_post, k_scale, c_hi, c_lo, inv_tm, d_clamp, k_scale_t, c_hi_t, c_lo_t, d_clamp_t;
} FS_NAME(exp_consts);

FS_INLINE FS_VR FS_NAME(vbroadcast)(FS_R v) { return (FS_VR){0} + v; }

FS_INLINE FS_VR FS_NAME(vselect)(FS_VI mask, FS_VR a, FS_VR b)
{
    return (FS_VR)(((FS_VI)a & mask) | ((FS_VI)b & ~mask));
}

FS_INLINE void FS_NAME(exp_consts_init)(const fs_params *p, FS_NAME(exp_consts) *c)
{
    c->s_pre = FS_NAME(vbroadcast)((FS_R)p->s_pre);
    c->s_post = FS_NAME(vbroadcast)((FS_R)p->s_post);
    c->k_scale = FS_NAME(vbroadcast)((FS_R)p->k_scale);
    c->c_hi = FS_NAME(vbroadcast)((FS_R)p->c_hi);
    c->c_lo = FS_NAME(vbroadcast)((FS_R)p->c_lo);
    c->inv_tm = FS_NAME(vbroadcast)((FS_R)p->inv_tm);
    c->d_clamp = FS_NAME(vbroadcast)((FS_R)p->d_clamp);
#ifdef FS_EXP_TABLE
    /* fs_params has the constants for steps of ln2 / 16; the scaling to
     * N = FS_EXP_TABLE_SIZE entries is by a power of two, exact */
    c->k_scale_t = FS_NAME(vbroadcast)((FS_R)(p->k_scale_t * (FS_EXP_TABLE_SIZE / 16.0)));
    c->c_hi_t = FS_NAME(vbroadcast)((FS_R)(p->c_hi_t * (16.0 / FS_EXP_TABLE_SIZE)));
    c->c_lo_t = FS_NAME(vbroadcast)((FS_R)(p->c_lo_t * (16.0 / FS_EXP_TABLE_SIZE)));
    c->d_clamp_t = FS_NAME(vbroadcast)((FS_R)p->d_clamp_t);
#endif
}

#ifdef FS_VMAX_INTRINSIC
#define FS_VMAX(a, b) ((FS_VR)FS_VMAX_INTRINSIC(a, b))
#else
#define FS_VMAX(a, b) FS_NAME(vselect)((a) > (b), (a), (b))
#endif

/* (x - m) * 2**-e, given m_pre = m * s_pre.  Scaling down before the
 * subtraction and up after it keeps every step finite unless the result
 * itself overflows (x = -max, m = +max, T = 1e37 is fine).  unit_t: T == 1, a
 * compile-time constant that drops the scaling. */
FS_INLINE FS_VR FS_NAME(vscaled_diff)(FS_VR x, FS_VR m_pre, const FS_NAME(exp_consts) *c, const int unit_t)
{
    return unit_t ? x - m_pre : (x * c->s_pre - m_pre) * c->s_post;
}

/* (x - m) / T, the log_softmax value before log S is taken off: inv_tm
 * before s_post, since the other order can overflow just short of the
 * largest finite result. */
FS_INLINE FS_VR FS_NAME(vscaled_log)(FS_VR x, FS_VR m_pre, const FS_NAME(exp_consts) *c, const int unit_t)
{
    return unit_t ? x - m_pre : ((x * c->s_pre - m_pre) * c->inv_tm) * c->s_post;
}

#ifdef FS_EXP_TABLE
/* exp(d / tm) for a scaled difference d <= 0 (finite or -inf); 0 where it
 * underflows.  Table-driven variant, where one permute (a shuffle-port
 * instruction, off the multiply-add pipes) reads a table of N = 2**bits
 * entries from a register: exp(d / tm) = 2**(k/N) * exp(r), |r| <= ln2 / 2N,
 * so a short polynomial is exact: degree 3 for float32 (N = 8 with AVX2, 16
 * with AVX-512; relative error 8.6e-8 and 6.2e-8 in float32 arithmetic),
 * degree 6 for float64 (N = 16, 1.4e-17; tools/fit_exp.py).  That is two
 * multiply-adds fewer than the polynomial alone for float32, and five for
 * float64, and one multiplication fewer again: the power of two is built
 * whole, 2**(k div N + shift) in its exponent field from shifted's bits, the
 * mantissa of 2**(j/N) (j = k mod N) from the table, by an OR, and the
 * polynomial's coefficients carry 2**-shift, so the one multiplication
 * rounds subnormal results correctly as below.  At the clamp (k div N +
 * bias + shift == 0, j == 0) the power is exactly +0; just above it (the
 * same k div N, j > 0) the power's bits read a subnormal, not 2**(k/N +
 * shift), but the product rounds to +0 either way (below 2**-190 in float32,
 * 2**-1622 in float64). */
FS_INLINE FS_VR FS_NAME(vexp_scaled)(FS_VR d, const FS_NAME(exp_consts) *c, const int unit_t)
{
    d = FS_VMAX(d, c->d_clamp_t);   /* see below */
    const FS_VR magic = FS_NAME(vbroadcast)(FS_EXP_TABLE_MAGIC);
    FS_VR shifted = d * c->k_scale_t + magic;   /* round(N d / (ln2 tm)) + magic */
    FS_VR k = shifted - magic;
#if defined(FS_FMA) && FS_EXP_MANT_BITS == 23
    /* float32 at T == 1: ln2 / N rounded to float, as in the polynomial exp below */
    FS_VR u = unit_t ? FS_FMA(k, FS_NAME(vbroadcast)(-(FS_R)(0.693147180559945309417 / FS_EXP_TABLE_SIZE)), d)
                     : (d - k * c->c_hi_t) - k * c->c_lo_t;
#else
    FS_VR u = (d - k * c->c_hi_t) - k * c->c_lo_t;
#endif
    FS_VR r = unit_t ? u : u * c->inv_tm;
    /* highest degree first, each times 2**-shift; the last is 2**-shift: p(0) * 2**shift == 1 */
    static const FS_R coeff[] = FS_EXP_TABLE_POLY;
    FS_VR poly = FS_NAME(vbroadcast)(coeff[0]);
    for (int i = 1; i < (int)(sizeof coeff / sizeof coeff[0]); i++) poly = poly * r + coeff[i];
    const FS_VU power = (((FS_VU)shifted >> FS_EXP_TABLE_BITS) << FS_EXP_MANT_BITS) | FS_EXP_TABLE_LOOKUP(shifted);
    return poly * (FS_VR)power;
}
#else
/* exp(d / tm) for a scaled difference d <= 0 (finite or -inf); 0 where it
 * underflows. */
FS_INLINE FS_VR FS_NAME(vexp_scaled)(FS_VR d, const FS_NAME(exp_consts) *c, const int unit_t)
{
    /* Far below the maximum (-inf masks, -1e9 "masks") d is clamped to the
     * point where the power of two read off `shifted` is exactly +0: their
     * exp comes out 0 without an underflow.  Subnormal intermediates would
     * cost a microcode assist of ~100 cycles per vector on many CPUs; only
     * the rare entries between that point and the underflow threshold
     * (between 104 and 132 below the maximum in float32, at T = 1) still
     * underflow in the last multiplication, correctly rounded. */
    d = FS_VMAX(d, c->d_clamp);

    const FS_VR magic = FS_NAME(vbroadcast)(FS_EXP_MAGIC);
    FS_VR shifted = d * c->k_scale + magic;       /* round(d / (ln2 tm)) + magic */
    FS_VR k = shifted - magic;

#if defined(FS_FMA) && FS_EXP_MANT_BITS == 23
    /* float32 with a fused multiply-add and T == 1: one step with ln2 rounded
     * to float is enough, its rounding (2.7e-9 relative, times |k|) is far
     * inside the float32 error budget.  (In float64 the same rounding would
     * cost a few ulp of the subnormal tail.) */
    FS_VR u = unit_t ? FS_FMA(k, FS_NAME(vbroadcast)(-(FS_R)0.693147180559945309417), d)
                     : (d - k * c->c_hi) - k * c->c_lo;
#else
    FS_VR u = (d - k * c->c_hi) - k * c->c_lo;
#endif
    FS_VR r = unit_t ? u : u * c->inv_tm;

    /* coefficients highest degree first, each times 2**-shift */
    static const FS_R coeff[] = FS_EXP_POLY;
    FS_VR poly = FS_NAME(vbroadcast)(coeff[0]);
    for (int i = 1; i < (int)(sizeof coeff / sizeof coeff[0]); i++)
        poly = poly * r + coeff[i];

    FS_VR two_k_shifted = (FS_VR)((FS_VU)shifted << FS_EXP_MANT_BITS);
    return poly * two_k_shifted;
}
#endif
