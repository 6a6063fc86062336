/* Vectorised exp((x - max) / T) for one dtype; included once per dtype by
 * row_kernels_impl.h with FS_R, FS_VR, FS_VI, FS_VU, FS_NAME and the FS_EXP_*
 * constants defined.  No include guard on purpose.
 *
 * The argument arrives as an exact difference d = d_hi + d_lo (TwoSum of x and
 * the row maximum), already multiplied by the power of two `scale`, so the
 * remaining division is by tm in [1, 2) for ordinary temperatures.  Then
 *     exp(d / tm) = 2**k * exp(r),   r = (d - k * ln2 * tm) / tm,   |r| <= ln2 / 2,
 * with ln2 * tm split into c_hi + c_lo so that k * c_hi is exact and, by
 * Sterbenz, so is d_hi - k * c_hi.  The reduced argument is therefore accurate
 * to a few units in the last place of r itself, whatever the size of d: the
 * usual source of error in softmax tails (rounding x - max, then dividing by T)
 * is gone.  exp(r) is a Taylor polynomial whose truncation error is below a
 * tenth of an ulp, and 2**k is applied as two factors so that results in the
 * subnormal range round correctly instead of flushing to zero.
 *
 * Branch-free and free of libm calls; correct with or without FMA contraction.
 */

typedef struct {
    FS_VR scale, k_scale, c_hi, c_lo, inv_tm;
} FS_NAME(exp_consts);

FS_INLINE FS_VR FS_NAME(vbroadcast)(FS_R v) { return (FS_VR){0} + v; }

FS_INLINE FS_VR FS_NAME(vselect)(FS_VI mask, FS_VR a, FS_VR b)
{
    return (FS_VR)(((FS_VI)a & mask) | ((FS_VI)b & ~mask));
}

FS_INLINE void FS_NAME(exp_consts_init)(const fs_params *p, FS_NAME(exp_consts) *c)
{
    c->scale = FS_NAME(vbroadcast)((FS_R)p->scale);
    c->k_scale = FS_NAME(vbroadcast)((FS_R)p->k_scale);
    c->c_hi = FS_NAME(vbroadcast)((FS_R)p->c_hi);
    c->c_lo = FS_NAME(vbroadcast)((FS_R)p->c_lo);
    c->inv_tm = FS_NAME(vbroadcast)((FS_R)p->inv_tm);
}

/* exp((x - m) / T) for x <= m, both finite or x = -inf; 0 where it underflows. */
FS_INLINE FS_VR FS_NAME(vexp_shifted)(FS_VR x, FS_VR m, const FS_NAME(exp_consts) *c)
{
    /* TwoSum: d_hi + d_lo == x - m exactly. */
    FS_VR d_hi = x - m;
    FS_VR bb = d_hi - x;
    FS_VR d_lo = (x - (d_hi - bb)) + (-m - bb);
    d_hi *= c->scale;
    d_lo *= c->scale;

    const FS_VR k_floor = FS_NAME(vbroadcast)(FS_EXP_K_FLOOR);
    const FS_VR magic = FS_NAME(vbroadcast)(FS_EXP_MAGIC);
    FS_VR t = d_hi * c->k_scale;
    /* false for -inf, and for arguments whose exp rounds to 0 anyway */
    FS_VI alive = t > k_floor;
    t = FS_NAME(vselect)(alive, t, k_floor);
    FS_VR shifted = t + magic;
    FS_VR k = shifted - magic;                     /* round(t), an integer in [K_FLOOR, 0] */
    FS_VI k_int = (FS_VI)shifted - (FS_VI)magic;   /* the same integer, read off the bits */

    FS_VR u = (d_hi - k * c->c_hi) - k * c->c_lo + d_lo;
    FS_VR r = u * c->inv_tm;

    static const FS_R coeff[] = FS_EXP_TAYLOR;     /* 1/n!, highest degree first */
    FS_VR poly = FS_NAME(vbroadcast)(coeff[0]);
    for (int i = 1; i < (int)(sizeof coeff / sizeof coeff[0]); i++)
        poly = poly * r + coeff[i];

    /* 2**k as 2**k1 * 2**k2 with both halves normal; k + offset >= 0 so a
     * logical shift halves it (arithmetic 64-bit shifts are not in AVX2). */
    FS_VI k1 = (FS_VI)(((FS_VU)(k_int + FS_EXP_K_OFFSET)) >> 1) - FS_EXP_K_OFFSET / 2;
    FS_VI k2 = k_int - k1;
    FS_VR two_k1 = (FS_VR)((k1 + FS_EXP_BIAS) << FS_EXP_MANT_BITS);
    FS_VR two_k2 = (FS_VR)((k2 + FS_EXP_BIAS) << FS_EXP_MANT_BITS);
    FS_VR result = (poly * two_k1) * two_k2;
    return (FS_VR)((FS_VI)result & alive);
}
