/* The shared parts of the C check (see check.h): dtypes, bookkeeping, the
 * long-double oracle, error measures and seeded data.  exp/log run in double
 * for float32 rows (ample against its bounds, and cheap under emulation) and
 * in long double for float64 rows. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ---- the two dtypes ------------------------------------------------------ */

static wide get_f32(const void *a, ptrdiff_t i) { return ((const float *)a)[i]; }
static wide get_f64(const void *a, ptrdiff_t i) { return ((const double *)a)[i]; }
static void set_f32(void *a, ptrdiff_t i, wide v) { ((float *)a)[i] = (float)v; }
static void set_f64(void *a, ptrdiff_t i, wide v) { ((double *)a)[i] = (double)v; }
static wide exp_d(wide a) { return exp((double)a); }       static wide exp_l(wide a) { return expl(a); }
static wide log_d(wide a) { return log((double)a); }       static wide log_l(wide a) { return logl(a); }
static wide log1p_d(wide a) { return log1p((double)a); }   static wide log1p_l(wide a) { return log1pl(a); }

const dtype F32 = {"float32", FS_F32, 4, 2e-6, 1e-4, FLT_MIN, FLT_MAX, FLT_EPSILON,
                   get_f32, set_f32, exp_d, log_d, log1p_d};
const dtype F64 = {"float64", FS_F64, 8, 1e-14, 1e-12, DBL_MIN, DBL_MAX, DBL_EPSILON,
                   get_f64, set_f64, exp_l, log_l, log1p_l};
const char *const OP_NAMES[] = {"softmax", "log_softmax", "logsumexp"};

const fs_kernels *kernels(const dtype *d) { return fs_kernels_for(d->id); }
void params(const dtype *d, double temperature, fs_params *p) { fs_params_init(d->id, temperature, p); }

/* ---- bookkeeping ---------------------------------------------------------- */

static long variant_passed, variant_failed, all_cases, all_failed;
static int details_left;   /* enough to see a pattern without drowning the log */

void *xcalloc(ptrdiff_t count, size_t size)
{
    /* two spare elements, zeroed: room for a guard */
    void *p = calloc((size_t)count + 2, size);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

check_case case_begin(group *g) { return (check_case){g, 1}; }

void case_end(check_case *c)
{
    c->g->cases++;
    if (!c->ok) c->g->failed++;
}

void note(check_case *c, double err, const char *fmt, ...)
{
    if (err <= 1) {
        if (err > c->g->worst) c->g->worst = err;
        return;
    }
    c->ok = 0;
    if (details_left-- <= 0) return;
    va_list args;
    va_start(args, fmt);
    printf("  FAIL %s %s: ", c->g->d->name, c->g->name);
    vprintf(fmt, args);
    if (isinf(err) || isnan(err)) printf(": wrong special value or outside the output\n");
    else printf(": error %.3g x bound\n", err);
    va_end(args);
}

void group_done(const group *g)
{
    printf("%-8s %-40s %6ld cases, %ld failed, worst error %.3f of the bound\n",
           g->d->name, g->name, g->cases, g->failed, g->worst);
    variant_passed += g->cases - g->failed;
    variant_failed += g->failed;
    all_cases += g->cases;
    all_failed += g->failed;
}

void variant_begin(const char *isa)
{
    variant_passed = variant_failed = 0;
    details_left = 25;
    printf("== %s: %s; expected values in long double (%d-bit mantissa)\n", isa, fs_simd_target(),
           LDBL_MANT_DIG);
}

void variant_done(const char *isa) { printf("%s: %ld passed, %ld failed\n", isa, variant_passed, variant_failed); }
long failures_so_far(void) { return all_failed; }
long total_cases(void) { return all_cases; }

/* ---- the oracle -------------------------------------------------------------- */

static void neumaier_add(wide *sum, wide *comp, wide v)
{
    wide t = *sum + v;
    *comp += fabsl(*sum) >= fabsl(v) ? (*sum - t) + v : (v - t) + *sum;
    *sum = t;
}

static wide entry(const dtype *d, const void *x, ptrdiff_t i, const uint8_t *sel, ptrdiff_t at)
{
    return sel && !sel[at] ? -INFINITY : d->get(x, i);
}

expected_stats expected_row_stats(const dtype *d, const void *x, ptrdiff_t n, wide t, const uint8_t *sel)
{
    expected_stats s = {FS_ROW_NORMAL, -INFINITY, 0, 0};
    int has_nan = 0, any = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        wide v = entry(d, x, i, sel, i);
        any |= !sel || sel[i];
        if (isnan(v)) has_nan = 1;
        else if (v > s.max) s.max = v;
    }
    if (n == 0) { s.kind = FS_ROW_EMPTY; return s; }
    if (!any) { s.kind = FS_ROW_MASKED; return s; }
    /* NaN rows: any NaN, only -inf (nothing to pick, even at T = 0), and for
     * T > 0 a +inf */
    if (has_nan || (isinf(s.max) && (t != 0 || s.max < 0))) { s.kind = FS_ROW_NAN; s.max = has_nan ? NAN : s.max; return s; }
    wide comp = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        wide v = entry(d, x, i, sel, i);
        if (t == 0) s.count += v == s.max;
        else if (isinf(t)) s.count += v != -INFINITY;
        else if (v == s.max) s.count++;
        else neumaier_add(&s.rest, &comp, d->exp_w((v - s.max) / t));   /* exact enough: wider than the dtype */
    }
    s.rest += comp;
    return s;
}

void expected_row(const dtype *d, const void *x, ptrdiff_t base, ptrdiff_t n, wide t, const uint8_t *sel,
                  wide *sm, wide *lsm, wide *lse)
{
    const void *row = (const char *)x + base * d->size;
    expected_stats s = expected_row_stats(d, row, n, t, sel);
    switch (s.kind) {
    case FS_ROW_EMPTY:
        *lse = -INFINITY;
        return;
    case FS_ROW_MASKED:
        for (ptrdiff_t i = 0; i < n; i++) sm[i] = 0, lsm[i] = -INFINITY;
        *lse = -INFINITY;
        return;
    case FS_ROW_NAN:   /* logsumexp keeps NaN, +inf or -inf */
        for (ptrdiff_t i = 0; i < n; i++) sm[i] = lsm[i] = NAN;
        *lse = s.max;
        return;
    }
    if (t == 0 || isinf(t)) {
        /* the limits: weight 1/k on each of k entries, the maxima (T = 0) or
         * those that are not -inf (T = inf) */
        for (ptrdiff_t i = 0; i < n; i++) {
            wide v = entry(d, row, i, sel, i);
            int hit = t == 0 ? v == s.max : v != -INFINITY;
            sm[i] = hit ? 1.0L / s.count : 0.0L;
            lsm[i] = hit ? -logl(s.count) : -INFINITY;
        }
        *lse = (t == 0 || s.count == 1) ? s.max : INFINITY;
        return;
    }
    /* The maxima's terms (exactly 1) are counted apart so that log(S) is
     * log1p(rest) for a unique maximum: full precision near 0. */
    wide log_sum = s.count == 1 ? d->log1p_w(s.rest) : d->log_w(s.count + s.rest);
    for (ptrdiff_t i = 0; i < n; i++) {
        wide a = (entry(d, row, i, sel, i) - s.max) / t;
        sm[i] = d->exp_w(a) / (s.count + s.rest);
        lsm[i] = a - log_sum;
    }
    *lse = s.max + t * log_sum;
}

int same_special(wide got, wide want)
{
    return isnan(want) ? isnan(got) : got == want;
}

double value_error(const dtype *d, int op, wide got, wide want, int near_zero)
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
    /* log values relative to max(1, |v|); near_zero: relative to themselves, as
     * the contract asks for logsumexp([0, -40]) and the maximum's log_softmax */
    wide scale = near_zero ? fmaxl(fabsl(want), d->tiny) : fmaxl(1, fabsl(want));
    return (double)(fabsl(got - want) / scale) / (4 * d->bound);
}

double scaled_error(const dtype *d, wide got, wide want, wide scale, double factor)
{
    if (!isfinite(want) || !isfinite(got)) return same_special(got, want) ? 0 : INFINITY;
    wide allowed = 4 * d->bound * factor * scale;
    /* below the smallest normal each rounding may lose a spacing of the
     * subnormals, whatever the relative bound: allow a few */
    const wide spacings = 8 * (d->id == FS_F32 ? 0x1p-149L : 0x1p-1074L);
    if (allowed < spacings) allowed = spacings;
    return (double)(fabsl(got - want) / allowed);
}

/* ---- data ------------------------------------------------------------------ */

static uint64_t rng_state = 20240612u;   /* fixed seed: every run checks the same rows */

uint64_t rng_u64(void)   /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}
double rng_uniform(void) { return (double)(rng_u64() >> 11) * 0x1p-53; }
/* Roughly standard normal (Irwin-Hall): no libm, so the rows are bit-identical on every platform. */
double rng_normal(void)
{
    double s = 0;
    for (int i = 0; i < 12; i++) s += rng_uniform();
    return s - 6;
}

/* Room for `count` elements starting one element into the allocation, so
 * vector loads are unaligned; release with free_rows. */
void *new_rows(const dtype *d, ptrdiff_t count) { return (char *)xcalloc(count + 1, d->size) + d->size; }
void free_rows(const dtype *d, void *x) { free((char *)x - d->size); }

/* n random logits at x[off]: normal times `scale`; ties: multiples of 1/4, so
 * the maximum repeats; masked: about one entry in 8 is -inf (never the first). */
void fill_random(const dtype *d, void *x, ptrdiff_t off, ptrdiff_t n, double scale, int ties, int masked)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        double v = rng_normal() * scale;
        if (ties) v = floor(v * 4) / 4;
        if (masked && i > 0 && (rng_u64() & 7) == 0) v = -INFINITY;
        d->set(x, off + i, v);
    }
}

/* Turns the row of n entries at s (random logits) into one of the special
 * kinds, the special entry at pos. */
void make_special(const dtype *d, void *s, ptrdiff_t n, int kind, ptrdiff_t pos)
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

uint8_t *new_selection(ptrdiff_t n, int sparsity)
{
    uint8_t *sel = xcalloc(n, 1);
    for (ptrdiff_t i = 0; i < n; i++)
        sel[i] = sparsity < 0 ? 0 : sparsity == 0 ? 1 : (rng_u64() % (uint64_t)sparsity) != 0;
    return sel;
}
