/* The loss helpers (weighted_gap, combine), the weighted log-sum-exp
 * (weighted_stats, finished by weighted.h) and the 16-bit rows (staged_rows),
 * each against long double. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "weighted.h"

/* ---- weighted_gap and combine ---------------------------------------------------- */

/* a_i = wt_i * (b_q * q_i + b_0), wt or q NULL reading as 1 and 0 */
static wide coefficient(const dtype *d, const void *wt, const void *q, double b_q, double b_0, ptrdiff_t i)
{
    const wide w = wt ? d->get(wt, i) : 1;
    return q ? w * (b_q * d->get(q, i) + b_0) : w * b_0;
}

/* The coefficient inputs of a case: wt and q each given or not, q with zeros
 * (where x may be -inf: a zero coefficient must never meet it). */
typedef struct {
    const void *wt, *q;
    double b_q, b_0;
} coefficients;

static coefficients coefficients_for(int turn, const void *wt, const void *q)
{
    static const double b_q[] = {1.0, 0.9, -0.5}, b_0[] = {0.0, 0.01, 0.25};
    return (coefficients){turn & 1 ? wt : NULL, turn & 2 ? q : NULL, b_q[turn % 3], b_0[(turn / 4) % 3]};
}

void check_weighted_gap(const dtype *d)
{
    static const ptrdiff_t lengths[] = {0, 1, 5, 17, 100, 1000};
    group g = {d, "weighted_gap", 0, 0, 0};
    FOR_EACH(n, lengths) {
        void *x = new_rows(d, n), *y = new_rows(d, n), *wt = new_rows(d, n), *q = new_rows(d, n);
        for (ptrdiff_t i = 0; i < n; i++) {
            d->set(wt, i, 0.5 + rng_uniform());
            d->set(q, i, i % 3 == 1 ? 0.0 : rng_uniform());
        }
        for (int turn = 0; turn < 12; turn++) {
            const coefficients a = coefficients_for(turn, wt, q);
            fill_random(d, x, 0, n, 4.0, 0, 0);
            fill_random(d, y, 0, n, 4.0, 0, 0);
            /* -inf logits where the coefficient is 0 */
            for (ptrdiff_t i = 0; i < n; i++)
                if (coefficient(d, a.wt, a.q, a.b_q, a.b_0, i) == 0) d->set(x, i, -INFINITY), d->set(y, i, -INFINITY);
            for (int with_y = 0; with_y < 2; with_y++) {
                check_case c = case_begin(&g);
                const double mx = 1.5, my = -0.5;   /* any finite shifts */
                const void *yy = with_y ? y : NULL;
                wide want = 0, want_total = 0, scale = 0, scale_total = 0;
                for (ptrdiff_t i = 0; i < n; i++) {
                    const wide ai = coefficient(d, a.wt, a.q, a.b_q, a.b_0, i);
                    if (ai == 0) continue;
                    const wide gap = (d->get(x, i) - mx) - (yy ? d->get(y, i) - my : 0);
                    want += ai * gap, scale += fabsl(ai * gap);
                    want_total += ai, scale_total += fabsl(ai);
                }
                double total = NAN;
                const double got = kernels(d)->weighted_gap(x, mx, yy, my, a.wt, a.q, a.b_q, a.b_0, n, &total);
                /* summed in double, one term after another */
                const wide allowed = (n + 4) * DBL_EPSILON, tiny = 0x1p-1074L;
                note(&c, (double)(fabsl(got - want) / (allowed * scale + tiny)),
                     "n=%td turn %d y %d: gap %.17g want %.17Lg", n, turn, with_y, got, want);
                note(&c, (double)(fabsl(total - want_total) / (allowed * scale_total + tiny)),
                     "n=%td turn %d: total %.17g want %.17Lg", n, turn, total, want_total);
                case_end(&c);
            }
        }
        free_rows(d, x); free_rows(d, y); free_rows(d, wt); free_rows(d, q);
    }
    group_done(&g);
}

void check_combine(const dtype *d)
{
    static const ptrdiff_t lengths[] = {0, 1, 5, 17, 100, 1000};
    static const double alphas[] = {1.0, 0.37, -2.5};
    group g = {d, "combine", 0, 0, 0};
    FOR_EACH(n, lengths) {
        void *start = new_rows(d, n), *out = new_rows(d, n), *wt = new_rows(d, n), *q = new_rows(d, n);
        fill_random(d, start, 0, n, 1.0, 0, 0);
        for (ptrdiff_t i = 0; i < n; i++) {
            d->set(wt, i, 0.5 + rng_uniform());
            d->set(q, i, i % 3 == 1 ? 0.0 : rng_uniform());
        }
        for (int turn = 0; turn < 12; turn++)
            for (size_t k = 0; k < sizeof alphas / sizeof alphas[0]; k++) {
                const coefficients a = coefficients_for(turn, wt, q);
                check_case c = case_begin(&g);
                memcpy(out, start, (size_t)n * d->size);
                d->set(out, n, GUARD);
                kernels(d)->combine(out, n, alphas[k], a.wt, a.q, a.b_q, a.b_0);
                note(&c, d->get(out, n) == GUARD ? 0 : INFINITY, "n=%td: wrote past the end", n);
                for (ptrdiff_t i = 0; i < n; i++) {
                    const wide product = alphas[k] * d->get(start, i), ai = coefficient(d, a.wt, a.q, a.b_q, a.b_0, i);
                    /* alpha, the product, a_i and the difference each rounded once in the dtype */
                    const wide allowed = 2 * d->eps * (fabsl(product) + fabsl(ai)), got = d->get(out, i);
                    note(&c, (double)(fabsl(got - (product - ai)) / (allowed + d->tiny)),
                         "n=%td turn %d alpha %g [%td]: got %.17Lg want %.17Lg", n, turn, alphas[k], i, got, product - ai);
                }
                case_end(&c);
            }
        free_rows(d, start); free_rows(d, out); free_rows(d, wt); free_rows(d, q);
    }
    group_done(&g);
}

/* ---- weighted_stats: SciPy's logsumexp(a, b=...) ---------------------------------- */

/* log |sum_i b_i exp(x_i / T)| and its sign in long double (the rules of weighted.h) */
static void expected_weighted(const dtype *d, const void *x, const void *b, ptrdiff_t b_step, ptrdiff_t n, wide t,
                              wide *value, wide *sign, wide *sum, wide *abs_sum, wide *max)
{
    wide m = -INFINITY;
    int bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        const wide v = d->get(x, i), w = d->get(b, i * b_step);
        if (w == 0) continue;
        if (isnan(v) || isnan(w) || (isinf(w) && v == -INFINITY)) bad = 1;
        else if (v > m) m = v;
    }
    *max = m, *sum = 0, *abs_sum = 0;
    if (bad) { *value = *sign = NAN; return; }
    if (m == -INFINITY) { *value = -INFINITY, *sign = 0; return; }
    for (ptrdiff_t i = 0; i < n; i++) {
        const wide v = d->get(x, i), w = d->get(b, i * b_step);
        if (w == 0 || v == -INFINITY) continue;
        const wide term = m == INFINITY ? (v == INFINITY ? w * INFINITY : isinf(w) ? w : 0) : w * d->exp_w((v - m) / t);
        *sum += term, *abs_sum += fabsl(term);
    }
    if (isnan(*sum)) { *value = *sign = NAN; return; }
    if (*sum == 0) { *value = -INFINITY, *sign = 0; return; }
    *sign = *sum > 0 ? 1 : -1;
    *value = isinf(*sum) ? INFINITY : m + t * d->log_w(fabsl(*sum));
}

static void check_weighted_case(group *g, const void *x, const void *b, ptrdiff_t b_step, ptrdiff_t n, double t,
                                ptrdiff_t piece)
{
    const dtype *d = g->d;
    check_case c = case_begin(g);
    wide value, sign, sum, abs_sum, max;
    expected_weighted(d, x, b, b_step, n, t, &value, &sign, &sum, &abs_sum, &max);
    fs_params p;
    params(d, t, &p);
    fs_stats row;
    fs_stats_init(&row);
    for (ptrdiff_t start = 0; start < n || start == 0; start += piece) {
        fs_stats chunk;
        const ptrdiff_t len = n - start < piece ? n - start : piece;
        kernels(d)->weighted_stats((const char *)x + start * d->size, (const char *)b + start * b_step * d->size,
                                   b_step, len, &p, &chunk);
        fs_stats_merge(&chunk, &p, &row);
        if (n == 0) break;
    }
    double got, got_sign;
    fs_weighted_finish(&row, t, &got, &got_sign);
    note(&c, same_special(got_sign, sign) ? 0 : INFINITY, "n=%td step %td T=%g chunks of %td: sign %g want %Lg (value %.17g want %.17Lg)",
         n, b_step, t, piece, got_sign, sign, got, value);
    if (isfinite(value) && isfinite(max) && isfinite(got)) {
        /* the sum S = sign * exp((value - max) / T), against the size of its terms */
        const wide s = got_sign * expl((got - max) / t);
        note(&c, scaled_error(d, s, sum, abs_sum, 1), "n=%td step %td T=%g chunks of %td: value %.17g want %.17Lg",
             n, b_step, t, piece, got, value);
    } else {
        note(&c, same_special(got, value) ? 0 : INFINITY, "n=%td step %td T=%g chunks of %td: value %.17g want %.17Lg",
             n, b_step, t, piece, got, value);
    }
    case_end(&c);
}

/* An infinite weight in one chunk and a larger maximum in a later chunk:
 * (+inf, sign of the weight), as SciPy gives (fs_stats_merge once folded a
 * NaN compensation into the new rest here). */
#ifndef CHECK_INFINITE_WEIGHT_CHUNKS
#define CHECK_INFINITE_WEIGHT_CHUNKS 1
#endif

void check_weighted_stats(const dtype *d)
{
    static const ptrdiff_t lengths[] = {0, 1, 3, 8, 17, 100, 1000};
    group g = {d, "weighted_stats + merge + finish", 0, 0, 0};
    int turn = 0;
    for (size_t j = 0; j < sizeof lengths / sizeof lengths[0]; j++)
        for (int kind = 0; kind < 8; kind++, turn++) {
            const ptrdiff_t n = lengths[j];
            void *x = new_rows(d, n + 1), *b = new_rows(d, n + 1);
            fill_random(d, x, 0, n, 4.0, kind == 1, kind == 2);
            for (ptrdiff_t i = 0; i < n + 1; i++) {
                /* positive, of both signs, with zeros (over NaN and inf logits, which then do not count) */
                wide w = kind % 3 == 0 ? 0.1 + rng_uniform() : kind % 3 == 1 ? rng_normal() : (i % 3 ? rng_uniform() : 0);
                d->set(b, i, w);
                if (w == 0 && i < n) d->set(x, i, i % 2 ? NAN : INFINITY);
            }
            if (n > 2) {
                const ptrdiff_t at = (turn * 5) % n;
                switch (kind) {
                case 3: d->set(x, at, INFINITY); d->set(b, at, 0.5); break;             /* +inf with weight */
                case 4: d->set(x, at, NAN); d->set(b, at, 0.5); break;                  /* NaN with weight */
                case 5: d->set(x, at, -INFINITY); d->set(b, at, INFINITY); break;       /* inf * 0: NaN */
                case 6: d->set(b, at, -INFINITY); d->set(x, at, 1.0); break;            /* an infinite weight */
                case 7: for (ptrdiff_t i = 0; i < n; i++) d->set(x, i, -INFINITY); break;  /* nothing but -inf */
                }
            }
            for (size_t k = 0; k < N_GENERAL_TEMPS; k++) {
                check_weighted_case(&g, x, b, 1, n, GENERAL_TEMPS[k], n > 0 ? n : 1);
                if (kind != 6 || CHECK_INFINITE_WEIGHT_CHUNKS) check_weighted_case(&g, x, b, 1, n, GENERAL_TEMPS[k], 7);
                check_weighted_case(&g, x, (const char *)b + d->size * (size_t)(n / 2), 0, n, GENERAL_TEMPS[k], n > 0 ? n : 1);
            }
            free_rows(d, x); free_rows(d, b);
        }
    group_done(&g);
}

/* ---- staged_rows: 16-bit storage computed in the row dtype ------------------------- */

static float float_bits(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static uint32_t bits_of(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

static wide widen(int format, uint16_t h)
{
    if (format == FS_BF16) return float_bits((uint32_t)h << 16);
    const int e = (h >> 10) & 31, m = h & 1023;
    const wide s = h & 0x8000 ? -1 : 1;
    if (e == 31) return m ? NAN : s * INFINITY;
    return s * ldexpl(e ? 1024 + m : m, (e ? e : 1) - 25);
}

/* A value that the format holds exactly: v cut to its precision (normal range, or 0). */
static uint16_t narrow_exactly(int format, float v)
{
    if (isnan(v)) return format == FS_BF16 ? 0x7fc0 : 0x7e00;
    const uint32_t u = bits_of(v);
    if (format == FS_BF16) return (uint16_t)(u >> 16);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    if (isinf(v)) return sign | 0x7c00;
    const int e = (int)((u >> 23) & 255) - 127;
    if (e < -14) return sign;
    if (e > 15) return sign | 0x7bff;
    return sign | (uint16_t)((e + 15) << 10) | (uint16_t)((u >> 13) & 1023);
}

static void check_staged_case(group *g, int op, int in_format, int out_format, const uint16_t *x16,
                              ptrdiff_t rows, ptrdiff_t n, double t)
{
    const dtype *d = g->d;
    static const char *const formats[] = {"bfloat16", "float16"};
    const char *out_name = out_format < 0 ? d->name : formats[out_format];
    check_case c = case_begin(g);
    const ptrdiff_t total = rows * n, count = op == FS_LOGSUMEXP ? rows : total;
    void *x = new_rows(d, total);
    for (ptrdiff_t i = 0; i < total; i++) d->set(x, i, widen(in_format, x16[i]));
    wide *sm = xcalloc(total, sizeof(wide)), *lsm = xcalloc(total, sizeof(wide)), *lse = xcalloc(rows, sizeof(wide));
    for (ptrdiff_t r = 0; r < rows; r++) expected_row(d, x, r * n, n, t, NULL, sm + r * n, lsm + r * n, lse + r);
    const ptrdiff_t buf_len = n <= FS_STAGE_BY_ROW ? rows * (n + 1) : n + 1;
    void *buf = xcalloc(buf_len, d->size), *out = xcalloc(count, out_format < 0 ? d->size : 2);
    d->set(buf, buf_len, GUARD);
    if (out_format < 0) d->set(out, count, GUARD);
    else ((uint16_t *)out)[count] = 0xbeef;
    fs_params p;
    params(d, t, &p);
    kernels(d)->staged_rows(op, in_format, out_format, x16, out, rows, n, &p, buf);
    note(&c, d->get(buf, buf_len) == GUARD ? 0 : INFINITY, "%s %s to %s n=%td: wrote past the buffer",
         OP_NAMES[op], formats[in_format], out_name, n);
    note(&c, (out_format < 0 ? d->get(out, count) == GUARD : ((uint16_t *)out)[count] == 0xbeef) ? 0 : INFINITY,
         "%s %s to %s n=%td: wrote past the end", OP_NAMES[op], formats[in_format], out_name, n);
    /* the result of the row dtype's bounds, then rounded once (or twice, from float64) to 16 bits */
    const wide rel16 = out_format == FS_BF16 ? 0x1p-8L : 0x1p-11L, sub16 = out_format == FS_BF16 ? 0x1p-133L : 0x1p-24L;
    for (ptrdiff_t i = 0; i < count; i++) {
        const wide want = op == FS_SOFTMAX ? sm[i] : op == FS_LOG_SOFTMAX ? lsm[i] : lse[i];
        if (out_format < 0) {
            note(&c, value_error(d, op, d->get(out, i), want, 0), "%s %s to %s n=%td [%td]: got %.17Lg want %.17Lg",
                 OP_NAMES[op], formats[in_format], out_name, n, i, d->get(out, i), want);
            continue;
        }
        const wide got = widen(out_format, ((uint16_t *)out)[i]);
        double err;
        if (!isfinite(want) || !isfinite(got)) err = same_special(got, want) ? 0 : INFINITY;
        else {
            /* the row dtype's own error; from float64, the float32 step's rounding too */
            const wide own = (op == FS_SOFTMAX ? d->tail * fabsl(want) : 4 * d->bound * fmaxl(1, fabsl(want))) +
                             FLT_EPSILON / 2 * fabsl(want);
            err = (double)(fabsl(got - want) / (rel16 * fabsl(want) + own + sub16));
        }
        note(&c, err, "%s %s to %s n=%td [%td]: got %.17Lg want %.17Lg", OP_NAMES[op], formats[in_format], out_name, n,
             i, got, want);
    }
    case_end(&c);
    free(sm); free(lsm); free(lse); free(buf); free(out);
    free_rows(d, x);
}

void check_staged_rows(const dtype *d)
{
    static const ptrdiff_t lengths[] = {1, 7, 33, 256, 300};
    static const ptrdiff_t row_counts[] = {1, 3, 17};
    group g = {d, "staged_rows (bfloat16, float16)", 0, 0, 0};
    int turn = 0;
    for (size_t j = 0; j < sizeof lengths / sizeof lengths[0]; j++)
        for (size_t a = 0; a < sizeof row_counts / sizeof row_counts[0]; a++)
            for (int in_format = FS_BF16; in_format <= FS_F16; in_format++, turn++) {
                const ptrdiff_t n = lengths[j], rows = row_counts[a], total = rows * n;
                uint16_t *x16 = xcalloc(total, 2);
                for (ptrdiff_t i = 0; i < total; i++) x16[i] = narrow_exactly(in_format, (float)(rng_normal() * 4));
                if (turn % 3 == 1) {   /* a special row in the middle */
                    float *row = xcalloc(n, sizeof(float));
                    for (ptrdiff_t i = 0; i < n; i++) row[i] = (float)widen(in_format, x16[(rows / 2) * n + i]);
                    if (n > 2) make_special(&F32, row, n, (turn / 3) % N_KINDS, (turn * 7) % n);
                    for (ptrdiff_t i = 0; i < n; i++) x16[(rows / 2) * n + i] = narrow_exactly(in_format, row[i]);
                    free(row);
                }
                for (size_t k = 0; k < N_TEMPS; k++)
                    for (int op = FS_SOFTMAX; op <= FS_LOGSUMEXP; op++)
                        for (int out_format = -1; out_format <= FS_F16; out_format++)
                            check_staged_case(&g, op, in_format, out_format, x16, rows, n, TEMPS[k]);
                free(x16);
            }
    group_done(&g);
}
