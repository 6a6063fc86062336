/* The forward entries besides `rows` (chunk_stats + chunk_write, rows_where,
 * columns, row_stats) and backward, each against the long-double oracle of
 * check_support.c, with a guard just past each output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Selections: none given, about one entry in 4 left out, none selected, all selected. */
enum { SEL_NULL, SEL_SOME, SEL_NONE, SEL_ALL, N_SELS };
static const char *const SEL_NAMES[] = {"no selection", "some selected", "none selected", "all selected"};

static uint8_t *selection_of(int kind, ptrdiff_t n)
{
    return kind == SEL_NULL ? NULL : new_selection(n, kind == SEL_SOME ? 4 : kind == SEL_NONE ? -1 : 0);
}

/* Compares out (softmax or log_softmax of a row, or its logsumexp) with the oracle. */
static void compare_row(check_case *c, int op, double t, const wide *sm, const wide *lsm, wide lse,
                        const void *out, ptrdiff_t n, const char *what)
{
    const dtype *d = c->g->d;
    if (op == FS_LOGSUMEXP) {
        note(c, value_error(d, op, d->get(out, 0), lse, 0), "%s logsumexp T=%g n=%td: got %.17Lg want %.17Lg",
             what, t, n, d->get(out, 0), lse);
        return;
    }
    for (ptrdiff_t i = 0; i < n; i++) {
        wide want = op == FS_SOFTMAX ? sm[i] : lsm[i], got = d->get(out, i);
        note(c, value_error(d, op, got, want, 0), "%s %s T=%g n=%td [%td]: got %.17Lg want %.17Lg", what,
             OP_NAMES[op], t, n, i, got, want);
    }
}

/* A row of n entries: random, or one of the special kinds (turn selects which, if any). */
static void *test_row(const dtype *d, ptrdiff_t n, int turn)
{
    void *x = new_rows(d, n);
    fill_random(d, x, 0, n, turn % 5 ? 4.0 : 30.0, turn % 3 == 0, turn % 4 == 1);
    if (n > 0 && turn % 3 == 2) make_special(d, x, n, (turn / 3) % N_KINDS, (turn * 7) % n);
    return x;
}

/* ---- chunk_stats + chunk_write: a long row in pieces ---------------------------- */

/* The row x[0:n] cut into chunks of `piece`: each chunk's statistics, merged
 * in order, finished, then each chunk written; as the Cython drivers split a
 * long row over threads. */
static void check_chunked_row(group *g, const void *x, const uint8_t *sel, ptrdiff_t n, ptrdiff_t piece,
                              double t, const char *what)
{
    const dtype *d = g->d;
    const fs_kernels *k = kernels(d);
    wide *sm = xcalloc(n, sizeof(wide)), *lsm = xcalloc(n, sizeof(wide)), lse;
    void *out = xcalloc(n + 1, d->size);
    expected_row(d, x, 0, n, t, sel, sm, lsm, &lse);
    fs_params p;
    params(d, t, &p);
    for (int op = FS_SOFTMAX; op <= FS_LOGSUMEXP; op++) {
        check_case c = case_begin(g);
        fs_stats row;
        fs_row_result r;
        fs_stats_init(&row);
        for (ptrdiff_t start = 0; start < n; start += piece) {
            fs_stats chunk;
            const ptrdiff_t len = n - start < piece ? n - start : piece;
            k->chunk_stats(op, (const char *)x + start * d->size, sel ? sel + start : NULL, len, &p, &chunk);
            fs_stats_merge(&chunk, &p, &row);
        }
        fs_row_finish(op, &row, n, &p, &r);
        if (op == FS_LOGSUMEXP) {
            d->set(out, 0, r.logsumexp);
        } else {
            d->set(out, n, GUARD);
            for (ptrdiff_t start = 0; start < n; start += piece) {
                const ptrdiff_t len = n - start < piece ? n - start : piece;
                k->chunk_write(op, (const char *)x + start * d->size, sel ? sel + start : NULL,
                               (char *)out + start * d->size, len, &p, &r, (int)(start / piece) % 2);
            }
            note(&c, d->get(out, n) == GUARD ? 0 : INFINITY, "%s %s T=%g n=%td: wrote past the end", what,
                 OP_NAMES[op], t, n);
        }
        compare_row(&c, op, t, sm, lsm, lse, out, n, what);
        case_end(&c);
    }
    free(sm); free(lsm); free(out);
}

void check_chunks(const dtype *d)
{
    static const ptrdiff_t lengths[] = {1, 7, 33, 100, 1000};
    static const ptrdiff_t pieces[] = {1, 16, 37, 1000};
    group g = {d, "chunk_stats + chunk_write (selections)", 0, 0, 0};
    int turn = 0;
    for (size_t j = 0; j < sizeof lengths / sizeof lengths[0]; j++)
        for (int s = 0; s < N_SELS; s++, turn++) {
            const ptrdiff_t n = lengths[j];
            void *x = test_row(d, n, turn);
            uint8_t *sel = selection_of(s, n);
            for (size_t q = 0; q < sizeof pieces / sizeof pieces[0]; q++)
                for (size_t k = 0; k < N_TEMPS; k++) check_chunked_row(&g, x, sel, n, pieces[q], TEMPS[k], SEL_NAMES[s]);
            free(sel);
            free_rows(d, x);
        }
    group_done(&g);
}

/* ---- rows_where -------------------------------------------------------------- */

/* `rows` rows with a selection per row (sel_step n) or one for all (sel_step 0). */
static void check_where_batch(group *g, const void *x, const uint8_t *sel, ptrdiff_t rows, ptrdiff_t n,
                              ptrdiff_t sel_step, double t)
{
    const dtype *d = g->d;
    const ptrdiff_t total = rows * n;
    wide *sm = xcalloc(total, sizeof(wide)), *lsm = xcalloc(total, sizeof(wide)), *lse = xcalloc(rows, sizeof(wide));
    void *out = xcalloc(total > rows ? total : rows, d->size);
    for (ptrdiff_t r = 0; r < rows; r++)
        expected_row(d, x, r * n, n, t, sel + r * sel_step, sm + r * n, lsm + r * n, lse + r);
    fs_params p;
    params(d, t, &p);
    for (int op = FS_SOFTMAX; op <= FS_LOGSUMEXP; op++) {
        check_case c = case_begin(g);
        const ptrdiff_t count = op == FS_LOGSUMEXP ? rows : total;
        d->set(out, count, GUARD);
        kernels(d)->rows_where(op, x, sel, out, rows, n, sel_step, &p, 0);
        note(&c, d->get(out, count) == GUARD ? 0 : INFINITY, "%s T=%g n=%td: wrote past the end", OP_NAMES[op], t, n);
        for (ptrdiff_t r = 0; r < rows; r++)
            compare_row(&c, op, t, sm + r * n, lsm + r * n, lse[r],
                        (const char *)out + (op == FS_LOGSUMEXP ? r : r * n) * d->size, n,
                        sel_step ? "own selection per row" : "one selection for all rows");
        case_end(&c);
    }
    free(sm); free(lsm); free(lse); free(out);
}

void check_rows_where(const dtype *d)
{
    static const ptrdiff_t lengths[] = {1, 3, 8, 17, 64, 100, 1000};
    const ptrdiff_t rows = 5;
    group g = {d, "rows_where", 0, 0, 0};
    int turn = 0;
    FOR_EACH(n, lengths) {
        void *x = new_rows(d, rows * n);
        for (ptrdiff_t r = 0; r < rows; r++, turn++) {
            void *row = test_row(d, n, turn);
            memcpy((char *)x + r * n * d->size, row, (size_t)n * d->size);
            free_rows(d, row);
        }
        uint8_t *sel = new_selection(rows * n, 3);
        memset(sel + 2 * n, 0, (size_t)n);   /* row 2 selects nothing */
        /* NaN where not selected must not matter */
        for (ptrdiff_t i = 0; i < rows * n; i++)
            if (!sel[i] && i % 5 == 0) d->set(x, i, NAN);
        for (size_t k = 0; k < N_TEMPS; k++) {
            check_where_batch(&g, x, sel, rows, n, n, TEMPS[k]);
            check_where_batch(&g, x, sel + n, rows, n, 0, TEMPS[k]);
        }
        free(sel);
        free_rows(d, x);
    }
    /* a long row (chunked inside the kernel) */
    const ptrdiff_t n = 70000;
    void *x = new_rows(d, n);
    fill_random(d, x, 0, n, 4.0, 0, 0);
    uint8_t *sel = new_selection(n, 3);
    check_where_batch(&g, x, sel, 1, n, n, 1.0);
    check_where_batch(&g, x, sel, 1, n, n, 0.5);
    free(sel);
    free_rows(d, x);
    group_done(&g);
}

/* ---- columns: reductions along a strided axis ---------------------------------- */

void check_columns(const dtype *d)
{
    static const ptrdiff_t lengths[] = {1, 2, 5, 17, 40};
    static const ptrdiff_t lane_counts[] = {1, 3, 8, 16, 35, 130};
    group g = {d, "columns (strided axis)", 0, 0, 0};
    int turn = 0;
    for (size_t a = 0; a < sizeof lengths / sizeof lengths[0]; a++)
        for (size_t b = 0; b < sizeof lane_counts / sizeof lane_counts[0]; b++) {
            const ptrdiff_t n = lengths[a], lanes = lane_counts[b], stride = lanes + 3, out_stride = lanes + 1;
            /* the columns as rows, then scattered into the strided layout */
            void *cols = new_rows(d, lanes * n), *x = new_rows(d, n * stride);
            for (ptrdiff_t j = 0; j < lanes; j++, turn++) {
                void *row = test_row(d, n, turn);
                memcpy((char *)cols + j * n * d->size, row, (size_t)n * d->size);
                free_rows(d, row);
            }
            for (ptrdiff_t i = 0; i < n * stride; i++) d->set(x, i, NAN);   /* the gaps are never read */
            for (ptrdiff_t j = 0; j < lanes; j++)
                for (ptrdiff_t i = 0; i < n; i++) d->set(x, i * stride + j, d->get(cols, j * n + i));
            wide *sm = xcalloc(lanes * n, sizeof(wide)), *lsm = xcalloc(lanes * n, sizeof(wide));
            wide *lse = xcalloc(lanes, sizeof(wide));
            void *out = xcalloc(n * out_stride, d->size);
            for (size_t k = 0; k < N_TEMPS; k++) {
                const double t = TEMPS[k];
                fs_params p;
                params(d, t, &p);
                for (ptrdiff_t j = 0; j < lanes; j++) expected_row(d, cols, j * n, n, t, NULL, sm + j * n, lsm + j * n, lse + j);
                for (int op = FS_SOFTMAX; op <= FS_LOGSUMEXP; op++) {
                    check_case c = case_begin(&g);
                    const ptrdiff_t span = op == FS_LOGSUMEXP ? out_stride : n * out_stride;
                    for (ptrdiff_t i = 0; i < span + 1; i++) d->set(out, i, GUARD);
                    kernels(d)->columns(op, x, out, n, stride, lanes, out_stride, &p);
                    for (ptrdiff_t i = 0; i < span + 1; i++) {
                        const ptrdiff_t j = i % out_stride, row = i / out_stride;
                        if (j >= lanes || i >= span || (op == FS_LOGSUMEXP && row > 0)) {
                            note(&c, d->get(out, i) == GUARD ? 0 : INFINITY, "%s T=%g n=%td lanes %td: wrote [%td] outside the columns",
                                 OP_NAMES[op], t, n, lanes, i);
                            continue;
                        }
                        wide want = op == FS_SOFTMAX ? sm[j * n + row] : op == FS_LOG_SOFTMAX ? lsm[j * n + row] : lse[j];
                        note(&c, value_error(d, op, d->get(out, i), want, 0), "%s T=%g n=%td lanes %td column %td [%td]: got %.17Lg want %.17Lg",
                             OP_NAMES[op], t, n, lanes, j, row, d->get(out, i), want);
                    }
                    case_end(&c);
                }
            }
            free(sm); free(lsm); free(lse); free(out);
            free_rows(d, cols); free_rows(d, x);
        }
    group_done(&g);
}

/* ---- row_stats: a row's final statistics and its exps ---------------------------- */

static void check_stats_row(group *g, const void *x, const uint8_t *sel, ptrdiff_t n, double t, int with_exps)
{
    const dtype *d = g->d;
    check_case c = case_begin(g);
    fs_params p;
    params(d, t, &p);
    expected_stats s = expected_row_stats(d, x, n, t, sel);
    wide *sm = xcalloc(n, sizeof(wide)), *lsm = xcalloc(n, sizeof(wide)), lse;
    expected_row(d, x, 0, n, t, sel, sm, lsm, &lse);
    void *exps = with_exps ? xcalloc(n + 1, d->size) : NULL;
    if (exps) d->set(exps, n, GUARD);
    fs_row_result r;
    kernels(d)->row_stats(x, sel, n, &p, exps, &r);
    const char *what = sel ? "with a selection" : "no selection";
    note(&c, r.kind == s.kind ? 0 : INFINITY, "%s T=%g n=%td: kind %d, want %d", what, t, n, r.kind, s.kind);
    note(&c, value_error(d, FS_LOGSUMEXP, r.logsumexp, lse, 0), "%s T=%g n=%td: logsumexp %.17g want %.17Lg",
         what, t, n, r.logsumexp, lse);
    if (exps) note(&c, d->get(exps, n) == GUARD ? 0 : INFINITY, "%s T=%g n=%td: exps past the end", what, t, n);
    if (r.kind == FS_ROW_NORMAL && s.kind == FS_ROW_NORMAL) {
        const wide sum = s.count + s.rest;
        const wide log_sum = t != 0 && !isinf(t) && s.count == 1 ? d->log1p_w(s.rest) : d->log_w(sum);
        note(&c, r.max == s.max ? 0 : INFINITY, "%s T=%g n=%td: max %.17g want %.17Lg", what, t, n, r.max, s.max);
        note(&c, (double)(fabsl(r.inv_sum * sum - 1) / d->bound), "%s T=%g n=%td: inv_sum %.17g want %.17Lg", what,
             t, n, r.inv_sum, 1 / sum);
        note(&c, value_error(d, FS_LOG_SOFTMAX, r.log_sum, log_sum, 1), "%s T=%g n=%td: log_sum %.17g want %.17Lg",
             what, t, n, r.log_sum, log_sum);
        for (ptrdiff_t i = 0; exps && i < n; i++) {
            /* exp((x - max) / T): the softmax times S; the limits' 0/1 weights */
            const wide want = t == 0 || isinf(t) ? (sm[i] != 0) : sm[i] * sum;
            note(&c, value_error(d, FS_SOFTMAX, d->get(exps, i), want, 0), "%s T=%g n=%td exps[%td]: got %.17Lg want %.17Lg",
                 what, t, n, i, d->get(exps, i), want);
        }
    }
    case_end(&c);
    free(sm); free(lsm); free(exps);
}

void check_row_stats(const dtype *d)
{
    static const ptrdiff_t lengths[] = {0, 1, 2, 5, 16, 33, 100, 1000, 70000};
    group g = {d, "row_stats", 0, 0, 0};
    int turn = 0;
    FOR_EACH(n, lengths) {
        const int rounds = n > 1000 ? 1 : 6;
        for (int round = 0; round < rounds; round++, turn++) {
            void *x = test_row(d, n, turn);
            for (int s = 0; s < N_SELS; s++) {
                uint8_t *sel = selection_of(s, n);
                for (size_t k = 0; k < N_TEMPS; k++) {
                    check_stats_row(&g, x, sel, n, TEMPS[k], 1);
                    if (round == 0) check_stats_row(&g, x, sel, n, TEMPS[k], 0);
                }
                free(sel);
            }
            free_rows(d, x);
        }
    }
    group_done(&g);
}

/* ---- backward: vector-Jacobian products ------------------------------------------- */

static void check_backward_batch(group *g, int op, const void *gr, const void *y, const uint8_t *sel, ptrdiff_t rows,
                                 ptrdiff_t n, ptrdiff_t sel_step, double t)
{
    const dtype *d = g->d;
    const ptrdiff_t total = rows * n;
    check_case c = case_begin(g);
    void *out = xcalloc(total, d->size), *again = xcalloc(total, d->size);
    fs_params p;
    params(d, t, &p);
    d->set(out, total, GUARD);
    kernels(d)->backward(op, gr, y, sel, out, rows, n, sel_step, &p);
    const char *what = sel ? (sel_step ? "own selection per row" : "one selection for all rows") : "no selection";
    note(&c, d->get(out, total) == GUARD ? 0 : INFINITY, "%s %s T=%g n=%td: wrote past the end", what, OP_NAMES[op], t, n);
    for (ptrdiff_t r = 0; r < rows; r++) {
        const uint8_t *s = sel ? sel + r * sel_step : NULL;
        /* softmax: y * (g - sum g y) / T; log_softmax: (g - exp(y) sum g) / T; sums over the selection */
        wide sum = 0, sum_abs = 0;
        for (ptrdiff_t i = 0; i < n; i++) {
            if (s && !s[i]) continue;
            const wide gi = d->get(gr, r * n + i), yi = d->get(y, r * n + i);
            sum += op == FS_SOFTMAX ? gi * yi : gi;
            sum_abs += op == FS_SOFTMAX ? fabsl(gi * yi) : fabsl(gi);
        }
        for (ptrdiff_t i = 0; i < n; i++) {
            const wide gi = d->get(gr, r * n + i), yi = d->get(y, r * n + i), got = d->get(out, r * n + i);
            wide want = 0, scale = 0;
            if (!s || s[i]) {
                const wide e = op == FS_SOFTMAX ? yi : expl(yi);
                want = op == FS_SOFTMAX ? yi * (gi - sum) / t : (gi - e * sum) / t;
                scale = op == FS_SOFTMAX ? fabsl(yi) * (fabsl(gi) + sum_abs) / t : (fabsl(gi) + e * sum_abs) / t;
            }
            note(&c, scaled_error(d, got, want, scale, 1), "%s %s T=%g n=%td row %td [%td]: g=%.10Lg y=%.10Lg got %.17Lg want %.17Lg",
                 what, OP_NAMES[op], t, n, r, i, gi, yi, got, want);
        }
    }
    /* out == g is allowed and must give the same bits */
    memcpy(again, gr, (size_t)total * d->size);
    kernels(d)->backward(op, again, y, sel, again, rows, n, sel_step, &p);
    note(&c, memcmp(again, out, (size_t)total * d->size) == 0 ? 0 : INFINITY, "%s %s T=%g n=%td: in place (out == g) differs",
         what, OP_NAMES[op], t, n);
    case_end(&c);
    free(out); free(again);
}

/* y: the forward result of random logits (some -inf), rounded to the dtype; g random. */
static void check_backward_shape(group *g, ptrdiff_t rows, ptrdiff_t n, int selections, const double *temps, size_t n_temps)
{
    const dtype *d = g->d;
    const ptrdiff_t total = rows * n;
    void *x = new_rows(d, total), *gr = new_rows(d, total), *y = new_rows(d, total);
    fill_random(d, x, 0, total, 4.0, 0, 1);
    fill_random(d, gr, 0, total, 1.0, 0, 0);
    uint8_t *sel = new_selection(total, 3);
    wide *sm = xcalloc(total, sizeof(wide)), *lsm = xcalloc(total, sizeof(wide)), *lse = xcalloc(rows, sizeof(wide));
    for (size_t k = 0; k < n_temps; k++) {
        for (ptrdiff_t r = 0; r < rows; r++) expected_row(d, x, r * n, n, temps[k], NULL, sm + r * n, lsm + r * n, lse + r);
        for (int op = FS_SOFTMAX; op <= FS_LOG_SOFTMAX; op++) {
            for (ptrdiff_t i = 0; i < total; i++) d->set(y, i, op == FS_SOFTMAX ? sm[i] : lsm[i]);
            check_backward_batch(g, op, gr, y, NULL, rows, n, 0, temps[k]);
            if (!selections) continue;
            check_backward_batch(g, op, gr, y, sel, rows, n, n, temps[k]);
            check_backward_batch(g, op, gr, y, sel, rows, n, 0, temps[k]);
        }
    }
    free(sel); free(sm); free(lsm); free(lse);
    free_rows(d, x); free_rows(d, gr); free_rows(d, y);
}

void check_backward(const dtype *d)
{
    static const ptrdiff_t lengths[] = {1, 2, 5, 8, 17, 33, 64, 100, 1000};
    group g = {d, "backward", 0, 0, 0};
    for (size_t j = 0; j < sizeof lengths / sizeof lengths[0]; j++)
        check_backward_shape(&g, 3, lengths[j], 1, GENERAL_TEMPS, N_GENERAL_TEMPS);
    /* NaN gradients spread over their row only */
    void *gr = new_rows(d, 3 * 9), *y = new_rows(d, 3 * 9);
    fill_random(d, gr, 0, 27, 1.0, 0, 0);
    for (ptrdiff_t i = 0; i < 27; i++) d->set(y, i, 1.0 / 9);
    d->set(gr, 9 + 4, NAN);
    check_backward_batch(&g, FS_SOFTMAX, gr, y, NULL, 3, 9, 0, 1.0);
    for (ptrdiff_t i = 0; i < 27; i++) d->set(y, i, -logl(9));
    check_backward_batch(&g, FS_LOG_SOFTMAX, gr, y, NULL, 3, 9, 0, 2.0);
    free_rows(d, gr); free_rows(d, y);
    /* an output beyond the caches: the kernel streams its stores */
    const double one = 1.0;
    check_backward_shape(&g, 2, (ptrdiff_t)(1 << 20) / (ptrdiff_t)d->size, 0, &one, 1);
    group_done(&g);
}
