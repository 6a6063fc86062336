/* The row kernels, written once and instantiated per dtype by row_kernels.c
 * (which defines FS_R, FS_VR, FS_VI, FS_VU, FS_NAME, FS_ACCUMULATE and the
 * FS_EXP_* constants).  No include guard on purpose. */

#include "vexp.h"

#define FS_W ((ptrdiff_t)(sizeof(FS_VR) / sizeof(FS_R)))

FS_INLINE FS_VR FS_NAME(vload)(const FS_R *p) { FS_VR v; memcpy(&v, p, sizeof v); return v; }
FS_INLINE void FS_NAME(vstore)(FS_R *p, FS_VR v) { memcpy(p, &v, sizeof v); }

/* The last n < FS_W elements as a full vector; the missing lanes read `pad`. */
FS_INLINE FS_VR FS_NAME(vload_tail)(const FS_R *p, ptrdiff_t n, FS_R pad)
{
    FS_R buf[sizeof(FS_VR) / sizeof(FS_R)];
    for (ptrdiff_t i = 0; i < FS_W; i++) buf[i] = pad;
    memcpy(buf, p, (size_t)n * sizeof(FS_R));
    return FS_NAME(vload)(buf);
}

FS_INLINE void FS_NAME(vstore_tail)(FS_R *p, ptrdiff_t n, FS_VR v)
{
    FS_R buf[sizeof(FS_VR) / sizeof(FS_R)];
    FS_NAME(vstore)(buf, v);
    memcpy(p, buf, (size_t)n * sizeof(FS_R));
}

FS_INLINE FS_VR FS_NAME(vmax)(FS_VR a, FS_VR b) { return FS_NAME(vselect)(b > a, b, a); }

/* ---- parameters -------------------------------------------------------- */

void FS_NAME(params_init)(double temperature, fs_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = temperature;
    if (temperature == 0.0) { p->mode = FS_MODE_ZERO; return; }
    if (isinf(temperature)) { p->mode = FS_MODE_INF; return; }

    int e = ilogb(temperature);
    if (e < FS_EXP_E_MIN) e = FS_EXP_E_MIN;
    if (e > FS_EXP_E_MAX) e = FS_EXP_E_MAX;
    double tm = ldexp(temperature, -e);
    if (tm < FS_EXP_TM_ZERO) { p->mode = FS_MODE_ZERO; return; }
    if (tm > FS_EXP_TM_INF) { p->mode = FS_MODE_INF; return; }

    p->mode = FS_MODE_GENERAL;
    p->scale = ldexp(1.0, -e);
    p->k_scale = (FS_R)(1.4426950408889634 / tm);
    p->inv_tm = (FS_R)(1.0 / tm);
    /* ln2 * tm in double-double, then split so c_hi keeps FS_EXP_C_HI_BITS bits. */
    const double ln2_hi = 0.6931471805599453, ln2_lo = 2.3190468138462996e-17;
    double c = ln2_hi * tm;
    double c_err = fma(ln2_hi, tm, -c) + ln2_lo * tm;
    int ce = ilogb(c);
    double c_hi = ldexp(nearbyint(ldexp(c, FS_EXP_C_HI_BITS - 1 - ce)), ce - (FS_EXP_C_HI_BITS - 1));
    p->c_hi = c_hi;
    p->c_lo = (FS_R)((c - c_hi) + c_err);
}

/* ---- step 1: scan ------------------------------------------------------ */

FS_INLINE void FS_NAME(scan_impl)(const FS_R *x, ptrdiff_t n, fs_stats *s)
{
    const FS_VR neg_inf = FS_NAME(vbroadcast)(-INFINITY);
    FS_VR m0 = neg_inf, m1 = neg_inf, m2 = neg_inf, m3 = neg_inf;
    FS_VI nan_seen = {0};
    ptrdiff_t i = 0;
    for (; i + 4 * FS_W <= n; i += 4 * FS_W) {
        FS_VR v0 = FS_NAME(vload)(x + i), v1 = FS_NAME(vload)(x + i + FS_W);
        FS_VR v2 = FS_NAME(vload)(x + i + 2 * FS_W), v3 = FS_NAME(vload)(x + i + 3 * FS_W);
        nan_seen |= (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3);
        m0 = FS_NAME(vmax)(m0, v0);
        m1 = FS_NAME(vmax)(m1, v1);
        m2 = FS_NAME(vmax)(m2, v2);
        m3 = FS_NAME(vmax)(m3, v3);
    }
    for (; i + FS_W <= n; i += FS_W) {
        FS_VR v = FS_NAME(vload)(x + i);
        nan_seen |= (v != v);
        m0 = FS_NAME(vmax)(m0, v);
    }
    if (i < n) {
        FS_VR v = FS_NAME(vload_tail)(x + i, n - i, (FS_R)-INFINITY);
        nan_seen |= (v != v);
        m0 = FS_NAME(vmax)(m0, v);
    }
    m0 = FS_NAME(vmax)(FS_NAME(vmax)(m0, m1), FS_NAME(vmax)(m2, m3));
    FS_R m = m0[0];
    int any_nan = 0;
    for (ptrdiff_t l = 0; l < FS_W; l++) {
        if (m0[l] > m) m = m0[l];
        any_nan |= nan_seen[l] != 0;
    }
    s->max = m;
    s->has_nan = any_nan;
}

/* ---- step 2: reduce ---------------------------------------------------- */

/* Elements per block: a block's exps are summed in vector lanes (few terms per
 * lane), and block sums are added with compensation, so the relative error of
 * a row sum stays near one ulp of double for any row length. */
#define FS_BLOCK ((ptrdiff_t)256)

/* One vector of the reduce step: store the exps if asked, count the entries at
 * the maximum, and add the others' exps to the accumulators. */
FS_INLINE void FS_NAME(reduce_vector)(FS_VR v, FS_VR mv, const FS_NAME(exp_consts) *c,
                                      FS_R *exps, ptrdiff_t len, FS_VI *at_max,
                                      fs_vacc *acc_lo, fs_vacc *acc_hi)
{
    FS_VR e = FS_NAME(vexp_shifted)(v, mv, c);
    if (exps) {
        if (len == FS_W) FS_NAME(vstore)(exps, e);
        else FS_NAME(vstore_tail)(exps, len, e);
    }
    /* The maximum's own terms are exactly 1: they are counted, not summed, so
     * that log(S) can be formed with log1p. */
    FS_VI eq = v == mv;
    *at_max -= eq;
    e = (FS_VR)((FS_VI)e & ~eq);
    FS_ACCUMULATE(*acc_lo, *acc_hi, e);
}

FS_INLINE void FS_NAME(reduce_general)(const FS_R *x, FS_R *exps, ptrdiff_t n, FS_R max,
                                       const fs_params *p, fs_stats *s)
{
    FS_NAME(exp_consts) c;
    FS_NAME(exp_consts_init)(p, &c);
    const FS_VR mv = FS_NAME(vbroadcast)(max);
    const FS_R pad = (FS_R)-INFINITY;   /* exp gives 0, never equal to the maximum */
    FS_VI at_max = {0};
    ptrdiff_t i = 0;
    while (i < n) {
        ptrdiff_t block_end = (n - i > FS_BLOCK) ? i + FS_BLOCK : n;
        fs_vacc a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (; i + 2 * FS_W <= block_end; i += 2 * FS_W) {
            FS_NAME(reduce_vector)(FS_NAME(vload)(x + i), mv, &c, exps ? exps + i : NULL, FS_W,
                                   &at_max, &a0, &a1);
            FS_NAME(reduce_vector)(FS_NAME(vload)(x + i + FS_W), mv, &c,
                                   exps ? exps + i + FS_W : NULL, FS_W, &at_max, &a2, &a3);
        }
        for (; i < block_end; i += FS_W) {
            ptrdiff_t len = block_end - i < FS_W ? block_end - i : FS_W;
            FS_VR v = len == FS_W ? FS_NAME(vload)(x + i) : FS_NAME(vload_tail)(x + i, len, pad);
            FS_NAME(reduce_vector)(v, mv, &c, exps ? exps + i : NULL, len, &at_max, &a0, &a1);
        }
        i = block_end;
        fs_neumaier_add(&s->rest, &s->rest_comp, fs_vacc_hsum((a0 + a1) + (a2 + a3)));
    }
    int64_t count = 0;
    for (ptrdiff_t l = 0; l < FS_W; l++) count += at_max[l];
    s->count = count;
}

FS_INLINE void FS_NAME(reduce_impl)(const FS_R *x, FS_R *exps, ptrdiff_t n, FS_R m,
                                    const fs_params *p, fs_stats *s)
{
    ptrdiff_t count = 0;
    switch (p->mode) {
    case FS_MODE_GENERAL:
        FS_NAME(reduce_general)(x, exps, n, m, p, s);
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
        if (op == FS_SOFTMAX) {
            const FS_R inv_sum = (FS_R)r->inv_sum;
            for (ptrdiff_t i = 0; i < n; i++) out[i] *= inv_sum;
        } else {
            const FS_R scale = (FS_R)p->scale, inv_tm = (FS_R)p->inv_tm;
            const FS_R log_sum = (FS_R)r->log_sum;
            for (ptrdiff_t i = 0; i < n; i++) out[i] = ((x[i] - m) * scale) * inv_tm - log_sum;
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

void FS_CLONES FS_NAME(scan)(const FS_R *x, ptrdiff_t n, fs_stats *s)
{
    FS_NAME(scan_impl)(x, n, s);
}

void FS_CLONES FS_NAME(reduce)(const FS_R *x, FS_R *exps, ptrdiff_t n, double max,
                               const fs_params *p, fs_stats *s)
{
    FS_NAME(reduce_impl)(x, exps, n, (FS_R)max, p, s);
}

void FS_CLONES FS_NAME(write)(int op, const FS_R *x, FS_R *out, ptrdiff_t n, double max,
                              const fs_params *p, const fs_row_result *r)
{
    FS_NAME(write_impl)(op, x, out, n, (FS_R)max, p, r);
}

void FS_CLONES FS_NAME(row)(int op, const FS_R *x, FS_R *out, ptrdiff_t n, const fs_params *p)
{
    fs_stats row;
    fs_stats_init(&row);
    FS_NAME(scan_impl)(x, n, &row);
    if (fs_row_kind_after_scan(&row, n, p) == FS_ROW_NORMAL) {
        FS_R *exps = (op == FS_SOFTMAX && p->mode == FS_MODE_GENERAL) ? out : NULL;
        for (ptrdiff_t start = 0; start < n; start += FS_CHUNK) {
            ptrdiff_t len = n - start < FS_CHUNK ? n - start : FS_CHUNK;
            fs_stats chunk;
            fs_stats_init(&chunk);
            FS_NAME(reduce_impl)(x + start, exps ? exps + start : NULL, len, (FS_R)row.max, p, &chunk);
            fs_stats_merge_reduce(&row, &chunk);
        }
    }
    fs_row_result r;
    fs_row_finish(&row, n, p, &r);
    if (op == FS_LOGSUMEXP) *out = (FS_R)r.logsumexp;
    else FS_NAME(write_impl)(op, x, out, n, (FS_R)row.max, p, &r);
}

#undef FS_W
#undef FS_BLOCK
