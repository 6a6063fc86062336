/* The kernels, written once and instantiated per dtype and instruction set by
 * row_kernels_isa.h, which defines the parameters: FS_R (the dtype), FS_VR /
 * FS_VI / FS_VU (vectors of it and of same-width ints), FS_VACC and
 * FS_ACCUMULATE (double accumulation), FS_NAME (symbol suffixes), FS_TREE
 * (lane reductions), the optional FS_MASKED_* / FS_VMAX_INTRINSIC / FS_FMA /
 * FS_STREAM, and the FS_EXP_* constants.  No include guard on purpose. */

#include "vexp.h"

#define FS_W ((ptrdiff_t)(sizeof(FS_VR) / sizeof(FS_R)))

FS_INLINE FS_VR FS_NAME(vload)(const FS_R *p) { FS_VR v; memcpy(&v, p, sizeof v); return v; }
FS_INLINE void FS_NAME(vstore)(FS_R *p, FS_VR v) { memcpy(p, &v, sizeof v); }

/* The first n < FS_W elements as a full vector; the missing lanes read `pad`. */
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

/* Loads and stores of n <= FS_W elements. */
FS_INLINE FS_VR FS_NAME(vload_n)(const FS_R *p, ptrdiff_t n, FS_R pad)
{
    return n == FS_W ? FS_NAME(vload)(p) : FS_NAME(vload_tail)(p, n, pad);
}
FS_INLINE void FS_NAME(vstore_n)(FS_R *p, ptrdiff_t n, FS_VR v)
{
    if (n == FS_W) FS_NAME(vstore)(p, v);
    else FS_NAME(vstore_tail)(p, n, v);
}

FS_INLINE FS_VI FS_NAME(and_op)(FS_VI a, FS_VI b) { return a & b; }

/* Loops over a fixed handful of vectors are unrolled, so that the vectors
 * live in registers rather than in an array on the stack. */
#if defined(__clang__)
#define FS_UNROLL_ALL _Pragma("clang loop unroll(full)")
#else
#define FS_UNROLL_ALL _Pragma("GCC unroll 16")
#endif

/* Whether every lane of a comparison result is true. */
FS_INLINE int FS_NAME(all_set)(FS_VI m)
{
#ifdef FS_ALL_SET
    return FS_ALL_SET(m);
#else
    return FS_TREE(m, FS_NAME(and_op)) != 0;
#endif
}

/* Lanes that are neither NaN nor infinite. */
FS_INLINE FS_VI FS_NAME(finite)(FS_VR v) { return (v - v) == (v - v); }
#define FS_ADD_OP(a, b) ((a) + (b))

/* NaN-blind maximum: scans track NaN separately. */
FS_INLINE FS_VR FS_NAME(vmax)(FS_VR a, FS_VR b) { return FS_VMAX(a, b); }

FS_INLINE FS_R FS_NAME(lane_max)(FS_VR v)
{
#define FS_OP_MAX(a, b) FS_VMAX(a, b)
    return FS_TREE(v, FS_OP_MAX);
#undef FS_OP_MAX
}

/* Sum of a vector's lanes in double. */
FS_INLINE double FS_NAME(lane_sum)(FS_VR v)
{
    FS_VACC lo = {0}, hi = {0};
    FS_ACCUMULATE(lo, hi, v);
    lo += hi;
    return FS_TREE_F64(lo, FS_ADD_OP);
}

/* Stores of a write pass: non-temporal when asked (an output much larger than
 * the caches, so the stores neither read the lines first nor evict x). */
FS_INLINE void FS_NAME(vstore_out)(FS_R *p, FS_VR v, const int stream)
{
#ifdef FS_STREAM
    if (stream) { FS_STREAM(p, v); return; }
#endif
    (void)stream;
    FS_NAME(vstore)(p, v);
}

/* Elements before p reaches a whole vector's alignment: the write passes
 * store aligned vectors, since a store that straddles two cache lines costs
 * two (NumPy's own buffers are only 16-byte aligned), and non-temporal
 * stores need the alignment.  Short rows are not worth the extra head. */
FS_INLINE ptrdiff_t FS_NAME(head_to_align)(const FS_R *p, ptrdiff_t n, const int stream)
{
    const ptrdiff_t head = (ptrdiff_t)(((sizeof(FS_VR) - ((uintptr_t)p % sizeof(FS_VR))) % sizeof(FS_VR)) / sizeof(FS_R));
    if (stream) return (uintptr_t)p % sizeof(FS_R) || head > n ? n : head;
    return n >= 4 * FS_W && (uintptr_t)p % sizeof(FS_R) == 0 ? head : 0;
}

FS_INLINE void FS_NAME(stream_fence)(const int stream)
{
#ifdef FS_STREAM
    if (stream) _mm_sfence();
#endif
    (void)stream;
}

/* Rows of at least FS_W elements end with a full vector over their last FS_W
 * elements, overlapping the vector before, rather than with a masked one
 * (masked stores are slow on some CPUs, AMD Zen 4 among them).  Lanes
 * already counted are masked out of sums; stores rewrite the overlapped
 * lanes with the same values; and the last vector of x is loaded before
 * anything is stored, so in-place calls (out == x) still read the input. */
FS_INLINE FS_VI FS_NAME(last_lanes)(ptrdiff_t len)
{
    FS_VI lane;
    for (ptrdiff_t l = 0; l < FS_W; l++) lane[l] = (__typeof__(lane[0]))l;
    return lane >= (FS_VI){0} + (__typeof__(lane[0]))(FS_W - len);
}

/* ---- where= selections ------------------------------------------------- */

/* A selection is one byte per entry, nonzero where the entry takes part
 * (NumPy's bool).  Every pass takes one, or NULL for none: the passes are
 * inlined, so a NULL literal compiles the selection away. */
FS_INLINE FS_VI FS_NAME(sel_lanes)(const uint8_t *sel)
{
#ifdef FS_SEL_LANES
    return FS_SEL_LANES(sel);
#else
    typedef uint8_t sel_bytes __attribute__((vector_size(sizeof(FS_VR) / sizeof(FS_R))));
    sel_bytes b;
    memcpy(&b, sel, sizeof b);
    return __builtin_convertvector(b, FS_VI) != (FS_VI){0};
#endif
}

FS_INLINE FS_VI FS_NAME(sel_lanes_n)(const uint8_t *sel, ptrdiff_t n)
{
    uint8_t buf[sizeof(FS_VR) / sizeof(FS_R)] = {0};
    memcpy(buf, sel, (size_t)n);
    return FS_NAME(sel_lanes)(buf);
}

/* The vector at x + at, with -inf where not selected. */
FS_INLINE FS_VR FS_NAME(vload_sel)(const FS_R *x, const uint8_t *sel, ptrdiff_t at)
{
    if (!sel) return FS_NAME(vload)(x + at);
    FS_VR v = FS_NAME(vload)(x + at);
    return FS_NAME(vselect)(FS_NAME(sel_lanes)(sel + at), v, FS_NAME(vbroadcast)((FS_R)-INFINITY));
}

/* The len < FS_W entries at x + at, -inf in the missing and unselected lanes. */
FS_INLINE FS_VR FS_NAME(vload_tail_sel)(const FS_R *x, const uint8_t *sel, ptrdiff_t at, ptrdiff_t len)
{
    FS_VR v = FS_NAME(vload_tail)(x + at, len, (FS_R)-INFINITY);
    if (!sel) return v;
    return FS_NAME(vselect)(FS_NAME(sel_lanes_n)(sel + at, len), v, FS_NAME(vbroadcast)((FS_R)-INFINITY));
}

/* One entry, -inf where not selected. */
FS_INLINE FS_R FS_NAME(entry_sel)(const FS_R *x, const uint8_t *sel, ptrdiff_t i)
{
    return sel && !sel[i] ? (FS_R)-INFINITY : x[i];
}

/* Whether a selection has any entry: asked only of rows whose maximum is
 * -inf, since a larger maximum proves it. */
FS_INLINE int FS_NAME(any_selected)(const uint8_t *sel, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        if (sel[i]) return 1;
    return 0;
}

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
    FS_VI keep = fresh;
    if (op != FS_SOFTMAX) {
        FS_VI eq = (v == mv) & fresh;
        *at_max -= eq;
        keep &= ~eq;
    }
    *term = (FS_VR)((FS_VI)e & keep);
    return e;
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
    FS_NAME(exp_consts_init)(p, &c);
    const FS_VR mv = FS_NAME(vbroadcast)(m);
    const FS_VR m_pre = FS_NAME(vbroadcast)(m * (FS_R)p->s_pre);
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

/* ---- short rows in registers -------------------------------------------- */

/* Rows of up to FS_SHORT vectors are kept in registers from load to store. */
#define FS_SHORT 8

/* A short row (0 < n <= FS_SHORT * FS_W, FS_MODE_GENERAL).  Returns 0,
 * having written nothing, for rows with NaN or an infinite maximum: the
 * general path handles those. */
FS_INLINE int FS_NAME(row_short)(const int op, const FS_R *x, FS_R *out, ptrdiff_t n, const fs_params *p,
                                 const FS_NAME(exp_consts) *c, const int unit_t)
{
    const ptrdiff_t nv = (n + FS_W - 1) / FS_W, last = n - (nv - 1) * FS_W;
    /* the last vector: full and overlapping when the row allows it
     * (FS_OVERLAP_TAIL), its fresh lanes marked; masked otherwise */
    const int overlap = n >= FS_W;
    const FS_R *last_at = overlap ? x + n - FS_W : x + (nv - 1) * FS_W;
    const FS_VI fresh = FS_NAME(last_lanes)(last);
    FS_VR v[FS_SHORT];
    FS_VR vmax = FS_NAME(vbroadcast)((FS_R)-INFINITY);
    FS_VI ordered = vmax == vmax;
    FS_UNROLL_ALL
    for (int k = 0; k < FS_SHORT; k++) {
        if (k >= nv) break;
        v[k] = k < nv - 1 ? FS_NAME(vload)(x + k * FS_W)
             : overlap ? FS_NAME(vload)(last_at) : FS_NAME(vload_tail)(last_at, last, (FS_R)-INFINITY);
        vmax = FS_NAME(vmax)(vmax, v[k]);
        ordered &= v[k] == v[k];
    }
    if (!FS_NAME(all_set)(ordered)) return 0;
    const FS_R m = FS_NAME(lane_max)(vmax);
    if (!isfinite(m)) return 0;

    const FS_VR mv = FS_NAME(vbroadcast)(m);
    const FS_VR m_pre = FS_NAME(vbroadcast)(m * (FS_R)p->s_pre);
    FS_VR sum = {0};
    FS_VI at_max = {0};
    FS_UNROLL_ALL
    for (int k = 0; k < FS_SHORT; k++) {
        if (k >= nv) break;
        FS_VR term, e = FS_NAME(exp_term)(op, v[k], mv, m_pre, c, unit_t,
                                          k == nv - 1 && overlap ? fresh : FS_ALL_LANES, &at_max, &term);
        sum += term;
        if (op == FS_SOFTMAX) v[k] = e;
    }
    FS_VR scale, shift;
    if (op == FS_SOFTMAX) {
        /* at most FS_SHORT terms per lane and a pairwise lane sum: a few ulp */
        scale = FS_NAME(vbroadcast)((FS_R)1 / FS_TREE(sum, FS_ADD_OP));
        shift = (FS_VR){0};
    } else {
        const int count = FS_TREE(at_max, FS_ADD_OP);
        const double rest = FS_NAME(lane_sum)(sum);
        const double log_sum = count == 1 ? log1p(rest) : log(count + rest);
        if (op == FS_LOGSUMEXP) {
            *out = (FS_R)fs_max_plus_t_log(m, p->temperature, log_sum);
            return 1;
        }
        shift = FS_NAME(vbroadcast)((FS_R)log_sum);
    }
    FS_UNROLL_ALL
    for (int k = 0; k < FS_SHORT; k++) {
        if (k >= nv) break;
        FS_VR r = op == FS_SOFTMAX ? v[k] * scale : FS_NAME(vscaled_log)(v[k], m_pre, c, unit_t) - shift;
        if (k < nv - 1) FS_NAME(vstore)(out + k * FS_W, r);
        else if (overlap) FS_NAME(vstore)(out + n - FS_W, r);
        else FS_NAME(vstore_tail)(out + k * FS_W, last, r);
    }
    return 1;
}

/* ---- tiles of tiny rows ------------------------------------------------------ */

/* Softmax of FS_W consecutive rows of n <= FS_W elements at once.  The tile
 * is transposed in registers so that each lane holds one row: the maximum,
 * the exps, the sum and 1/sum then cost one vector operation per element
 * column for all FS_W rows, with no horizontal reductions, and the results
 * are transposed back before the stores.  Returns 0, having written
 * nothing, when a row has a NaN or an infinite maximum. */
FS_INLINE int FS_NAME(tile_softmax)(const FS_R *x, FS_R *out, ptrdiff_t n, const fs_params *p,
                                    const FS_NAME(exp_consts) *c, const int unit_t)
{
    /* Full-width loads and stores of a row run into the following rows of the
     * tile, which is harmless: the extra lanes land in columns >= n, never
     * used, and the following rows' stores come later.  Rows whose full
     * width would leave the tile are masked.  (Masked stores are slow on
     * some CPUs, AMD Zen 4 among them.) */
    const ptrdiff_t full_rows = (FS_W * n - FS_W) / n + 1;
    FS_VR t[sizeof(FS_VR) / sizeof(FS_R)];
    const FS_R *xr = x;
    FS_UNROLL_ALL
    for (ptrdiff_t i = 0; i < FS_W; i++, xr += n)
        t[i] = i < full_rows ? FS_NAME(vload)(xr) : FS_NAME(vload_tail)(xr, n, (FS_R)-INFINITY);
    FS_TRANSPOSE(t);
    FS_VR m = t[0];
    FS_VI ordered = t[0] == t[0];
    FS_UNROLL_ALL
    for (ptrdiff_t j = 1; j < FS_W; j++) {
        if (j >= n) break;
        m = FS_NAME(vmax)(m, t[j]);
        ordered &= t[j] == t[j];
    }
    if (!FS_NAME(all_set)(ordered & FS_NAME(finite)(m))) return 0;
    const FS_VR m_pre = m * (FS_R)p->s_pre;
    /* four partial sums of at most FS_W / 4 terms, then pairwise: a few ulp */
    FS_VR acc[4] = {{0}};
    FS_UNROLL_ALL
    for (ptrdiff_t j = 0; j < FS_W; j++) {
        if (j >= n) { t[j] = (FS_VR){0}; continue; }
        t[j] = FS_NAME(vexp_scaled)(FS_NAME(vscaled_diff)(t[j], m_pre, c, unit_t), c, unit_t);
        acc[j % 4] += t[j];
    }
    const FS_VR inv = (FS_R)1 / ((acc[0] + acc[1]) + (acc[2] + acc[3]));
    FS_UNROLL_ALL
    for (ptrdiff_t j = 0; j < FS_W; j++) t[j] *= inv;
    FS_TRANSPOSE(t);
    FS_R *outr = out;
    FS_UNROLL_ALL
    for (ptrdiff_t i = 0; i < FS_W; i++, outr += n) {
        if (i < full_rows) FS_NAME(vstore)(outr, t[i]);
        else FS_NAME(vstore_tail)(outr, n, t[i]);
    }
    return 1;
}

/* ---- whole rows ----------------------------------------------------------- */

/* Longest row whose softmax exps go to a stack buffer when the output is
 * streamed, so they are scaled in cache and written once. */
#define FS_SCRATCH ((ptrdiff_t)(16384 / sizeof(FS_R)))

FS_INLINE void FS_NAME(row_long)(int op, const FS_R *x, const uint8_t *sel, FS_R *out, ptrdiff_t n,
                                 const fs_params *p, int stream)
{
    fs_stats row;
    fs_row_result r;
    fs_stats_init(&row);
    for (ptrdiff_t start = 0; start < n; start += FS_CHUNK) {
        fs_stats chunk;
        const ptrdiff_t len = n - start < FS_CHUNK ? n - start : FS_CHUNK;
        const ptrdiff_t next = n - start - len < FS_CHUNK ? n - start - len : FS_CHUNK;
        FS_NAME(stats_pass)(op, x + start, sel ? sel + start : NULL, NULL, len, p, &chunk, x + start + len, next);
        fs_stats_merge(&chunk, p, &row);
    }
    fs_row_finish(op, &row, n, p, &r);
    if (op == FS_LOGSUMEXP) { *out = (FS_R)r.logsumexp; return; }
    for (ptrdiff_t start = 0; start < n; start += FS_CHUNK)
        FS_NAME(write_row)(op, x + start, sel ? sel + start : NULL, NULL, out + start,
                           n - start < FS_CHUNK ? n - start : FS_CHUNK, p, &r, stream);
}

/* ahead: the next row (same length), or NULL. */
FS_INLINE void FS_NAME(row_any)(int op, const FS_R *x, const uint8_t *sel, FS_R *out, ptrdiff_t n,
                                const fs_params *p, int stream, FS_R *scratch, const FS_R *ahead)
{
    if (n > FS_LONG_ROW) { FS_NAME(row_long)(op, x, sel, out, n, p, stream); return; }
    fs_stats s;
    fs_row_result r;
    /* softmax exps: in the scratch buffer when out is streamed, else in out
     * (a row too long for the scratch is then written without streaming, as
     * its exps are already in cache in out) */
    FS_R *exps = NULL;
    if (op == FS_SOFTMAX) {
        exps = stream && n <= FS_SCRATCH ? scratch : out;
        stream = stream && n <= FS_SCRATCH;
    }
    FS_NAME(stats_pass)(op, x, sel, exps, n, p, &s, ahead, ahead ? n : 0);
    fs_row_finish(op, &s, n, p, &r);
    if (op == FS_LOGSUMEXP) *out = (FS_R)r.logsumexp;
    else FS_NAME(write_row)(op, x, sel, exps, out, n, p, &r, stream);
}

FS_INLINE void FS_NAME(rows_unit)(const int op, const FS_R *x, const uint8_t *sel, ptrdiff_t sel_step,
                                  FS_R *out, ptrdiff_t rows, ptrdiff_t n, const fs_params *p, int stream,
                                  const int unit_t)
{
    FS_R scratch[FS_SCRATCH];
    const ptrdiff_t out_step = op == FS_LOGSUMEXP ? 1 : n;
    const int use_short = !sel && n > 0 && n <= FS_SHORT * FS_W && p->mode == FS_MODE_GENERAL;
    FS_NAME(exp_consts) c;
    FS_NAME(exp_consts_init)(p, &c);
    ptrdiff_t r = 0;
    /* Tiles start at multiples of FS_W rows; callers that split the rows
     * (threads) split them at multiples of 16, so each row is computed the
     * same way whatever the split. */
    if (op == FS_SOFTMAX && use_short && n <= FS_W) {
        for (; r + FS_W <= rows; r += FS_W) {
            if (FS_NAME(tile_softmax)(x + r * n, out + r * n, n, p, &c, unit_t)) continue;
            for (ptrdiff_t k = r; k < r + FS_W; k++)
                if (!FS_NAME(row_short)(op, x + k * n, out + k * n, n, p, &c, unit_t))
                    FS_NAME(row_any)(op, x + k * n, NULL, out + k * n, n, p, stream, scratch, NULL);
        }
    }
    for (; r < rows; r++) {
        const FS_R *xr = x + r * n;
        FS_R *outr = out + r * out_step;
        if (use_short && FS_NAME(row_short)(op, xr, outr, n, p, &c, unit_t)) continue;
        FS_NAME(row_any)(op, xr, sel ? sel + r * sel_step : NULL, outr, n, p, stream, scratch,
                         r + 2 < rows ? xr + 2 * n : NULL);
    }
    FS_NAME(stream_fence)(stream);
}

/* ---- columns: reductions along a strided axis ------------------------------ */

/* One column of a limit mode (T -> 0 or inf), element by element. */
FS_INLINE void FS_NAME(column_limit_write)(int op, const FS_R *x, FS_R *out, ptrdiff_t n, ptrdiff_t stride,
                                           ptrdiff_t out_stride, const fs_params *p, const fs_row_result *r)
{
    if (r->kind != FS_ROW_NORMAL) {
        if (r->kind == FS_ROW_NAN) for (ptrdiff_t i = 0; i < n; i++) out[i * out_stride] = (FS_R)NAN;
        return;
    }
    for (ptrdiff_t i = 0; i < n; i++) out[i * out_stride] = FS_NAME(limit_value)(op, x[i * stride], p, r);
}

/* Vectors of adjacent columns reduced together: wide enough that each row
 * of the band is several whole cache lines, small enough that the band's
 * maxima and partial sums stay in registers. */
#define FS_COLS 8
/* Rows whose exps are summed in the row dtype before they go to double. */
#define FS_COL_SUB 8

/* One band of nv vectors of adjacent columns (nv compile-time: FS_COLS for
 * full bands, 1 for the rest, whose last vector may be partial: `last`
 * lanes).  Three passes down the strided axis, as for rows: maxima, exps
 * and sums, then the write; each lane is its own reduction, so a column's
 * result does not depend on the band it falls in. */
FS_INLINE void FS_NAME(columns_band)(int op, const FS_R *x, FS_R *out, ptrdiff_t n, ptrdiff_t stride,
                                     ptrdiff_t out_stride, const fs_params *p, const int nv,
                                     ptrdiff_t last, const int unit_t)
{
#define FS_LEN(k) ((k) == nv - 1 ? last : FS_W)
    enum { LANES = FS_COLS * sizeof(FS_VR) / sizeof(FS_R) };
    FS_VR m[FS_COLS];
    FS_VI ordered[FS_COLS];
    for (int k = 0; k < nv; k++) {
        m[k] = FS_NAME(vbroadcast)((FS_R)-INFINITY);
        ordered[k] = m[k] == m[k];
    }
    for (ptrdiff_t i = 0; i < n; i++)
        for (int k = 0; k < nv; k++) {
            FS_VR v = FS_NAME(vload_n)(x + i * stride + k * FS_W, FS_LEN(k), (FS_R)-INFINITY);
            m[k] = FS_NAME(vmax)(m[k], v);
            ordered[k] &= v == v;
        }

    FS_R col_max[LANES];
    int64_t col_count[LANES];
    double col_rest[LANES];
    for (int k = 0; k < nv; k++) FS_NAME(vstore)(col_max + k * FS_W, m[k]);
    for (ptrdiff_t l = 0; l < nv * FS_W; l++) { col_count[l] = 0; col_rest[l] = 0.0; }
    const int general = p->mode == FS_MODE_GENERAL;
    FS_NAME(exp_consts) c;
    FS_NAME(exp_consts_init)(p, &c);
    if (general && n > 0) {
        /* lanes of NaN columns or with an infinite maximum are computed
         * around 0 and overwritten by the finish */
        FS_VR mv[FS_COLS], m_pre[FS_COLS];
        FS_VI at_max[FS_COLS];
        FS_VACC lo[FS_COLS], hi[FS_COLS];
        for (int k = 0; k < nv; k++) {
            mv[k] = (FS_VR)((FS_VI)m[k] & FS_NAME(finite)(m[k]));
            m_pre[k] = mv[k] * (FS_R)p->s_pre;
            at_max[k] = (FS_VI){0};
            lo[k] = hi[k] = (FS_VACC){0};
        }
        for (ptrdiff_t i0 = 0; i0 < n; i0 += FS_COL_SUB) {
            const ptrdiff_t i1 = n - i0 < FS_COL_SUB ? n : i0 + FS_COL_SUB;
            FS_VR part[FS_COLS];
            for (int k = 0; k < nv; k++) part[k] = (FS_VR){0};
            for (ptrdiff_t i = i0; i < i1; i++)
                for (int k = 0; k < nv; k++) {
                    FS_VR v = FS_NAME(vload_n)(x + i * stride + k * FS_W, FS_LEN(k), (FS_R)-INFINITY);
                    FS_VR term, e = FS_NAME(exp_term)(op, v, mv[k], m_pre[k], &c, unit_t, FS_ALL_LANES,
                                                      &at_max[k], &term);
                    if (op == FS_SOFTMAX) FS_NAME(vstore_n)(out + i * out_stride + k * FS_W, FS_LEN(k), e);
                    part[k] += term;
                }
            for (int k = 0; k < nv; k++) FS_ACCUMULATE(lo[k], hi[k], part[k]);
        }
        for (int k = 0; k < nv; k++) {
            for (ptrdiff_t l = 0; l < FS_W; l++)
                col_count[k * FS_W + l] = op == FS_SOFTMAX ? 0 : (int64_t)at_max[k][l];
            FS_COLUMN_SUMS(lo[k], hi[k], col_rest + k * FS_W);
        }
    } else if (n > 0) {
        for (int k = 0; k < nv; k++)
            for (ptrdiff_t l = 0; l < FS_LEN(k); l++) {
                const FS_R mx = col_max[k * FS_W + l];
                for (ptrdiff_t i = 0; i < n; i++) {
                    const FS_R v = x[i * stride + k * FS_W + l];
                    col_count[k * FS_W + l] += p->mode == FS_MODE_ZERO ? v == mx : v != (FS_R)-INFINITY;
                }
            }
    }

    /* the scalar finish of each column, as for a row */
    const ptrdiff_t width = (nv - 1) * FS_W + last;
    FS_R col_a[LANES];   /* 1/S or log S per column; NaN for NaN columns */
    fs_row_result res[LANES];
    for (ptrdiff_t j = 0; j < width; j++) {
        fs_stats st;
        fs_stats_init(&st);
        st.max = col_max[j];
        st.has_nan = ordered[j / FS_W][j % FS_W] == 0;
        st.count = col_count[j];
        st.any_entry = n > 0;
        st.rest = col_rest[j];
        fs_row_finish(op, &st, n, p, &res[j]);
        if (op == FS_LOGSUMEXP) out[j] = (FS_R)res[j].logsumexp;
        else if (res[j].kind != FS_ROW_NORMAL) col_a[j] = (FS_R)NAN;
        else col_a[j] = op == FS_SOFTMAX ? (FS_R)res[j].inv_sum : (FS_R)res[j].log_sum;
    }
    if (op == FS_LOGSUMEXP || n == 0) return;
    if (!general) {
        for (ptrdiff_t j = 0; j < width; j++)
            FS_NAME(column_limit_write)(op, x + j, out + j, n, stride, out_stride, p, &res[j]);
        return;
    }
    FS_VR a[FS_COLS], m_pre[FS_COLS];
    for (int k = 0; k < nv; k++) {
        a[k] = FS_NAME(vload_n)(col_a + k * FS_W, FS_LEN(k), 0);
        m_pre[k] = m[k] * (FS_R)p->s_pre;
    }
    for (ptrdiff_t i = 0; i < n; i++)
        for (int k = 0; k < nv; k++) {
            FS_R *o = out + i * out_stride + k * FS_W;
            FS_VR r = op == FS_SOFTMAX
                ? FS_NAME(vload_n)(o, FS_LEN(k), 0) * a[k]
                : FS_NAME(vscaled_log)(FS_NAME(vload_n)(x + i * stride + k * FS_W, FS_LEN(k), 0), m_pre[k], &c,
                                       unit_t) - a[k];
            FS_NAME(vstore_n)(o, FS_LEN(k), r);
        }
#undef FS_LEN
}

FS_INLINE void FS_NAME(columns_unit)(int op, const FS_R *x, FS_R *out, ptrdiff_t n, ptrdiff_t stride,
                                     ptrdiff_t lanes, ptrdiff_t out_stride, const fs_params *p,
                                     const int unit_t)
{
    ptrdiff_t j = 0;
    for (; j + FS_COLS * FS_W <= lanes; j += FS_COLS * FS_W)
        FS_NAME(columns_band)(op, x + j, out + j, n, stride, out_stride, p, FS_COLS, FS_W, unit_t);
    for (; j < lanes; j += FS_W)
        FS_NAME(columns_band)(op, x + j, out + j, n, stride, out_stride, p, 1,
                              lanes - j < FS_W ? lanes - j : FS_W, unit_t);
}

/* ---- statistics for the jobs built on softmax (losses, Dask) -------------- */

FS_INLINE void FS_NAME(row_stats_any)(const FS_R *x, const uint8_t *sel, ptrdiff_t n, const fs_params *p,
                                      FS_R *exps, fs_row_result *r)
{
    fs_stats s;
    if (n > FS_LONG_ROW) {
        fs_stats_init(&s);
        for (ptrdiff_t start = 0; start < n; start += FS_CHUNK) {
            fs_stats chunk;
            const ptrdiff_t len = n - start < FS_CHUNK ? n - start : FS_CHUNK;
            FS_NAME(stats_pass)(FS_LOG_SOFTMAX, x + start, sel ? sel + start : NULL, NULL, len, p, &chunk,
                                NULL, 0);
            fs_stats_merge(&chunk, p, &s);
        }
    } else {
        FS_NAME(stats_pass)(FS_LOG_SOFTMAX, x, sel, p->mode == FS_MODE_GENERAL ? exps : NULL, n, p, &s, NULL, 0);
    }
    fs_row_finish(FS_LOG_SOFTMAX, &s, n, p, r);
    if (!exps || r->kind != FS_ROW_NORMAL) return;
    if (p->mode != FS_MODE_GENERAL) {
        /* the limits' weights, before the division by their count */
        for (ptrdiff_t i = 0; i < n; i++)
            exps[i] = FS_NAME(limit_value)(FS_SOFTMAX, FS_NAME(entry_sel)(x, sel, i), p, r) != 0;
    } else if (n > FS_LONG_ROW) {
        /* the long row's chunks were not kept: recompute, relative to the row maximum */
        if (p->unit) FS_NAME(map_pass)(FS_MAP_EXP, x, sel, exps, n, (FS_R)r->max, 1, p, 1, 0);
        else FS_NAME(map_pass)(FS_MAP_EXP, x, sel, exps, n, (FS_R)r->max, 1, p, 0, 0);
    }
}

/* ---- backward: vector-Jacobian products ------------------------------------- */

/* One row of softmax_backward (op FS_SOFTMAX) or log_softmax_backward: two
 * passes, the row sum of g * y (or of g) in double, then the write.
 * c1: the exp at T = 1 (log_softmax's exp(y)).  ahead_g / ahead_y: the next
 * row, fetched into the caches while the write pass runs from them. */
FS_INLINE FS_VR FS_NAME(backward_vec)(const int op, FS_VR gv, FS_VR yv, FS_VR total,
                                      const FS_NAME(exp_consts) *c1, const FS_VR inv_t, const int unit_t)
{
    FS_VR r;
    if (op == FS_SOFTMAX) {
        r = yv * (gv - total);
    } else {
        /* the exp kernel clamps its argument: NaN and +inf y keep their own exp */
        const FS_VR e = FS_NAME(vexp_scaled)(yv, c1, 1);
        r = gv - FS_NAME(vselect)(yv < FS_NAME(vbroadcast)((FS_R)INFINITY), e, yv) * total;
    }
    return unit_t ? r : r * inv_t;
}

FS_INLINE void FS_NAME(backward_row)(const int op, const FS_R *g, const FS_R *y, const uint8_t *sel, FS_R *out,
                                     ptrdiff_t n, const FS_NAME(exp_consts) *c1, const FS_VR inv_t,
                                     const int unit_t, const FS_R *ahead_g, const FS_R *ahead_y, const int stream)
{
    const FS_VR zero = {0};
    FS_VACC lo = {0}, hi = {0};
    FS_VR part[4] = {{0}};
    ptrdiff_t i = 0;
    for (int count = 0; i + 4 * FS_W <= n; i += 4 * FS_W) {
        for (int u = 0; u < 4; u++) {
            const ptrdiff_t at = i + u * FS_W;
            FS_VR t = op == FS_SOFTMAX ? FS_NAME(vload)(g + at) * FS_NAME(vload)(y + at) : FS_NAME(vload)(g + at);
            if (sel) t = FS_NAME(vselect)(FS_NAME(sel_lanes)(sel + at), t, zero);
            part[u] += t;
        }
        if (++count == FS_SUB) {
            part[0] += part[1];
            part[2] += part[3];
            part[0] += part[2];
            FS_ACCUMULATE(lo, hi, part[0]);
            part[0] = part[1] = part[2] = part[3] = zero;
            count = 0;
        }
    }
    for (; i < n; i += FS_W) {
        const ptrdiff_t len = n - i < FS_W ? n - i : FS_W;
        FS_VR t = FS_NAME(vload_n)(g + i, len, 0);
        if (op == FS_SOFTMAX) t *= FS_NAME(vload_n)(y + i, len, 0);
        if (sel) t = FS_NAME(vselect)(len == FS_W ? FS_NAME(sel_lanes)(sel + i) : FS_NAME(sel_lanes_n)(sel + i, len),
                                      t, zero);
        part[1] += t;
    }
    part[0] += part[1];
    part[2] += part[3];
    part[0] += part[2];
    FS_ACCUMULATE(lo, hi, part[0]);
    lo += hi;
    const FS_VR total = FS_NAME(vbroadcast)((FS_R)FS_TREE_F64(lo, FS_ADD_OP));

    /* the write: a head up to the output's alignment, aligned (streamed when
     * asked) vectors, a tail */
    const FS_R pad_y = op == FS_SOFTMAX ? (FS_R)0 : (FS_R)-INFINITY;
    const ptrdiff_t head = FS_NAME(head_to_align)(out, n, stream);
    for (i = 0; i < n;) {
        const ptrdiff_t len = i < head ? head - i : n - i < FS_W ? n - i : FS_W;
        if (ahead_g) {
            __builtin_prefetch(ahead_g + i, 0, 2);
            __builtin_prefetch(ahead_y + i, 0, 2);
        }
        FS_VR r = FS_NAME(backward_vec)(op, FS_NAME(vload_n)(g + i, len, 0), FS_NAME(vload_n)(y + i, len, pad_y),
                                        total, c1, inv_t, unit_t);
        if (sel) r = FS_NAME(vselect)(len == FS_W ? FS_NAME(sel_lanes)(sel + i) : FS_NAME(sel_lanes_n)(sel + i, len),
                                      r, zero);
        if (len == FS_W) FS_NAME(vstore_out)(out + i, r, stream && i >= head);
        else FS_NAME(vstore_tail)(out + i, len, r);
        i += len;
    }
}

/* ---- loss helpers --------------------------------------------------------- */

FS_INLINE double FS_NAME(coefficient)(const FS_R *wt, const FS_R *q, double b_q, double b_0, ptrdiff_t i)
{
    const double w = wt ? (double)wt[i] : 1.0;
    return q ? w * (b_q * (double)q[i] + b_0) : w * b_0;
}

/* ---- exported kernels ---------------------------------------------------- */

/* The entries that the losses (losses_impl.h) also call directly: never
 * inlined there nor specialised for their constant arguments, so each is
 * compiled once, exactly as the table runs it (a specialised copy can
 * contract its sums into multiply-adds differently). */
#if defined(__clang__)
#define FS_KERNEL_ENTRY static __attribute__((noinline))
#else
#define FS_KERNEL_ENTRY static __attribute__((noipa))   /* nor cloned for constant arguments */
#endif

static void FS_NAME(rows)(int op, const void *xv, void *outv, ptrdiff_t rows, ptrdiff_t n,
                          const fs_params *p, int stream)
{
    const FS_R *x = (const FS_R *)xv;
    FS_R *out = (FS_R *)outv;
    /* one specialisation per operation and T == 1 or not: the per-row code
     * then has no run-time branches on either */
    if (p->unit) FS_NAME(rows_unit)(op, x, NULL, 0, out, rows, n, p, stream, 1);
    else FS_NAME(rows_unit)(op, x, NULL, 0, out, rows, n, p, stream, 0);
}

static void FS_NAME(rows_where)(int op, const void *xv, const uint8_t *sel, void *outv, ptrdiff_t rows,
                                ptrdiff_t n, ptrdiff_t sel_step, const fs_params *p, int stream)
{
    const FS_R *x = (const FS_R *)xv;
    FS_R *out = (FS_R *)outv;
    /* separate instantiations with and without a selection, so that neither
     * tests for one inside its loops */
    if (!sel) { FS_NAME(rows)(op, xv, outv, rows, n, p, stream); return; }
    if (p->unit) FS_NAME(rows_unit)(op, x, sel, sel_step, out, rows, n, p, stream, 1);
    else FS_NAME(rows_unit)(op, x, sel, sel_step, out, rows, n, p, stream, 0);
}

static void FS_NAME(chunk_stats)(int op, const void *x, const uint8_t *sel, ptrdiff_t n, const fs_params *p,
                                 fs_stats *s)
{
    FS_NAME(stats_pass)(op, (const FS_R *)x, sel, NULL, n, p, s, NULL, 0);
}

static void FS_NAME(chunk_write)(int op, const void *x, const uint8_t *sel, void *out, ptrdiff_t n,
                                 const fs_params *p, const fs_row_result *r, int stream)
{
    FS_NAME(write_row)(op, (const FS_R *)x, sel, NULL, (FS_R *)out, n, p, r, stream);
    FS_NAME(stream_fence)(stream);
}

static void FS_NAME(columns)(int op, const void *xv, void *outv, ptrdiff_t n, ptrdiff_t stride,
                             ptrdiff_t lanes, ptrdiff_t out_stride, const fs_params *p)
{
    const FS_R *x = (const FS_R *)xv;
    FS_R *out = (FS_R *)outv;
    if (p->unit) FS_NAME(columns_unit)(op, x, out, n, stride, lanes, out_stride, p, 1);
    else FS_NAME(columns_unit)(op, x, out, n, stride, lanes, out_stride, p, 0);
}

FS_KERNEL_ENTRY void FS_NAME(row_stats)(const void *x, const uint8_t *sel, ptrdiff_t n, const fs_params *p, void *exps,
                               fs_row_result *r)
{
    FS_NAME(row_stats_any)((const FS_R *)x, sel, n, p, (FS_R *)exps, r);
}

static void FS_NAME(backward)(int op, const void *gv, const void *yv, const uint8_t *sel, void *outv,
                              ptrdiff_t rows, ptrdiff_t n, ptrdiff_t sel_step, const fs_params *p)
{
    const FS_R *g = (const FS_R *)gv, *y = (const FS_R *)yv;
    FS_R *out = (FS_R *)outv;
    fs_params unit;
    FS_NAME(exp_consts) c1;
    fs_params_init(FS_DTYPE, 1.0, &unit);
    FS_NAME(exp_consts_init)(&unit, &c1);
    const FS_VR inv_t = FS_NAME(vbroadcast)((FS_R)(1.0 / p->temperature));
    /* outputs far larger than the caches are streamed, as in the forward kernels */
    const int stream = rows * n * (ptrdiff_t)sizeof(FS_R) >= ((ptrdiff_t)8 << 20) / 4;
    for (ptrdiff_t r = 0; r < rows; r++) {
        const uint8_t *s = sel ? sel + r * sel_step : NULL;
        const FS_R *ag = r + 1 < rows ? g + (r + 1) * n : NULL, *ay = r + 1 < rows ? y + (r + 1) * n : NULL;
#define FS_BACKWARD(OP, UNIT) FS_NAME(backward_row)(OP, g + r * n, y + r * n, s, out + r * n, n, &c1, inv_t, UNIT, \
                                                    ag, ay, stream)
        if (op == FS_SOFTMAX) { if (p->temperature == 1.0) FS_BACKWARD(FS_SOFTMAX, 1); else FS_BACKWARD(FS_SOFTMAX, 0); }
        else { if (p->temperature == 1.0) FS_BACKWARD(FS_LOG_SOFTMAX, 1); else FS_BACKWARD(FS_LOG_SOFTMAX, 0); }
#undef FS_BACKWARD
    }
    FS_NAME(stream_fence)(stream);
}

FS_KERNEL_ENTRY double FS_NAME(weighted_gap)(const void *xv, double mx, const void *yv, double my, const void *wtv,
                                    const void *qv, double b_q, double b_0, ptrdiff_t n, double *total)
{
    const FS_R *x = (const FS_R *)xv, *y = (const FS_R *)yv, *wt = (const FS_R *)wtv, *q = (const FS_R *)qv;
    double sum = 0.0, weight = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) {
        const double a = FS_NAME(coefficient)(wt, q, b_q, b_0, i);
        if (a == 0.0) continue;
        weight += a;
        double gap = (double)x[i] - mx;
        if (y) gap -= (double)y[i] - my;
        sum += a * gap;
    }
    *total = weight;
    return sum;
}

FS_KERNEL_ENTRY void FS_NAME(combine)(void *outv, ptrdiff_t n, double alpha, const void *wtv, const void *qv, double b_q,
                             double b_0)
{
    FS_R *out = (FS_R *)outv;
    const FS_R *wt = (const FS_R *)wtv, *q = (const FS_R *)qv;
    const FS_R a = (FS_R)alpha;
    if (!wt && !q) {
        const FS_R shift = (FS_R)b_0;
        for (ptrdiff_t i = 0; i < n; i++) out[i] = a * out[i] - shift;
        return;
    }
    for (ptrdiff_t i = 0; i < n; i++) out[i] = (FS_R)((double)(a * out[i]) - FS_NAME(coefficient)(wt, q, b_q, b_0, i));
}

#include "weighted_impl.h"
#include "half_impl.h"
#include "losses_impl.h"

static const fs_kernels FS_NAME(kernels) = {
    FS_NAME(rows), FS_NAME(chunk_stats), FS_NAME(chunk_write), FS_NAME(columns),
    FS_NAME(rows_where), FS_NAME(row_stats), FS_NAME(backward), FS_NAME(weighted_gap), FS_NAME(combine),
    FS_NAME(weighted_stats), FS_NAME(staged_rows), FS_NAME(cross_entropy_row), FS_NAME(kl_div_row),
    FS_NAME(contrastive_row)
};

/* The template's parameters, so the next instantiation starts clean. */
#undef FS_R
#undef FS_DTYPE
#undef FS_VR
#undef FS_VI
#undef FS_VU
#undef FS_VACC
#undef FS_ACCUMULATE
#undef FS_BLOCK_FOLD
#undef FS_ROW_FOLD
#undef FS_COLUMN_SUMS
#undef FS_NAME
#undef FS_MASKED_LOAD
#undef FS_MASKED_STORE
#undef FS_VMAX_INTRINSIC
#undef FS_FMA
#undef FS_STREAM
#undef FS_SEL_LANES
#undef FS_LOAD_SEL
#undef FS_VMAX
#undef FS_TREE
#undef FS_TRANSPOSE
#undef FS_ALL_SET
#undef FS_EXP_MAGIC
#undef FS_EXP_MANT_BITS
#undef FS_EXP_POLY
#undef FS_EXP_TABLE
#undef FS_EXP_TABLE_LOOKUP
#undef FS_EXP_TABLE_MAGIC
#undef FS_EXP_TABLE_POLY
#undef FS_W
#undef FS_SUB
#undef FS_UNROLL
#undef FS_SHORT
#undef FS_SCRATCH
#undef FS_COLS
#undef FS_ALL_LANES
#undef FS_UNROLL_ALL
#undef FS_COL_SUB
#undef FS_ADD_OP
#undef FS_KERNEL_ENTRY
