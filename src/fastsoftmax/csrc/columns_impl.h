/* Reductions along a strided axis: each vector lane one column.
 * Part of the kernel template (dtype_kernels.h), with its parameters
 * defined.  No include guard on purpose. */

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

static void FS_NAME(columns)(int op, const void *xv, void *outv, ptrdiff_t n, ptrdiff_t stride,
                             ptrdiff_t lanes, ptrdiff_t out_stride, const fs_params *p)
{
    const FS_R *x = (const FS_R *)xv;
    FS_R *out = (FS_R *)outv;
    if (p->unit) FS_NAME(columns_unit)(op, x, out, n, stride, lanes, out_stride, p, 1);
    else FS_NAME(columns_unit)(op, x, out, n, stride, lanes, out_stride, p, 0);
}
