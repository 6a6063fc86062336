/* Standalone check of the C kernels (issues 12 and 16), run by
 * tools/check_kernels.sh natively and, cross-compiled, under qemu-aarch64:
 * the portable baseline is then checked on a CPU it is not developed on,
 * without Python or NumPy.
 *
 * main runs every group once per instruction-set variant this build and CPU
 * have (fs_use_isa: avx512, avx2, baseline), for float32 and float64.  Each
 * group calls one entry of the kernel table; this file holds `rows` (one
 * dtype, one op, one temperature, a batch of rows per case, every output
 * compared with the long-double oracle of check_support.c: the special-value
 * table, the T = 0 and T = inf limits, the accuracy bounds), the other
 * entries are checked in check_entries.c, check_helpers.c and
 * check_losses.c.  Prints one line per group, "<variant>: N passed, M failed"
 * per variant and finally exactly "N passed, M failed"; exits 1 on any
 * failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ---- one batch: all three ops ---------------------------------------------- */

static void check_batch(group *g, double t, const void *x, ptrdiff_t rows, ptrdiff_t n, int near_zero)
{
    const dtype *d = g->d;
    const fs_kernels *k = kernels(d);
    const ptrdiff_t total = rows * n;
    wide *sm = xcalloc(total, sizeof(wide)), *lsm = xcalloc(total, sizeof(wide)), *lse = xcalloc(rows, sizeof(wide));
    void *out = xcalloc(total > rows ? total : rows, d->size), *again = xcalloc(total > rows ? total : rows, d->size);
    for (ptrdiff_t r = 0; r < rows; r++) expected_row(d, x, r * n, n, t, NULL, sm + r * n, lsm + r * n, lse + r);
    fs_params p;
    params(d, t, &p);

    for (int op = FS_SOFTMAX; op <= FS_LOGSUMEXP; op++) {
        const ptrdiff_t count = op == FS_LOGSUMEXP ? rows : total;
        check_case c = case_begin(g);
        d->set(out, count, GUARD);
        k->rows(op, x, out, rows, n, &p, 0);
        note(&c, d->get(out, count) == GUARD ? 0 : INFINITY, "%s T=%g n=%td: wrote past the end of out",
             OP_NAMES[op], t, n);
        for (ptrdiff_t r = 0; r < rows; r++) {
            const ptrdiff_t len = op == FS_LOGSUMEXP ? 1 : n;
            for (ptrdiff_t i = 0; i < len; i++) {
                const ptrdiff_t at = op == FS_LOGSUMEXP ? r : r * n + i;
                wide want = op == FS_SOFTMAX ? sm[at] : op == FS_LOG_SOFTMAX ? lsm[at] : lse[r];
                wide got = d->get(out, at), xi = op == FS_LOGSUMEXP ? NAN : d->get(x, at);
                note(&c, value_error(d, op, got, want, near_zero), "%s T=%g n=%td row %td [%td]: x=%.10Lg got=%.17Lg want=%.17Lg",
                     OP_NAMES[op], t, n, r, i, xi, got, want);
            }
            /* a float32 row's softmax sums to 1 within 2e-6 at any length */
            if (op == FS_SOFTMAX && d == &F32 && n > 0 && !isnan(sm[r * n])) {
                wide s = 0;
                for (ptrdiff_t i = 0; i < n; i++) s += d->get(out, r * n + i);
                note(&c, (double)fabsl(s - 1) / 2e-6, "%s T=%g n=%td row %td: row sum %.10Lg", OP_NAMES[op], t, n, r, s);
            }
        }
        /* out == x is allowed and must give the same bits */
        if (op != FS_LOGSUMEXP && total > 0) {
            memcpy(again, x, (size_t)total * d->size);
            k->rows(op, again, again, rows, n, &p, 0);
            note(&c, memcmp(again, out, (size_t)total * d->size) == 0 ? 0 : INFINITY,
                 "%s T=%g n=%td: in place (out == x) differs", OP_NAMES[op], t, n);
        }
        /* non-temporal stores (a huge output) change where values go, not the values */
        if (total > 0) {
            memset(again, 0, (size_t)count * d->size);
            k->rows(op, x, again, rows, n, &p, 1);
            note(&c, memcmp(again, out, (size_t)count * d->size) == 0 ? 0 : INFINITY,
                 "%s T=%g n=%td: streamed stores differ", OP_NAMES[op], t, n);
        }
        case_end(&c);
    }
    free(sm); free(lsm); free(lse); free(out); free(again);
}

/* ---- groups ---------------------------------------------------------------- */

/* Two random rows of length n, the second with ties and -inf entries, checked at each temperature. */
static void check_random_pair(group *g, ptrdiff_t n, double scale, const double *temps, size_t n_temps)
{
    void *x = new_rows(g->d, 2 * n);
    fill_random(g->d, x, 0, n, 4.0, 0, 0);
    fill_random(g->d, x, n, n, scale, 1, 1);
    for (size_t k = 0; k < n_temps; k++) check_batch(g, temps[k], x, 2, n, 0);
    free_rows(g->d, x);
}

/* ---- groups ---------------------------------------------------------------- */

static void rows_group_random(const dtype *d)
{
    group g = {d, "random rows n=1..300", 0, 0, 0};
    for (ptrdiff_t n = 1; n <= 300; n++) check_random_pair(&g, n, n % 7 ? 4.0 : 30.0, TEMPS, N_TEMPS);
    group_done(&g);
}

static void rows_group_long(const dtype *d)
{
    group g = {d, "long rows n=4099,5000,70000", 0, 0, 0};
    /* 70000 > 2 * FS_CHUNK: sums are combined over three chunks */
    const ptrdiff_t lengths[] = {4099, 5000, 70000};
    for (size_t j = 0; j < 3; j++) check_random_pair(&g, lengths[j], 4.0, TEMPS, N_TEMPS);
    group_done(&g);
}

/* Temperatures so small or large that the kernels may switch to the limit
 * modes, and a subnormal one. */
static void rows_group_extreme_temperatures(const dtype *d)
{
    group g = {d, "extreme temperatures", 0, 0, 0};
    const double temps[] = {1e-300, 5e-324, 1e-30, 1e-5, 1e5, 1e30, 1e300};
    const ptrdiff_t lengths[] = {1, 2, 5, 16, 33, 100};
    for (size_t j = 0; j < 6; j++) check_random_pair(&g, lengths[j], 4.0, temps, 7);
    group_done(&g);
}

/* The special-value table, row kind by row kind, with the special entries at
 * the start, middle and end (vector bodies and tails); each special row sits
 * between two ordinary rows, which must come out as if alone. */
static void rows_group_special(const dtype *d)
{
    static const ptrdiff_t lengths[] = {1, 2, 3, 7, 8, 16, 17, 31, 64, 65, 100, 257};
    group g = {d, "special values (-inf, +inf, NaN)", 0, 0, 0};
    for (size_t j = 0; j < sizeof lengths / sizeof lengths[0]; j++) {
        const ptrdiff_t n = lengths[j], where[] = {0, n / 2, n - 1};
        for (int kind = 0; kind < N_KINDS; kind++) {
            for (int w = 0; w < 3; w++) {
                void *x = new_rows(d, 3 * n);
                fill_random(d, x, 0, 3 * n, 4.0, 0, 0);
                /* the special row is the middle one */
                make_special(d, (char *)x + n * d->size, n, kind, where[w]);
                for (size_t k = 0; k < N_TEMPS; k++) check_batch(&g, TEMPS[k], x, 3, n, 0);
                free_rows(d, x);
            }
        }
    }
    /* empty rows (logsumexp -inf, nothing written) and calls with no rows */
    void *x = new_rows(d, 8);
    fill_random(d, x, 0, 8, 4.0, 0, 0);
    for (size_t k = 0; k < N_TEMPS; k++) {
        check_batch(&g, TEMPS[k], x, 3, 0, 0);
        check_batch(&g, TEMPS[k], x, 0, 5, 0);
    }
    free_rows(d, x);
    group_done(&g);
}

/* Many tiny rows in one call: softmax computes groups of lanes-per-vector
 * rows of n <= lanes (16 float32 / 8 float64 with AVX-512, 8 / 4 AVX2, 4 / 2
 * baseline) as transposed tiles counted from the first row, whose full-width
 * loads and stores run into the following rows; rows near a tile's end are
 * masked, rows after the last whole tile go one by one, and a tile with a
 * special row falls back to row by row.  Each batch is checked plain and
 * with two special rows (kinds and places rotating: a tile's first and last
 * row, inside, after the last tile); check_batch also checks the guard just
 * past out and out == x. */
static void rows_group_tiles(const dtype *d)
{
    static const ptrdiff_t row_counts[] = {16, 17, 23, 31, 32, 33, 40};
    group g = {d, "tiles: 16..40 rows of n=1..17", 0, 0, 0};
    int turn = 0;
    FOR_EACH(rows, row_counts) {
        for (ptrdiff_t n = 1; n <= 17; n++) {
            void *x = new_rows(d, rows * n);
            fill_random(d, x, 0, rows * n, n % 5 ? 4.0 : 30.0, n % 3 == 0, 0);
            for (size_t k = 0; k < N_TEMPS; k++) check_batch(&g, TEMPS[k], x, rows, n, 0);
            const ptrdiff_t places[] = {0, 3, 7, 8, 15, 16, rows - 1};
            for (int s = 0; s < 2; s++, turn++) {
                const ptrdiff_t r = places[(turn * 3) % 7] % rows, pos = (turn * 5) % n;
                make_special(d, (char *)x + r * n * d->size, n, turn % N_KINDS, pos);
            }
            for (size_t k = 0; k < N_TEMPS; k++) check_batch(&g, TEMPS[k], x, rows, n, 0);
            free_rows(d, x);
        }
    }
    group_done(&g);
}

/* Logits up to the dtype's largest finite value: nothing may overflow, also
 * with temperatures near that value. */
static void rows_group_huge(const dtype *d)
{
    group g = {d, "huge logits (near the dtype max)", 0, 0, 0};
    const wide big = d->max;
    const double temps[] = {1.0, 0.5, 3.0, 0.0, INFINITY, 2.0, (double)(big / 12.3L), (double)(big / 43.7L), 1e300};
    const wide fixed[15] = {big, big, -big, big, big / 2, 0, -big, -big, -big / 2, big, -big, 0, -big, big / 2, -big};
    void *x3 = new_rows(d, 15), *x37 = new_rows(d, 2 * 37), *x70 = new_rows(d, 70);
    for (int i = 0; i < 15; i++) d->set(x3, i, fixed[i]);
    for (int i = 0; i < 2 * 37; i++) d->set(x37, i, big * (2 * rng_uniform() - 1));   /* over [-big, big] */
    for (int i = 0; i < 70; i++) d->set(x70, i, i % 3 ? big * (1 - 1e-3L * rng_uniform()) : big);   /* ties at big */
    for (size_t k = 0; k < sizeof temps / sizeof temps[0]; k++) {
        check_batch(&g, temps[k], x3, 5, 3, 0);
        check_batch(&g, temps[k], x37, 2, 37, 0);
        check_batch(&g, temps[k], x70, 1, 70, 0);
    }
    free_rows(d, x3); free_rows(d, x37); free_rows(d, x70);
    group_done(&g);
}

/* Log values near 0 keep full precision: logsumexp([0, -40]) = log1p(exp(-40))
 * = 4.248e-18, and the maximum's log_softmax is -log1p(...). */
static void rows_group_near_zero(const dtype *d)
{
    group g = {d, "values near 0 (log1p path)", 0, 0, 0};
    const ptrdiff_t lengths[] = {2, 3, 17, 100, 1000};
    for (size_t j = 0; j < 5; j++) {
        const ptrdiff_t n = lengths[j];
        void *x = new_rows(d, 2 * n);
        for (ptrdiff_t r = 0; r < 2; r++) {
            d->set(x, r * n, r == 0 ? 0.0 : 5.0);   /* the maximum; row 1's is not 0 */
            for (ptrdiff_t i = 1; i < n; i++) d->set(x, r * n + i, (r == 0 ? -40.0 : -30.0) - 5 * rng_uniform());
        }
        for (size_t k = 0; k < 3; k++) check_batch(&g, TEMPS[k], x, 2, n, 1);   /* T = 1, 0.5, 3 */
        free_rows(d, x);
    }
    group_done(&g);
}


void check_rows_entry(const dtype *d)
{
    rows_group_random(d);
    rows_group_long(d);
    rows_group_special(d);
    rows_group_tiles(d);
    rows_group_huge(d);
    rows_group_near_zero(d);
    rows_group_extreme_temperatures(d);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);   /* lines so far survive a crash in a kernel */
    static const char *const isas[] = {"avx512", "avx2", "baseline"};
    long variants = 0;
    for (size_t v = 0; v < sizeof isas / sizeof isas[0]; v++) {
        if (fs_use_isa(isas[v]) != 0) {
            printf("== %s: not in this build or on this CPU, skipped\n", isas[v]);
            continue;
        }
        variants++;
        variant_begin(isas[v]);
        const dtype *dtypes[] = {&F32, &F64};
        for (int k = 0; k < 2; k++) {
            const dtype *d = dtypes[k];
            check_rows_entry(d);
            check_chunks(d);
            check_rows_where(d);
            check_columns(d);
            check_row_stats(d);
            check_backward(d);
            check_weighted_gap(d);
            check_combine(d);
            check_weighted_stats(d);
            check_staged_rows(d);
            check_loss_rows(d);
        }
        variant_done(isas[v]);
    }
    fs_use_isa("best");
    long failed = failures_so_far();
    printf("%ld variants checked\n", variants);
    printf("%ld passed, %ld failed\n", total_cases() - failed, failed);
    return failed || variants == 0 ? 1 : 0;
}
