/* What the kernels need compiled once, outside the instruction-set variants:
 * the statistics of rows and chunks (merge in chunk order, finish), the
 * per-call temperature constants, and the choice of variant at run time.
 * The kernels themselves: kernel_template.h, compiled by isa_*.c. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core.h"
#include "weighted.h"

/* ---- statistics ------------------------------------------------------------ */

void fs_stats_init(fs_stats *s)
{
    s->max = -INFINITY;
    s->has_nan = 0;
    s->count = 0;
    s->rest = 0.0;
    s->rest_comp = 0.0;
    s->any_entry = 0;
}

/* exp((a - b) / T) for a <= b, without overflow in a - b. */
static double fs_exp_scaled_gap(double a, double b, double t)
{
    double d = a - b;
    if (isinf(d) && isfinite(a) && isfinite(b)) d = a / t - b / t;
    else d /= t;
    return exp(d);
}

/* rest with its compensation; an infinite rest (infinite weights) has no
 * meaningful compensation (inf - inf left it NaN), so it stands alone. */
static double fs_rest_total(const fs_stats *s)
{
    return isfinite(s->rest) ? s->rest + s->rest_comp : s->rest;
}

void fs_stats_merge(const fs_stats *chunk, const fs_params *p, fs_stats *row)
{
    row->has_nan |= chunk->has_nan;
    row->any_entry |= chunk->any_entry;
    if (p->mode == FS_MODE_INF) {
        if (chunk->max > row->max) row->max = chunk->max;
        row->count += chunk->count;
        return;
    }
    if (chunk->max < row->max) {
        /* the chunk's terms, relative to the row's larger maximum */
        if (p->mode == FS_MODE_GENERAL && isfinite(chunk->max))
            fs_neumaier_add(&row->rest, &row->rest_comp,
                            ((double)chunk->count + fs_rest_total(chunk)) *
                                fs_exp_scaled_gap(chunk->max, row->max, p->temperature));
        return;
    }
    if (chunk->max > row->max) {
        /* a new maximum: what the row had so far moves below it */
        double below = 0.0;
        if (p->mode == FS_MODE_GENERAL && isfinite(row->max) && isfinite(chunk->max))
            below = ((double)row->count + fs_rest_total(row)) *
                    fs_exp_scaled_gap(row->max, chunk->max, p->temperature);
        row->max = chunk->max;
        row->count = 0;
        row->rest = below;
        row->rest_comp = 0.0;
    }
    row->count += chunk->count;
    fs_neumaier_add(&row->rest, &row->rest_comp, fs_rest_total(chunk));
}

static int fs_row_kind(const fs_stats *row, ptrdiff_t n, const fs_params *p)
{
    if (n == 0) return FS_ROW_EMPTY;
    if (!row->any_entry) return FS_ROW_MASKED;
    if (row->has_nan) return FS_ROW_NAN;
    /* At T = 0 the limit picks the entries at the maximum, even a +inf one;
     * only -inf entries leave nothing to pick.  Any T > 0, however small
     * (FS_MODE_ZERO is also used for those), follows the ordinary table. */
    if (isinf(row->max) && (p->temperature != 0.0 || row->max < 0)) return FS_ROW_NAN;
    return FS_ROW_NORMAL;
}

void fs_row_finish(int op, const fs_stats *row, ptrdiff_t n, const fs_params *p, fs_row_result *r)
{
    r->kind = fs_row_kind(row, n, p);
    r->max = row->max;
    r->log_sum = r->inv_sum = r->logsumexp = NAN;
    switch (r->kind) {
    case FS_ROW_EMPTY:
    case FS_ROW_MASKED:
        r->logsumexp = -INFINITY;
        return;
    case FS_ROW_NAN:
        r->logsumexp = row->has_nan ? NAN : row->max;
        return;
    default:
        break;
    }
    double count = (double)row->count;
    if (p->mode != FS_MODE_GENERAL) {
        /* T = 0: the maximum.  T -> inf: T * log(count) grows without bound
         * unless a single finite entry is left. */
        r->inv_sum = 1.0 / count;
        r->log_sum = log(count);
        if (p->temperature == 0.0 || row->count == 1) r->logsumexp = row->max;
        else r->logsumexp = fs_max_plus_t_log(row->max, p->temperature, r->log_sum);
        return;
    }
    double rest = row->rest + row->rest_comp;
    r->inv_sum = 1.0 / (count + rest);
    if (op == FS_SOFTMAX) return;
    /* log1p keeps log(1 + tiny) exact when the maximum is unique */
    r->log_sum = row->count == 1 ? log1p(rest) : log(count + rest);
    r->logsumexp = fs_max_plus_t_log(row->max, p->temperature, r->log_sum);
}

/* The weighted log-sum-exp's finish (weighted.h): the same max + T * log S
 * as fs_row_finish, S signed and kept as an error-free sum. */
void fs_weighted_finish(const fs_stats *s, double temperature, double *value, double *sign)
{
    if (s->has_nan) {
        *value = *sign = NAN;
        return;
    }
    if (s->max == -INFINITY) {
        *value = -INFINITY;
        *sign = 0.0;
        return;
    }
    /* S as hi + lo with lo below half an ulp of hi (an error-free sum) */
    double hi = s->rest + s->rest_comp;
    const double comp_part = hi - s->rest;
    double lo = (s->rest - (hi - comp_part)) + (s->rest_comp - comp_part);
    if (!isfinite(s->rest) || !isfinite(hi)) hi = s->rest, lo = 0.0;   /* infinite weights */
    if (isnan(hi)) {
        *value = *sign = NAN;
        return;
    }
    if (hi == 0.0) {
        *value = -INFINITY;
        *sign = 0.0;
        return;
    }
    *sign = hi > 0.0 ? 1.0 : -1.0;
    if (isinf(hi)) {
        *value = INFINITY;
        return;
    }
    const double magnitude = fabs(hi), magnitude_lo = hi > 0.0 ? lo : -lo;
    /* near 1, log1p of the exact difference keeps a sum 1 + tiny exact */
    const double log_sum = magnitude >= 0.5 && magnitude <= 2.0 ? log1p((magnitude - 1.0) + magnitude_lo)
                                                                 : log(magnitude);
    *value = fs_max_plus_t_log(s->max, temperature, log_sum);
}

/* ---- the losses' scalar steps (see core.h) ------------------------------------ */

__attribute__((noinline)) double fs_add_product(double a, double b, double c) { return a + b * c; }
__attribute__((noinline)) double fs_product_minus(double a, double b, double c) { return a * b - c; }

/* ---- temperature ------------------------------------------------------ */

typedef struct {
    double k_zero;           /* k at which the exp kernels' 2**(k + shift) reads +0: -(bias + shift) */
    int c_hi_bits;           /* |k| stays below 2**(mantissa bits - c_hi_bits) */
    int e_min, e_max;        /* powers of two that scale exactly in the dtype */
    double tm_zero, tm_inf;  /* beyond these every exp rounds to 0 or 1 in the dtype */
    int is_float;
} fs_dtype_limits;

static const fs_dtype_limits fs_limits_f32 = {-(127.0 + 64.0), 15, -126, 126, 0x1p-100, 0x1p100, 1};
static const fs_dtype_limits fs_limits_f64 = {-(1023.0 + 600.0), 40, -1022, 1022, 0.0, INFINITY, 0};

/* ln(2) * tm * scale (scale a power of two) as c_hi + c_lo, c_hi keeping
 * hi_bits significant bits so that k * c_hi is exact for the k in use. */
static void fs_split_ln2(double tm, double scale, int hi_bits, double *c_hi, double *c_lo)
{
    const double ln2_hi = 0.6931471805599453 * scale, ln2_lo = 2.3190468138462996e-17 * scale;
    double c = ln2_hi * tm;
    double c_err = fma(ln2_hi, tm, -c) + ln2_lo * tm;
    int ce = ilogb(c);
    *c_hi = ldexp(nearbyint(ldexp(c, hi_bits - 1 - ce)), ce - (hi_bits - 1));
    *c_lo = (c - *c_hi) + c_err;
}

static void fs_params_for_limits(double temperature, fs_params *p, const fs_dtype_limits *lim)
{
    memset(p, 0, sizeof *p);
    p->temperature = temperature;
    if (temperature == 0.0) { p->mode = FS_MODE_ZERO; return; }
    if (isinf(temperature)) { p->mode = FS_MODE_INF; return; }

    int e = ilogb(temperature);
    if (e < lim->e_min) e = lim->e_min;
    if (e > lim->e_max) e = lim->e_max;
    double tm = ldexp(temperature, -e);
    if (tm < lim->tm_zero) { p->mode = FS_MODE_ZERO; return; }
    if (tm > lim->tm_inf) { p->mode = FS_MODE_INF; return; }

    p->mode = FS_MODE_GENERAL;
    p->s_pre = e > 0 ? ldexp(1.0, -e) : 1.0;
    p->s_post = e < 0 ? ldexp(1.0, -e) : 1.0;
    p->k_scale = 1.4426950408889634 / tm;
    p->inv_tm = 1.0 / tm;
    /* ln2 * tm in double-double, then split so c_hi keeps c_hi_bits bits. */
    fs_split_ln2(tm, 1.0, lim->c_hi_bits, &p->c_hi, &p->c_lo);
    /* the table-driven exp takes steps of ln2 / 16, so k is 16 times larger */
    p->k_scale_t = 16.0 * 1.4426950408889634 / tm;
    fs_split_ln2(tm, 1.0 / 16.0, lim->c_hi_bits - 4, &p->c_hi_t, &p->c_lo_t);
    if (lim->is_float) {
        p->k_scale = (float)p->k_scale;
        p->inv_tm = (float)p->inv_tm;
        p->c_lo = (float)p->c_lo;
    }
    p->d_clamp = lim->k_zero / p->k_scale;
    p->d_clamp_t = 16.0 * lim->k_zero / p->k_scale_t;
    if (lim->is_float) p->d_clamp = (float)p->d_clamp;
    p->unit = p->s_pre == 1.0 && p->s_post == 1.0 && p->inv_tm == 1.0;
}

void fs_params_init(int dtype, double temperature, fs_params *p)
{
    fs_params_for_limits(temperature, p, dtype == FS_F32 ? &fs_limits_f32 : &fs_limits_f64);
}
void fs_params_init_f32(double temperature, fs_params *p) { fs_params_init(FS_F32, temperature, p); }
void fs_params_init_f64(double temperature, fs_params *p) { fs_params_init(FS_F64, temperature, p); }

/* ---- dispatch ------------------------------------------------------------ */

enum { FS_ISA_BASELINE = 0, FS_ISA_AVX2 = 1, FS_ISA_AVX512 = 2 };

static const struct {
    const char *name, *words;
    const fs_kernels *f32, *f64;
} fs_variants[] = {
#if defined(FASTSOFTMAX_X86_DISPATCH)
    {"baseline", "x86-64 baseline (SSE2, 16-byte vectors)", &fs_kernels_f32_baseline, &fs_kernels_f64_baseline},
    {"avx2", "AVX2+FMA (x86-64-v3, 32-byte vectors)", &fs_kernels_f32_avx2, &fs_kernels_f64_avx2},
    {"avx512", "AVX-512 (x86-64-v4, 64-byte vectors)", &fs_kernels_f32_avx512, &fs_kernels_f64_avx512},
#else
    {"baseline", "portable baseline (16-byte vectors, no runtime dispatch in this build)",
     &fs_kernels_f32_baseline, &fs_kernels_f64_baseline},
#endif
};
#define FS_N_VARIANTS ((int)(sizeof fs_variants / sizeof fs_variants[0]))

/* The widest variant the CPU's feature bits allow. */
static int fs_widest_isa(void)
{
#if defined(FASTSOFTMAX_X86_DISPATCH)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
        return FS_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return FS_ISA_AVX2;
#endif
    return FS_ISA_BASELINE;
}

/* ---- choice of variant by speed -------------------------------------------- */

/* The widest variant is not always the fastest: parts with one 512-bit FMA
 * pipe (many Xeon Silver/Bronze and client cores) also lower their clock for
 * AVX-512 and get more float lanes per second from 256-bit code, while Zen 4
 * and two-pipe Xeons are the other way round.  Feature bits do not tell the
 * two apart, so the first use times each eligible variant's exp-sum pass (the
 * pass that bounds the kernels in cache) and keeps the fastest.  A narrower
 * variant must be faster by FS_NARROWER_MARGIN: where the two are close, the
 * choice stays the widest one, so that noise does not flip it from one
 * process to the next (the variants' results may differ in the last bits,
 * within the accuracy contract). */
#define FS_NARROWER_MARGIN 1.10

int fs_pick_isa(const double *cost, int widest)
{
    int pick = widest;
    for (int i = widest - 1; i > FS_ISA_BASELINE; i--)
        if (cost[i] > 0 && cost[pick] > 0 && cost[i] * FS_NARROWER_MARGIN < cost[pick]) pick = i;
    return pick;
}

/* Why the variants in use were chosen (see fs_simd_target). */
static char fs_isa_reason[240] = "";

#if defined(FASTSOFTMAX_X86_DISPATCH)
static const char *const fs_dtype_names[2] = {"float32", "float64"};

/* an L1-sized row, timed FS_TIMING_CALLS passes at a time; the warm-up of
 * avx512 stops at FS_WARMUP_TICKS (about 100 us at 3 GHz) or FS_WARMUP_CALLS */
enum { FS_TIMING_N = 2048, FS_TIMING_CALLS = 4, FS_TIMING_ROUNDS = 7, FS_WARMUP_CALLS = 2000 };
#define FS_WARMUP_TICKS 300000u

static int fs_by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Time-stamp counter ticks of `calls` exp-sum passes (chunk_stats: max,
 * then exp and sum) over an L1-sized row of the dtype. */
static double fs_time_exp_pass(int level, int dtype, const void *x, int calls)
{
    fs_params p;
    fs_stats s;
    fs_params_init(dtype, 1.0, &p);
    const fs_kernels *k = dtype == FS_F32 ? fs_variants[level].f32 : fs_variants[level].f64;
    const uint64_t t0 = __builtin_ia32_rdtsc();
    for (int c = 0; c < calls; c++) k->chunk_stats(FS_SOFTMAX, x, NULL, FS_TIMING_N, &p, &s);
    return (double)(__builtin_ia32_rdtsc() - t0);
}

/* Median ticks per element of FS_TIMING_ROUNDS timings of one variant. */
static double fs_median_ticks(int level, int dtype, const void *x)
{
    double samples[FS_TIMING_ROUNDS];
    for (int round = 0; round < FS_TIMING_ROUNDS; round++)
        samples[round] = fs_time_exp_pass(level, dtype, x, FS_TIMING_CALLS) / (FS_TIMING_CALLS * FS_TIMING_N);
    qsort(samples, FS_TIMING_ROUNDS, sizeof(double), fs_by_value);
    return samples[FS_TIMING_ROUNDS / 2];
}

/* Ticks per element of avx2 and avx512 for each dtype (baseline is never
 * faster: not timed, 0).  Each is a median of rounds, robust to the odd
 * interruption.  The order matters on CPUs that lower their clock for wide
 * vectors, which they keep lowered for about 2 ms after the last one: avx2
 * is timed first, at the clock it would run at if chosen, and again after
 * avx512 (the lower of the two counts, against noise); avx512 after a
 * warm-up of about 100 microseconds, past the clock change and its stall.
 * About 300 microseconds in all, once per process. */
static void fs_time_variants(double ns[2][FS_ISA_AVX512 + 1])
{
    static float xf[FS_TIMING_N];
    static double xd[FS_TIMING_N];
    const void *x[2] = {xf, xd};
    unsigned seed = 12345;
    for (int i = 0; i < FS_TIMING_N; i++) {
        seed = seed * 1103515245u + 12345u;
        xd[i] = ((seed >> 8) / 16777216.0 - 0.5) * 16.0;
        xf[i] = (float)xd[i];
    }
    double avx2_first[2];
    for (int d = 0; d < 2; d++) {
        fs_time_exp_pass(FS_ISA_AVX2, d, x[d], 1);   /* code and data into the caches */
        avx2_first[d] = fs_median_ticks(FS_ISA_AVX2, d, x[d]);
    }
    const uint64_t t0 = __builtin_ia32_rdtsc();
    for (int c = 0; c < FS_WARMUP_CALLS && __builtin_ia32_rdtsc() - t0 < FS_WARMUP_TICKS; c++)
        fs_time_exp_pass(FS_ISA_AVX512, c % 2, x[c % 2], 1);
    for (int d = 0; d < 2; d++) ns[d][FS_ISA_AVX512] = fs_median_ticks(FS_ISA_AVX512, d, x[d]);
    for (int d = 0; d < 2; d++) {
        const double avx2_again = fs_median_ticks(FS_ISA_AVX2, d, x[d]);
        ns[d][FS_ISA_AVX2] = avx2_first[d] < avx2_again ? avx2_first[d] : avx2_again;
        ns[d][FS_ISA_BASELINE] = 0;
    }
}
#endif

/* The variant of each dtype to use when nothing forces one, and why (in
 * fs_isa_reason).  Chosen per dtype: the float64 kernels of the variants
 * differ more (the table-driven float64 exp is AVX-512's only). */
static void fs_auto_isa(int level[2])
{
    const int widest = fs_widest_isa();
    level[0] = level[1] = widest;
    snprintf(fs_isa_reason, sizeof fs_isa_reason, "the widest this CPU has");
#if defined(FASTSOFTMAX_X86_DISPATCH)
    if (widest == FS_ISA_AVX512) {
        double ns[2][FS_ISA_AVX512 + 1];
        fs_time_variants(ns);
        size_t used = (size_t)snprintf(fs_isa_reason, sizeof fs_isa_reason,
                                       "chosen by speed, its exp-sum pass timed at first use");
        for (int d = 0; d < 2 && used < sizeof fs_isa_reason; d++) {
            level[d] = fs_pick_isa(ns[d], widest);
            const int other = level[d] == FS_ISA_AVX512 ? FS_ISA_AVX2 : FS_ISA_AVX512;
            used += (size_t)snprintf(fs_isa_reason + used, sizeof fs_isa_reason - used,
                                     "%s %.2fx as fast as %s's (%s)", d ? "," : ":",
                                     ns[d][other] / ns[d][level[d]], fs_variants[other].name, fs_dtype_names[d]);
        }
    }
#endif
}

/* Each dtype's variant: -1 until first use; then set, and changed only by
 * fs_use_isa (tests) */
static int fs_isa_level[2] = {-1, -1};
/* the timed choice, once made (fs_use_isa("auto") returns to it) */
static int fs_auto_level[2] = {-1, -1};
static char fs_auto_reason[sizeof fs_isa_reason];

static int fs_isa(int dtype)
{
    if (fs_isa_level[dtype] < 0) {
        /* FASTSOFTMAX_FORCE_ISA ("avx512", "avx2", "baseline") overrides the
         * choice by speed, within what the CPU has; an unknown name is ignored */
        const char *force = getenv("FASTSOFTMAX_FORCE_ISA");
        if (force == NULL || fs_use_isa(force) != 0) fs_use_isa("auto");
        else snprintf(fs_isa_reason, sizeof fs_isa_reason, "forced by FASTSOFTMAX_FORCE_ISA");
    }
    return fs_isa_level[dtype];
}

int fs_use_isa(const char *name)
{
    const int widest = fs_widest_isa();
    if (strcmp(name, "auto") == 0) {
        if (fs_auto_level[0] < 0) {
            fs_auto_isa(fs_auto_level);
            memcpy(fs_auto_reason, fs_isa_reason, sizeof fs_auto_reason);
        }
        fs_isa_level[0] = fs_auto_level[0];
        fs_isa_level[1] = fs_auto_level[1];
        memcpy(fs_isa_reason, fs_auto_reason, sizeof fs_isa_reason);
        return 0;
    }
    if (strcmp(name, "best") == 0) name = fs_variants[widest].name;
    for (int i = 0; i < FS_N_VARIANTS && i <= widest; i++) {
        if (strcmp(name, fs_variants[i].name) == 0) {
            fs_isa_level[0] = fs_isa_level[1] = i;
            snprintf(fs_isa_reason, sizeof fs_isa_reason, "set by name");
            return 0;
        }
    }
    return -1;
}

const fs_kernels *fs_kernels_for(int dtype)
{
    const int d = dtype == FS_F32 ? 0 : 1;
    const int level = fs_isa(d);
    return d == 0 ? fs_variants[level].f32 : fs_variants[level].f64;
}

/* The variant in words (one for both dtypes, or each with its dtype), and why. */
const char *fs_simd_target(void)
{
    static char text[sizeof fs_isa_reason + 200];
    const int f32 = fs_isa(0), f64 = fs_isa(1);
    if (f32 == f64)
        snprintf(text, sizeof text, "%s; %s", fs_variants[f32].words, fs_isa_reason);
    else
        snprintf(text, sizeof text, "%s for float32, %s for float64; %s", fs_variants[f32].words,
                 fs_variants[f64].words, fs_isa_reason);
    return text;
}

void fs_rows_f32(int op, const float *x, float *out, ptrdiff_t rows, ptrdiff_t n, const fs_params *p)
{
    fs_kernels_for(FS_F32)->rows(op, x, out, rows, n, p, 0);
}
void fs_rows_f64(int op, const double *x, double *out, ptrdiff_t rows, ptrdiff_t n, const fs_params *p)
{
    fs_kernels_for(FS_F64)->rows(op, x, out, rows, n, p, 0);
}
