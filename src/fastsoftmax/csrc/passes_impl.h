/* The three passes over a row or chunk (max, exp-sum, write) and the
 * statistics of a row or chunk built from the first two.
 * Part of the kernel template (dtype_kernels.h), with its parameters
 * defined.  No include guard on purpose. */

/* ---- pass 1: maximum ---------------------------------------------------- */

FS_INLINE FS_R FS_NAME(max_pass)(const FS_R *x, const uint8_t *sel, ptrdiff_t n, int *has_nan)
{
    const FS_VR neg_inf = FS_NAME(vbroadcast)(-INFINITY);
    FS_VR m0 = neg_inf, m1 = neg_inf, m2 = neg_inf, m3 = neg_inf;
    /* all lanes stay -1 while no NaN was seen (v == v is false only for NaN;
     * `v != v` is scalarised by some compilers) */
    FS_VI ordered = (neg_inf == neg_inf);
    ptrdiff_t i = 0;
    for (; i + 4 * FS_W <= n; i += 4 * FS_W) {
        FS_VR v0 = FS_NAME(vload_sel)(x, sel, i), v1 = FS_NAME(vload_sel)(x, sel, i + FS_W);
        FS_VR v2 = FS_NAME(vload_sel)(x, sel, i + 2 * FS_W), v3 = FS_NAME(vload_sel)(x, sel, i + 3 * FS_W);
        ordered &= (v0 == v0) & (v1 == v1) & (v2 == v2) & (v3 == v3);
        m0 = FS_NAME(vmax)(m0, v0);
        m1 = FS_NAME(vmax)(m1, v1);
        m2 = FS_NAME(vmax)(m2, v2);
        m3 = FS_NAME(vmax)(m3, v3);
    }
    for (; i + FS_W <= n; i += FS_W) {
        FS_VR v = FS_NAME(vload_sel)(x, sel, i);
        ordered &= (v == v);
        m0 = FS_NAME(vmax)(m0, v);
    }
    if (i < n) {
        /* see FS_OVERLAP_TAIL */
        FS_VR v = n >= FS_W ? FS_NAME(vload_sel)(x, sel, n - FS_W) : FS_NAME(vload_tail_sel)(x, sel, i, n - i);
        ordered &= (v == v);
        m0 = FS_NAME(vmax)(m0, v);
    }
    m0 = FS_NAME(vmax)(FS_NAME(vmax)(m0, m1), FS_NAME(vmax)(m2, m3));
    *has_nan = FS_TREE(ordered, FS_NAME(and_op)) == 0;
    return FS_NAME(lane_max)(m0);
}

static double FS_NAME(row_max)(const void *x, ptrdiff_t n, int *has_nan)
{
    return (double)FS_NAME(max_pass)((const FS_R *)x, NULL, n, has_nan);
}

/* ---- pass 2: exp and sum -------------------------------------------------- */

/* Vectors summed per lane in the row dtype before they move into double: few
 * enough terms that even in float32 a partial sum is good to a few ulp. */
#define FS_SUB 4
/* Independent accumulators (latency hiding); a block is FS_UNROLL * FS_SUB
 * vectors.  Fewer where registers are few (16 for AVX2 and SSE2): spilled
 * accumulators cost more than the latency they hide. */
#if FS_VBYTES == 64
#define FS_UNROLL 4
#else
#define FS_UNROLL 2
#endif

/* exp((v - max) / T) for one vector, returned whole (what softmax stores);
 * its part of the row sum goes to *term: only the lanes in `fresh` (all of
 * them, or those FS_OVERLAP_TAIL has not counted yet), and except for
 * softmax without the entries at the maximum, which are counted in *at_max
 * instead (their terms are exactly 1), so that log(S) can be formed with
 * log1p. */
FS_INLINE FS_VR FS_NAME(exp_term)(const int op, FS_VR v, FS_VR mv, FS_VR m_pre,
                                  const FS_NAME(exp_consts) *c, const int unit_t, FS_VI fresh,
                                  FS_VI *at_max, FS_VR *term)
{
    FS_VR e = FS_NAME(vexp_scaled)(FS_NAME(vscaled_diff)(v, m_pre, c, unit_t), c, unit_t);
    FS_ROUNDED(e);   /* the same sum in every inlined copy (simd.h) */
    FS_VI keep = fresh;
    if (op != FS_SOFTMAX) {
        FS_VI eq = (v == mv) & fresh;
        *at_max -= eq;
        keep &= ~eq;
    }
    *term = (FS_VR)((FS_VI)e & keep);
    return e;
}

/* What a pass of exps relative to the maximum m needs: the exp's constants,
 * and m and m * s_pre in every lane (see vscaled_diff). */
FS_INLINE void FS_NAME(exp_pass_init)(const fs_params *p, FS_R m, FS_NAME(exp_consts) *c, FS_VR *mv, FS_VR *m_pre)
{
    FS_NAME(exp_consts_init)(p, c);
    *mv = FS_NAME(vbroadcast)(m);
    *m_pre = FS_NAME(vbroadcast)(m * (FS_R)p->s_pre);
}

/* All lanes: the `fresh` of a vector no earlier one overlaps. */
#define FS_ALL_LANES ((FS_VI){0} == (FS_VI){0})

/* Adds the sum of exp((x - m) / T) over x[0:n] (without the terms at the
 * maximum, which are counted, except for softmax) to *s.  store_exps: softmax
 * keeps the exps in `store` for the write pass (store may be x).  ahead: the
 * next row or chunk (ahead_n elements), fetched into the caches meanwhile:
 * this pass is bound by arithmetic, so the memory system is free to bring
 * in what the next max pass will read. */
FS_INLINE void FS_NAME(exp_sum_pass)(const int op, const FS_R *x, const uint8_t *sel, FS_R *store,
                                     const int store_exps,
                                     ptrdiff_t n, FS_R m, const fs_params *p, const int unit_t, fs_stats *s,
                                     const FS_R *ahead, ptrdiff_t ahead_n)
{
    FS_NAME(exp_consts) c;
    FS_VR mv, m_pre;
    FS_NAME(exp_pass_init)(p, m, &c, &mv, &m_pre);
    FS_VI at_max = {0};
    FS_VACC lo = {0}, hi = {0};
    ptrdiff_t i = 0;
    const ptrdiff_t block = FS_UNROLL * FS_SUB * FS_W;
    const FS_VR last_x = n >= FS_W ? FS_NAME(vload_sel)(x, sel, n - FS_W) : mv;
    for (; i + block <= n; i += block) {
        FS_VR f[FS_UNROLL] = {{0}};
        for (int j = 0; j < FS_SUB; j++) {
            for (int u = 0; u < FS_UNROLL; u++) {
                const ptrdiff_t at = i + (j * FS_UNROLL + u) * FS_W;
                if (ahead && at < ahead_n) __builtin_prefetch(ahead + at, 0, 2);
                /* a selection enters as the lanes counted, not as -inf
                 * loaded: one AND instead of a blend before the exp */
                const FS_VI counted = sel ? FS_NAME(sel_lanes)(sel + at) : FS_ALL_LANES;
                FS_VR term, e = FS_NAME(exp_term)(op, FS_NAME(vload)(x + at), mv, m_pre, &c, unit_t,
                                                  counted, &at_max, &term);
                if (store_exps) FS_NAME(vstore)(store + at, sel ? (FS_VR)((FS_VI)e & counted) : e);
                f[u] += term;
            }
        }
        for (int half = FS_UNROLL / 2; half >= 1; half /= 2)   /* pairwise */
            for (int u = 0; u < half; u++) f[u] += f[u + half];
        FS_VR block_sum = f[0];
        FS_BLOCK_FOLD(lo, hi, block_sum, s);
    }
    FS_VR tail_sum = {0};
    for (int count = 0; i + FS_W <= n; i += FS_W, count++) {
        FS_VR term, e = FS_NAME(exp_term)(op, FS_NAME(vload_sel)(x, sel, i), mv, m_pre, &c, unit_t, FS_ALL_LANES,
                                          &at_max, &term);
        if (store_exps) FS_NAME(vstore)(store + i, e);
        tail_sum += term;
        if (count == FS_SUB - 1) {
            FS_BLOCK_FOLD(lo, hi, tail_sum, s);
            tail_sum = (FS_VR){0};
            count = -1;
        }
    }
    if (i < n && n >= FS_W) {   /* FS_OVERLAP_TAIL */
        FS_VR term, e = FS_NAME(exp_term)(op, last_x, mv, m_pre, &c, unit_t, FS_NAME(last_lanes)(n - i),
                                          &at_max, &term);
        if (store_exps) FS_NAME(vstore)(store + n - FS_W, e);
        tail_sum += term;
    } else if (i < n) {
        /* -inf padding: its exp is 0 and it never equals the maximum */
        FS_VR term, e = FS_NAME(exp_term)(op, FS_NAME(vload_tail_sel)(x, sel, i, n - i), mv, m_pre,
                                          &c, unit_t, FS_ALL_LANES, &at_max, &term);
        if (store_exps) FS_NAME(vstore_tail)(store + i, n - i, e);
        tail_sum += term;
    }
    FS_BLOCK_FOLD(lo, hi, tail_sum, s);
    FS_ROW_FOLD(lo, hi, s);
    if (op != FS_SOFTMAX) s->count += FS_TREE(at_max, FS_ADD_OP);
}

/* ---- pass 3: write -------------------------------------------------------- */

#ifndef FS_MAP_KINDS
#define FS_MAP_KINDS   /* defined once for every instantiation */
/* What a write pass stores for each element. */
enum { FS_MAP_SCALE = 0,   /* softmax from stored exps: src * inv */
       FS_MAP_LOG = 1,     /* log_softmax from x: (x - m) / T - log_sum */
       FS_MAP_EXP = 2 };   /* softmax from x: exp((x - m) / T) * inv */
#endif

typedef struct {
    FS_NAME(exp_consts) c;
    FS_VR m_pre, a;        /* a: inv (softmax) or log_sum (log_softmax) */
} FS_NAME(map_consts);

FS_INLINE FS_VR FS_NAME(map_vec)(const int kind, FS_VR v, const FS_NAME(map_consts) *k, const int unit_t)
{
    if (kind == FS_MAP_SCALE) return v * k->a;
    if (kind == FS_MAP_LOG) return FS_NAME(vscaled_log)(v, k->m_pre, &k->c, unit_t) - k->a;
    return FS_NAME(vexp_scaled)(FS_NAME(vscaled_diff)(v, k->m_pre, &k->c, unit_t), &k->c, unit_t) * k->a;
}

/* A write pass: dst[i] = map(src[i]); src may be dst.  An aligned body (see
 * head_to_align), the head before it masked, the tail overlapping
 * (FS_OVERLAP_TAIL). */
FS_INLINE void FS_NAME(map_pass)(const int kind, const FS_R *src, const uint8_t *sel, FS_R *dst, ptrdiff_t n,
                                 FS_R m, FS_R a, const fs_params *p, const int unit_t, const int stream)
{
    /* exps stored by a selecting pass are already 0 where not selected */
    if (kind == FS_MAP_SCALE) sel = NULL;
    FS_NAME(map_consts) k;
    FS_NAME(exp_consts_init)(p, &k.c);
    k.m_pre = FS_NAME(vbroadcast)(m * (FS_R)p->s_pre);
    k.a = FS_NAME(vbroadcast)(a);
    const FS_VR last = n >= FS_W ? FS_NAME(vload_sel)(src, sel, n - FS_W) : k.a;
    const ptrdiff_t head = FS_NAME(head_to_align)(dst, n, stream);
    ptrdiff_t i = head;
    /* -inf padding read by the tails is harmless for the other maps too: their lanes are not stored */
    if (head) FS_NAME(vstore_tail)(dst, head, FS_NAME(map_vec)(kind, FS_NAME(vload_tail_sel)(src, sel, 0, head), &k, unit_t));
    for (; i + FS_W <= n; i += FS_W)
        FS_NAME(vstore_out)(dst + i, FS_NAME(map_vec)(kind, FS_NAME(vload_sel)(src, sel, i), &k, unit_t), stream);
    if (i < n && n >= FS_W)
        FS_NAME(vstore)(dst + n - FS_W, FS_NAME(map_vec)(kind, last, &k, unit_t));
    else if (i < n)
        FS_NAME(vstore_tail)(dst + i, n - i, FS_NAME(map_vec)(kind, FS_NAME(vload_tail_sel)(src, sel, i, n - i), &k, unit_t));
}

/* The limits T -> 0 and T -> inf: all weight on the selected entries, evenly. */
FS_INLINE int64_t FS_NAME(limit_count)(const FS_R *x, const uint8_t *sel, ptrdiff_t n, FS_R m, int mode)
{
    int64_t count = 0;
    if (mode == FS_MODE_ZERO) for (ptrdiff_t i = 0; i < n; i++) count += FS_NAME(entry_sel)(x, sel, i) == m;
    else for (ptrdiff_t i = 0; i < n; i++) count += FS_NAME(entry_sel)(x, sel, i) != (FS_R)-INFINITY;
    return count;
}

/* One entry in a limit mode: the selected entries (at the maximum for T ->
 * 0, not -inf for T -> inf) share all the weight.  log_softmax at a tiny
 * but nonzero T is the one case where an entry left out is not -inf: its
 * (x - max) / T can still be finite (a subnormal x - max), so it is
 * computed; the exps are all 0 there, so log S is log(count) exactly. */
FS_INLINE FS_R FS_NAME(limit_value)(int op, FS_R v, const fs_params *p, const fs_row_result *r)
{
    const FS_R m = (FS_R)r->max;
    const int selected = p->mode == FS_MODE_ZERO ? v == m : v != (FS_R)-INFINITY;
    if (op == FS_SOFTMAX) return selected ? (FS_R)r->inv_sum : (FS_R)0;
    if (selected) return (FS_R)-r->log_sum;
    if (p->mode == FS_MODE_ZERO && p->temperature != 0.0)
        return (FS_R)(((double)v - (double)m) / p->temperature - r->log_sum);
    return (FS_R)-INFINITY;
}

FS_INLINE void FS_NAME(limit_write)(int op, const FS_R *x, const uint8_t *sel, FS_R *out, ptrdiff_t n,
                                    const fs_params *p, const fs_row_result *r)
{
    for (ptrdiff_t i = 0; i < n; i++) out[i] = FS_NAME(limit_value)(op, FS_NAME(entry_sel)(x, sel, i), p, r);
}

/* The write pass for a row or chunk whose statistics are final. exps: where
 * softmax's exp-sum pass stored the exps, or NULL to recompute them from x. */
FS_INLINE void FS_NAME(write_row)(int op, const FS_R *x, const uint8_t *sel, const FS_R *exps, FS_R *out,
                                  ptrdiff_t n, const fs_params *p, const fs_row_result *r, const int stream)
{
    if (r->kind == FS_ROW_NAN || r->kind == FS_ROW_MASKED) {
        const FS_R fill = r->kind == FS_ROW_NAN ? (FS_R)NAN : op == FS_SOFTMAX ? (FS_R)0 : (FS_R)-INFINITY;
        for (ptrdiff_t i = 0; i < n; i++) out[i] = fill;
    } else if (r->kind != FS_ROW_NORMAL) {
        return;
    } else if (p->mode != FS_MODE_GENERAL) {
        FS_NAME(limit_write)(op, x, sel, out, n, p, r);
    } else if (op == FS_LOG_SOFTMAX) {
        if (p->unit) FS_NAME(map_pass)(FS_MAP_LOG, x, sel, out, n, (FS_R)r->max, (FS_R)r->log_sum, p, 1, stream);
        else FS_NAME(map_pass)(FS_MAP_LOG, x, sel, out, n, (FS_R)r->max, (FS_R)r->log_sum, p, 0, stream);
    } else if (exps) {
        FS_NAME(map_pass)(FS_MAP_SCALE, exps, NULL, out, n, 0, (FS_R)r->inv_sum, p, 1, stream);
    } else {
        if (p->unit) FS_NAME(map_pass)(FS_MAP_EXP, x, sel, out, n, (FS_R)r->max, (FS_R)r->inv_sum, p, 1, stream);
        else FS_NAME(map_pass)(FS_MAP_EXP, x, sel, out, n, (FS_R)r->max, (FS_R)r->inv_sum, p, 0, stream);
    }
}

/* ---- statistics of a row or chunk ------------------------------------------ */

/* Max, then (normal rows) the exp-sum pass relative to that max; the exps
 * are kept in `store` when it is not NULL. */
FS_INLINE void FS_NAME(stats_pass)(int op, const FS_R *x, const uint8_t *sel, FS_R *store, ptrdiff_t n,
                                   const fs_params *p, fs_stats *s, const FS_R *ahead, ptrdiff_t ahead_n)
{
    fs_stats_init(s);
    const FS_R m = FS_NAME(max_pass)(x, sel, n, &s->has_nan);
    s->max = m;
    s->any_entry = n > 0 && (!sel || m != (FS_R)-INFINITY || s->has_nan || FS_NAME(any_selected)(sel, n));
    if (s->has_nan || !s->any_entry) return;
    if (p->mode != FS_MODE_GENERAL) {
        s->count = FS_NAME(limit_count)(x, sel, n, m, p->mode);
        return;
    }
    if (!isfinite(m)) return;   /* the row is NaN, or this chunk adds nothing */
    const int keep = store != NULL;
#define FS_EXP_SUM(OP, UNIT) \
    if (keep) FS_NAME(exp_sum_pass)(OP, x, sel, store, 1, n, m, p, UNIT, s, ahead, ahead_n); \
    else FS_NAME(exp_sum_pass)(OP, x, sel, NULL, 0, n, m, p, UNIT, s, ahead, ahead_n);
    if (op == FS_SOFTMAX) {
        if (p->unit) { FS_EXP_SUM(FS_SOFTMAX, 1) } else { FS_EXP_SUM(FS_SOFTMAX, 0) }
    } else {
        if (p->unit) { FS_EXP_SUM(FS_LOGSUMEXP, 1) } else { FS_EXP_SUM(FS_LOGSUMEXP, 0) }
    }
#undef FS_EXP_SUM
    if (op == FS_SOFTMAX) s->count = 0;
}

