/* Contiguous rows: short rows in registers, tiles of tiny rows, whole
 * rows (long ones in chunks, chunks_impl.h), and the rows / rows_where
 * entries.
 * Part of the kernel template (dtype_kernels.h), with its parameters
 * defined.  No include guard on purpose. */

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
