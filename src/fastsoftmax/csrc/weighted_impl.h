/* Weighted log-sum-exp, log(sum_i b_i exp(x_i)) as SciPy's logsumexp(a, b=...)
 * defines it: part of the kernel template, included from dtype_kernels.h
 * with its parameters defined.  No include guard on purpose.
 *
 * weighted_stats fills the fs_stats of a row or chunk x[0:n] with weights
 * w_i = b[i * b_step] (b_step 0 spreads one weight over the row).  Entries
 * with w_i == 0 take no part at all, whatever x_i is (SciPy's rule):
 *   max      the maximum of x over the entries that take part;
 *   rest     (+ rest_comp) the signed sum of w_i exp((x_i - max) / T), in
 *            the same compensated double as the other sums; the terms at the
 *            maximum (exactly w_i) are summed apart and folded in on their
 *            own, so that a sum 1 + tiny keeps its tiny part;
 *   has_nan  a NaN in x or w, or an infinite weight on a -inf entry
 *            (inf * 0), among the entries that take part;
 *   count    0: the weights at the maximum are in rest.
 * When the maximum is +inf, rest is the plain sum of w_i * inf over the +inf
 * entries (plus any infinite weight elsewhere): +inf, -inf or NaN.
 * fs_stats_merge combines chunks as for the other kernels, and
 * fs_weighted_finish (weighted.h) turns the statistics into value and sign. */

/* The weights of the FS_W entries from i: a vector of b, or b[0] everywhere. */
FS_INLINE FS_VR FS_NAME(weights)(const FS_R *b, const int b_step, ptrdiff_t i)
{
    return b_step ? FS_NAME(vload)(b + i) : FS_NAME(vbroadcast)(b[0]);
}

/* The row's last entries from i (i < n, fewer than FS_W left): the last
 * FS_W entries with the lanes before i masked out (FS_OVERLAP_TAIL), or for
 * a row shorter than a vector the entries padded (x with -inf, b with 0). */
FS_INLINE void FS_NAME(weighted_tail)(const FS_R *x, const FS_R *b, const int b_step, ptrdiff_t n,
                                      ptrdiff_t i, FS_VR *v, FS_VR *w, FS_VI *lanes)
{
    if (n >= FS_W) {
        *v = FS_NAME(vload)(x + n - FS_W);
        *w = FS_NAME(weights)(b, b_step, n - FS_W);
        *lanes = FS_NAME(last_lanes)(n - i);
    } else {
        *v = FS_NAME(vload_tail)(x, n, (FS_R)-INFINITY);
        *w = b_step ? FS_NAME(vload_tail)(b, n, 0) : FS_NAME(vbroadcast)(b[0]);
        *lanes = ~FS_NAME(last_lanes)(FS_W - n);
    }
}

/* Runs BODY(v, w, lanes) over the vectors of the row x[0:n], weights b,
 * from entry `start` on: the whole vectors, then the tail. */
#define FS_WEIGHTED_VECTORS(start, BODY) do {                                                \
        ptrdiff_t i_ = (start);                                                              \
        for (; i_ + FS_W <= n; i_ += FS_W) {                                                 \
            const FS_VR v_ = FS_NAME(vload)(x + i_), w_ = FS_NAME(weights)(b, b_step, i_);   \
            BODY(v_, w_, FS_ALL_LANES);                                                      \
        }                                                                                    \
        if (i_ < n) {                                                                        \
            FS_VR v_, w_;                                                                    \
            FS_VI lanes_;                                                                    \
            FS_NAME(weighted_tail)(x, b, b_step, n, i_, &v_, &w_, &lanes_);                  \
            BODY(v_, w_, lanes_);                                                            \
        }                                                                                    \
    } while (0)

/* Pass 1: the maximum over the entries that take part; *has_nan: whether a
 * lane makes the result NaN. */
FS_INLINE FS_R FS_NAME(weighted_max_pass)(const FS_R *x, const FS_R *b, const int b_step, ptrdiff_t n,
                                          int *has_nan)
{
    const FS_VR neg_inf = FS_NAME(vbroadcast)((FS_R)-INFINITY);
    FS_VR mx = neg_inf;
    FS_VI bad = {0};
#define FS_WEIGHTED_SCAN(v, w, lanes) do {                                               \
        const FS_VI part_ = ((w) != (FS_VR){0}) & (lanes);                               \
        mx = FS_NAME(vmax)(mx, FS_NAME(vselect)(part_, (v), neg_inf));                   \
        bad |= part_ & ~(((v) == (v)) & ((w) == (w)) &                                   \
                         (FS_NAME(finite)(w) | ~((v) == neg_inf)));                      \
    } while (0)
    FS_WEIGHTED_VECTORS(0, FS_WEIGHTED_SCAN);
#undef FS_WEIGHTED_SCAN
    *has_nan = !FS_NAME(all_set)(~bad);
    return FS_NAME(lane_max)(mx);
}

/* One vector's terms: w exp((v - max) / T) of the lanes taking part below the
 * maximum into *below, the weights at the maximum (their exp is exactly 1)
 * into *at_max.  The products are masked after the multiplication: a lane
 * left out may hold inf or NaN in x, and a lane at the maximum an infinite
 * weight. */
FS_INLINE void FS_NAME(weighted_terms)(FS_VR v, FS_VR w, FS_VI lanes, FS_VR mv, FS_VR m_pre,
                                       const FS_NAME(exp_consts) *c, const int unit_t, FS_VR *below,
                                       FS_VR *at_max)
{
    const FS_VI part = (w != (FS_VR){0}) & lanes;
    const FS_VI eq = (v == mv) & part;
    const FS_VR e = FS_NAME(vexp_scaled)(FS_NAME(vscaled_diff)(v, m_pre, c, unit_t), c, unit_t);
    *below += (FS_VR)((FS_VI)(e * w) & (part & ~eq));
    *at_max += (FS_VR)((FS_VI)w & eq);
}

/* Pass 2 (finite maximum m): the signed sum of w exp((x - m) / T) into s,
 * in blocks as exp_sum_pass sums (FS_UNROLL accumulators of FS_SUB vectors,
 * one compensated fold per block), the terms at the maximum folded apart. */
FS_INLINE void FS_NAME(weighted_sum_pass)(const FS_R *x, const FS_R *b, const int b_step, ptrdiff_t n,
                                          FS_R m, const fs_params *p, const int unit_t, fs_stats *s)
{
    FS_NAME(exp_consts) c;
    FS_VR mv, m_pre;
    FS_NAME(exp_pass_init)(p, m, &c, &mv, &m_pre);
    FS_VACC lo = {0}, hi = {0}, at_lo = {0}, at_hi = {0};
    const ptrdiff_t block = FS_UNROLL * FS_SUB * FS_W;
    ptrdiff_t i = 0;
    for (; i + block <= n; i += block) {
        FS_VR f[FS_UNROLL] = {{0}}, at_max = {0};
        for (int j = 0; j < FS_SUB; j++)
            for (int u = 0; u < FS_UNROLL; u++) {
                const ptrdiff_t at = i + (j * FS_UNROLL + u) * FS_W;
                FS_NAME(weighted_terms)(FS_NAME(vload)(x + at), FS_NAME(weights)(b, b_step, at), FS_ALL_LANES,
                                        mv, m_pre, &c, unit_t, &f[u], &at_max);
            }
        for (int half = FS_UNROLL / 2; half >= 1; half /= 2)   /* pairwise */
            for (int u = 0; u < half; u++) f[u] += f[u + half];
        FS_BLOCK_FOLD(lo, hi, f[0], s);
        FS_BLOCK_FOLD(at_lo, at_hi, at_max, s);
    }
    FS_VR below = {0}, at_max = {0};
    int count = 0;
#define FS_WEIGHTED_ADD(v, w, lanes) do {                                                 \
        FS_NAME(weighted_terms)((v), (w), (lanes), mv, m_pre, &c, unit_t, &below, &at_max); \
        if (++count == FS_SUB) {                                                          \
            FS_BLOCK_FOLD(lo, hi, below, s);                                              \
            FS_BLOCK_FOLD(at_lo, at_hi, at_max, s);                                       \
            below = at_max = (FS_VR){0};                                                  \
            count = 0;                                                                    \
        }                                                                                 \
    } while (0)
    FS_WEIGHTED_VECTORS(i, FS_WEIGHTED_ADD);
#undef FS_WEIGHTED_ADD
    FS_BLOCK_FOLD(lo, hi, below, s);
    FS_BLOCK_FOLD(at_lo, at_hi, at_max, s);
    FS_ROW_FOLD(lo, hi, s);
    FS_ROW_FOLD(at_lo, at_hi, s);
}

static void FS_NAME(weighted_stats)(const void *xv, const void *bv, ptrdiff_t b_step, ptrdiff_t n,
                                    const fs_params *p, fs_stats *s)
{
    const FS_R *x = (const FS_R *)xv, *b = (const FS_R *)bv;
    const int step = b_step != 0;
    fs_stats_init(s);
    if (n == 0) return;
    s->max = step ? FS_NAME(weighted_max_pass)(x, b, 1, n, &s->has_nan)
                  : FS_NAME(weighted_max_pass)(x, b, 0, n, &s->has_nan);
    if (s->has_nan || s->max == -INFINITY) return;
    if (s->max == INFINITY) {
        /* the +inf entries decide, as in the plain sum w * exp(x) */
        double total = 0.0;
        for (ptrdiff_t j = 0; j < n; j++) {
            const double wj = (double)b[j * step], xj = (double)x[j];
            if (wj == 0.0) continue;
            if (xj == INFINITY) total += wj * INFINITY;
            else if (isinf(wj) && xj != -INFINITY) total += wj;
        }
        s->rest = total;
        return;
    }
    if (p->unit) {
        if (step) FS_NAME(weighted_sum_pass)(x, b, 1, n, (FS_R)s->max, p, 1, s);
        else FS_NAME(weighted_sum_pass)(x, b, 0, n, (FS_R)s->max, p, 1, s);
    } else {
        if (step) FS_NAME(weighted_sum_pass)(x, b, 1, n, (FS_R)s->max, p, 0, s);
        else FS_NAME(weighted_sum_pass)(x, b, 0, n, (FS_R)s->max, p, 0, s);
    }
    /* an infinite weight: the compensation of an infinite sum is NaN and
     * would spoil the merge with other chunks */
    if (!isfinite(s->rest)) s->rest_comp = 0.0;
}

#undef FS_WEIGHTED_VECTORS
