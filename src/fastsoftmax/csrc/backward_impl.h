/* softmax_backward and log_softmax_backward: vector-Jacobian products.
 * Part of the kernel template (dtype_kernels.h), with its parameters
 * defined.  No include guard on purpose. */

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

/* The four partial sums pairwise, into the double accumulators. */
FS_INLINE void FS_NAME(fold_parts)(FS_VR part[4], FS_VACC *lo, FS_VACC *hi)
{
    part[0] += part[1];
    part[2] += part[3];
    part[0] += part[2];
    FS_ACCUMULATE(*lo, *hi, part[0]);
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
            FS_NAME(fold_parts)(part, &lo, &hi);
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
    FS_NAME(fold_parts)(part, &lo, &hi);
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
