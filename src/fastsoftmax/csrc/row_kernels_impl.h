/* The row kernels, written once and instantiated per dtype and instruction
 * set by row_kernels_isa.h, which defines the parameters: FS_R (the dtype),
 * FS_VR / FS_VI / FS_VU (vectors of it and of same-width ints), FS_VACC and
 * FS_ACCUMULATE (double accumulation), FS_NAME (symbol suffixes), FS_TREE
 * (lane reductions), the optional FS_MASKED_* / FS_VMAX_INTRINSIC, and the
 * FS_EXP_* constants.  No include guard on purpose. */

#include "vexp.h"

#define FS_W ((ptrdiff_t)(sizeof(FS_VR) / sizeof(FS_R)))

FS_INLINE FS_VR FS_NAME(vload)(const FS_R *p) { FS_VR v; memcpy(&v, p, sizeof v); return v; }
FS_INLINE void FS_NAME(vstore)(FS_R *p, FS_VR v) { memcpy(p, &v, sizeof v); }

/* The last n < FS_W elements as a full vector; the missing lanes read `pad`. */
FS_INLINE FS_VR FS_NAME(vload_tail)(const FS_R *p, ptrdiff_t n, FS_R pad)
{
#ifdef FS_MASKED_LOAD
    return FS_MASKED_LOAD(p, n, pad);
#else
    FS_R buf[sizeof(FS_VR) / sizeof(FS_R)];
    for (ptrdiff_t i = 0; i < FS_W; i++) buf[i] = pad;
    memcpy(buf, p, (size_t)n * sizeof(FS_R));
    return FS_NAME(vload)(buf);
#endif
}

FS_INLINE void FS_NAME(vstore_tail)(FS_R *p, ptrdiff_t n, FS_VR v)
{
#ifdef FS_MASKED_STORE
    FS_MASKED_STORE(p, n, v);
#else
    FS_R buf[sizeof(FS_VR) / sizeof(FS_R)];
    FS_NAME(vstore)(buf, v);
    memcpy(p, buf, (size_t)n * sizeof(FS_R));
#endif
}

FS_INLINE FS_VI FS_NAME(and_op)(FS_VI a, FS_VI b) { return a & b; }

FS_INLINE int FS_NAME(unit_temperature)(const fs_params *p)
{
    return p->s_pre == 1.0 && p->s_post == 1.0 && p->inv_tm == 1.0;
}
#define FS_ADD_OP(a, b) ((a) + (b))

/* NaN-blind maximum: scans track NaN separately. */
FS_INLINE FS_VR FS_NAME(vmax)(FS_VR a, FS_VR b) { return FS_VMAX(a, b); }

FS_INLINE FS_R FS_NAME(lane_max)(FS_VR v)
{
#define FS_OP_MAX(a, b) FS_VMAX(a, b)
    return FS_TREE(v, FS_OP_MAX);
#undef FS_OP_MAX
}

FS_INLINE double FS_NAME(lane_sum)(FS_VR v)
{
    FS_VACC lo = {0}, hi = {0};
    FS_ACCUMULATE(lo, hi, v);
    lo += hi;
    return FS_TREE_F64(lo, FS_ADD_OP);
}

/* ---- step 1: scan ------------------------------------------------------ */

FS_INLINE void FS_NAME(scan_impl)(const FS_R *x, ptrdiff_t n, fs_stats *s)
{
    const FS_VR neg_inf = FS_NAME(vbroadcast)(-INFINITY);
    FS_VR m0 = neg_inf, m1 = neg_inf, m2 = neg_inf, m3 = neg_inf;
    /* all lanes stay -1 while no NaN was seen (v == v is false only for NaN;
     * `v != v` is scalarised by some compilers) */
    FS_VI ordered = (neg_inf == neg_inf);
    ptrdiff_t i = 0;
    for (; i + 4 * FS_W <= n; i += 4 * FS_W) {
        FS_VR v0 = FS_NAME(vload)(x + i), v1 = FS_NAME(vload)(x + i + FS_W);
        FS_VR v2 = FS_NAME(vload)(x + i + 2 * FS_W), v3 = FS_NAME(vload)(x + i + 3 * FS_W);
        ordered &= (v0 == v0) & (v1 == v1) & (v2 == v2) & (v3 == v3);
        m0 = FS_NAME(vmax)(m0, v0);
        m1 = FS_NAME(vmax)(m1, v1);
        m2 = FS_NAME(vmax)(m2, v2);
        m3 = FS_NAME(vmax)(m3, v3);
    }
    for (; i < n; i += FS_W) {
        FS_VR v = n - i >= FS_W ? FS_NAME(vload)(x + i) : FS_NAME(vload_tail)(x + i, n - i, (FS_R)-INFINITY);
        ordered &= (v == v);
        m0 = FS_NAME(vmax)(m0, v);
    }
    m0 = FS_NAME(vmax)(FS_NAME(vmax)(m0, m1), FS_NAME(vmax)(m2, m3));
    s->max = FS_NAME(lane_max)(m0);
    s->has_nan = FS_TREE(ordered, FS_NAME(and_op)) == 0;
}

/* ---- step 2: reduce ---------------------------------------------------- */

/* Elements per block: a block's exps are summed in vector lanes (few terms per
 * lane), and block sums are added with compensation, so the relative error of
 * a row sum stays near one ulp of double for any row length. */
#define FS_BLOCK ((ptrdiff_t)256)

/* Vectors summed per lane in the row dtype before the partial sums move into
 * double accumulators: few enough terms that even in float32 a partial sum is
 * good to a few ulp. */
#define FS_SUB 4

/* One vector of the reduce step.  op picks what it stores into out, if
 * anything: softmax the exps (scaled by 1/S later), log_softmax the values
 * (x - max) / T (lowered by log S later), so the write step never goes back
 * to x and the stores overlap with the exp arithmetic.  Except for softmax,
 * the entries at the maximum are counted and left out of the sum (their
 * terms are exactly 1), so that log(S) can be formed with log1p. */
FS_INLINE FS_VR FS_NAME(reduce_vector)(const int op, FS_VR v, FS_VR mv, FS_VR m_pre,
                                       const FS_NAME(exp_consts) *c, const int unit_t, FS_R *out,
                                       ptrdiff_t len, FS_VI *at_max)
{
    FS_VR d = FS_NAME(vscaled_diff)(v, m_pre, c, unit_t);
    FS_VR e = FS_NAME(vexp_scaled)(d, c, unit_t);
    if (op != FS_LOGSUMEXP) {
        /* log values: inv_tm before s_post, the other order can overflow just
         * short of the largest finite result */
        FS_VR stored = op == FS_SOFTMAX ? e : unit_t ? d : ((v * c->s_pre - m_pre) * c->inv_tm) * c->s_post;
        if (len == FS_W) FS_NAME(vstore)(out, stored);
        else FS_NAME(vstore_tail)(out, len, stored);
    }
    if (op != FS_SOFTMAX) {
        FS_VI eq = v == mv;
        *at_max -= eq;
        e = (FS_VR)((FS_VI)e & ~eq);
    }
    return e;
}

FS_INLINE void FS_NAME(reduce_general)(const int op, const FS_R *x, FS_R *out, ptrdiff_t n, FS_R max,
                                       const fs_params *p, fs_stats *s, const int unit_t)
{
    FS_NAME(exp_consts) c;
    FS_NAME(exp_consts_init)(p, &c);
    const FS_VR mv = FS_NAME(vbroadcast)(max);
    const FS_VR m_pre = FS_NAME(vbroadcast)(max * (FS_R)p->s_pre);
    const FS_R pad = (FS_R)-INFINITY;   /* exp gives 0, never equal to the maximum */
    FS_VI at_max = {0};
    ptrdiff_t i = 0;
    while (i < n) {
        ptrdiff_t block_end = (n - i > FS_BLOCK) ? i + FS_BLOCK : n;
        FS_VACC a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        while (i + 2 * FS_W * FS_SUB <= block_end) {
            FS_VR f0 = {0}, f1 = {0};
            for (int j = 0; j < FS_SUB; j++, i += 2 * FS_W) {
                f0 += FS_NAME(reduce_vector)(op, FS_NAME(vload)(x + i), mv, m_pre, &c, unit_t,
                                             out + i, FS_W, &at_max);
                f1 += FS_NAME(reduce_vector)(op, FS_NAME(vload)(x + i + FS_W), mv, m_pre, &c, unit_t,
                                             out + i + FS_W, FS_W, &at_max);
            }
            FS_ACCUMULATE(a0, a1, f0);
            FS_ACCUMULATE(a2, a3, f1);
        }
        for (; i < block_end; i += FS_W) {
            ptrdiff_t len = block_end - i < FS_W ? block_end - i : FS_W;
            FS_VR v = len == FS_W ? FS_NAME(vload)(x + i) : FS_NAME(vload_tail)(x + i, len, pad);
            FS_VR e = FS_NAME(reduce_vector)(op, v, mv, m_pre, &c, unit_t, out + i, len, &at_max);
            FS_ACCUMULATE(a0, a1, e);
        }
        i = block_end;
        a0 = (a0 + a1) + (a2 + a3);
        fs_neumaier_add(&s->rest, &s->rest_comp, FS_TREE_F64(a0, FS_ADD_OP));
    }
    s->count = op != FS_SOFTMAX ? FS_TREE(at_max, FS_ADD_OP) : 0;
}

/* out: the row's output (unused for logsumexp, may be NULL there; may be x). */
FS_INLINE void FS_NAME(reduce_impl)(int op, const FS_R *x, FS_R *out, ptrdiff_t n, FS_R m,
                                    const fs_params *p, fs_stats *s)
{
    ptrdiff_t count = 0;
    switch (p->mode) {
    case FS_MODE_GENERAL:
        /* specialisations: each op, T == 1 or not */
#define FS_REDUCE_FOR(OP)                                                             \
        if (FS_NAME(unit_temperature)(p)) FS_NAME(reduce_general)(OP, x, out, n, m, p, s, 1); \
        else FS_NAME(reduce_general)(OP, x, out, n, m, p, s, 0);
        if (op == FS_SOFTMAX) { FS_REDUCE_FOR(FS_SOFTMAX) }
        else if (op == FS_LOG_SOFTMAX) { FS_REDUCE_FOR(FS_LOG_SOFTMAX) }
        else { FS_REDUCE_FOR(FS_LOGSUMEXP) }
#undef FS_REDUCE_FOR
        return;
    case FS_MODE_ZERO:
        for (ptrdiff_t i = 0; i < n; i++) count += x[i] == m;
        break;
    default: /* FS_MODE_INF: every finite entry weighs the same */
        for (ptrdiff_t i = 0; i < n; i++) count += x[i] != (FS_R)-INFINITY;
        break;
    }
    s->count = count;
}

/* ---- step 3: write ----------------------------------------------------- */

FS_INLINE void FS_NAME(write_impl)(int op, const FS_R *x, FS_R *out, ptrdiff_t n, FS_R m,
                                   const fs_params *p, const fs_row_result *r)
{
    if (r->kind == FS_ROW_NAN) {
        for (ptrdiff_t i = 0; i < n; i++) out[i] = (FS_R)NAN;
        return;
    }
    if (r->kind != FS_ROW_NORMAL) return;
    if (p->mode == FS_MODE_GENERAL) {
        /* out holds what the reduce step stored: exps or (x - max) / T */
        if (op == FS_SOFTMAX) {
            const FS_R inv_sum = (FS_R)r->inv_sum;
            for (ptrdiff_t i = 0; i < n; i++) out[i] *= inv_sum;
        } else {
            const FS_R log_sum = (FS_R)r->log_sum;
            for (ptrdiff_t i = 0; i < n; i++) out[i] -= log_sum;
        }
        return;
    }
    /* Limit modes: all weight sits on the selected entries, spread evenly. */
    const FS_R hit = op == FS_SOFTMAX ? (FS_R)r->inv_sum : (FS_R)-r->log_sum;
    const FS_R miss = op == FS_SOFTMAX ? (FS_R)0 : (FS_R)-INFINITY;
    if (p->mode == FS_MODE_ZERO) {
        for (ptrdiff_t i = 0; i < n; i++) out[i] = x[i] == m ? hit : miss;
    } else {
        for (ptrdiff_t i = 0; i < n; i++) out[i] = x[i] != (FS_R)-INFINITY ? hit : miss;
    }
}

/* ---- exported entry points --------------------------------------------- */

static void FS_NAME(scan)(const FS_R *x, ptrdiff_t n, fs_stats *s)
{
    FS_NAME(scan_impl)(x, n, s);
}

static void FS_NAME(reduce)(int op, const FS_R *x, FS_R *out, ptrdiff_t n, double max,
                            const fs_params *p, fs_stats *s)
{
    FS_NAME(reduce_impl)(op, x, out, n, (FS_R)max, p, s);
}

static void FS_NAME(write)(int op, const FS_R *x, FS_R *out, ptrdiff_t n, double max,
                              const fs_params *p, const fs_row_result *r)
{
    FS_NAME(write_impl)(op, x, out, n, (FS_R)max, p, r);
}

/* Rows of up to FS_SHORT vectors are kept in registers from load to store. */
#define FS_SHORT 4

/* A short row (0 < n <= FS_SHORT * FS_W, FS_MODE_GENERAL) in registers.
 * Returns 0, having written nothing, for rows with NaN or an infinite
 * maximum: the general path handles those. */
FS_INLINE int FS_NAME(row_short)(int op, const FS_R *x, FS_R *out, ptrdiff_t n, const fs_params *p)
{
    const ptrdiff_t nv = (n + FS_W - 1) / FS_W, last = n - (nv - 1) * FS_W;
    const FS_VR neg_inf = FS_NAME(vbroadcast)((FS_R)-INFINITY);
    FS_VR v[FS_SHORT];
    for (int k = 0; k < FS_SHORT; k++) {
        if (k < nv - 1) v[k] = FS_NAME(vload)(x + k * FS_W);
        else if (k == nv - 1) v[k] = FS_NAME(vload_tail)(x + k * FS_W, last, (FS_R)-INFINITY);
        else v[k] = neg_inf;
    }
    FS_VR vmax = v[0];
    FS_VI ordered = v[0] == v[0];
    for (int k = 1; k < FS_SHORT; k++) {
        vmax = FS_NAME(vmax)(vmax, v[k]);
        ordered &= v[k] == v[k];
    }
    const FS_R m = FS_NAME(lane_max)(vmax);
    if (!isfinite(m) || FS_TREE(ordered, FS_NAME(and_op)) == 0) return 0;

    FS_NAME(exp_consts) c;
    FS_NAME(exp_consts_init)(p, &c);
    const FS_VR mv = FS_NAME(vbroadcast)(m);
    const FS_VR m_pre = FS_NAME(vbroadcast)(m * (FS_R)p->s_pre);
    const int unit_t = FS_NAME(unit_temperature)(p);
    FS_VR e[FS_SHORT], sum = {0};
    FS_VI at_max = {0};
    for (int k = 0; k < FS_SHORT; k++) {
        if (k >= nv) { e[k] = (FS_VR){0}; continue; }
        FS_VR d = FS_NAME(vscaled_diff)(v[k], m_pre, &c, 0);
        e[k] = unit_t ? FS_NAME(vexp_scaled)(d, &c, 1) : FS_NAME(vexp_scaled)(d, &c, 0);
        if (op == FS_SOFTMAX) {
            sum += e[k];
        } else {   /* the maximum's terms (exactly 1) are counted apart, as in reduce */
            FS_VI eq = v[k] == mv;
            at_max -= eq;
            sum += (FS_VR)((FS_VI)e[k] & ~eq);
        }
    }
    double log_sum = 0.0;
    FS_R inv_sum = 0;
    if (op == FS_SOFTMAX) {
        inv_sum = (FS_R)(1.0 / FS_NAME(lane_sum)(sum));
    } else {
        const int count = FS_TREE(at_max, FS_ADD_OP);
        const double rest = FS_NAME(lane_sum)(sum);
        log_sum = count == 1 ? log1p(rest) : log(count + rest);
        if (op == FS_LOGSUMEXP) {
            *out = (FS_R)fs_max_plus_t_log(m, p->temperature, log_sum);
            return 1;
        }
    }
    for (int k = 0; k < FS_SHORT && k < nv; k++) {
        FS_VR res = op == FS_SOFTMAX ? e[k] * inv_sum
                    /* as in reduce_vector + write_impl */
                    : (unit_t ? v[k] - mv : ((v[k] * c.s_pre - m_pre) * c.inv_tm) * c.s_post) - (FS_R)log_sum;
        if (k < nv - 1) FS_NAME(vstore)(out + k * FS_W, res);
        else FS_NAME(vstore_tail)(out + k * FS_W, last, res);
    }
    return 1;
}

FS_INLINE void FS_NAME(row_impl)(int op, const FS_R *x, FS_R *out, ptrdiff_t n, const fs_params *p)
{
    if (n > 0 && n <= FS_SHORT * FS_W && p->mode == FS_MODE_GENERAL && FS_NAME(row_short)(op, x, out, n, p))
        return;
    fs_stats row;
    fs_stats_init(&row);
    FS_NAME(scan_impl)(x, n, &row);
    if (fs_row_kind_after_scan(&row, n, p) == FS_ROW_NORMAL) {
        for (ptrdiff_t start = 0; start < n; start += FS_CHUNK) {
            ptrdiff_t len = n - start < FS_CHUNK ? n - start : FS_CHUNK;
            fs_stats chunk;
            fs_stats_init(&chunk);
            FS_NAME(reduce_impl)(op, x + start, op == FS_LOGSUMEXP ? NULL : out + start, len,
                                 (FS_R)row.max, p, &chunk);
            fs_stats_merge_reduce(&row, &chunk);
        }
    }
    fs_row_result r;
    fs_row_finish(op, &row, n, p, &r);
    if (op == FS_LOGSUMEXP) *out = (FS_R)r.logsumexp;
    else FS_NAME(write_impl)(op, x, out, n, (FS_R)row.max, p, &r);
}

static void FS_NAME(rows)(int op, const FS_R *x, FS_R *out, ptrdiff_t rows, ptrdiff_t n,
                          const fs_params *p)
{
    const ptrdiff_t out_step = op == FS_LOGSUMEXP ? 1 : n;
    for (ptrdiff_t r = 0; r < rows; r++)
        FS_NAME(row_impl)(op, x + r * n, out + r * out_step, n, p);
}

/* The template's parameters, so the next instantiation starts clean. */
#undef FS_R
#undef FS_VR
#undef FS_VI
#undef FS_VU
#undef FS_VACC
#undef FS_ACCUMULATE
#undef FS_NAME
#undef FS_MASKED_LOAD
#undef FS_MASKED_STORE
#undef FS_VMAX_INTRINSIC
#undef FS_FNMADD
#undef FS_VMAX
#undef FS_TREE
#undef FS_EXP_MAGIC
#undef FS_EXP_MANT_BITS
#undef FS_EXP_LOG2E
#undef FS_EXP_POLY
#undef FS_W
#undef FS_BLOCK
#undef FS_SUB
#undef FS_SHORT
#undef FS_ADD_OP
