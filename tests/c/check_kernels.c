/* Standalone check of the C kernels (issue 12), run by tools/check_kernels.sh
 * natively and, cross-compiled, under qemu-aarch64: the portable baseline is
 * then checked on a CPU it is not developed on, without Python or NumPy.
 *
 * Every case is one fs_rows_* call (one dtype, one op, one temperature, a
 * batch of rows) whose every output is compared with expected values worked
 * out here in long double, following the package contract (CONTRACT.md) and
 * fastsoftmax/reference.py: the special-value table, the T = 0 and T = inf
 * limits, and the accuracy bounds.  exp/log run in double for float32 rows
 * (ample against its bounds, and cheap under emulation) and in long double
 * for float64 rows.  Prints one line per group and finally exactly
 * "N passed, M failed"; exits 1 on any failure. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "row_kernels.h"

typedef long double wide;

/* ---- the two dtypes ------------------------------------------------------ */

typedef struct {
    const char *name;
    size_t size;
    double bound;     /* softmax entries >= 1e-8: relative error; log values 4x, relative to max(1, |v|) */
    double tail;      /* softmax entries from the smallest normal up to 1e-8 */
    wide tiny, max;   /* smallest normal, largest finite */
    void (*params_init)(double, fs_params *);
    void (*rows)(int, const void *, void *, ptrdiff_t, ptrdiff_t, const fs_params *);
    wide (*get)(const void *, ptrdiff_t);
    void (*set)(void *, ptrdiff_t, wide);   /* rounds to the dtype: beyond its range gives inf */
    wide (*exp_w)(wide), (*log_w)(wide), (*log1p_w)(wide);
} dtype;

static void rows_f32(int op, const void *x, void *out, ptrdiff_t rows, ptrdiff_t n, const fs_params *p)
{ fs_rows_f32(op, (const float *)x, (float *)out, rows, n, p); }
static void rows_f64(int op, const void *x, void *out, ptrdiff_t rows, ptrdiff_t n, const fs_params *p)
{ fs_rows_f64(op, (const double *)x, (double *)out, rows, n, p); }
static wide get_f32(const void *a, ptrdiff_t i) { return ((const float *)a)[i]; }
static wide get_f64(const void *a, ptrdiff_t i) { return ((const double *)a)[i]; }
static void set_f32(void *a, ptrdiff_t i, wide v) { ((float *)a)[i] = (float)v; }
static void set_f64(void *a, ptrdiff_t i, wide v) { ((double *)a)[i] = (double)v; }
static wide exp_d(wide a) { return exp((double)a); }       static wide exp_l(wide a) { return expl(a); }
static wide log_d(wide a) { return log((double)a); }       static wide log_l(wide a) { return logl(a); }
static wide log1p_d(wide a) { return log1p((double)a); }   static wide log1p_l(wide a) { return log1pl(a); }

static const dtype F32 = {"float32", 4, 2e-6, 1e-4, FLT_MIN, FLT_MAX, fs_params_init_f32, rows_f32,
                          get_f32, set_f32, exp_d, log_d, log1p_d};
static const dtype F64 = {"float64", 8, 1e-14, 1e-12, DBL_MIN, DBL_MAX, fs_params_init_f64, rows_f64,
                          get_f64, set_f64, exp_l, log_l, log1p_l};

static const double TEMPS[] = {1.0, 0.5, 3.0, 0.0, INFINITY};
#define N_TEMPS (sizeof TEMPS / sizeof TEMPS[0])
static const char *const OP_NAMES[] = {"softmax", "log_softmax", "logsumexp"};

/* ---- bookkeeping ---------------------------------------------------------- */

typedef struct {
    const dtype *d;
    const char *name;
    long cases, failed;
    double worst;   /* largest error seen, in units of its bound */
} group;

static long total_passed, total_failed;
static int details_left = 25;   /* enough to see a pattern without drowning the log */

/* count elements of `size` bytes and two spare ones, zeroed */
static void *xcalloc(ptrdiff_t count, size_t size)
{
    void *p = calloc((size_t)count + 2, size);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

static void report(const group *g, int op, double t, ptrdiff_t n, ptrdiff_t r, ptrdiff_t i,
                   wide x, wide got, wide want, double err, const char *what)
{
    if (details_left-- <= 0) return;
    printf("  FAIL %s %s %s T=%g n=%td row %td [%td]: x=%.10Lg got=%.17Lg want=%.17Lg: ",
           g->d->name, g->name, OP_NAMES[op], t, n, r, i, x, got, want);
    if (what) printf("%s\n", what); else printf("error %.3g x bound\n", err);
}

/* ---- expected values --------------------------------------------------- */

static void neumaier_add(wide *sum, wide *comp, wide v)
{
    wide t = *sum + v;
    *comp += fabsl(*sum) >= fabsl(v) ? (*sum - t) + v : (v - t) + *sum;
    *sum = t;
}

/* softmax (sm), log_softmax (lsm) and logsumexp (*lse) of the row x[base .. base+n),
 * the same rules as fastsoftmax.reference. */
static void expected_row(const dtype *d, const void *x, ptrdiff_t base, ptrdiff_t n, wide t,
                         wide *sm, wide *lsm, wide *lse)
{
    wide m = -INFINITY;
    int has_nan = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        wide v = d->get(x, base + i);
        if (isnan(v)) has_nan = 1;
        else if (v > m) m = v;
    }
    if (n == 0) { *lse = -INFINITY; return; }
    /* NaN rows: any NaN, only -inf (nothing to pick, even at T = 0), and for
     * T > 0 a +inf.  logsumexp keeps NaN, +inf or -inf. */
    if (has_nan || (isinf(m) && (t != 0 || m < 0))) {
        for (ptrdiff_t i = 0; i < n; i++) sm[i] = lsm[i] = NAN;
        *lse = has_nan ? NAN : m;
        return;
    }
    if (t == 0 || isinf(t)) {
        /* the limits: weight 1/k on each of k entries, the maxima (T = 0) or
         * those that are not -inf (T = inf) */
#define HIT(v) (t == 0 ? (v) == m : (v) != -INFINITY)
        long k = 0;
        for (ptrdiff_t i = 0; i < n; i++) k += HIT(d->get(x, base + i));
        for (ptrdiff_t i = 0; i < n; i++) {
            int hit = HIT(d->get(x, base + i));
            sm[i] = hit ? 1.0L / k : 0.0L;
            lsm[i] = hit ? -logl((wide)k) : -INFINITY;
        }
#undef HIT
        *lse = (t == 0 || k == 1) ? m : INFINITY;
        return;
    }
    /* The maxima's terms (exactly 1) are counted apart so that log(S) is
     * log1p(rest) for a unique maximum: full precision near 0. */
    long count = 0;
    wide rest = 0, comp = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        wide v = d->get(x, base + i), a = (v - m) / t;   /* exact enough: wider than the dtype */
        lsm[i] = a;
        sm[i] = d->exp_w(a);
        if (v == m) count++;
        else neumaier_add(&rest, &comp, sm[i]);
    }
    rest += comp;
    wide log_sum = count == 1 ? d->log1p_w(rest) : d->log_w(count + rest);
    for (ptrdiff_t i = 0; i < n; i++) {
        sm[i] /= count + rest;
        lsm[i] -= log_sum;
    }
    *lse = m + t * log_sum;
}

/* Error of one output in units of its bound (<= 1 passes; INFINITY for a
 * wrong special value).  near_zero: log values relative to themselves, as the
 * contract asks for logsumexp([0, -40]) and the maximum's log_softmax. */
static double value_error(const dtype *d, int op, wide got, wide want, int near_zero)
{
    if (isnan(want)) return isnan(got) ? 0 : INFINITY;
    double buf[1];
    d->set(buf, 0, want);
    wide rounded = d->get(buf, 0);
    if (isinf(rounded)) return got == rounded ? 0 : INFINITY;   /* -inf entries, overflow to inf */
    if (!isfinite(got)) return INFINITY;
    if (op == FS_SOFTMAX) {
        if (want == 0) return got == 0 ? 0 : INFINITY;   /* masked entries, the limits: exact zeros */
        double rel = (double)(fabsl(got - want) / want);
        if (want >= 1e-8) return rel / d->bound;
        if (want >= d->tiny) return rel / d->tail;
        return (double)(fabsl(got - want) / d->tiny);    /* subnormal results: off by less than the smallest normal */
    }
    wide scale = near_zero ? fmaxl(fabsl(want), d->tiny) : fmaxl(1, fabsl(want));
    return (double)(fabsl(got - want) / scale) / (4 * d->bound);
}

/* ---- one batch: all three ops ---------------------------------------------- */

#define GUARD 12345.0L   /* written just past the output: the kernels must leave it */

static void check_batch(group *g, double t, const void *x, ptrdiff_t rows, ptrdiff_t n, int near_zero)
{
    const dtype *d = g->d;
    const ptrdiff_t total = rows * n;
    wide *sm = xcalloc(total, sizeof(wide)), *lsm = xcalloc(total, sizeof(wide)), *lse = xcalloc(rows, sizeof(wide));
    void *out = xcalloc(total > rows ? total : rows, d->size), *inplace = xcalloc(total, d->size);
    for (ptrdiff_t r = 0; r < rows; r++) expected_row(d, x, r * n, n, t, sm + r * n, lsm + r * n, lse + r);
    fs_params p;
    d->params_init(t, &p);

    for (int op = FS_SOFTMAX; op <= FS_LOGSUMEXP; op++) {
        const ptrdiff_t count = op == FS_LOGSUMEXP ? rows : total;
        int ok = 1;
        d->set(out, count, GUARD);
        d->rows(op, x, out, rows, n, &p);
        if (d->get(out, count) != GUARD)
            ok = 0, report(g, op, t, n, rows, count, 0, d->get(out, count), GUARD, 0, "wrote past the end of out");
        for (ptrdiff_t r = 0; r < rows; r++) {
            const ptrdiff_t len = op == FS_LOGSUMEXP ? 1 : n;
            for (ptrdiff_t i = 0; i < len; i++) {
                const ptrdiff_t k = op == FS_LOGSUMEXP ? r : r * n + i;
                wide want = op == FS_SOFTMAX ? sm[k] : op == FS_LOG_SOFTMAX ? lsm[k] : lse[r];
                wide got = d->get(out, k), xi = op == FS_LOGSUMEXP ? NAN : d->get(x, k);
                double err = value_error(d, op, got, want, near_zero);
                if (!(err <= 1)) { ok = 0; report(g, op, t, n, r, i, xi, got, want, err, NULL); }
                else if (err > g->worst) g->worst = err;
            }
            /* a float32 row's softmax sums to 1 within 2e-6 at any length */
            if (op == FS_SOFTMAX && d == &F32 && n > 0 && !isnan(sm[r * n])) {
                wide s = 0;
                for (ptrdiff_t i = 0; i < n; i++) s += d->get(out, r * n + i);
                double err = (double)fabsl(s - 1) / 2e-6;
                if (!(err <= 1)) { ok = 0; report(g, op, t, n, r, -1, NAN, s, 1, err, "row sum"); }
            }
        }
        /* out == x is allowed and must give the same bits */
        if (op != FS_LOGSUMEXP && total > 0) {
            memcpy(inplace, x, (size_t)total * d->size);
            d->rows(op, inplace, inplace, rows, n, &p);
            if (memcmp(inplace, out, (size_t)total * d->size) != 0)
                ok = 0, report(g, op, t, n, -1, -1, NAN, NAN, NAN, 0, "in place (out == x) differs");
        }
        g->cases++;
        if (!ok) g->failed++;
    }
    free(sm); free(lsm); free(lse); free(out); free(inplace);
}

static void group_done(const group *g)
{
    printf("%-8s %-34s %6ld cases, %ld failed, worst error %.3f of the bound\n",
           g->d->name, g->name, g->cases, g->failed, g->worst);
    total_passed += g->cases - g->failed;
    total_failed += g->failed;
}

/* ---- data ------------------------------------------------------------------ */

static uint64_t rng_state = 20240612u;   /* fixed seed: every run checks the same rows */

static uint64_t rng_u64(void)   /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}
static double rng_uniform(void) { return (double)(rng_u64() >> 11) * 0x1p-53; }
/* Roughly standard normal (Irwin-Hall): no libm, so the rows are bit-identical on every platform. */
static double rng_normal(void)
{
    double s = 0;
    for (int i = 0; i < 12; i++) s += rng_uniform();
    return s - 6;
}

/* Room for `count` elements starting one element into the allocation, so
 * vector loads are unaligned; release with free_rows. */
static void *new_rows(const dtype *d, ptrdiff_t count) { return (char *)xcalloc(count + 1, d->size) + d->size; }
static void free_rows(const dtype *d, void *x) { free((char *)x - d->size); }

/* n random logits at x[off]: normal times `scale`; ties: multiples of 1/4, so
 * the maximum repeats; masked: about one entry in 8 is -inf (never the first). */
static void fill_random(const dtype *d, void *x, ptrdiff_t off, ptrdiff_t n, double scale, int ties, int masked)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        double v = rng_normal() * scale;
        if (ties) v = floor(v * 4) / 4;
        if (masked && i > 0 && (rng_u64() & 7) == 0) v = -INFINITY;
        d->set(x, off + i, v);
    }
}

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

static void group_random(const dtype *d)
{
    group g = {d, "random rows n=1..300", 0, 0, 0};
    for (ptrdiff_t n = 1; n <= 300; n++) check_random_pair(&g, n, n % 7 ? 4.0 : 30.0, TEMPS, N_TEMPS);
    group_done(&g);
}

static void group_long(const dtype *d)
{
    group g = {d, "long rows n=4099,5000,70000", 0, 0, 0};
    /* 70000 > 2 * FS_CHUNK: sums are combined over three chunks */
    const ptrdiff_t lengths[] = {4099, 5000, 70000};
    for (size_t j = 0; j < 3; j++) check_random_pair(&g, lengths[j], 4.0, TEMPS, N_TEMPS);
    group_done(&g);
}

/* Temperatures so small or large that the kernels may switch to the limit
 * modes, and a subnormal one. */
static void group_extreme_temperatures(const dtype *d)
{
    group g = {d, "extreme temperatures", 0, 0, 0};
    const double temps[] = {1e-300, 5e-324, 1e-30, 1e-5, 1e5, 1e30, 1e300};
    const ptrdiff_t lengths[] = {1, 2, 5, 16, 33, 100};
    for (size_t j = 0; j < 6; j++) check_random_pair(&g, lengths[j], 4.0, temps, 7);
    group_done(&g);
}

enum { SOME_NEG_INF, ONLY_NEG_INF, POS_INF, POS_AND_NEG_INF, ONE_NAN, NAN_AND_INFS, TWO_POS_INF, ALL_EQUAL,
       N_KINDS };

/* Turns the row of n entries at s (random logits) into one of the special
 * kinds, the special entry at pos. */
static void make_special(const dtype *d, void *s, ptrdiff_t n, int kind, ptrdiff_t pos)
{
    const ptrdiff_t next = (pos + 1) % n, after = (pos + 2) % n;
    for (ptrdiff_t i = 0; i < n; i++) {
        if ((kind == SOME_NEG_INF && i % 3 == 2) || kind == ONLY_NEG_INF) d->set(s, i, -INFINITY);
        if (kind == ALL_EQUAL) d->set(s, i, 1.5);
    }
    switch (kind) {
    case SOME_NEG_INF: d->set(s, pos, -INFINITY); d->set(s, next, 2.0); break;
    case POS_INF: d->set(s, pos, INFINITY); break;
    case POS_AND_NEG_INF: d->set(s, next, -INFINITY); d->set(s, pos, INFINITY); break;
    case ONE_NAN: d->set(s, pos, NAN); break;
    case NAN_AND_INFS: d->set(s, next, INFINITY); d->set(s, after, -INFINITY); d->set(s, pos, NAN); break;
    case TWO_POS_INF: d->set(s, pos, INFINITY); d->set(s, (pos + n / 2 + 1) % n, INFINITY); break;
    }
}

/* The special-value table, row kind by row kind, with the special entries at
 * the start, middle and end (vector bodies and tails); each special row sits
 * between two ordinary rows, which must come out as if alone. */
static void group_special(const dtype *d)
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
static void group_tiles(const dtype *d)
{
    static const ptrdiff_t row_counts[] = {16, 17, 23, 31, 32, 33, 40};
    group g = {d, "tiles: 16..40 rows of n=1..17", 0, 0, 0};
    int turn = 0;
    for (size_t j = 0; j < sizeof row_counts / sizeof row_counts[0]; j++) {
        const ptrdiff_t rows = row_counts[j];
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
static void group_huge(const dtype *d)
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
static void group_near_zero(const dtype *d)
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

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);   /* lines so far survive a crash in a kernel */
    printf("fastsoftmax C kernels: %s; expected values in long double (%d-bit mantissa)\n",
           fs_simd_target(), LDBL_MANT_DIG);
    const dtype *dtypes[] = {&F32, &F64};
    for (int k = 0; k < 2; k++) {
        group_random(dtypes[k]);
        group_long(dtypes[k]);
        group_special(dtypes[k]);
        group_tiles(dtypes[k]);
        group_huge(dtypes[k]);
        group_near_zero(dtypes[k]);
        group_extreme_temperatures(dtypes[k]);
    }
    printf("%ld passed, %ld failed\n", total_passed, total_failed);
    return total_failed ? 1 : 0;
}
