/* The per-row maths of the losses built on softmax (cross_entropy, kl_div,
 * contrastive_loss): part of the kernel template, with its parameters
 * defined.  No include guard on purpose.
 *
 * Each loss comes from the rows' statistics (row_stats): with
 * -log_softmax_c = log S + (max - x_c) / T, a loss sum_c a_c * -log_softmax_c
 * is (sum a_c) log S - weighted_gap / T, so a confident row's loss is its
 * log1p-accurate log S; the gradients are the exps scaled in place by
 * combine.  The scalar steps where a multiplication feeds an addition go
 * through fs_add_product / fs_product_minus (core), which are compiled
 * without a fused multiply-add: the result is then the same in every
 * instruction-set variant. */

/* The entries that the losses (losses_impl.h) also call directly: never
 * inlined there nor specialised for their constant arguments, so each is
 * compiled once, exactly as the table runs it (a specialised copy can
 * contract its sums into multiply-adds differently). */
#if defined(__clang__)
#define FS_KERNEL_ENTRY static __attribute__((noinline))
#else
#define FS_KERNEL_ENTRY static __attribute__((noipa))   /* nor cloned for constant arguments */
#endif

/* ---- statistics for the jobs built on softmax (losses, Dask) -------------- */

FS_INLINE void FS_NAME(row_stats_any)(const FS_R *x, const uint8_t *sel, ptrdiff_t n, const fs_params *p,
                                      FS_R *exps, fs_row_result *r)
{
    fs_stats s;
    if (n > FS_LONG_ROW) {
        FS_NAME(long_row_stats)(FS_LOG_SOFTMAX, x, sel, n, p, 0, &s);
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

FS_KERNEL_ENTRY void FS_NAME(row_stats)(const void *x, const uint8_t *sel, ptrdiff_t n, const fs_params *p, void *exps,
                               fs_row_result *r)
{
    FS_NAME(row_stats_any)((const FS_R *)x, sel, n, p, (FS_R *)exps, r);
}

/* ---- loss helpers --------------------------------------------------------- */

FS_INLINE double FS_NAME(coefficient)(const FS_R *wt, const FS_R *q, double b_q, double b_0, ptrdiff_t i)
{
    const double w = wt ? (double)wt[i] : 1.0;
    return q ? w * (b_q * (double)q[i] + b_0) : w * b_0;
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

/* ---- the losses' rows ------------------------------------------------------ */

FS_INLINE void FS_NAME(fill_row)(FS_R *row, ptrdiff_t n, double value)
{
    for (ptrdiff_t i = 0; i < n; i++) row[i] = (FS_R)value;
}

/* row[i] += value, rounded once in the row dtype */
FS_INLINE void FS_NAME(add_entry)(FS_R *row, ptrdiff_t i, double value)
{
    row[i] = (FS_R)(row[i] + (FS_R)value);
}

/* Cross-entropy of one row against class `target` (soft NULL) or soft labels,
 * a_c = w_c * ((1 - eps) * onehot_c + eps / n) or w_c * ((1 - eps) * q_c +
 * eps / n); gradient grad_scale * sum_c a_c * (p - onehot_c) / T, written
 * over the row's exps. */
static double FS_NAME(cross_entropy_row)(const void *xv, ptrdiff_t n, const fs_params *p, int64_t target,
                                         const void *softv, const void *weightv, double smoothing,
                                         double grad_scale, void *gradv)
{
    const FS_R *x = (const FS_R *)xv, *q = (const FS_R *)softv, *weight = (const FS_R *)weightv;
    FS_R *g = (FS_R *)gradv;
    const double temperature = p->temperature;
    const double gs = grad_scale / temperature;
    double total = 0.0, gap = 0.0, hard = 0.0;
    fs_row_result res;
    FS_NAME(row_stats)(x, NULL, n, p, g, &res);
    if (res.kind != FS_ROW_NORMAL) {
        if (g) FS_NAME(fill_row)(g, n, NAN);
        return NAN;
    }
    const double uniform = smoothing / (double)n;
    if (q) {
        gap = FS_NAME(weighted_gap)(x, res.max, NULL, 0.0, weight, q, 1.0 - smoothing, uniform, n, &total);
    } else {
        hard = (1.0 - smoothing) * (weight ? (double)weight[target] : 1.0);
        if (uniform != 0.0) gap = FS_NAME(weighted_gap)(x, res.max, NULL, 0.0, weight, NULL, 0.0, uniform, n, &total);
        if (hard != 0.0) {
            total += hard;
            gap = fs_add_product(gap, hard, (double)x[target] - res.max);
        }
    }
    const double loss = fs_product_minus(total, res.log_sum, gap / temperature);
    if (g) {
        if (q) {
            FS_NAME(combine)(g, n, gs * total * res.inv_sum, weight, q, gs * (1.0 - smoothing), gs * uniform);
        } else {
            FS_NAME(combine)(g, n, gs * total * res.inv_sum, weight, NULL, 0.0, gs * uniform);
            /* the product rounded on its own (no fused multiply-add into the entry) */
            FS_NAME(add_entry)(g, target, fs_product_minus(-gs, hard, 0.0));
        }
    }
    return loss;
}

/* T**2 * KL(softmax(t / T) || softmax(s / T)): KL = sum_c pt_c * ((t_c -
 * max_t) - (s_c - max_s)) / T - log S_t + log S_s, over the entries the
 * teacher gives weight (so a teacher -inf never meets a student -inf);
 * gradient grad_scale * T * (ps - pt). */
static double FS_NAME(kl_div_row)(const void *sv, const void *tv, ptrdiff_t n, const fs_params *p,
                                  double grad_scale, void *gradv, void *scratch)
{
    const FS_R *s = (const FS_R *)sv, *t = (const FS_R *)tv;
    FS_R *g = (FS_R *)gradv, *teacher_exps = (FS_R *)scratch;
    const double temperature = p->temperature;
    fs_row_result rs, rt;
    double total;
    FS_NAME(row_stats)(t, NULL, n, p, teacher_exps, &rt);
    FS_NAME(row_stats)(s, NULL, n, p, g, &rs);
    if (rt.kind != FS_ROW_NORMAL || rs.kind != FS_ROW_NORMAL) {
        /* either softmax undefined (NaN, +inf, only -inf): NaN, as its gradient
         * and as PyTorch gives */
        if (g) FS_NAME(fill_row)(g, n, NAN);
        return NAN;
    }
    const double gap = FS_NAME(weighted_gap)(t, rt.max, s, rs.max, NULL, teacher_exps, 1.0, 0.0, n, &total);
    const double loss = temperature * temperature * (rt.inv_sum * gap / temperature - rt.log_sum + rs.log_sum);
    if (g)
        FS_NAME(combine)(g, n, grad_scale * temperature * rs.inv_sum, NULL, teacher_exps,
                         grad_scale * temperature * rt.inv_sum, 0.0);
    return loss;
}

/* Row i of a contrastive loss: the cross-entropy of similarity / T against
 * class i.  With scale_columns != 0, grad already holds the column softmax
 * and the row's exps go to scratch. */
static double FS_NAME(contrastive_row)(const void *srowv, ptrdiff_t i, ptrdiff_t n, const fs_params *p,
                                       double scale_rows, double scale_columns, void *gradv, void *scratch)
{
    const FS_R *srow = (const FS_R *)srowv;
    FS_R *g = (FS_R *)gradv, *row_exps = (FS_R *)scratch;
    const double temperature = p->temperature;
    fs_row_result res;
    FS_NAME(row_stats)(srow, NULL, n, p, scale_columns != 0.0 ? row_exps : g, &res);
    if (res.kind != FS_ROW_NORMAL) {
        if (g) FS_NAME(fill_row)(g, n, NAN);
        return NAN;
    }
    const double loss = res.log_sum + (res.max - (double)srow[i]) / temperature;
    if (!g) return loss;
    if (scale_columns != 0.0)
        FS_NAME(combine)(g, n, scale_columns / temperature, NULL, row_exps, -scale_rows / temperature * res.inv_sum,
                         0.0);
    else
        FS_NAME(combine)(g, n, scale_rows / temperature * res.inv_sum, NULL, NULL, 0.0, 0.0);
    FS_NAME(add_entry)(g, i, -(scale_rows + scale_columns) / temperature);
    return loss;
}

#undef FS_KERNEL_ENTRY
