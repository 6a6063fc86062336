/* The per-row losses of the kernel table (cross_entropy_row, kl_div_row,
 * contrastive_row) against long double, following fastsoftmax/reference.py:
 * the loss relative to the size of its terms, the gradient elementwise
 * relative to the size of its terms (as tests/util_training.py compares
 * them), and NaN rows, a student of only -inf among them.
 * tools/check_kernels.sh defines FS_HAVE_LOSS_ROWS once row_kernels.h
 * declares them; before that this file checks nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#ifdef FS_HAVE_LOSS_ROWS

static const ptrdiff_t LOSS_LENGTHS[] = {1, 2, 5, 17, 100, 1000};

/* A row of logits: random, with -inf entries, or special (turn picks). */
static void loss_row(const dtype *d, void *x, ptrdiff_t n, int turn)
{
    fill_random(d, x, 0, n, turn % 4 == 3 ? 20.0 : 3.0, turn % 5 == 4, turn % 3 == 1);
    if (n > 2 && turn % 7 == 6) make_special(d, x, n, (turn / 7) % N_KINDS, (turn * 3) % n);
}

/* The loss and gradient of one call against the oracle's; grad_want NULL: a
 * row whose loss and gradient are NaN (the gradient then NaN everywhere). */
static void compare_loss(check_case *c, double loss, wide want, wide loss_scale, const void *grad, const wide *grad_want,
                         const wide *grad_scale, ptrdiff_t n, const char *what)
{
    const dtype *d = c->g->d;
    note(c, scaled_error(d, loss, want, loss_scale, 1), "%s n=%td: loss %.17g want %.17Lg", what, n, loss, want);
    if (!grad) return;
    note(c, d->get(grad, n) == GUARD ? 0 : INFINITY, "%s n=%td: gradient past the end", what, n);
    for (ptrdiff_t i = 0; i < n; i++) {
        const wide got = d->get(grad, i);
        note(c, grad_want ? scaled_error(d, got, grad_want[i], grad_scale[i], 1) : isnan(got) ? 0 : INFINITY,
             "%s n=%td grad[%td]: got %.17Lg want %.17Lg", what, n, i, got, grad_want ? grad_want[i] : (wide)NAN);
    }
}

/* ---- cross_entropy_row ----------------------------------------------------------- */

/* loss = sum_c a_c * -log_softmax(x / T)_c over a_c != 0, a_c = w_c * ((1 - eps)
 * * onehot_c + eps / n) or w_c * ((1 - eps) * q_c + eps / n); gradient
 * grad_scale * (p_c * sum a - a_c) / T. */
static void check_xent_case(group *g, const void *x, ptrdiff_t n, double t, int64_t target, const void *soft,
                            const void *weight, double smoothing, double grad_scale, int with_grad)
{
    const dtype *d = g->d;
    check_case c = case_begin(g);
    wide *sm = xcalloc(n, sizeof(wide)), *lsm = xcalloc(n, sizeof(wide)), lse, *a = xcalloc(n, sizeof(wide));
    wide *gw = xcalloc(n, sizeof(wide)), *gs = xcalloc(n, sizeof(wide)), want = 0, scale = 0, total = 0, total_abs = 0;
    expected_row(d, x, 0, n, t, NULL, sm, lsm, &lse);
    const int normal = n > 0 && !isnan(sm[0]);
    for (ptrdiff_t i = 0; i < n; i++) {
        const wide w = weight ? d->get(weight, i) : 1;
        a[i] = w * ((1 - (wide)smoothing) * (soft ? d->get(soft, i) : i == target) + (wide)smoothing / n);
        total += a[i], total_abs += fabsl(a[i]);
        if (a[i] != 0) want += -a[i] * lsm[i], scale += fabsl(a[i] * lsm[i]);
    }
    for (ptrdiff_t i = 0; i < n; i++) {
        gw[i] = grad_scale * (sm[i] * total - a[i]) / t;
        gs[i] = fabsl(grad_scale) * (sm[i] * total_abs + fabsl(a[i])) / t;
    }
    if (!normal) want = NAN;
    void *grad = with_grad ? xcalloc(n + 1, d->size) : NULL;
    if (grad) d->set(grad, n, GUARD);
    fs_params p;
    params(d, t, &p);
    const double loss = kernels(d)->cross_entropy_row(x, n, &p, target, soft, weight, smoothing, grad_scale, grad);
    char what[96];
    snprintf(what, sizeof what, "%s%s eps=%g T=%g", soft ? "soft labels" : "class index", weight ? " weighted" : "",
             smoothing, t);
    compare_loss(&c, loss, want, scale, grad, normal ? gw : NULL, gs, n, what);
    case_end(&c);
    free(sm); free(lsm); free(a); free(gw); free(gs); free(grad);
}

static void check_cross_entropy_row(const dtype *d)
{
    static const double smoothings[] = {0.0, 0.1};
    group g = {d, "cross_entropy_row", 0, 0, 0};
    int turn = 0;
    FOR_EACH(n, LOSS_LENGTHS) {
        void *x = new_rows(d, n), *soft = new_rows(d, n), *weight = new_rows(d, n);
        for (int round = 0; round < 4; round++, turn++) {
            loss_row(d, x, n, turn);
            /* soft labels: a distribution, zero where the logit is -inf */
            wide sum = 0;
            for (ptrdiff_t i = 0; i < n; i++) {
                const wide q = d->get(x, i) == -INFINITY ? 0 : rng_uniform();
                d->set(soft, i, q), sum += q;
            }
            for (ptrdiff_t i = 0; i < n; i++) d->set(soft, i, sum > 0 ? d->get(soft, i) / sum : 0);
            for (ptrdiff_t i = 0; i < n; i++) d->set(weight, i, 0.25 + rng_uniform());
            const int64_t target = (int64_t)(rng_u64() % (uint64_t)n);
            for (size_t k = 0; k < N_GENERAL_TEMPS; k++)
                for (size_t e = 0; e < 2; e++)
                    for (int with_grad = 0; with_grad < 2; with_grad++) {
                        const double t = GENERAL_TEMPS[k], eps = smoothings[e], scale = with_grad ? 0.5 : 1.0;
                        check_xent_case(&g, x, n, t, target, NULL, NULL, eps, scale, with_grad);
                        check_xent_case(&g, x, n, t, target, NULL, weight, eps, scale, with_grad);
                        check_xent_case(&g, x, n, t, -1, soft, NULL, eps, scale, with_grad);
                        check_xent_case(&g, x, n, t, -1, soft, weight, eps, scale, with_grad);
                    }
        }
        free_rows(d, x); free_rows(d, soft); free_rows(d, weight);
    }
    group_done(&g);
}

/* ---- kl_div_row -------------------------------------------------------------------- */

/* T^2 KL(softmax(t / T) || softmax(s / T)) = T^2 sum_c q_c (log q_c - log p_c)
 * over q_c > 0; gradient grad_scale * T * (p - q).  A row where either
 * softmax is undefined, a student of only -inf among them: NaN. */
static void check_kl_case(group *g, const void *s, const void *tt, ptrdiff_t n, double t, double grad_scale,
                          int with_grad)
{
    const dtype *d = g->d;
    check_case c = case_begin(g);
    wide *ps = xcalloc(n, sizeof(wide)), *lps = xcalloc(n, sizeof(wide)), *pt = xcalloc(n, sizeof(wide));
    wide *lpt = xcalloc(n, sizeof(wide)), *gw = xcalloc(n, sizeof(wide)), *gs = xcalloc(n, sizeof(wide));
    wide lse_s, lse_t, want = 0, scale = 0;
    expected_row(d, s, 0, n, t, NULL, ps, lps, &lse_s);
    expected_row(d, tt, 0, n, t, NULL, pt, lpt, &lse_t);
    const int normal_t = !isnan(pt[0]), normal_s = !isnan(ps[0]);
    for (ptrdiff_t i = 0; i < n; i++) {
        if (pt[i] > 0) want += pt[i] * (lpt[i] - lps[i]), scale += pt[i] * (fabsl(lpt[i]) + fabsl(lps[i]));
        gw[i] = grad_scale * t * (ps[i] - pt[i]);
        gs[i] = fabsl(grad_scale) * t * (ps[i] + pt[i]);
    }
    want *= (wide)t * t, scale *= (wide)t * t;
    if (!normal_t || !normal_s) want = NAN;
    void *grad = with_grad ? xcalloc(n + 1, d->size) : NULL, *scratch = xcalloc(n, d->size);
    if (grad) d->set(grad, n, GUARD);
    fs_params p;
    params(d, t, &p);
    const double loss = kernels(d)->kl_div_row(s, tt, n, &p, grad_scale, grad, scratch);
    char what[64];
    snprintf(what, sizeof what, "T=%g", t);
    compare_loss(&c, loss, want, scale, grad, normal_t && normal_s ? gw : NULL, gs, n, what);
    case_end(&c);
    free(ps); free(lps); free(pt); free(lpt); free(gw); free(gs); free(grad); free(scratch);
}

static void check_kl_div_row(const dtype *d)
{
    group g = {d, "kl_div_row", 0, 0, 0};
    int turn = 0;
    FOR_EACH(n, LOSS_LENGTHS) {
        void *s = new_rows(d, n), *tt = new_rows(d, n);
        for (int round = 0; round < 5; round++, turn++) {
            loss_row(d, s, n, turn);
            loss_row(d, tt, n, turn + 1);
            if (round == 4)   /* a student of only -inf */
                for (ptrdiff_t i = 0; i < n; i++) d->set(s, i, -INFINITY);
            for (size_t k = 0; k < N_GENERAL_TEMPS; k++) {
                check_kl_case(&g, s, tt, n, GENERAL_TEMPS[k], 0.25, 1);
                check_kl_case(&g, s, tt, n, GENERAL_TEMPS[k], 1.0, 0);
            }
        }
        free_rows(d, s); free_rows(d, tt);
    }
    group_done(&g);
}

/* ---- contrastive_row ------------------------------------------------------------------ */

/* -log_softmax(row / T)_i; gradient (scale_rows * (p - onehot_i) + scale_columns
 * * (q - onehot_i)) / T, where q (the column softmax, computed by the caller)
 * is in grad on entry when scale_columns != 0. */
static void check_contrastive_row(const dtype *d)
{
    group g = {d, "contrastive_row", 0, 0, 0};
    int turn = 0;
    FOR_EACH(n, LOSS_LENGTHS) {
        void *row = new_rows(d, n), *grad = xcalloc(n + 1, d->size), *scratch = xcalloc(n, d->size);
        wide *sm = xcalloc(n, sizeof(wide)), *lsm = xcalloc(n, sizeof(wide)), lse;
        wide *gw = xcalloc(n, sizeof(wide)), *gs = xcalloc(n, sizeof(wide)), *q = xcalloc(n, sizeof(wide));
        for (int round = 0; round < 4; round++, turn++) {
            loss_row(d, row, n, turn);
            const ptrdiff_t i = (ptrdiff_t)(rng_u64() % (uint64_t)n);
            for (size_t k = 0; k < N_GENERAL_TEMPS; k++)
                for (int with_grad = 0; with_grad < 2; with_grad++)
                    for (int columns = 0; columns < 2; columns++) {
                        const double t = GENERAL_TEMPS[k], scale_rows = 0.5, scale_columns = columns ? 0.25 : 0.0;
                        check_case c = case_begin(&g);
                        expected_row(d, row, 0, n, t, NULL, sm, lsm, &lse);
                        const int normal = !isnan(sm[0]);
                        for (ptrdiff_t m = 0; m < n; m++) {
                            d->set(grad, m, rng_uniform());
                            q[m] = d->get(grad, m);
                            gw[m] = (scale_rows * (sm[m] - (m == i)) + scale_columns * (q[m] - (m == i))) / t;
                            gs[m] = (scale_rows * (sm[m] + (m == i)) + scale_columns * (q[m] + (m == i))) / t;
                        }
                        d->set(grad, n, GUARD);
                        fs_params p;
                        params(d, t, &p);
                        const double loss = kernels(d)->contrastive_row(row, i, n, &p, scale_rows, scale_columns,
                                                                        with_grad ? grad : NULL, scratch);
                        char what[96];
                        snprintf(what, sizeof what, "row %td T=%g scale_columns %g", i, t, scale_columns);
                        compare_loss(&c, loss, normal ? -lsm[i] : NAN, fabsl(lsm[i]), with_grad ? grad : NULL,
                                     normal ? gw : NULL, gs, n, what);
                        case_end(&c);
                    }
        }
        free_rows(d, row); free(grad); free(scratch); free(sm); free(lsm); free(gw); free(gs); free(q);
    }
    group_done(&g);
}

void check_loss_rows(const dtype *d)
{
    check_cross_entropy_row(d);
    check_kl_div_row(d);
    check_contrastive_row(d);
}

#else

/* The kernel table has no loss rows yet (the Cython layer computes them). */
void check_loss_rows(const dtype *d)
{
    printf("%-8s loss rows: not in this kernel table (FS_HAVE_LOSS_ROWS undefined), not checked\n", d->name);
}

#endif
